//! The built-in reverse proxy: `/user/<name>/…` and `/services/<name>/…` to their servers.
