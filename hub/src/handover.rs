//! Handing the hub's listening sockets to the next hub process (a planned restart or an
//! upgrade), so no connection attempt is refused in between: the old process sends the
//! very sockets it listens on over a Unix socket (`SCM_RIGHTS`) to a new process of the
//! same uid, which serves on them from then on. Only the primitives live here; the
//! sequence (takeover, ready, release of the helpers, drain) is `serve`'s.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Most sockets handed over at once: `bind`, `hub_bind`, the re-attach socket, spare.
pub const MAX_FDS: usize = 4;

/// The control socket, beside the re-attach socket (the hub's own run directory).
pub fn control_path(reattach_socket: &Path) -> PathBuf {
    reattach_socket.with_file_name("control.sock")
}

/// Binds a Unix socket at `path` with `mode`, replacing a stale one left by a hub before.
pub fn bind_unix(path: &Path, mode: u32) -> io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// The peer of `stream` must run as this process's uid (the hub's account): nobody else
/// gets its listening sockets, nor hands it sockets.
pub fn check_peer(stream: &impl AsFd) -> io::Result<()> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    if cred.uid() == nix::unistd::geteuid().as_raw() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("control socket peer uid {} is not the hub's", cred.uid()),
        ))
    }
}

/// The pid and uid of the process at the other end of `stream`, as the kernel says.
pub fn peer(stream: &impl AsFd) -> io::Result<(i32, u32)> {
    let cred = nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?;
    Ok((cred.pid(), cred.uid()))
}

/// Sends `fds` (at most [`MAX_FDS`]) with one byte saying how many.
pub fn send_fds(stream: &impl AsFd, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many sockets",
        ));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other("no room for the sockets"));
    }
    let count = [u8::try_from(fds.len()).unwrap_or(0)];
    sendmsg(
        stream.as_fd(),
        &[IoSlice::new(&count)],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// Receives what [`send_fds`] sent: the sockets, close-on-exec, in the order given.
pub fn recv_fds(stream: &impl AsFd) -> io::Result<Vec<OwnedFd>> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut count = [0u8; 1];
    let got = recvmsg(
        stream.as_fd(),
        &mut [IoSliceMut::new(&mut count)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    if got.bytes != 1 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "no sockets came",
        ));
    }
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(iter) = msg {
            fds.extend(iter);
        }
    }
    if fds.len() != usize::from(count[0]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} sockets announced, {} came", count[0], fds.len()),
        ));
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_listening_socket_keeps_its_queue_across_the_hand_over() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // A client connects before the hand-over: its connection waits in the queue.
        let mut early = std::net::TcpStream::connect(addr).unwrap();
        let (old, new) = UnixStream::pair().unwrap();
        check_peer(&new).unwrap();
        send_fds(&old, &[listener.as_fd()]).unwrap();
        drop(listener); // the old process lets go
        let mut fds = recv_fds(&new).unwrap();
        assert_eq!(fds.len(), 1);
        let taken = std::net::TcpListener::from(fds.remove(0));
        assert_eq!(taken.local_addr().unwrap(), addr);
        let (mut conn, _) = taken.accept().unwrap();
        early.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        // And new connections reach it too.
        let _late = std::net::TcpStream::connect(addr).unwrap();
        assert!(taken.accept().is_ok());
    }

    #[test]
    fn a_count_that_does_not_match_is_refused() {
        let (old, new) = UnixStream::pair().unwrap();
        use std::io::Write as _;
        (&old).write_all(&[2]).unwrap();
        assert!(recv_fds(&new).is_err());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let five: Vec<_> = (0..5).map(|_| listener.as_fd()).collect();
        assert!(send_fds(&old, &five).is_err());
    }
}
