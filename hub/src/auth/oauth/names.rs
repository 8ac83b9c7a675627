//! Provider names (emails, logins) to Unix user names: `username_map` first, then the
//! rule: an email's local part for the domains of `default_domains`, `<local>-<domain>`
//! for others with `keep_other_domains` (refused without it: `alice@anywhere` must never
//! become `alice`); lowercased, every character outside `a-z0-9_-` replaced by `-`. A
//! result that is not a valid Unix name is refused, never truncated or guessed.

use crate::config::OAuthSection;
use crate::types::Username;

/// The Unix name of the provider name `value`, or why there is none.
pub fn unix_name(cfg: &OAuthSection, value: &str) -> Result<Username, String> {
    if let Some(to) = cfg.username_map.get(value) {
        return Username::parse(to).map_err(|e| e.to_string());
    }
    let base = match value.rsplit_once('@') {
        Some((local, domain)) => {
            let domain = domain.to_ascii_lowercase();
            if cfg
                .default_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(&domain))
            {
                local.to_owned()
            } else if cfg.keep_other_domains {
                format!("{local}-{}", domain.replace('.', "-"))
            } else {
                return Err(format!("addresses at {domain} are not accepted here"));
            }
        }
        None => value.to_owned(),
    };
    let name: String = base
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !sudohub_helpers_config::is_new_account_name(&name) {
        return Err(format!(
            "{:?} does not make a user name here (a lowercase letter first, then letters, digits, '-' or '_', at most 32)",
            value.chars().take(64).collect::<String>()
        ));
    }
    Username::parse(&name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> OAuthSection {
        toml::from_str(&format!("client_id = \"x\"\n{extra}")).unwrap()
    }

    #[test]
    fn names_are_mapped_or_refused() {
        let c = cfg("default_domains = [\"example.org\"]\nusername_map = { \"boss@example.org\" = \"alice\" }");
        let n = |v: &str| unix_name(&c, v).map(|u| u.as_str().to_owned());
        assert_eq!(n("Jo.Smith@Example.ORG").unwrap(), "jo-smith");
        assert_eq!(n("boss@example.org").unwrap(), "alice");
        assert_eq!(n("Octo-Cat").unwrap(), "octo-cat");
        assert!(n("jo@elsewhere.net").unwrap_err().contains("elsewhere.net"));
        assert!(n("1st@example.org").is_err());
        assert!(n(&format!("{}@example.org", "a".repeat(40))).is_err());
        let keep = cfg("default_domains = [\"example.org\"]\nkeep_other_domains = true");
        assert_eq!(
            unix_name(&keep, "jo@uni.ac.uk").unwrap().as_str(),
            "jo-uni-ac-uk"
        );
        // No default domain: an address is never cut to its local part.
        assert!(unix_name(&cfg(""), "jo@anywhere.io").is_err());
        let kept = cfg("keep_other_domains = true");
        assert_eq!(
            unix_name(&kept, "jo@anywhere.io").unwrap().as_str(),
            "jo-anywhere-io"
        );
    }
}
