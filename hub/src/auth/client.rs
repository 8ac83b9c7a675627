//! The address a login comes from, for the per-address limits: behind a trusted reverse
//! proxy the client it names in `X-Forwarded-For`, otherwise the peer itself. Behind
//! nginx every peer is 127.0.0.1, so without this one attacker's failures would slow
//! everyone down; with it, nobody who connects directly can claim another address.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::TrustedNet;

/// Longest `X-Forwarded-For` chain looked at.
const MAX_HOPS: usize = 16;

/// The client of a request from `peer`: walking `X-Forwarded-For` from the right, the
/// first address that is not a trusted proxy. An untrusted peer is the client itself;
/// a chain that cannot be read ends the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in chain.iter().rev().take(MAX_HOPS) {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<TrustedNet> {
        list.iter()
            .map(|s| TrustedNet::try_from((*s).to_owned()).unwrap())
            .collect()
    }

    fn xff(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static(v));
        h
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let far: IpAddr = "203.0.113.9".parse().unwrap();
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        // Behind nginx: the client nginx saw.
        assert_eq!(
            client_ip(lo, &xff("198.51.100.7"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // A client that forges the header in front of nginx: the rightmost untrusted hop.
        assert_eq!(
            client_ip(lo, &xff("1.2.3.4, 198.51.100.7, 10.1.2.3"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // A direct client's claims are ignored.
        assert_eq!(client_ip(far, &xff("1.2.3.4"), &trusted), far);
        // Nothing believable: the last trusted hop.
        assert_eq!(client_ip(lo, &xff("garbage"), &trusted), lo);
        assert_eq!(client_ip(lo, &HeaderMap::new(), &trusted), lo);
        assert_eq!(
            client_ip(lo, &xff("198.51.100.7"), &[]),
            lo,
            "no trusted proxies"
        );
        assert!(TrustedNet::try_from("10.0.0.0/33".to_owned()).is_err());
    }
}
