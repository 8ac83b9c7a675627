//! Who may log in, and who is an admin, once PAM has accepted the password.

use serde::Deserialize;

/// The `[auth]` table of hub.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRules {
    /// Users allowed whatever their groups (`c.Authenticator.allowed_users`).
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Members of these groups are allowed (`c.Authenticator.allowed_groups`); the
    /// sudoers rule names the same group, so others could not get a server anyway.
    #[serde(default = "default_allowed_groups")]
    pub allowed_groups: Vec<String>,
    /// Admins by name (`c.Authenticator.admin_users`); admins are allowed.
    #[serde(default)]
    pub admin_users: Vec<String>,
    /// Members of these groups are admins (`c.Authenticator.admin_groups`).
    #[serde(default)]
    pub admin_groups: Vec<String>,
}

fn default_allowed_groups() -> Vec<String> {
    vec!["jupyterhub".into()]
}

impl Default for AuthRules {
    fn default() -> Self {
        Self {
            allowed_users: Vec::new(),
            allowed_groups: default_allowed_groups(),
            admin_users: Vec::new(),
            admin_groups: Vec::new(),
        }
    }
}

/// What the rules say about one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// May log in; `admin` says whether as an admin.
    Allowed {
        /// Admin rights.
        admin: bool,
    },
    /// May not log in.
    NotAllowed,
}

impl AuthRules {
    /// Judges `user`, a member of `groups`, as JupyterHub's Authenticator does: admins
    /// are allowed; otherwise the user must be listed or in an allowed group.
    pub fn judge(&self, user: &str, groups: &[String]) -> Verdict {
        let in_any = |list: &[String]| groups.iter().any(|g| list.contains(g));
        let admin = self.admin_users.iter().any(|u| u == user) || in_any(&self.admin_groups);
        if admin || self.allowed_users.iter().any(|u| u == user) || in_any(&self.allowed_groups) {
            Verdict::Allowed { admin }
        } else {
            Verdict::NotAllowed
        }
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

    #[test]
    fn group_membership_decides() {
        let r = AuthRules {
            admin_groups: groups(&["wheel"]),
            admin_users: groups(&["boss"]),
            allowed_users: groups(&["guest"]),
            ..AuthRules::default()
        };
        assert_eq!(
            r.judge("a", &groups(&["jupyterhub"])),
            Verdict::Allowed { admin: false }
        );
        assert_eq!(r.judge("a", &groups(&["users"])), Verdict::NotAllowed);
        assert_eq!(
            r.judge("a", &groups(&["wheel"])),
            Verdict::Allowed { admin: true }
        );
        assert_eq!(r.judge("boss", &[]), Verdict::Allowed { admin: true });
        assert_eq!(r.judge("guest", &[]), Verdict::Allowed { admin: false });
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<AuthRules>("allowed_group = [\"x\"]").is_err());
        let r: AuthRules = toml::from_str("admin_users = [\"a\"]").unwrap();
        assert_eq!(r.allowed_groups, vec!["jupyterhub"]);
    }

    #[test]
    fn root_is_in_group_root() {
        assert!(user_groups("root").contains(&"root".to_owned()));
        assert!(user_groups("no-such-user-here").is_empty());
    }
}
