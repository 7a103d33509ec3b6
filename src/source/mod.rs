//! Where measurements come from: Prometheus, web endpoints, or a recorded snapshot.
//!
//! [`Sources`] is what the analysis loop talks to. It answers Prometheus queries and web calls
//! live, or from a snapshot file, and can record everything it answers to a new snapshot.

mod body;
pub mod cache;
mod error;
pub mod history;
pub mod metrics;
pub mod prometheus;
pub mod snapshot;
mod value;
pub mod web;

use std::path::Path;
use std::sync::{Arc, OnceLock};

pub use body::DEFAULT_MAX_ANSWER_BYTES;
pub use error::Error;
pub use prometheus::{Answer, PromQuery, Prometheus, PrometheusConfig, Range};
pub use value::{
    go_float, parse_float as value_parse_float, NativeBucket, NativeHistogram, QueryValue, Series,
};
pub use web::{WebRequest, WebResponse};

use snapshot::{Recorder, Replay, SnapshotError};

#[derive(Debug)]
enum Backend {
    Live {
        prometheus: Box<Prometheus>,
        web: OnceLock<reqwest::Client>,
        web_insecure: OnceLock<reqwest::Client>,
    },
    Replay(Replay),
}

/// Everything that makes two queries the same question.
fn cache_key(q: &PromQuery) -> String {
    let range = q.range.as_ref().map(|r| {
        format!(
            "{}..{}/{}",
            r.start.timestamp_millis(),
            r.end.timestamp_millis(),
            r.step.as_millis()
        )
    });
    format!(
        "{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{}",
        q.query,
        q.address.as_deref().unwrap_or(""),
        range,
        q.time.map(|t| t.timestamp_millis()),
        q.headers,
        q.insecure
    )
}

/// The web provider's HTTP client, built on first use.
fn web_client(cell: &OnceLock<reqwest::Client>, insecure: bool) -> Result<reqwest::Client, Error> {
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let c = reqwest::Client::builder()
        .danger_accept_invalid_certs(insecure)
        .user_agent(concat!("canary-engine/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
    Ok(cell.get_or_init(|| c).clone())
}

/// The metric sources of one run (cheap to clone).
#[derive(Debug, Clone)]
pub struct Sources {
    backend: Arc<Backend>,
    recorder: Option<Arc<Recorder>>,
    cache: Option<Arc<cache::QueryCache>>,
    metrics: Option<metrics::SourceMetrics>,
    history: Option<Arc<history::History>>,
}

impl Sources {
    /// Live sources: Prometheus with the given defaults, and plain HTTP for web metrics.
    pub fn live(config: PrometheusConfig) -> Result<Self, Error> {
        Ok(Sources {
            backend: Arc::new(Backend::Live {
                prometheus: Box::new(Prometheus::new(config)?),
                web: OnceLock::new(),
                web_insecure: OnceLock::new(),
            }),
            recorder: None,
            cache: None,
            metrics: None,
            history: None,
        })
    }

    /// Coalesce identical concurrent Prometheus queries and keep answers for `ttl`.
    pub fn with_cache(mut self, ttl: std::time::Duration) -> Self {
        self.cache = Some(Arc::new(cache::QueryCache::new(ttl)));
        self
    }

    /// Count queries, errors and cache outcomes in these metrics.
    pub fn with_metrics(mut self, m: metrics::SourceMetrics) -> Self {
        self.metrics = Some(m);
        self
    }

    /// Sources answering from a snapshot file.
    pub fn replay(path: &Path) -> Result<Self, SnapshotError> {
        Ok(Sources {
            backend: Arc::new(Backend::Replay(Replay::load(path)?)),
            recorder: None,
            cache: None,
            metrics: None,
            history: None,
        })
    }

    /// Also record every answer to `path` (truncated first).
    pub fn record_to(mut self, path: &Path) -> std::io::Result<Self> {
        self.recorder = Some(Arc::new(Recorder::create(path)?));
        Ok(self)
    }

    /// Answer past instant and range queries from whole-range fetches (backtests).
    pub fn with_history(mut self, h: Arc<history::History>) -> Self {
        self.history = Some(h);
        self
    }

    /// Whether answers come from a snapshot.
    pub fn is_replay(&self) -> bool {
        matches!(*self.backend, Backend::Replay(_))
    }

    /// Run a Prometheus query (through the cache, when there is one).
    pub async fn prometheus(&self, q: &PromQuery) -> Result<Answer, Error> {
        if let Some(h) = &self.history {
            if let Some(answer) = h.answer(q, self).await {
                return answer;
            }
        }
        self.direct(q).await
    }

    /// Run a Prometheus query as asked: no history, but the cache when there is one.
    pub(crate) async fn direct(&self, q: &PromQuery) -> Result<Answer, Error> {
        match &self.cache {
            Some(cache) => {
                let (outcome, answer) = cache.get_or_fetch(cache_key(q), self.fetch(q)).await;
                if let Some(m) = &self.metrics {
                    m.cache(outcome);
                }
                answer
            }
            None => self.fetch(q).await,
        }
    }

    async fn fetch(&self, q: &PromQuery) -> Result<Answer, Error> {
        let started = std::time::Instant::now();
        let outcome = match &*self.backend {
            Backend::Live { prometheus, .. } => prometheus.query(q).await,
            Backend::Replay(r) => r.prometheus(q),
        };
        if let Some(m) = &self.metrics {
            m.observe(
                started.elapsed().as_secs_f64(),
                outcome.as_ref().err().map(Error::kind),
            );
        }
        if let Some(rec) = &self.recorder {
            if let Err(e) = rec.prometheus(q, &outcome) {
                tracing::warn!(error = %e, "could not write to the snapshot file");
            }
        }
        outcome
    }

    /// Make a web provider call.
    pub async fn web(&self, r: &WebRequest) -> Result<WebResponse, Error> {
        let outcome = match &*self.backend {
            Backend::Live {
                web, web_insecure, ..
            } => match web_client(if r.insecure { web_insecure } else { web }, r.insecure) {
                Ok(client) => web::call(&client, r).await,
                Err(e) => Err(e),
            },
            Backend::Replay(rep) => rep.web(r),
        };
        if let Some(rec) = &self.recorder {
            if let Err(e) = rec.web(r, &outcome) {
                tracing::warn!(error = %e, "could not write to the snapshot file");
            }
        }
        outcome
    }
}
