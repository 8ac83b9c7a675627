//! `[[roles]]`: JupyterHub's `load_roles`. A role names scopes and who holds them: users,
//! the members of groups, services. What a user or service holds in all is their default
//! (a user's own scopes, and an admin's JupyterHub `admin` role; an admin service's
//! `admin` role) plus every role that lists them.

use serde::Deserialize;

use crate::scopes::ScopeSet;
use crate::types::{GroupName, Username};

/// One `[[roles]]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSection {
    /// Its name (for logs and errors).
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// Its scopes, as JupyterHub writes them (`list:users`, `read:users!group=staff`,
    /// `self`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Users who hold it.
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups whose members hold it.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Services (`[[services]] name`) that hold it.
    #[serde(default)]
    pub services: Vec<String>,
}

impl RoleSection {
    /// Checks names and scopes; the error names the role and what is wrong.
    pub fn validate(&self, services: &[&str]) -> Result<(), String> {
        let role = &self.name;
        let ok_name = !role.is_empty()
            && role.len() <= 255
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_name {
            return Err(format!(
                "role name {role:?}: letters, digits, '-', '_' and '.' only"
            ));
        }
        if ["admin", "user", "server", "token"].contains(&role.as_str()) {
            return Err(format!(
                "role {role}: a default role of JupyterHub's; give yours another name"
            ));
        }
        let any_user = Username::parse("u").map_err(|e| e.to_string())?;
        ScopeSet::parse(&self.scopes, Some(&any_user)).map_err(|e| format!("role {role}: {e}"))?;
        if self.scopes.iter().any(|s| s == "self") && !self.services.is_empty() {
            return Err(format!(
                "role {role}: `self` is a user's own scopes; a service has none"
            ));
        }
        for u in &self.users {
            Username::parse(u).map_err(|e| format!("role {role}: user {u:?}: {e}"))?;
        }
        for g in &self.groups {
            GroupName::parse(g).map_err(|e| format!("role {role}: group {g:?}: {e}"))?;
        }
        for s in &self.services {
            if !services.contains(&s.as_str()) {
                return Err(format!("role {role}: no [[services]] named {s:?}"));
            }
        }
        Ok(())
    }

    fn scopes_for(&self, holder: Option<&Username>) -> ScopeSet {
        // Checked at load; a scope that does not parse is left out rather than widened.
        ScopeSet::parse(&self.scopes, holder).unwrap_or_default()
    }
}

/// What `user` (an admin or not, in `groups`) holds under `roles`.
pub fn user_scopes(
    roles: &[RoleSection],
    user: &Username,
    admin: bool,
    groups: &[GroupName],
) -> ScopeSet {
    let mut set = ScopeSet::of_user(user, admin);
    for r in roles {
        let named = r.users.iter().any(|u| u == user.as_str());
        let via_group = r
            .groups
            .iter()
            .any(|g| groups.iter().any(|mine| mine.as_str() == g));
        if named || via_group {
            set.extend(&r.scopes_for(Some(user)));
        }
    }
    set
}

/// What service `name` (an admin service or not) holds under `roles`.
pub fn service_scopes(roles: &[RoleSection], name: &str, admin: bool) -> ScopeSet {
    let mut set = ScopeSet::default();
    if admin {
        set.extend_names(crate::scopes::ADMIN);
    }
    for r in roles
        .iter()
        .filter(|r| r.services.iter().any(|s| s == name))
    {
        set.extend(&r.scopes_for(None));
    }
    set
}

/// Whether any role is given through a group (then a user's groups decide their scopes).
pub fn any_group_roles(roles: &[RoleSection]) -> bool {
    roles.iter().any(|r| !r.groups.is_empty())
}
