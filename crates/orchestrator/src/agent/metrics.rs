//! The agent's Prometheus metrics, served at `GET /metrics` in the text exposition format.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// Every metric an agent keeps.
pub struct Metrics {
    registry: Registry,
    checks: Family<Labels, Counter>,
    check_seconds: Histogram,
    suspicions: Gauge,
    reports: Family<Labels, Counter>,
    recoveries: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("orchestrator");
        let checks = Family::<Labels, Counter>::default();
        let check_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 12));
        let suspicions = Gauge::default();
        let reports = Family::<Labels, Counter>::default();
        let recoveries = Family::<Labels, Counter>::default();
        let refused = Family::<Labels, Counter>::default();
        let notifications = Family::<Labels, Counter>::default();
        registry.register(
            "peer_checks",
            "Health checks of peers, by target and result",
            checks.clone(),
        );
        registry.register(
            "peer_check_seconds",
            "How long peer health checks took",
            check_seconds.clone(),
        );
        registry.register("suspicions", "Peers this agent suspects now", suspicions.clone());
        registry.register(
            "reports",
            "Suspicion reports (votes), by direction and kind",
            reports.clone(),
        );
        registry.register("recoveries", "Recoveries this agent led, by result", recoveries.clone());
        registry.register(
            "refused_requests",
            "Control requests refused, by reason",
            refused.clone(),
        );
        registry.register(
            "notifications",
            "Alerts and heartbeats sent, by channel, kind and result",
            notifications.clone(),
        );
        Metrics {
            registry,
            checks,
            check_seconds,
            suspicions,
            reports,
            recoveries,
            refused,
            notifications,
        }
    }

    pub fn check(&self, target: &str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "failed" };
        self.checks
            .get_or_create(&vec![
                ("target".into(), target.into()),
                ("result".into(), result.into()),
            ])
            .inc();
        self.check_seconds.observe(seconds);
    }

    pub fn set_suspicions(&self, count: usize) {
        self.suspicions.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A report sent (`sent`) or received (`received`), suspecting or clearing.
    pub fn report(&self, direction: &str, suspect: bool) {
        let kind = if suspect { "suspect" } else { "clear" };
        self.reports
            .get_or_create(&vec![
                ("direction".into(), direction.into()),
                ("kind".into(), kind.into()),
            ])
            .inc();
    }

    pub fn recovery(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.recoveries.get_or_create(&vec![("result".into(), result.into())]).inc();
    }

    /// A notification delivered (`ok`) or not (`failed`) on `channel` (`email`, `sms`); `kind` is
    /// `alert` or `heartbeat`.
    pub fn notification(&self, channel: &str, kind: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.notifications
            .get_or_create(&vec![
                ("channel".into(), channel.into()),
                ("kind".into(), kind.into()),
                ("result".into(), result.into()),
            ])
            .inc();
    }

    /// Brings the refusal counters up to `total` for `reason` (the verifier counts itself).
    pub fn refused(&self, reason: &str, total: u64) {
        let counter = self.refused.get_or_create(&vec![("reason".into(), reason.into())]);
        let now = counter.get();
        if total > now {
            counter.inc_by(total - now);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a string cannot fail");
        text
    }
}
