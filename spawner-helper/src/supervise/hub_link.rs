//! The helper's link to the hub: reporting the server's exit, and when the hub goes
//! away (a restart), detaching and dialling its re-attach socket with a back-off until a
//! hub takes the report, refuses the claim (then the server is stopped), or the helper
//! gives up.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use sudohub_protocol::spawner::{ReattachHello, Reply, ServerStatus};
use sudohub_protocol::{Bounded, PROTOCOL_VERSION};

use super::{Flow, Phase, Supervisor};
use crate::reattach::{dial, Backoff, Dial};

impl Supervisor {
    /// Sends `Exited` if a hub is attached; then the helper's work is done.
    pub(super) fn report_exit(&mut self) -> Flow {
        let Phase::Exited { status, .. } = self.phase else {
            return Flow::Continue;
        };
        if let Some(c) = &mut self.channel {
            if c.send(&Reply::Exited { status }).is_ok() {
                return Flow::Exit(0);
            }
            self.detach("the hub did not take the exit report");
        }
        if self.refused {
            return Flow::Exit(0);
        }
        if self.give_up_at.is_none() {
            let secs = u64::from(self.v.config.spawner.orphan_report_secs);
            self.give_up_at = Some(Instant::now() + Duration::from_secs(secs));
        }
        Flow::Continue
    }

    pub(super) fn try_reattach(&mut self) -> Flow {
        let (pid, status) = match self.phase {
            Phase::Running { pid } => (pid, ServerStatus::Running { pid }),
            Phase::Exited { pid, status } => (pid, ServerStatus::Exited { status }),
            _ => return Flow::Exit(0),
        };
        let Ok(user) = Bounded::new(self.v.user.name.clone()) else {
            return Flow::Exit(13);
        };
        let Ok(server_name) = Bounded::new(self.server_name.clone()) else {
            return Flow::Exit(13);
        };
        let hello = ReattachHello {
            version: PROTOCOL_VERSION,
            user,
            server_name,
            pid,
            status,
        };
        let name = self.server_name.clone();
        match dial(&self.v.config.spawner.reattach_socket, &hello) {
            Dial::Accepted(channel) => {
                self.channel = Some(channel);
                self.backoff = None;
                self.log.action("reattach", &name, Some(pid), "accepted");
                self.report_exit()
            }
            Dial::Refused(reason) => {
                self.backoff = None;
                self.refused = true;
                self.log
                    .action("reattach", &name, Some(pid), &format!("refused: {reason}"));
                // The hub has no record of this server, so no route, no token and no
                // user can reach it: stop it (SIGTERM, then SIGKILL after the longest
                // grace) rather than leave an orphan running. Nothing to report after.
                if matches!(self.phase, Phase::Running { .. }) {
                    let grace = u64::from(self.v.config.spawner.max_grace_ms);
                    self.begin_stop(Duration::from_millis(grace));
                }
                match self.phase {
                    Phase::Exited { .. } => Flow::Exit(0),
                    _ => Flow::Continue,
                }
            }
            Dial::Retry(_) => {
                if let Some(b) = &mut self.backoff {
                    b.failed();
                }
                Flow::Continue
            }
        }
    }

    pub(super) fn detach(&mut self, why: &str) {
        self.channel = None;
        self.log.set_hub_attached(false);
        self.log.notice(why);
        if !self.refused {
            self.backoff = Some(Backoff::start());
        }
    }
}
