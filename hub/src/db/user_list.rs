//! The users list as JupyterHub's `GET /users` asks for it: sorted, filtered by name and
//! by whether a server is active, one page at a time, with the total.

use rusqlite::ToSql;

use super::servers::{server_row_at, ServerRow, SERVER_COLUMNS};
use super::users::{UserRow, Users, USER_COLUMNS};
use super::DbResult;

/// The order of the list (`?sort=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Creation order: JupyterHub's default.
    #[default]
    Id,
    /// By name.
    Name,
    /// By last activity; users never active come first in ascending order.
    LastActivity,
    /// Users with a server first, each part by name (`-running`: those without first).
    /// An addition of sudohub's, for the admin page; JupyterHub has no such key.
    Running,
}

/// Which users, by their server (`?state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HavingServer {
    /// Everyone.
    #[default]
    Any,
    /// Users with a server recorded (starting, running or stopping), default or named.
    Active,
    /// Users without any.
    Inactive,
}

/// What a listing asks for; the default is every user in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Order.
    pub sort: SortBy,
    /// Descending (`?sort=-name`).
    pub descending: bool,
    /// Names containing this, case-insensitively (`?name_filter=`).
    pub name_contains: Option<String>,
    /// Server filter.
    pub having: HavingServer,
}

impl UserQuery {
    /// `FROM … WHERE …` and its parameters. No value from the request is ever spliced
    /// into the SQL: the name filter is a bound parameter with LIKE's wildcards escaped.
    fn sql_from_where(&self) -> (String, Vec<String>) {
        let mut from = match self.having {
            // Driven from the servers table: costs what the number of servers does.
            HavingServer::Active => "FROM (SELECT DISTINCT user_id FROM servers) s0 \
                 JOIN users u ON u.id = s0.user_id WHERE 1"
                .to_owned(),
            HavingServer::Inactive => {
                "FROM users u WHERE NOT EXISTS (SELECT 1 FROM servers s0 WHERE s0.user_id = u.id)"
                    .to_owned()
            }
            HavingServer::Any => "FROM users u WHERE 1".to_owned(),
        };
        let mut params = Vec::new();
        if let Some(part) = &self.name_contains {
            let escaped: String = part
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            from.push_str(" AND u.name LIKE ?1 ESCAPE '\\'");
            params.push(format!("%{escaped}%"));
        }
        (from, params)
    }

    fn order(&self) -> &'static str {
        match (self.sort, self.descending) {
            (SortBy::Id, false) => "u.id",
            (SortBy::Id, true) => "u.id DESC",
            (SortBy::Name, false) => "u.name",
            (SortBy::Name, true) => "u.name DESC",
            // SQLite puts NULL first ascending and last descending, as JupyterHub does.
            (SortBy::LastActivity, false) => "u.last_activity, u.id",
            (SortBy::LastActivity, true) => "u.last_activity DESC, u.id DESC",
            (SortBy::Running, false) => {
                "EXISTS (SELECT 1 FROM servers s1 WHERE s1.user_id = u.id) DESC, u.name"
            }
            (SortBy::Running, true) => {
                "EXISTS (SELECT 1 FROM servers s1 WHERE s1.user_id = u.id), u.name"
            }
        }
    }
}

impl Users<'_> {
    /// One page of the users `q` asks for, each with their default server's row. The
    /// page is cut (from an index) before the join, so only its rows are read and
    /// joined, whatever the offset.
    pub fn page(
        &self,
        q: &UserQuery,
        offset: usize,
        limit: Option<usize>,
    ) -> DbResult<Vec<(UserRow, Option<ServerRow>)>> {
        let (from, params) = q.sql_from_where();
        let order = q.order();
        let n = params.len();
        // Only ids in the cut, so OFFSET walks a covering index (schema v2) and reads
        // no row it skips.
        let sql = format!(
            "SELECT {USER_COLUMNS}, {SERVER_COLUMNS}
             FROM (SELECT u.id {from} ORDER BY {order} LIMIT ?{} OFFSET ?{}) p
             JOIN users u ON u.id = p.id
             LEFT JOIN servers s ON s.user_id = u.id AND s.name = ''
             ORDER BY {order}",
            n + 1,
            n + 2
        );
        let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut bound: Vec<&dyn ToSql> = params.iter().map(|p| p as &dyn ToSql).collect();
        bound.push(&limit);
        bound.push(&offset);
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&sql)?;
        let rows = st
            .query_map(bound.as_slice(), |r| {
                Ok((UserRow::from_row(r, 0)?, server_row_at(r, 5)?))
            })?
            .collect();
        rows
    }

    /// How many users `q` matches (the kept count for all users).
    pub fn count_matching(&self, q: &UserQuery) -> DbResult<usize> {
        if q.having == HavingServer::Any && q.name_contains.is_none() {
            return self.count();
        }
        let (from, params) = q.sql_from_where();
        let conn = self.0.lock();
        let mut st = conn.prepare_cached(&format!("SELECT COUNT(*) {from}"))?;
        st.query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
    }
}
