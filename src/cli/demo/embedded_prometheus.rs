//! The demo's embedded default for Prometheus: a minimal in-process stand-in answering the
//! instant and range queries of the shipped Judge spec from a model of Istio traffic, so the
//! demo judges with the statistical Judge and no Prometheus.
//!
//! The model is a service taking [`RATE`] requests a second with log-normal latencies (median
//! 40 ms) in Istio-like buckets and a 0.3 % error ratio, split between the stable and the
//! current release's canary by the weight the promotion set on the embedded VirtualService
//! (read from [`EmbeddedKube`]'s weight log, so traffic follows the promotion). Counters are the
//! exact integrals of those rates, floored: the same numbers on every run, no noise, so a
//! healthy release always passes and the demo always ends the same way. It answers the
//! spec's query shapes only (`..._total` and `..._bucket` selectors by pod-template hash,
//! `sum(increase(...[W]))` for the SLO windows); anything else is an empty result. It is not
//! evidence that anything works against Prometheus: the tests use a real one for that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use statrs::distribution::{ContinuousCDF, Normal};

use super::embedded_kube::EmbeddedKube;

/// Requests per second to the whole service.
pub const RATE: f64 = 30_000.0;
/// The stable's error ratio.
pub const ERROR_RATIO: f64 = 0.003;
/// The error ratio of the whole service while it burns its budget.
const BURN_ERROR_RATIO: f64 = 0.02;
/// Upper bounds of the latency buckets (ms).
const BOUNDS: [f64; 10] = [
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    f64::INFINITY,
];
/// How far back the service's history goes (the SLO's longest window is 6 h).
const HISTORY_SECS: f64 = 7.0 * 3600.0;

/// One release's canary.
#[derive(Debug, Clone)]
pub struct Release {
    /// Its pod-template hash.
    pub hash: String,
    /// When its promotion started (unix seconds).
    pub from: f64,
    /// Its error ratio as a multiple of the stable's.
    pub errors: f64,
    /// The whole service (both variants) has been erroring at 2 % for the hour before this
    /// release, and still is: the SLO's fast-burn rule trips.
    pub burning: bool,
}

#[derive(Debug)]
struct Model {
    stable: String,
    origin: f64,
    releases: Vec<Release>,
}

#[derive(Clone)]
struct Shared {
    model: Arc<Mutex<Model>>,
    kube: EmbeddedKube,
}

/// The running stand-in.
pub struct EmbeddedPrometheus {
    /// Its base URL.
    pub url: String,
    model: Arc<Mutex<Model>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Quantity {
    Requests,
    Errors,
    /// Requests no slower than this bound (cumulative `le` bucket).
    AtMost(f64),
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

fn latency_cdf(le: f64) -> f64 {
    if le.is_infinite() {
        return 1.0;
    }
    Normal::new(0.0, 0.6).map_or(0.0, |n| n.cdf((le / 40.0).ln()))
}

impl Model {
    fn release_at(&self, t: f64) -> Option<&Release> {
        self.releases.iter().rev().find(|r| r.from <= t)
    }

    fn burn_from(&self) -> Option<f64> {
        self.releases
            .iter()
            .filter(|r| r.burning)
            .map(|r| r.from - 3600.0)
            .reduce(f64::min)
    }

    /// The rate of `q` for the variant with pod-template `hash` at time `t`.
    fn rate(&self, weights: &[(f64, u32)], hash: &str, q: Quantity, t: f64) -> f64 {
        let release = self.release_at(t);
        let weight = match release {
            None => 0.0,
            Some(_) => weights
                .iter()
                .rev()
                .find(|(at, _)| *at <= t)
                .map_or(0.0, |(_, w)| f64::from(*w) / 100.0),
        };
        let (share, canary) = if hash == self.stable {
            (1.0 - weight, None)
        } else if let Some(r) = release.filter(|r| r.hash == hash) {
            (weight, Some(r))
        } else {
            return 0.0;
        };
        let base = if self.burn_from().is_some_and(|b| t >= b) {
            BURN_ERROR_RATIO
        } else {
            ERROR_RATIO
        };
        let per_request = match q {
            Quantity::Requests => 1.0,
            Quantity::Errors => (base * canary.map_or(1.0, |r| r.errors)).min(1.0),
            Quantity::AtMost(le) => latency_cdf(le),
        };
        RATE * share * per_request
    }

    /// The counter of `q` for `hash` at `t`: the exact integral of its rate, floored.
    fn counter(&self, weights: &[(f64, u32)], hash: &str, q: Quantity, t: f64) -> f64 {
        let mut cuts: Vec<f64> = weights.iter().map(|w| w.0).collect();
        cuts.extend(self.releases.iter().map(|r| r.from));
        cuts.extend(self.burn_from());
        cuts.retain(|c| *c > self.origin && *c < t);
        cuts.push(self.origin);
        cuts.push(t);
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let total: f64 = cuts
            .windows(2)
            .map(|w| self.rate(weights, hash, q, (w[0] + w[1]) / 2.0) * (w[1] - w[0]))
            .sum();
        total.max(0.0).floor()
    }
}

/// A label's value in a selector: `name="value"`.
fn label<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    let at = query.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &query[at..];
    Some(&rest[..rest.find('"')?])
}

/// The values of a regex matcher listing alternatives, `name=~"a|b"` (a query folded over both
/// variants).
fn alternatives(query: &str, name: &str) -> Option<Vec<String>> {
    let at = query.find(&format!("{name}=~\""))? + name.len() + 3;
    let rest = &query[at..];
    let list = &rest[..rest.find('"')?];
    Some(list.split('|').map(|h| h.replace('\\', "")).collect())
}

/// The tag of one part of a folded SLO query: `label_replace(…, "canary_engine_part", "TAG", …)`.
fn tag(part: &str) -> Option<&str> {
    let key = "\"canary_engine_part\", \"";
    let rest = &part[part.find(key)? + key.len()..];
    Some(&rest[..rest.find('"')?])
}

/// The range of `increase(...[W])`, in seconds.
fn increase_window(query: &str) -> Option<f64> {
    let at = query.find("increase(")?;
    let open = query[at..].find('[')? + at + 1;
    let close = query[open..].find(']')? + open;
    humantime::parse_duration(&query[open..close])
        .ok()
        .map(|d| d.as_secs_f64())
}

fn quantities(query: &str) -> Vec<(Quantity, Value)> {
    if query.contains("_bucket") {
        BOUNDS
            .iter()
            .map(|&b| {
                let le = if b.is_infinite() {
                    "+Inf".to_string()
                } else {
                    b.to_string()
                };
                (Quantity::AtMost(b), json!({"le": le}))
            })
            .collect()
    } else if query.contains("response_code=~\"5..\"") {
        vec![(Quantity::Errors, json!({"response_code": "503"}))]
    } else {
        vec![(Quantity::Requests, json!({}))]
    }
}

fn success(result_type: &str, result: Vec<Value>) -> Response {
    Json(json!({"status": "success", "data": {"resultType": result_type, "result": result}}))
        .into_response()
}

/// Query parameter `key` as a number of seconds (`time`, `start` and `end` as unix seconds,
/// `step` as a length); `None` when absent or not plain seconds.
fn float_param(params: &HashMap<String, String>, key: &str) -> Option<f64> {
    params.get(key).and_then(|v| v.parse().ok())
}

fn answer(shared: &Shared, params: &HashMap<String, String>, range: bool) -> Response {
    let query = params.get("query").map(String::as_str).unwrap_or("");
    let model = shared.model.lock().unwrap_or_else(|p| p.into_inner());
    let weights = shared.kube.weights();
    if label(query, "destination_service_name") != Some("checkout") {
        return success(if range { "matrix" } else { "vector" }, Vec::new());
    }
    let hashes: Vec<String> = match label(query, "rollouts_pod_template_hash") {
        Some(h) => vec![h.to_string()],
        None => alternatives(query, "rollouts_pod_template_hash").unwrap_or_else(|| {
            std::iter::once(model.stable.clone())
                .chain(model.releases.iter().map(|r| r.hash.clone()))
                .collect()
        }),
    };
    if !range {
        // `sum(increase(...[W]))` at `time`: every variant's increase over the window; an SLO's
        // windows folded into one query are `label_replace(<part>, "canary_engine_part",
        // "<tag>", "", "") or …`, each part answered on its own with its tag.
        let t = float_param(params, "time").unwrap_or_else(now);
        let mut result = Vec::new();
        for part in query.split(" or ") {
            let Some(w) = increase_window(part) else {
                continue;
            };
            let total: f64 = quantities(part)
                .iter()
                .flat_map(|(q, _)| {
                    hashes.iter().map(|h| {
                        model.counter(&weights, h, *q, t) - model.counter(&weights, h, *q, t - w)
                    })
                })
                .sum();
            let metric = match tag(part) {
                Some(tag) => json!({"canary_engine_part": tag}),
                None => json!({}),
            };
            result.push(json!({"metric": metric, "value": [t, total.to_string()]}));
        }
        return success("vector", result);
    }
    let (Some(start), Some(end), Some(step)) = (
        float_param(params, "start"),
        float_param(params, "end"),
        float_param(params, "step").filter(|s| *s > 0.0),
    ) else {
        return success("matrix", Vec::new());
    };
    let mut series = Vec::new();
    for h in &hashes {
        for (q, labels) in quantities(query) {
            let mut values = Vec::new();
            let mut t = start;
            while t <= end {
                values.push(json!([t, model.counter(&weights, h, q, t).to_string()]));
                t += step;
            }
            let mut metric = labels.clone();
            metric["pod"] = json!(format!("checkout-{h}"));
            metric["rollouts_pod_template_hash"] = json!(h);
            series.push(json!({"metric": metric, "values": values}));
        }
    }
    success("matrix", series)
}

async fn query_get(State(s): State<Shared>, Query(p): Query<HashMap<String, String>>) -> Response {
    answer(&s, &p, false)
}

async fn query_post(State(s): State<Shared>, Form(p): Form<HashMap<String, String>>) -> Response {
    answer(&s, &p, false)
}

async fn range_get(State(s): State<Shared>, Query(p): Query<HashMap<String, String>>) -> Response {
    answer(&s, &p, true)
}

async fn range_post(State(s): State<Shared>, Form(p): Form<HashMap<String, String>>) -> Response {
    answer(&s, &p, true)
}

impl EmbeddedPrometheus {
    /// Start on a free loopback port, inside the current tokio runtime; `stable` is the
    /// stable's pod-template hash, and traffic follows `kube`'s VirtualService weights.
    pub async fn start(stable: &str, kube: EmbeddedKube) -> std::io::Result<EmbeddedPrometheus> {
        let model = Arc::new(Mutex::new(Model {
            stable: stable.to_string(),
            origin: now() - HISTORY_SECS,
            releases: Vec::new(),
        }));
        let app = Router::new()
            .route("/api/v1/query", get(query_get).post(query_post))
            .route("/api/v1/query_range", get(range_get).post(range_post))
            .with_state(Shared {
                model: model.clone(),
                kube,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(EmbeddedPrometheus {
            url: format!("http://{addr}"),
            model,
        })
    }

    /// A release's promotion starts now: its canary `hash` takes the traffic the
    /// VirtualService gives the canary from here on.
    pub fn release(&self, hash: &str, errors: f64, burning: bool) {
        self.model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .releases
            .push(Release {
                hash: hash.to_string(),
                from: now(),
                errors,
                burning,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traffic_follows_the_weight_and_counters_never_fall() {
        let m = Model {
            stable: "s".into(),
            origin: 0.0,
            releases: vec![Release {
                hash: "c".into(),
                from: 100.0,
                errors: 2.0,
                burning: false,
            }],
        };
        let weights = [(100.0, 0u32), (110.0, 10), (120.0, 50)];
        let at = |h: &str, q, t| m.counter(&weights, h, q, t);
        assert_eq!(at("c", Quantity::Requests, 110.0), 0.0);
        assert_eq!(at("c", Quantity::Requests, 111.0), RATE * 0.1);
        assert_eq!(at("s", Quantity::Requests, 111.0), RATE * 110.9);
        let canary_errors = at("c", Quantity::Errors, 120.0);
        assert_eq!(
            canary_errors,
            (RATE * 0.1 * 10.0 * ERROR_RATIO * 2.0).floor()
        );
        assert!(at("c", Quantity::Requests, 121.0) > at("c", Quantity::Requests, 120.0));
        assert!(at("c", Quantity::AtMost(500.0), 130.0) < at("c", Quantity::Requests, 130.0));
        assert_eq!(at("other", Quantity::Requests, 130.0), 0.0);
    }

    #[test]
    fn the_spec_queries_are_understood() {
        let q = r#"sum(increase(istio_requests_total{destination_service_name="checkout", response_code=~"5.."}[1h]))"#;
        assert_eq!(label(q, "destination_service_name"), Some("checkout"));
        assert_eq!(increase_window(q), Some(3600.0));
        assert!(matches!(quantities(q)[0].0, Quantity::Errors));
        let b = r#"sum by (le, pod) (istio_request_duration_milliseconds_bucket{rollouts_pod_template_hash="v2"})"#;
        assert_eq!(label(b, "rollouts_pod_template_hash"), Some("v2"));
        assert_eq!(quantities(b).len(), BOUNDS.len());
        let folded = r#"sum by (le, pod, rollouts_pod_template_hash) (x_bucket{rollouts_pod_template_hash=~"v2|v1"})"#;
        assert_eq!(label(folded, "rollouts_pod_template_hash"), None);
        assert_eq!(
            alternatives(folded, "rollouts_pod_template_hash"),
            Some(vec!["v2".to_string(), "v1".to_string()])
        );
        let slo = r#"label_replace(sum(increase(r{response_code=~"5.."}[1h])), "canary_engine_part", "q0", "", "") or label_replace(sum(increase(r[5m])), "canary_engine_part", "q1", "", "")"#;
        let parts: Vec<_> = slo.split(" or ").collect();
        assert_eq!(tag(parts[0]), Some("q0"));
        assert_eq!(tag(parts[1]), Some("q1"));
        assert_eq!(increase_window(parts[1]), Some(300.0));
    }
}
