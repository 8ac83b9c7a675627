//! Who may log in, and who is an admin, once PAM has accepted the password.

use crate::config::AuthRules;
use crate::types::Username;

/// What the rules say about one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// May log in; `admin` says whether as an admin, or `None` when the rules do not
    /// decide and the admin flag already recorded (set through the API, say) stands.
    Allowed {
        /// Admin rights, if the rules decide them.
        admin: Option<bool>,
    },
    /// May not log in.
    NotAllowed,
}

/// Judges `user`, a member of `groups`, as JupyterHub's PAMAuthenticator does: admins are
/// allowed; otherwise the user must be listed or in an allowed group. Admin rights:
/// `admin_users` grants them; `admin_groups`, when set, decides them either way; with
/// neither, they are left as recorded.
pub fn judge(rules: &AuthRules, user: &Username, groups: &[String]) -> Verdict {
    judge_with(
        rules,
        user,
        groups,
        &Groups {
            allowed: &rules.allowed_groups,
            admin: &rules.admin_groups,
            allow_all: false,
        },
    )
}

/// The group lists a source judges by: Unix groups for PAM, group DNs for LDAP, the
/// groups claim for OAuth.
#[derive(Debug, Clone, Copy)]
pub struct Groups<'a> {
    /// Members may log in.
    pub allowed: &'a [String],
    /// Members are admins.
    pub admin: &'a [String],
    /// Everyone the source accepts may log in.
    pub allow_all: bool,
}

/// [`judge`] with the group lists of a directory: `[auth] allowed_users` and
/// `admin_users` apply whatever the source.
pub fn judge_with(
    rules: &AuthRules,
    user: &Username,
    groups: &[String],
    lists: &Groups<'_>,
) -> Verdict {
    let in_any = |list: &[String]| groups.iter().any(|g| list.contains(g));
    let admin = if rules.admin_users.contains(user) {
        Some(true)
    } else if lists.admin.is_empty() {
        None
    } else {
        Some(in_any(lists.admin))
    };
    if lists.allow_all
        || admin == Some(true)
        || rules.allowed_users.contains(user)
        || in_any(lists.allowed)
    {
        Verdict::Allowed { admin }
    } else {
        Verdict::NotAllowed
    }
}

/// Lowest uid of people's accounts (Debian's `UID_MIN`, and helpers.toml's default
/// `min_uid`): below are the system's.
const FIRST_USER_UID: u32 = 1000;

/// Whether `name` is a system account no directory or provider user may become: a uid
/// below 1000, `nobody` (65534), or the hub's own account. The spawner helper
/// refuses them too (`min_uid`); the hub refuses them before giving a session.
pub fn is_system_account(name: &Username) -> bool {
    match nix::unistd::User::from_name(name.as_str()) {
        Ok(Some(u)) => {
            let uid = u.uid.as_raw();
            // High uids are people too (FreeIPA, SSSD's id mapping); only `nobody` and
            // the "no uid" values are not.
            uid < FIRST_USER_UID
                || matches!(uid, 65534 | 4_294_967_294 | u32::MAX)
                || u.uid == nix::unistd::getuid()
        }
        _ => false,
    }
}

/// The names of every group `user` belongs to (primary and supplementary), from the
/// system's group database.
pub fn user_groups(user: &str) -> Vec<String> {
    let Some(u) = nix::unistd::User::from_name(user).ok().flatten() else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(user) else {
        return Vec::new();
    };
    let gids = nix::unistd::getgrouplist(&name, u.gid).unwrap_or_else(|_| vec![u.gid]);
    gids.into_iter()
        .filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten())
        .map(|g| g.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    fn names(n: &[&str]) -> Vec<Username> {
        n.iter().map(|s| Username::parse(s).unwrap()).collect()
    }

    fn u(n: &str) -> Username {
        Username::parse(n).unwrap()
    }

    #[test]
    fn group_membership_decides() {
        let r = AuthRules {
            admin_groups: groups(&["wheel"]),
            admin_users: names(&["boss"]),
            allowed_users: names(&["guest"]),
            ..AuthRules::default()
        };
        assert_eq!(
            judge(&r, &u("a"), &groups(&["jupyterhub"])),
            Verdict::Allowed { admin: Some(false) }
        );
        assert_eq!(judge(&r, &u("a"), &groups(&["users"])), Verdict::NotAllowed);
        assert_eq!(
            judge(&r, &u("a"), &groups(&["wheel"])),
            Verdict::Allowed { admin: Some(true) }
        );
        assert_eq!(
            judge(&r, &u("boss"), &[]),
            Verdict::Allowed { admin: Some(true) }
        );
        assert_eq!(
            judge(&r, &u("guest"), &[]),
            Verdict::Allowed { admin: Some(false) }
        );
        // Without admin_groups the rules grant (admin_users) but never take away: an
        // admin flag set through the API survives the next login.
        let r = AuthRules {
            admin_users: names(&["boss"]),
            ..AuthRules::default()
        };
        assert_eq!(
            judge(&r, &u("a"), &groups(&["jupyterhub"])),
            Verdict::Allowed { admin: None }
        );
        assert_eq!(
            judge(&r, &u("boss"), &[]),
            Verdict::Allowed { admin: Some(true) }
        );
    }

    #[test]
    fn unknown_keys_and_bad_names_are_refused() {
        assert!(toml::from_str::<AuthRules>("allowed_group = [\"x\"]").is_err());
        assert!(toml::from_str::<AuthRules>("admin_users = [\"a b\"]").is_err());
        let r: AuthRules = toml::from_str("admin_users = [\"a\"]").unwrap();
        assert_eq!(r.allowed_groups, vec!["jupyterhub"]);
    }

    #[test]
    fn system_accounts_are_known() {
        assert!(is_system_account(&u("root")));
        assert!(is_system_account(&u("daemon")));
        assert!(!is_system_account(&u("no-such-user-here")));
    }

    #[test]
    fn root_is_in_group_root() {
        assert!(user_groups("root").contains(&"root".to_owned()));
        assert!(user_groups("no-such-user-here").is_empty());
    }
}
