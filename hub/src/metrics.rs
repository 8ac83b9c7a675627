//! What `/hub/metrics` reports, in the Prometheus/OpenMetrics text format: JupyterHub's
//! metric names where JupyterHub has one (so dashboards built for it work), and
//! sudohub's own under `sudohub_`. Everything here is counted as it happens, with
//! atomics; the gauges of totals are set from the database at each scrape.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// How a spawn ended (JupyterHub's `ServerSpawnStatus`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum SpawnStatus {
    /// Running and routed.
    success,
    /// Refused, failed or timed out.
    failure,
}

/// How a stop ended (JupyterHub's `ServerStopStatus`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum StopStatus {
    /// The server had its SIGTERM.
    success,
    /// The helper could not be asked.
    failure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpawnLabel {
    status: SpawnStatus,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StopLabel {
    status: StopStatus,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    handler: String,
    code: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeriodLabel {
    period: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// JupyterHub's buckets for spawn durations (seconds).
const SPAWN_BUCKETS: [f64; 12] = [0.5, 1., 2.5, 5., 10., 15., 30., 60., 120., 180., 300., 600.];
/// Prometheus's default buckets (seconds), as JupyterHub uses for the others.
const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1., 2.5, 5., 10.];

fn spawn_histogram() -> Histogram {
    Histogram::new(SPAWN_BUCKETS)
}

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The periods of `jupyterhub_active_users`, with their length.
pub const ACTIVE_PERIODS: [(&str, Duration); 3] = [
    ("24h", Duration::from_secs(24 * 3600)),
    ("7d", Duration::from_secs(7 * 24 * 3600)),
    ("30d", Duration::from_secs(30 * 24 * 3600)),
];

/// Every metric of one hub. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// What the running servers' cgroups use together, at a scrape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServersUsage {
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// CPU time used by the servers running now, seconds.
    pub cpu_seconds: f64,
    /// OOM kills in the servers running now.
    pub oom_kills: u64,
}

struct Inner {
    registry: Registry,
    total_users: Gauge,
    running_servers: Gauge,
    servers_memory: Gauge,
    servers_cpu: Gauge<f64, std::sync::atomic::AtomicU64>,
    servers_oom: Gauge,
    active_users: Family<PeriodLabel, Gauge>,
    spawn: Histograms<SpawnLabel>,
    stop: Histograms<StopLabel>,
    requests: Histograms<RequestLabels>,
    proxied: Family<KindLabel, Counter>,
    upstream_errors: Family<KindLabel, Counter>,
    helper_starts: Histograms<ResultLabel>,
    reattach: Family<ResultLabel, Counter>,
    login_failures: Family<ResultLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric, all at zero.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let total_users = Gauge::default();
        r.register(
            "jupyterhub_total_users",
            "Total number of users",
            total_users.clone(),
        );
        let running_servers = Gauge::default();
        r.register(
            "jupyterhub_running_servers",
            "The number of user servers currently running",
            running_servers.clone(),
        );
        let servers_memory = Gauge::default();
        r.register(
            "sudohub_servers_memory_bytes",
            "Memory the running user servers use, by their cgroups, in bytes",
            servers_memory.clone(),
        );
        let servers_cpu = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        r.register(
            "sudohub_servers_cpu_seconds",
            "CPU time the running user servers have used, by their cgroups, in seconds",
            servers_cpu.clone(),
        );
        let servers_oom = Gauge::default();
        r.register(
            "sudohub_servers_oom_kills",
            "Processes the kernel killed at their memory limit in the running user servers",
            servers_oom.clone(),
        );
        let active_users = Family::<PeriodLabel, Gauge>::default();
        r.register(
            "jupyterhub_active_users",
            "Number of users who were active in the given time period",
            active_users.clone(),
        );
        let spawn = Histograms::new_with_constructor(spawn_histogram as fn() -> Histogram);
        r.register(
            "jupyterhub_server_spawn_duration_seconds",
            "Time taken for server spawning operation",
            spawn.clone(),
        );
        let stop = Histograms::new_with_constructor(default_histogram as fn() -> Histogram);
        r.register(
            "jupyterhub_server_stop_seconds",
            "Time taken for server stopping operation",
            stop.clone(),
        );
        let requests = Histograms::new_with_constructor(default_histogram as fn() -> Histogram);
        r.register(
            "jupyterhub_request_duration_seconds",
            "Request duration for all HTTP requests of the hub itself",
            requests.clone(),
        );
        let proxied = Family::<KindLabel, Counter>::default();
        r.register(
            "sudohub_proxy_requests",
            "Requests the built-in proxy carried, by target kind (user server or service)",
            proxied.clone(),
        );
        let upstream_errors = Family::<KindLabel, Counter>::default();
        r.register(
            "sudohub_proxy_upstream_errors",
            "Proxied requests answered by the hub because the target failed (502/504)",
            upstream_errors.clone(),
        );
        let helper_starts =
            Histograms::new_with_constructor(default_histogram as fn() -> Histogram);
        r.register(
            "sudohub_helper_start_seconds",
            "From running sudo to the spawner helper's Started (or refusal)",
            helper_starts.clone(),
        );
        let reattach = Family::<ResultLabel, Counter>::default();
        r.register(
            "sudohub_reattach",
            "Helpers that dialled back after a hub restart, by result",
            reattach.clone(),
        );
        let login_failures = Family::<ResultLabel, Counter>::default();
        r.register(
            "sudohub_login_failures",
            "Failed logins, by reason (denied, rate_limited, not_allowed, error)",
            login_failures.clone(),
        );
        // Spawn and stop outcomes exist from the start, at zero, so rate() and alerts on
        // failures work before the first one.
        for status in [SpawnStatus::success, SpawnStatus::failure] {
            drop(spawn.get_or_create(&SpawnLabel { status }));
        }
        for status in [StopStatus::success, StopStatus::failure] {
            drop(stop.get_or_create(&StopLabel { status }));
        }
        Self {
            inner: Arc::new(Inner {
                registry: r,
                total_users,
                running_servers,
                servers_memory,
                servers_cpu,
                servers_oom,
                active_users,
                spawn,
                stop,
                requests,
                proxied,
                upstream_errors,
                helper_starts,
                reattach,
                login_failures,
            }),
        }
    }

    /// A spawn ended after `took`.
    pub fn spawned(&self, status: SpawnStatus, took: Duration) {
        self.inner
            .spawn
            .get_or_create(&SpawnLabel { status })
            .observe(took.as_secs_f64());
    }

    /// A stop ended after `took`.
    pub fn stopped(&self, status: StopStatus, took: Duration) {
        self.inner
            .stop
            .get_or_create(&StopLabel { status })
            .observe(took.as_secs_f64());
    }

    /// A request the hub answered itself; `handler` is its route's pattern.
    pub fn request(&self, method: &str, handler: &str, code: u16, took: Duration) {
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                handler: handler.to_owned(),
                code,
            })
            .observe(took.as_secs_f64());
    }

    /// A request the proxy carried to a user's server (`user`) or a service.
    pub fn proxied(&self, to_user: bool, upstream_failed: bool) {
        let kind = if to_user { "user" } else { "service" };
        self.inner.proxied.get_or_create(&KindLabel { kind }).inc();
        if upstream_failed {
            self.inner
                .upstream_errors
                .get_or_create(&KindLabel { kind })
                .inc();
        }
    }

    /// A helper answered a spawn request (`ok`) or refused or failed, after `took`.
    pub fn helper_start(&self, ok: bool, took: Duration) {
        let result = if ok { "started" } else { "refused" };
        self.inner
            .helper_starts
            .get_or_create(&ResultLabel { result })
            .observe(took.as_secs_f64());
    }

    /// A helper dialled back: `accepted` or `refused`.
    pub fn reattached(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "refused" };
        self.inner
            .reattach
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// A login failed for `reason` (`denied`, `rate_limited`, `not_allowed`, `error`).
    pub fn login_failed(&self, reason: &'static str) {
        self.inner
            .login_failures
            .get_or_create(&ResultLabel { result: reason })
            .inc();
    }

    /// The text of a scrape, with the totals given as they are now.
    pub fn render(
        &self,
        total_users: usize,
        running: usize,
        active: &[(&'static str, usize)],
        usage: ServersUsage,
    ) -> String {
        let i = &self.inner;
        i.total_users.set(gauge(total_users));
        i.running_servers.set(gauge(running));
        i.servers_memory
            .set(i64::try_from(usage.memory_bytes).unwrap_or(i64::MAX));
        i.servers_cpu.set(usage.cpu_seconds);
        i.servers_oom
            .set(i64::try_from(usage.oom_kills).unwrap_or(i64::MAX));
        for (period, n) in active {
            i.active_users
                .get_or_create(&PeriodLabel { period })
                .set(gauge(*n));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &i.registry);
        out
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jupyterhubs_names_are_rendered() {
        let m = Metrics::new();
        m.spawned(SpawnStatus::success, Duration::from_secs(3));
        m.stopped(StopStatus::success, Duration::from_millis(8));
        m.request("GET", "/hub/api/users", 200, Duration::from_millis(1));
        m.proxied(true, false);
        m.proxied(false, true);
        m.login_failed("denied");
        let usage = ServersUsage {
            memory_bytes: 1 << 20,
            cpu_seconds: 1.5,
            oom_kills: 2,
        };
        let text = m.render(7, 2, &[("24h", 1), ("7d", 3), ("30d", 5)], usage);
        for line in [
            "jupyterhub_total_users 7",
            "jupyterhub_running_servers 2",
            "jupyterhub_active_users{period=\"7d\"} 3",
            "jupyterhub_server_spawn_duration_seconds_bucket{le=\"5.0\",status=\"success\"} 1",
            "jupyterhub_server_stop_seconds_count{status=\"success\"} 1",
            "jupyterhub_request_duration_seconds_count{method=\"GET\",handler=\"/hub/api/users\",code=\"200\"} 1",
            "sudohub_proxy_requests_total{kind=\"user\"} 1",
            "sudohub_proxy_upstream_errors_total{kind=\"service\"} 1",
            "sudohub_login_failures_total{result=\"denied\"} 1",
            "sudohub_servers_memory_bytes 1048576",
            "sudohub_servers_cpu_seconds 1.5",
            "sudohub_servers_oom_kills 2",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
    }
}
