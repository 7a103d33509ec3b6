//! The metric source's own metrics: query duration, errors by kind, cache outcomes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::cache::CacheOutcome;

/// Label set with one `kind` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// An error's kind, or a cache outcome (`hit`, `miss`, `coalesced`).
    pub kind: String,
}

/// Handles to the source's metrics (cheap to clone).
#[derive(Clone, Debug)]
pub struct SourceMetrics {
    duration: Histogram,
    errors: Family<KindLabel, Counter>,
    cache: Family<KindLabel, Counter>,
}

impl SourceMetrics {
    /// Register under `canary_prometheus_*` in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let errors = Family::<KindLabel, Counter>::default();
        let cache = Family::<KindLabel, Counter>::default();
        registry.register(
            "canary_prometheus_query_duration_seconds",
            "Time of Prometheus queries actually sent (cache misses)",
            duration.clone(),
        );
        registry.register(
            "canary_prometheus_query_errors",
            "Failed Prometheus queries by kind (unreachable, timeout, http_status, prometheus, malformed)",
            errors.clone(),
        );
        registry.register(
            "canary_prometheus_cache",
            "Prometheus queries by cache outcome (miss, coalesced, hit)",
            cache.clone(),
        );
        SourceMetrics {
            duration,
            errors,
            cache,
        }
    }

    pub(crate) fn observe(&self, seconds: f64, error: Option<&str>) {
        self.duration.observe(seconds);
        if let Some(kind) = error {
            self.errors
                .get_or_create(&KindLabel { kind: kind.into() })
                .inc();
        }
    }

    pub(crate) fn cache(&self, outcome: CacheOutcome) {
        self.cache
            .get_or_create(&KindLabel {
                kind: outcome.as_str().into(),
            })
            .inc();
    }
}
