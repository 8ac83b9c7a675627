//! What Slurm's commands print, parsed: one `squeue` line per job, the queue of pending
//! jobs (for a job's place in it), and `sinfo`'s node addresses.

use std::collections::HashMap;
use std::time::SystemTime;

/// The `-o` format of the job query: id, state, batch host, reason, partition, priority,
/// user, submit time (in UTC: the hub runs squeue with `TZ=UTC`). No field a user can
/// set freely (a job's name or comment) is printed.
pub const JOB_FORMAT: &str = "%i|%T|%B|%r|%P|%Q|%u|%V";
/// The `-o` format of the pending queue: id, partition, priority.
pub const QUEUE_FORMAT: &str = "%i|%P|%Q";
/// The `-o` format of `sinfo -N`: node name, node address.
pub const NODE_FORMAT: &str = "%N|%o";

/// One job as squeue shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLine {
    /// Job id.
    pub id: u32,
    /// `PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, …
    pub state: String,
    /// The first node it runs on (its batch host), once it runs.
    pub node: Option<String>,
    /// Why it waits (`Resources`, `Priority`) or ended (`None` when Slurm gives none).
    pub reason: String,
    /// Its partition.
    pub partition: String,
    /// Its priority.
    pub priority: u64,
    /// Its user.
    pub user: String,
    /// When it was submitted, by slurmctld's clock (`None` when squeue gives no time).
    pub submitted: Option<SystemTime>,
}

impl JobLine {
    /// Whether the job is waiting to run.
    pub fn pending(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PENDING" | "REQUEUED" | "RESV_DEL_HOLD" | "REQUEUE_HOLD" | "REQUEUE_FED"
        )
    }

    /// Whether the job runs (`CONFIGURING`: its nodes boot; `SIGNALING`, `RESIZING`: it
    /// runs on through them).
    pub fn running(&self) -> bool {
        matches!(
            self.state.as_str(),
            "RUNNING" | "CONFIGURING" | "SIGNALING" | "RESIZING"
        )
    }

    /// Whether Slurm has ended it: only the states that say so. Any other (one this
    /// list does not know, `SUSPENDED`, `STOPPED`) is not taken for an end.
    pub fn over(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "COMPLETING"
                | "CANCELLED"
                | "FAILED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
                | "OUT_OF_MEMORY"
                | "SPECIAL_EXIT"
                | "REVOKED"
        )
    }
}

/// Parses squeue's lines of [`JOB_FORMAT`]; lines that do not fit are skipped (and named
/// in the second value, for the log).
pub fn parse_jobs(text: &str) -> (Vec<JobLine>, Vec<String>) {
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.trim().split('|').collect();
        let parsed = match f.as_slice() {
            [id, state, host, reason, partition, priority, user, submitted] => {
                id.parse::<u32>().ok().map(|id| JobLine {
                    id,
                    state: state.to_string(),
                    node: first_node(host),
                    reason: reason.to_string(),
                    partition: partition.to_string(),
                    priority: priority.parse().unwrap_or(0),
                    user: user.to_string(),
                    submitted: utc_time(submitted),
                })
            }
            _ => None,
        };
        match parsed {
            Some(j) => jobs.push(j),
            None => bad.push(line.chars().take(200).collect()),
        }
    }
    (jobs, bad)
}

/// squeue's `%V` (`2026-12-04T19:03:08`, printed in UTC) as a time.
fn utc_time(text: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let t = time::PrimitiveDateTime::parse(text.trim(), format).ok()?;
    Some(t.assume_utc().into())
}

/// The first host of a Slurm node list: `n1`, `n[3-5,7]` → `n3`, `a1,b2` → `a1`.
pub fn first_node(list: &str) -> Option<String> {
    let list = list.trim();
    if list.is_empty() || list == "(null)" || list == "n/a" {
        return None;
    }
    let first_item = match list.find(',') {
        Some(i) if !list[..i].contains('[') || list[..i].contains(']') => &list[..i],
        _ => list,
    };
    match first_item.split_once('[') {
        None => Some(first_item.to_owned()),
        Some((prefix, rest)) => {
            let first = rest
                .split([',', ']'])
                .next()
                .and_then(|r| r.split('-').next())
                .unwrap_or_default();
            Some(format!("{prefix}{first}"))
        }
    }
}

/// Each of `ours`' place in its partition's queue, from squeue's lines of [`QUEUE_FORMAT`]
/// for every pending job: 1 + the jobs of the same partition ahead of it (higher
/// priority, or the same and submitted earlier).
pub fn positions(queue: &str, ours: &[u32]) -> HashMap<u32, usize> {
    let all: Vec<(u32, &str, u64)> = queue
        .lines()
        .filter_map(|l| {
            let mut f = l.trim().split('|');
            let id = f.next()?.parse().ok()?;
            let partition = f.next()?;
            let priority = f.next()?.parse().ok()?;
            Some((id, partition, priority))
        })
        .collect();
    let mut out = HashMap::new();
    for id in ours {
        let Some(&(_, part, prio)) = all.iter().find(|(j, ..)| j == id) else {
            continue;
        };
        let ahead = all
            .iter()
            .filter(|(j, p, q)| *p == part && (*q > prio || (*q == prio && j < id)))
            .count();
        out.insert(*id, ahead + 1);
    }
    out
}

/// sinfo's lines of [`NODE_FORMAT`]: node name → address.
pub fn parse_nodes(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (n, a) = l.trim().split_once('|')?;
            (!n.is_empty() && !a.is_empty()).then(|| (n.to_owned(), a.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_jobs() {
        let (jobs, bad) = parse_jobs(
            "12|RUNNING|n[3-5]|None|debug|4294901758|alice|2026-12-04T19:03:08\n13|PENDING|n/a|Resources|debug|100|bob|2026-12-04T19:04:00\n14|SIGNALING|n1|None|debug|1|bob|N/A\n15|WEIRD_NEW|n1|None|debug|1|bob|2026-12-04T19:04:00\nnonsense\n",
        );
        assert_eq!(bad, ["nonsense"]);
        assert_eq!(jobs[0].node.as_deref(), Some("n3"));
        assert!(jobs[0].running() && jobs[1].pending());
        assert_eq!(jobs[1].node, None);
        assert_eq!(jobs[1].user, "bob");
        assert!(jobs[2].running() && !jobs[2].over());
        assert!(!jobs[3].over() && !jobs[3].running() && !jobs[3].pending());
        assert_eq!(jobs[1].reason, "Resources");
        let at = |t: &SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(jobs[0].submitted.as_ref().map(at), Some(1_796_410_988));
        assert_eq!(jobs[1].submitted.as_ref().map(at), Some(1_796_411_040));
        assert_eq!(jobs[2].submitted, None);
    }

    #[test]
    fn node_lists_give_their_first_host() {
        assert_eq!(first_node("cn01").as_deref(), Some("cn01"));
        assert_eq!(first_node("cn[07,09]").as_deref(), Some("cn07"));
        assert_eq!(first_node("a1,b[2-3]").as_deref(), Some("a1"));
        assert_eq!(first_node("gpu[10-12],cpu1").as_deref(), Some("gpu10"));
        assert_eq!(first_node(""), None);
    }

    #[test]
    fn a_place_in_the_queue_counts_the_jobs_ahead_in_the_same_partition() {
        let q = "20|debug|100\n21|debug|100\n22|debug|500\n23|gpu|900\n24|debug|100\n";
        let p = positions(q, &[21, 24, 23, 99]);
        assert_eq!(p[&21], 3); // 22 (higher priority) and 20 (older)
        assert_eq!(p[&24], 4);
        assert_eq!(p[&23], 1);
        assert!(!p.contains_key(&99));
    }

    #[test]
    fn node_addresses() {
        let m = parse_nodes("n1|10.0.0.1\nn2|n2.cluster\n|x\n");
        assert_eq!(m["n1"], "10.0.0.1");
        assert_eq!(m.len(), 2);
    }
}
