//! The profiles users may pick for a Slurm job, as root's helpers.toml defines them
//! (`[[slurm.profile]]`): read by the hub to show the choice and to refuse a bad one with
//! a clear answer. The helper checks the choice again against the same file; the hub's
//! reading decides nothing the helper does not.

use std::path::Path;

use sudohub_helpers_config::slurm::{Backend, Profile};

use crate::types::Username;

/// Root's profiles, from helpers.toml at `path`, which must say `backend = "slurm"` too.
pub fn load(path: &Path) -> Result<Vec<Profile>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {} for its Slurm profiles: {e}", path.display()))?;
    let config = sudohub_helpers_config::parse(&text, path).map_err(|e| e.to_string())?;
    if config.spawner.backend != Backend::Slurm {
        return Err(format!(
            "hub.toml says [spawner] backend = \"slurm\", but {} says \"{}\": the two must agree",
            path.display(),
            config.spawner.backend.as_str()
        ));
    }
    Ok(config.slurm.map(|s| s.profile).unwrap_or_default())
}

/// The Unix groups `user` is a member of (primary and supplementary).
pub fn groups_of(user: &Username) -> Vec<String> {
    let Ok(Some(u)) = nix::unistd::User::from_name(user.as_str()) else {
        return Vec::new();
    };
    let Ok(name) = std::ffi::CString::new(u.name.as_str()) else {
        return Vec::new();
    };
    nix::unistd::getgrouplist(&name, u.gid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| nix::unistd::Group::from_gid(g).ok().flatten())
        .map(|g| g.name)
        .collect()
}

/// The profiles `user` may pick, in root's order.
pub fn available<'a>(profiles: &'a [Profile], user: &Username) -> Vec<&'a Profile> {
    let groups = groups_of(user);
    profiles.iter().filter(|p| p.allows(&groups)).collect()
}

/// Checks `requested` (`""`: the first profile `user` may pick): the name to submit
/// with, or what is wrong, for a 400.
pub fn choose(profiles: &[Profile], requested: &str, user: &Username) -> Result<String, String> {
    let mine = available(profiles, user);
    if requested.is_empty() {
        return mine
            .first()
            .map(|p| p.name.clone())
            .ok_or_else(|| format!("no Slurm profile is open to {user}"));
    }
    let names = || {
        mine.iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match profiles.iter().find(|p| p.name == requested) {
        None => Err(format!(
            "there is no profile {requested:?}; choose one of: {}",
            names()
        )),
        Some(p) if !mine.iter().any(|m| m.name == p.name) => Err(format!(
            "profile {requested:?} is not open to {user}; choose one of: {}",
            names()
        )),
        Some(p) => Ok(p.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(name: &str, groups: &[&str]) -> Profile {
        toml::from_str(&format!(
            "name = {name:?}\ngroups = {:?}",
            groups.iter().map(|g| g.to_string()).collect::<Vec<_>>()
        ))
        .unwrap()
    }

    #[test]
    fn a_choice_is_one_of_the_profiles_open_to_the_user() {
        let me = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap();
        let me = Username::parse(&me.name).unwrap();
        let ps = vec![
            profile("gpu", &["no-such-group-here"]),
            profile("small", &[]),
        ];
        assert_eq!(choose(&ps, "", &me).unwrap(), "small");
        assert_eq!(choose(&ps, "small", &me).unwrap(), "small");
        let e = choose(&ps, "gpu", &me).unwrap_err();
        assert!(e.contains("not open") && e.contains("small"), "{e}");
        let e = choose(&ps, "huge\n#SBATCH", &me).unwrap_err();
        assert!(e.contains("there is no profile"), "{e}");
    }
}
