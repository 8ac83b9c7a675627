//! Timestamps as the JupyterHub API writes them (ISO 8601, UTC, microseconds, `Z`) and
//! Unix seconds for expiry columns.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// `2026-01-02T03:04:05.000006Z`.
const ISO: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Now, formatted as [`iso`] does.
pub fn now_iso() -> String {
    iso(OffsetDateTime::now_utc())
}

/// A time in the API's format.
pub fn iso(t: OffsetDateTime) -> String {
    // The format has only numeric fields of a valid date: it cannot fail.
    t.to_offset(UtcOffset::UTC).format(ISO).unwrap_or_default()
}

/// Unix seconds as an API timestamp, if in range.
pub fn iso_from_unix(secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(secs).ok().map(iso)
}

/// Parses a timestamp a client sent: RFC 3339, or a naive one taken as UTC (what
/// jupyterhub-singleuser's activity reports may carry).
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .ok()
}

/// Seconds since the epoch.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_format() {
        let t = now_iso();
        assert!(t.ends_with('Z') && t.len() == 27, "{t}");
        assert_eq!(
            iso_from_unix(0).as_deref(),
            Some("1970-01-01T00:00:00.000000Z")
        );
        let p = parse("2026-01-02T03:04:05.5").unwrap();
        assert_eq!(iso(p), "2026-01-02T03:04:05.500000Z");
        assert_eq!(
            parse("2026-01-02T03:04:05+01:00").map(iso).as_deref(),
            Some("2026-01-02T02:04:05.000000Z")
        );
        assert!(parse("yesterday").is_none());
    }
}
