//! Step 8: the account `useradd` made is exactly the configured shape, read back from
//! the account files themselves.

use std::ops::RangeInclusive;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Group, User};

/// The groups `name` is a supplementary member of, from a group file's text.
pub fn supplementary_groups(group_file: &str, name: &str) -> Vec<String> {
    group_file
        .lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let group = f.next()?;
            let members = f.nth(2)?;
            members
                .split(',')
                .any(|m| m == name)
                .then(|| group.to_owned())
        })
        .collect()
}

/// Whether `name`'s password in a shadow file's text is locked (`!…` or `*`): nobody
/// can log in to the machine with it; the hub's login is the only way in.
pub fn password_locked(shadow_file: &str, name: &str) -> bool {
    shadow_file.lines().any(|line| {
        let mut f = line.split(':');
        f.next() == Some(name) && f.next().is_some_and(|p| p.starts_with('!') || p == "*")
    })
}

/// Checks the new account `name`: a uid in `uids`, its own primary group of its name,
/// `allowed_group` its only supplementary group, `shell`, its home a directory of its
/// own with mode 0700, its password locked. Its uid, or what is off.
pub fn check_made(
    name: &str,
    home: &Path,
    uids: &RangeInclusive<u32>,
    allowed_group: &str,
    shell: &str,
) -> Result<u32, String> {
    let user = User::from_name(name)
        .ok()
        .flatten()
        .ok_or("no passwd entry")?;
    let uid = user.uid.as_raw();
    if !uids.contains(&uid) {
        return Err(format!("uid {uid} outside {uids:?}"));
    }
    let primary = Group::from_gid(user.gid)
        .ok()
        .flatten()
        .ok_or("no primary group")?;
    if primary.name != name {
        return Err(format!("primary group {} is not its own", primary.name));
    }
    let groups = std::fs::read_to_string("/etc/group").map_err(|e| format!("/etc/group: {e}"))?;
    let extra = supplementary_groups(&groups, name);
    if extra != [allowed_group] {
        return Err(format!(
            "supplementary groups {extra:?}, not [{allowed_group}]"
        ));
    }
    // Every source of groups the system has (NSS: a directory may still list an old
    // account of this name as a member of some group): its own and the allowed one only.
    let allowed = Group::from_name(allowed_group)
        .ok()
        .flatten()
        .ok_or("the allowed group is gone")?;
    let cname = std::ffi::CString::new(name).map_err(|_| "a NUL in the name")?;
    let mut all =
        nix::unistd::getgrouplist(&cname, user.gid).map_err(|e| format!("getgrouplist: {e}"))?;
    all.sort_by_key(|g| g.as_raw());
    all.dedup();
    let mut want = vec![user.gid, allowed.gid];
    want.sort_by_key(|g| g.as_raw());
    want.dedup();
    if all != want {
        return Err(format!(
            "member of groups {all:?}, not only its own and {allowed_group}"
        ));
    }
    if user.shell != Path::new(shell) || user.dir != home {
        return Err("shell or home not as configured".into());
    }
    let meta = std::fs::symlink_metadata(home).map_err(|e| format!("home: {e}"))?;
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o7777 != 0o700 {
        return Err(format!(
            "home {} is not a 0700 directory of its own",
            home.display()
        ));
    }
    let shadow = std::fs::read_to_string("/etc/shadow").map_err(|e| format!("/etc/shadow: {e}"))?;
    if !password_locked(&shadow, name) {
        return Err("its password is not locked".into());
    }
    Ok(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_group_and_shadow_lines() {
        let groups = "root:x:0:\nsudo:x:27:alice\njupyterhub:x:999:bob,carol\ncarol:x:3001:\nstaff:x:50:carolx\n";
        assert_eq!(supplementary_groups(groups, "carol"), ["jupyterhub"]);
        assert_eq!(supplementary_groups(groups, "alice"), ["sudo"]);
        assert!(supplementary_groups(groups, "dave").is_empty());
        let shadow = "carol:!:19000:0:99999:7:::\ndave:$y$j9T$abc:19000::::::\nerin:*:1::::::\n";
        assert!(password_locked(shadow, "carol"));
        assert!(password_locked(shadow, "erin"));
        assert!(!password_locked(shadow, "dave"));
        assert!(!password_locked(shadow, "nobody"));
    }
}
