//! Where the hub's sockets come from: bound here (the first start), passed by systemd
//! (`sudohub.socket`: `LISTEN_FDS`), or taken over from the hub process before this one
//! (a planned restart or upgrade: [`super::takeover`]). Each is listening before anything
//! else starts, so a connection made meanwhile waits in the queue and is never refused.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::config::HubConfig;

/// The hub's listening sockets.
pub struct Listeners {
    /// `bind`: the public one.
    pub public: TcpListener,
    /// `hub_bind` when the public one speaks TLS: plain HTTP for servers on this machine.
    pub internal: Option<TcpListener>,
    /// Where helpers dial back in.
    pub reattach: UnixListener,
    /// `sudohub upgrade` / `reload`, and the successor's takeover.
    pub control: UnixListener,
    /// How they came.
    pub origin: Origin,
}

/// How the sockets came to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Bound here.
    Bound,
    /// The TCP ones from systemd's socket activation.
    Activated,
    /// All from the hub before this one.
    TakenOver,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bound => "bound",
            Self::Activated => "systemd",
            Self::TakenOver => "taken over",
        })
    }
}

/// Why the sockets could not be had.
#[derive(Debug)]
pub enum ListenError {
    /// A TCP address.
    Tcp(SocketAddr, std::io::Error),
    /// A Unix socket path.
    Unix(PathBuf, std::io::Error),
    /// What systemd passed.
    Activation(String),
    /// The hand-over from the previous hub.
    Takeover(String),
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Self::Unix(p, e) => write!(
                f,
                "cannot listen on {}: {e} (its directory must exist and be writable by the \
                 hub user, e.g. /run/sudohub owned by sudohub)",
                p.display()
            ),
            Self::Activation(e) => write!(f, "socket activation: {e}"),
            Self::Takeover(e) => write!(f, "taking over from the running hub: {e}"),
        }
    }
}

/// The control socket: beside the re-attach socket, in the hub's own run directory.
pub fn control_path(cfg: &HubConfig) -> PathBuf {
    crate::handover::control_path(&cfg.reattach_socket)
}

impl Listeners {
    /// The sockets of a first start: the TCP ones from systemd when it passed any, else
    /// bound; the Unix ones bound at their paths (a stale file is replaced).
    pub fn open(cfg: &HubConfig, tls: bool) -> Result<Self, ListenError> {
        let mut passed = listenfd::ListenFd::from_env();
        let (public, internal, origin) = if passed.len() > 0 {
            let public = passed
                .take_tcp_listener(0)
                .map_err(|e| ListenError::Activation(e.to_string()))?
                .ok_or_else(|| {
                    ListenError::Activation("the first socket is not a TCP listener".into())
                })?;
            let internal = if tls {
                Some(
                    passed
                        .take_tcp_listener(1)
                        .map_err(|e| ListenError::Activation(e.to_string()))?
                        .ok_or_else(|| {
                            ListenError::Activation(
                                "with TLS, a second TCP socket (hub_bind) is needed".into(),
                            )
                        })?,
                )
            } else {
                None
            };
            (public, internal, Origin::Activated)
        } else {
            let public = TcpListener::bind(cfg.bind).map_err(|e| ListenError::Tcp(cfg.bind, e))?;
            let internal = if tls {
                let at = cfg.hub_bind;
                Some(TcpListener::bind(at).map_err(|e| ListenError::Tcp(at, e))?)
            } else {
                None
            };
            (public, internal, Origin::Bound)
        };
        let reattach = bind_unix(&cfg.reattach_socket, 0o666)?;
        let control = bind_unix(&control_path(cfg), 0o600)?;
        Ok(Self {
            public,
            internal,
            reattach,
            control,
            origin,
        })
    }

    /// The sockets in the order a hand-over sends them: public, re-attach, control, then
    /// the internal one if there is one.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut fds = vec![
            self.public.as_fd(),
            self.reattach.as_fd(),
            self.control.as_fd(),
        ];
        if let Some(i) = &self.internal {
            fds.push(i.as_fd());
        }
        fds
    }

    /// Sockets received in the order of [`Listeners::fds`].
    pub fn from_fds(fds: Vec<OwnedFd>) -> Result<Self, ListenError> {
        let n = fds.len();
        let mut it = fds.into_iter();
        let (Some(public), Some(reattach), Some(control)) = (it.next(), it.next(), it.next())
        else {
            return Err(ListenError::Takeover(format!(
                "{n} sockets came, 3 or 4 needed"
            )));
        };
        Ok(Self {
            public: TcpListener::from(public),
            reattach: UnixListener::from(reattach),
            control: UnixListener::from(control),
            internal: it.next().map(TcpListener::from),
            origin: Origin::TakenOver,
        })
    }

    /// Whether sockets taken over serve `cfg`: they move as they are, so TLS turned on
    /// (which needs the `hub_bind` socket) is refused, and another `bind` or `hub_bind`
    /// than the sockets' (or than systemd's, where it gave them) is logged as kept.
    pub fn fit(&self, cfg: &HubConfig, tls: bool) -> Result<(), ListenError> {
        if tls && self.internal.is_none() {
            return Err(ListenError::Takeover(
                "TLS is on in hub.toml, and the running hub has no hub_bind socket to hand \
                 over: turning TLS on needs a stop and start"
                    .into(),
            ));
        }
        let internal = self.internal.as_ref().filter(|_| tls);
        for (key, want, socket) in [
            ("bind", cfg.bind, Some(&self.public)),
            ("hub_bind", cfg.hub_bind, internal),
        ] {
            let got = socket.and_then(|s| s.local_addr().ok());
            if got.is_some_and(|g| g != want) {
                tracing::warn!(key, configured = %want, serving = ?got,
                    "hub.toml names another address than the sockets taken over; they are \
                     kept until a stop and start");
            }
        }
        Ok(())
    }

    /// Copies of the sockets (the same sockets, other descriptors), kept to hand over.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            public: self.public.try_clone()?,
            internal: self.internal.as_ref().map(|l| l.try_clone()).transpose()?,
            reattach: self.reattach.try_clone()?,
            control: self.control.try_clone()?,
            origin: self.origin,
        })
    }
}

fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ListenError> {
    crate::handover::bind_unix(path, mode).map_err(|e| ListenError::Unix(path.to_owned(), e))
}
