//! Who owns the socket a server listens on, from the kernel's own table.
//!
//! The hub picks a free port and the server binds it a moment later: a local user who
//! binds it first would get the victim's route, and with it their browser's requests.
//! So before a route is added, every socket listening on that port must belong to the
//! server's user, as `/proc/net/tcp` and `/proc/net/tcp6` say (both are readable by
//! everyone and name each socket's uid).

use std::path::Path;

/// `st` of a listening socket in `/proc/net/tcp*`.
const LISTEN: &str = "0A";

/// The uids of the sockets listening on `port` (any address), from the tables at
/// `tables` (the two `/proc/net` files normally).
pub fn listener_uids(port: u16, tables: &[&Path]) -> Vec<u32> {
    let mut uids = Vec::new();
    for table in tables {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(uid)) = (f.get(1), f.get(3), f.get(7)) else {
                continue;
            };
            let listening_here = *state == LISTEN
                && local
                    .rsplit_once(':')
                    .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
                    == Some(port);
            if let (true, Ok(uid)) = (listening_here, uid.parse()) {
                uids.push(uid);
            }
        }
    }
    uids
}

/// `Ok` if something listens on `port` and every listener belongs to `uid`; else why not.
pub fn owned_by(port: u16, uid: u32) -> Result<(), String> {
    let tables = [Path::new("/proc/net/tcp"), Path::new("/proc/net/tcp6")];
    let uids = listener_uids(port, &tables);
    if uids.is_empty() {
        return Err(format!("nothing listens on port {port}"));
    }
    match uids.iter().find(|u| **u != uid) {
        Some(other) => Err(format!(
            "port {port} is taken by uid {other}, not the server's user (uid {uid}): another local user bound it first"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_found_with_their_uids() {
        let me = nix::unistd::getuid().as_raw();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(owned_by(port, me), Ok(()));
        let e = owned_by(port, me + 1).unwrap_err();
        assert!(e.contains(&format!("taken by uid {me}")), "{e}");
        drop(l);
        assert!(owned_by(port, me).unwrap_err().contains("nothing listens"));
    }

    #[test]
    fn the_table_format_is_read_field_by_field() {
        let dir = std::env::temp_dir().join(format!("sudohub-tcp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let t = dir.join("tcp");
        std::fs::write(
            &t,
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: 0100007F:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 1 1\n\
             1: 00000000:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1002        0 2 1\n\
             2: 0100007F:C350 0100007F:AA06 01 00000000:00000000 00:00000000 00000000  1003        0 3 1\n\
             3: 0100007F:C351 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1004        0 4 1\n",
        )
        .unwrap();
        assert_eq!(listener_uids(50000, &[&t]), [1001, 1002]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
