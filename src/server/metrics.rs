//! The server's own metrics (`canary_*`), exposed on `/metrics` with the source's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Requests by route and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route pattern (`/api/v1/judge`).
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

/// Verdicts by judge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// Judge name.
    pub judge: String,
    /// `pass`, `marginal` or `fail`.
    pub verdict: String,
}

/// Handles to the server's metrics.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    /// Requests by route and status.
    pub requests: Family<RouteLabels, Counter>,
    /// Verdicts by judge.
    pub verdicts: Family<VerdictLabels, Counter>,
    /// Judgement duration.
    pub judge_duration: Histogram,
    /// Failed spec reloads.
    pub reload_failures: Counter,
    /// Spec files currently failing to load.
    pub broken_specs: Gauge,
    /// Requests refused by the concurrency limit.
    pub overloaded: Counter,
    /// Client connections open now.
    pub open_connections: Gauge,
    /// Connections refused by the connection limit.
    pub refused_connections: Counter,
}

impl ServerMetrics {
    /// Register under `canary_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = ServerMetrics {
            requests: Family::default(),
            verdicts: Family::default(),
            judge_duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            reload_failures: Counter::default(),
            broken_specs: Gauge::default(),
            overloaded: Counter::default(),
            open_connections: Gauge::default(),
            refused_connections: Counter::default(),
        };
        registry.register(
            "canary_http_requests",
            "HTTP requests by route and status",
            m.requests.clone(),
        );
        registry.register("canary_verdicts", "Verdicts by judge", m.verdicts.clone());
        registry.register(
            "canary_judge_duration_seconds",
            "Time to answer a judgement, queries included",
            m.judge_duration.clone(),
        );
        registry.register(
            "canary_judge_spec_reload_failures",
            "Judge spec files that failed to load on a reload",
            m.reload_failures.clone(),
        );
        registry.register(
            "canary_judge_specs_broken",
            "Judge spec files currently failing to load (their last good version serves)",
            m.broken_specs.clone(),
        );
        registry.register(
            "canary_http_overloaded",
            "Requests refused because the concurrency limit was reached",
            m.overloaded.clone(),
        );
        registry.register(
            "canary_http_open_connections",
            "Client connections open now",
            m.open_connections.clone(),
        );
        registry.register(
            "canary_http_refused_connections",
            "Connections refused because --max-connections were open",
            m.refused_connections.clone(),
        );
        m
    }
}
