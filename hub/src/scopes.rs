//! JupyterHub's scopes (`jupyterhub/scopes.py`): a name, the scopes it includes, and an
//! optional filter (`!user=<name>`, `!group=<name>`, `!server=<user>/<server>`,
//! `!service=<name>`). A credential holds a [`ScopeSet`]: its scopes with everything they
//! include, which requests are checked against and whoami reports.

use std::collections::BTreeSet;
use std::fmt;

use crate::types::{GroupName, Username};

/// Every scope sudohub knows, with the scopes it includes (JupyterHub's
/// `scope_definitions`, less sharing, which sudohub does not have).
const DEFINITIONS: &[(&str, &[&str])] = &[
    ("admin-ui", &[]),
    (
        "admin:users",
        &[
            "admin:auth_state",
            "users",
            "read:roles:users",
            "delete:users",
        ],
    ),
    ("admin:auth_state", &[]),
    ("users", &["read:users", "list:users", "users:activity"]),
    ("delete:users", &[]),
    ("list:users", &["read:users:name"]),
    (
        "read:users",
        &[
            "read:users:name",
            "read:users:groups",
            "read:users:activity",
        ],
    ),
    ("read:users:name", &[]),
    ("read:users:groups", &[]),
    ("read:users:activity", &[]),
    (
        "read:roles",
        &[
            "read:roles:users",
            "read:roles:services",
            "read:roles:groups",
        ],
    ),
    ("read:roles:users", &[]),
    ("read:roles:services", &[]),
    ("read:roles:groups", &[]),
    ("users:activity", &["read:users:activity"]),
    ("admin:servers", &["admin:server_state", "servers"]),
    ("admin:server_state", &[]),
    (
        "servers",
        &["read:servers", "start:servers", "delete:servers"],
    ),
    ("read:servers", &["read:users:name"]),
    ("start:servers", &[]),
    ("delete:servers", &[]),
    ("tokens", &["read:tokens"]),
    ("read:tokens", &[]),
    (
        "admin:groups",
        &["groups", "read:roles:groups", "delete:groups"],
    ),
    ("groups", &["read:groups", "list:groups"]),
    ("list:groups", &["read:groups:name"]),
    ("read:groups", &["read:groups:name"]),
    ("read:groups:name", &[]),
    ("delete:groups", &[]),
    (
        "admin:services",
        &["list:services", "read:services", "read:roles:services"],
    ),
    ("list:services", &["read:services:name"]),
    ("read:services", &["read:services:name"]),
    ("read:services:name", &[]),
    ("read:hub", &[]),
    ("access:servers", &[]),
    ("access:services", &[]),
    ("proxy", &[]),
    ("shutdown", &[]),
    ("read:metrics", &[]),
];

/// JupyterHub's `admin` role.
pub const ADMIN: &[&str] = &[
    "admin-ui",
    "admin:users",
    "admin:servers",
    "admin:services",
    "tokens",
    "admin:groups",
    "list:services",
    "read:services",
    "read:hub",
    "proxy",
    "shutdown",
    "access:services",
    "access:servers",
    "read:roles",
    "read:metrics",
];

/// What `self` stands for, each filtered to the user (JupyterHub's `_expand_self_scope`).
const SELF: &[&str] = &[
    "read:users",
    "users:activity",
    "servers",
    "tokens",
    "access:servers",
];

/// The scopes a `!server=` filter applies to.
const SERVER_SCOPES: &[&str] = &[
    "admin:servers",
    "admin:server_state",
    "servers",
    "read:servers",
    "start:servers",
    "delete:servers",
    "access:servers",
];

/// Which resources a scope covers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Filter {
    /// All of them.
    All,
    /// One user's.
    User(Username),
    /// The users of a group.
    Group(GroupName),
    /// One server, `<user>/<server name>` (`alice/` is alice's default server).
    Server(Username, String),
    /// One service.
    Service(String),
}

/// One scope: a known name and a filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    name: &'static str,
    filter: Filter,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        match &self.filter {
            Filter::All => Ok(()),
            Filter::User(u) => write!(f, "!user={u}"),
            Filter::Group(g) => write!(f, "!group={g}"),
            Filter::Server(u, s) => write!(f, "!server={u}/{s}"),
            Filter::Service(s) => write!(f, "!service={s}"),
        }
    }
}

fn known(name: &str) -> Option<(&'static str, &'static [&'static str])> {
    DEFINITIONS.iter().find(|(n, _)| *n == name).copied()
}

fn parse_filter(raw: &str) -> Result<Filter, String> {
    let bad = |what: &str| format!("bad filter !{raw}: {what}");
    let (kind, value) = raw
        .split_once('=')
        .ok_or_else(|| bad("expected user=, group=, server= or service="))?;
    match kind {
        "user" => Username::parse(value)
            .map(Filter::User)
            .map_err(|e| bad(&e.to_string())),
        "group" => GroupName::parse(value)
            .map(Filter::Group)
            .map_err(|e| bad(&e)),
        "server" => {
            let (user, server) = value
                .split_once('/')
                .ok_or_else(|| bad("a server is <user>/<server name>"))?;
            let user = Username::parse(user).map_err(|e| bad(&e.to_string()))?;
            if server.contains(['/', '!']) || server.chars().any(char::is_control) {
                return Err(bad("bad server name"));
            }
            Ok(Filter::Server(user, server.to_owned()))
        }
        "service" if !value.is_empty() && !value.chars().any(char::is_control) => {
            Ok(Filter::Service(value.to_owned()))
        }
        _ => Err(bad("expected user=, group=, server= or service=")),
    }
}

/// Scopes with everything they include.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses scopes as JupyterHub writes them. `self` stands for `holder`'s own scopes
    /// and is an error without a holder. An unknown name or a bad filter is an error that
    /// names it.
    pub fn parse<S: AsRef<str>>(list: &[S], holder: Option<&Username>) -> Result<Self, String> {
        let mut set = Self::default();
        for raw in list {
            let raw = raw.as_ref();
            if raw == "self" {
                let user =
                    holder.ok_or("`self` means a user's own scopes; this holder is no user")?;
                set.add_own(user);
                continue;
            }
            let (name, filter) = match raw.split_once('!') {
                Some((n, f)) => (n, parse_filter(f)?),
                None => (raw, Filter::All),
            };
            let (name, _) = known(name).ok_or_else(|| format!("unknown scope: {name}"))?;
            set.add(name, &filter);
        }
        Ok(set)
    }

    /// The scopes a user holds by default: their own (`self`), and as an admin JupyterHub's
    /// `admin` role.
    pub fn of_user(user: &Username, admin: bool) -> Self {
        let mut set = Self::default();
        set.add_own(user);
        if admin {
            set.extend_names(ADMIN);
        }
        set
    }

    /// Adds unfiltered scopes by known name (names not known are ignored).
    pub fn extend_names(&mut self, names: &[&str]) {
        for n in names {
            if let Some((name, _)) = known(n) {
                self.add(name, &Filter::All);
            }
        }
    }

    /// Adds every scope of `other`.
    pub fn extend(&mut self, other: &Self) {
        self.0.extend(other.0.iter().cloned());
    }

    fn add_own(&mut self, user: &Username) {
        for n in SELF {
            if let Some((name, _)) = known(n) {
                self.add(name, &Filter::User(user.clone()));
            }
        }
    }

    fn add(&mut self, name: &'static str, filter: &Filter) {
        if !self.0.insert(Scope {
            name,
            filter: filter.clone(),
        }) {
            return;
        }
        if let Some((_, subs)) = known(name) {
            for sub in subs {
                if let Some((sub, _)) = known(sub) {
                    self.add(sub, filter);
                }
            }
        }
    }

    /// Whether `scope` is held for all resources.
    pub fn allows_all(&self, scope: &str) -> bool {
        self.0
            .iter()
            .any(|s| s.name == scope && s.filter == Filter::All)
    }

    /// Whether `scope` is held on `user`'s resources, through no filter, theirs, their
    /// default server's or one of `groups` (the groups `user` is in).
    pub fn allows(&self, scope: &str, user: &Username, groups: &[GroupName]) -> bool {
        self.allows_on(scope, user, "", groups)
    }

    /// Whether `scope` is held on `user`'s server `server` (`""`: the default one):
    /// through no filter, the user's, that server's or one of `groups`.
    pub fn allows_on(
        &self,
        scope: &str,
        user: &Username,
        server: &str,
        groups: &[GroupName],
    ) -> bool {
        self.0.iter().any(|s| {
            s.name == scope
                && match &s.filter {
                    Filter::All => true,
                    Filter::User(u) => u == user,
                    Filter::Group(g) => groups.contains(g),
                    // A server filter covers that server, not its user's other
                    // resources (JupyterHub applies it to server scopes only).
                    Filter::Server(u, named) => {
                        u == user && named == server && SERVER_SCOPES.contains(&scope)
                    }
                    Filter::Service(_) => false,
                }
        })
    }

    /// Adds, for every group-filtered scope, the same scope filtered to each member
    /// (`members(group)`), so that checks need no group lookups.
    pub fn resolve_groups(&mut self, members: impl Fn(&GroupName) -> Vec<Username>) {
        let grouped: Vec<(&'static str, GroupName)> = self
            .0
            .iter()
            .filter_map(|s| match &s.filter {
                Filter::Group(g) => Some((s.name, g.clone())),
                _ => None,
            })
            .collect();
        for (name, group) in grouped {
            for user in members(&group) {
                self.0.insert(Scope {
                    name,
                    filter: Filter::User(user),
                });
            }
        }
    }

    /// Whether any scope is filtered by group (then a check needs the user's groups).
    pub fn has_group_filters(&self) -> bool {
        self.0.iter().any(|s| matches!(s.filter, Filter::Group(_)))
    }

    /// The scopes of `self` narrowed to what `holder` holds: a token's requested scopes
    /// cut to what its owner may do now (`read:users` asked, `read:users!user=alice`
    /// held: `read:users!user=alice`). `member(user, group)` says whether a user-filtered
    /// scope is inside a group-filtered one.
    pub fn within(&self, holder: &Self, member: impl Fn(&Username, &GroupName) -> bool) -> Self {
        let mut out = BTreeSet::new();
        for s in &self.0 {
            for h in holder.0.iter().filter(|h| h.name == s.name) {
                let narrowed = match (&h.filter, &s.filter) {
                    (Filter::All, f) | (f, Filter::All) => Some(f.clone()),
                    (a, b) if a == b => Some(a.clone()),
                    (Filter::User(u), f @ Filter::Server(su, _)) if u == su => Some(f.clone()),
                    (f @ Filter::Server(su, _), Filter::User(u)) if u == su => Some(f.clone()),
                    (Filter::Group(g), f @ (Filter::User(u) | Filter::Server(u, _)))
                        if member(u, g) =>
                    {
                        Some(f.clone())
                    }
                    _ => None,
                };
                if let Some(filter) = narrowed {
                    out.insert(Scope {
                        name: s.name,
                        filter,
                    });
                }
            }
        }
        Self(out)
    }

    /// The scopes of `self` that `holder` does not wholly hold, as JupyterHub writes them
    /// (a token may not be made with them): those [`Self::within`] narrows or drops.
    pub fn missing_from(
        &self,
        holder: &Self,
        member: impl Fn(&Username, &GroupName) -> bool,
    ) -> Vec<String> {
        let kept = self.within(holder, member);
        self.0
            .difference(&kept.0)
            .map(ToString::to_string)
            .collect()
    }

    /// Every scope, sorted, as JupyterHub writes them (whoami's `scopes`).
    pub fn strings(&self) -> Vec<String> {
        let mut v: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests;
