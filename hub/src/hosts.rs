//! `subdomain_host`: every user's server on an origin of its own, `<label>.<domain>`, so
//! that nothing a server serves runs on the hub's origin (JupyterHub's
//! `c.JupyterHub.subdomain_host`, with its default `idna` subdomain hook).

use sha2::{Digest, Sha256};

/// The hub's own origin when servers live on subdomains, parsed from
/// `subdomain_host = "https://hub.example.org[:port]"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubdomainHost {
    https: bool,
    /// The hub's host name, lower case, without port.
    domain: String,
    port: Option<u16>,
}

impl SubdomainHost {
    /// Parses `scheme://host[:port]` (an optional trailing `/`, nothing else after it).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with https:// (or http:// for tests)".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port = p
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{p:?} is not a port"))?;
                (h, Some(port))
            }
            None => (rest, None),
        };
        let domain = host.to_ascii_lowercase();
        let labels_ok = !domain.is_empty()
            && domain.len() <= 200
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !labels_ok {
            return Err(format!(
                "{host:?} is not a host name (no path, no IP address: servers get <name>.{host})"
            ));
        }
        if domain
            .split('.')
            .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err("an IP address has no subdomains: use a host name".into());
        }
        Ok(Self {
            https,
            domain,
            port,
        })
    }

    /// Whether the origins are `https`.
    pub fn https(&self) -> bool {
        self.https
    }

    fn origin_of(&self, host: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(p) => format!("{scheme}://{host}:{p}"),
            None => format!("{scheme}://{host}"),
        }
    }

    /// The hub's origin, `scheme://domain[:port]`.
    pub fn hub_origin(&self) -> String {
        self.origin_of(&self.domain)
    }

    /// The origin of the server of the user named `name`.
    pub fn user_origin(&self, name: &str) -> String {
        self.origin_of(&format!("{}.{}", dns_label(name), self.domain))
    }

    /// The label `<label>` if a request's `Host` (port ignored) is `<label>.<domain>`.
    pub fn label_of<'h>(&self, host: &'h str) -> Option<&'h str> {
        let name = strip_port(host);
        let label_len = name.len().checked_sub(self.domain.len() + 1)?;
        let (label, dot_domain) = name.split_at(label_len);
        let is_ours = dot_domain
            .strip_prefix('.')?
            .eq_ignore_ascii_case(&self.domain);
        (is_ours && !label.is_empty() && !label.contains('.')).then_some(label)
    }

    /// Whether `url` starts with the origin of some user's server of this hub (then a
    /// `/`): where the hub may send a browser besides its own paths.
    pub fn is_user_url(&self, url: &str) -> bool {
        let scheme = if self.https { "https://" } else { "http://" };
        let Some(rest) = url.strip_prefix(scheme) else {
            return false;
        };
        let Some((authority, _)) = rest.split_once('/') else {
            return false;
        };
        let port_ok = match (self.port, authority.rsplit_once(':')) {
            (Some(p), Some((_, q))) => q == p.to_string(),
            (None, None) => true,
            _ => false,
        };
        port_ok
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
            && self.label_of(authority).is_some()
    }
}

/// A host name without its `:port` (`[v6]:port` kept whole: never one of ours).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host;
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The DNS label of a user's server (JupyterHub 5's `idna` hook without IDNA): the name
/// itself when it is a valid label that cannot collide with an encoded one, else
/// `u-<up to 8 safe characters>--<7 hex digits of its SHA-256>`.
pub fn dns_label(name: &str) -> String {
    let safe = !name.contains("--")
        && (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.bytes().all(|b| b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if safe {
        return name.to_owned();
    }
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    let stub: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .take(8)
        .collect();
    let stub = if stub.is_empty() { "x".into() } else { stub };
    format!("u-{stub}--{}", &digest[..7])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_name_or_a_hash() {
        assert_eq!(dns_label("alice"), "alice");
        assert_eq!(dns_label("a-1"), "a-1");
        // As JupyterHub's `_strict_dns_safe_encode` makes them (same hash, same stub).
        let hashed = dns_label("Bob_Smith");
        assert!(hashed.starts_with("u-bobsmith--"), "{hashed}");
        assert_eq!(hashed.len(), "u-bobsmith--".len() + 7);
        assert_ne!(dns_label("bob.smith"), dns_label("bob_smith"));
        assert!(dns_label("a--b").starts_with("u-ab--"));
        assert!(dns_label("1234").starts_with("u-1234--"));
        assert_eq!(dns_label("_").len(), "u-x--".len() + 7);
        // An encoded label is never anyone's own name: those contain "--" and get hashed.
        assert_ne!(dns_label(&dns_label("Bob_Smith")), dns_label("Bob_Smith"));
    }

    #[test]
    fn parses_origins_and_finds_user_hosts() {
        let h = SubdomainHost::parse("https://Hub.Example.org/").unwrap();
        assert_eq!(h.hub_origin(), "https://hub.example.org");
        assert_eq!(h.user_origin("alice"), "https://alice.hub.example.org");
        assert_eq!(h.label_of("alice.hub.example.org"), Some("alice"));
        assert_eq!(h.label_of("ALICE.HUB.EXAMPLE.ORG:443"), Some("ALICE"));
        assert_eq!(h.label_of("hub.example.org"), None);
        assert_eq!(h.label_of("a.b.hub.example.org"), None);
        assert_eq!(h.label_of("alicehub.example.org"), None);
        assert_eq!(h.label_of("evil.org"), None);
        assert!(h.is_user_url("https://alice.hub.example.org/user/alice/lab"));
        assert!(!h.is_user_url("https://hub.example.org/hub/home"));
        assert!(!h.is_user_url("http://alice.hub.example.org/user/alice/"));
        assert!(!h.is_user_url("https://alice.hub.example.org:8443/"));
        assert!(!h.is_user_url("https://alice.hub.example.org@evil.org/"));
        assert!(!h.is_user_url("https://evil.org/.hub.example.org/"));
        let p = SubdomainHost::parse("http://localhost:8000").unwrap();
        assert_eq!(p.user_origin("bob"), "http://bob.localhost:8000");
        assert!(p.is_user_url("http://bob.localhost:8000/user/bob/"));
        assert!(!p.is_user_url("http://bob.localhost:9000/user/bob/"));
        for bad in [
            "hub.example.org",
            "ftp://hub.example.org",
            "https://hub.example.org/jl/",
            "https://127.0.0.1",
            "https://hub.example.org:0",
            "https://hub.example.org:x",
            "https://-hub.org",
            "https://",
            "https://user@hub.org",
        ] {
            assert!(SubdomainHost::parse(bad).is_err(), "{bad}");
        }
    }
}
