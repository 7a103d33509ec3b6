//! The Argo Rollouts `AnalysisTemplate` model: the fields canary-engine runs.
//!
//! Field names and defaults follow `argoproj.io/v1alpha1` exactly, so the same file works under
//! Argo in the cluster and under `canary analyze` outside it. Fields that only make sense inside
//! a cluster (`measurementRetention`, `ttlStrategy`) are accepted and ignored; providers other
//! than `prometheus` and `web` are rejected with a message saying so.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// Namespaced `AnalysisTemplate`.
    AnalysisTemplate,
    /// Cluster-wide `ClusterAnalysisTemplate`.
    ClusterAnalysisTemplate,
}

/// One argument a template declares.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Name used as `{{args.NAME}}`.
    pub name: String,
    /// Default value, if the template gives one.
    #[serde(default)]
    pub value: Option<String>,
    /// Where Argo would read the value inside the cluster (a Secret or a Rollout field).
    #[serde(default)]
    pub value_from: Option<ValueFrom>,
}

/// `valueFrom` of an argument: only resolvable inside a cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Kubernetes Secret.
    #[serde(default)]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the Rollout (`metadata.labels['app']`).
    #[serde(default)]
    pub field_ref: Option<FieldRef>,
}

/// Reference to one key of a Secret.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// Reference to a field of the Rollout.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// JSON path of the field.
    pub field_path: String,
}

/// A `dryRun` rule: metrics whose name matches run but do not decide the run's phase.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Regular expression matched (unanchored, as Argo does) against metric names.
    pub metric_name: String,
}

/// One metric of a template, after its args have been resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Unique name within the run.
    pub name: String,
    /// Time between measurements (Go duration syntax: `30s`, `5m`, `1h30m`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Time to wait before the first measurement.
    #[serde(default)]
    pub initial_delay: Option<String>,
    /// Number of measurements to take; 0/absent means 1 without `interval`, unbounded with it.
    #[serde(default, deserialize_with = "int_or_string")]
    pub count: Option<i64>,
    /// Expression that must be true for a measurement to be Successful.
    #[serde(default)]
    pub success_condition: String,
    /// Expression that, when true, makes a measurement Failed.
    #[serde(default)]
    pub failure_condition: String,
    /// Failed measurements tolerated before the metric fails (default 0; -1 disables).
    #[serde(default, deserialize_with = "int_or_string")]
    pub failure_limit: Option<i64>,
    /// Inconclusive measurements tolerated (default 0).
    #[serde(default, deserialize_with = "int_or_string")]
    pub inconclusive_limit: Option<i64>,
    /// Consecutive Error measurements tolerated (default 4).
    #[serde(default, deserialize_with = "int_or_string")]
    pub consecutive_error_limit: Option<i64>,
    /// Consecutive Successful measurements that end the metric early as Successful.
    #[serde(default, deserialize_with = "int_or_string")]
    pub consecutive_success_limit: Option<i64>,
    /// Where the measurement comes from.
    pub provider: Provider,
}

/// The metric provider. Exactly one must be set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Prometheus HTTP API query.
    #[serde(default)]
    pub prometheus: Option<PrometheusMetric>,
    /// HTTP call whose JSON answer is the result.
    #[serde(default)]
    pub web: Option<WebMetric>,
    /// Every other provider Argo knows, kept only to name it in an error.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// `provider.prometheus`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Prometheus base URL; the engine's `--prometheus` when empty.
    #[serde(default)]
    pub address: String,
    /// The PromQL query.
    #[serde(default)]
    pub query: String,
    /// Query timeout in seconds (default 30).
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Skip TLS certificate verification.
    #[serde(default)]
    pub insecure: bool,
    /// Extra HTTP headers (e.g. `X-Scope-OrgID`).
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Authentication; only basic auth works outside the cluster.
    #[serde(default)]
    pub authentication: Authentication,
    /// Run a range query instead of an instant query.
    #[serde(default)]
    pub range_query: Option<RangeQuery>,
}

/// `rangeQuery`: `start` and `end` are expressions such as `now() - duration("10m")`.
#[derive(Debug, Clone, Deserialize)]
pub struct RangeQuery {
    /// Start time expression.
    pub start: String,
    /// End time expression.
    pub end: String,
    /// Resolution (Go duration).
    pub step: String,
}

/// An HTTP header.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
}

/// `authentication` block of a provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// HTTP basic auth.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// AWS SigV4 (Amazon Managed Prometheus): not supported outside the cluster.
    #[serde(default)]
    pub sigv4: Option<Value>,
    /// OAuth2 client credentials: not supported outside the cluster.
    #[serde(default)]
    pub oauth2: Option<Value>,
}

/// HTTP basic auth credentials.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BasicAuth {
    /// Basic-auth user (after arg substitution).
    #[serde(default)]
    pub username: String,
    /// Basic-auth password (after arg substitution; never logged).
    #[serde(default)]
    pub password: String,
}

/// `provider.web`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// `GET` (default), `POST` or `PUT`.
    #[serde(default)]
    pub method: Option<String>,
    /// URL to call.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Raw request body (POST/PUT only).
    #[serde(default)]
    pub body: String,
    /// JSON request body (POST/PUT only); sets `Content-Type: application/json`.
    #[serde(default)]
    pub json_body: Option<Value>,
    /// Request timeout in seconds (default 10).
    #[serde(default)]
    pub timeout_seconds: i64,
    /// Kubernetes-style JSONPath selecting the result (default `{$}`).
    #[serde(default)]
    pub json_path: String,
    /// Skip TLS certificate verification.
    #[serde(default)]
    pub insecure: bool,
    /// Authentication (OAuth2 is not supported outside the cluster).
    #[serde(default)]
    pub authentication: Authentication,
}

impl Metric {
    /// Argo's effective count: `count`, or 1 when neither count nor interval is set, or
    /// unbounded (`None`) with an interval and no count.
    pub fn effective_count(&self) -> Option<i64> {
        match self.count {
            None | Some(0) if self.interval.is_none() => Some(1),
            None | Some(0) => None,
            Some(n) => Some(n),
        }
    }

    /// `failureLimit`, default 0.
    pub fn failure_limit(&self) -> i64 {
        self.failure_limit.unwrap_or(0)
    }

    /// `inconclusiveLimit`, default 0.
    pub fn inconclusive_limit(&self) -> i64 {
        self.inconclusive_limit.unwrap_or(0)
    }

    /// `consecutiveErrorLimit`, default 4.
    pub fn consecutive_error_limit(&self) -> i64 {
        self.consecutive_error_limit.unwrap_or(4)
    }

    /// `consecutiveSuccessLimit`, default 0 (disabled).
    pub fn consecutive_success_limit(&self) -> i64 {
        self.consecutive_success_limit.unwrap_or(0)
    }

    /// `interval` as a duration (validated at load).
    pub fn interval(&self) -> Option<Duration> {
        self.interval
            .as_deref()
            .and_then(|s| parse_duration(s).ok())
    }

    /// `initialDelay` as a duration (validated at load).
    pub fn initial_delay(&self) -> Option<Duration> {
        self.initial_delay
            .as_deref()
            .and_then(|s| parse_duration(s).ok())
    }
}

/// Parse a Go-style duration (`30s`, `5m`, `1h30m`, `500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t).map_err(|e| format!("{t:?} is not a duration ({e})"))
}

/// Kubernetes `IntOrString`: an integer, or a string holding one (after arg substitution).
fn int_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is not an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an integer"))),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected an integer, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(json: &str) -> Metric {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn effective_count_follows_argo() {
        let m = metric(r#"{"name":"a","provider":{}}"#);
        assert_eq!(m.effective_count(), Some(1));
        let m = metric(r#"{"name":"a","interval":"1m","provider":{}}"#);
        assert_eq!(m.effective_count(), None);
        let m = metric(r#"{"name":"a","interval":"1m","count":"5","provider":{}}"#);
        assert_eq!(m.effective_count(), Some(5));
        assert_eq!(m.consecutive_error_limit(), 4);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
    }
}
