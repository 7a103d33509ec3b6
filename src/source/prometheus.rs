//! The Prometheus HTTP API (also Thanos, Mimir, Cortex), through `prometheus-http-query`.
//!
//! The crate builds the requests; we read the raw answer ourselves so that every failure keeps
//! its type — connection refused, timeout, an HTTP status from a proxy, a Prometheus
//! `errorType`, an unreadable body — and so that Prometheus' warnings are not lost.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_http_query::response::Data;
use prometheus_http_query::Client;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;

use super::error::{snippet, Error};
use super::value::{NativeHistogram, QueryValue, Series};

/// How to reach Prometheus by default (flags of `canary analyze`/`serve`).
#[derive(Debug, Clone, Default)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub url: Option<String>,
    /// Bearer token sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// Basic auth (user, password).
    pub basic_auth: Option<(String, String)>,
    /// Extra headers on every query (the tenant header goes here).
    pub headers: Vec<(String, String)>,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// Extra CA certificate (PEM) to trust.
    pub ca_pem: Option<Vec<u8>>,
    /// Queries in flight at once (0: unlimited); more wait their turn, within their timeout.
    pub max_in_flight: usize,
    /// The largest answer read (bytes); `None`: [`super::DEFAULT_MAX_ANSWER_BYTES`]. A larger
    /// one is a malformed-answer error.
    pub max_answer_bytes: Option<usize>,
}

/// A range query's window.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    /// First evaluation time.
    pub start: DateTime<Utc>,
    /// Last evaluation time.
    pub end: DateTime<Utc>,
    /// Resolution.
    pub step: Duration,
}

/// One query to run.
#[derive(Debug, Clone)]
pub struct PromQuery {
    /// PromQL.
    pub query: String,
    /// Range query window; `None` for an instant query.
    pub range: Option<Range>,
    /// Evaluation time of an instant query; `None` means now.
    pub time: Option<DateTime<Utc>>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Address overriding the default (the metric's `address`).
    pub address: Option<String>,
    /// Headers in addition to the default ones.
    pub headers: Vec<(String, String)>,
    /// Basic auth overriding the default.
    pub basic_auth: Option<(String, String)>,
    /// Skip TLS verification for this query.
    pub insecure: bool,
}

impl PromQuery {
    /// An instant query with Argo's default 30 s timeout.
    pub fn instant(query: impl Into<String>) -> Self {
        PromQuery {
            query: query.into(),
            range: None,
            time: None,
            timeout: Duration::from_secs(30),
            address: None,
            headers: Vec::new(),
            basic_auth: None,
            insecure: false,
        }
    }
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The result.
    pub value: QueryValue,
    /// Warnings Prometheus attached.
    pub warnings: Vec<String>,
}

/// A Prometheus client with the engine's defaults.
///
/// The HTTP clients are built on first use: building one loads the system's trust roots,
/// which costs milliseconds a replayed or failed run should not pay.
#[derive(Debug)]
pub struct Prometheus {
    config: PrometheusConfig,
    verified: OnceLock<reqwest::Client>,
    unverified: OnceLock<reqwest::Client>,
    in_flight: Option<tokio::sync::Semaphore>,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

impl Prometheus {
    /// Check the configuration; the HTTP clients are built when first needed.
    pub fn new(config: PrometheusConfig) -> Result<Self, Error> {
        if let Some(pem) = &config.ca_pem {
            reqwest::Certificate::from_pem(pem)
                .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
        }
        Ok(Prometheus {
            in_flight: (config.max_in_flight > 0)
                .then(|| tokio::sync::Semaphore::new(config.max_in_flight)),
            config,
            verified: OnceLock::new(),
            unverified: OnceLock::new(),
        })
    }

    fn client(&self, insecure: bool) -> Result<reqwest::Client, Error> {
        let insecure = insecure || self.config.insecure;
        let cell = if insecure {
            &self.unverified
        } else {
            &self.verified
        };
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        // A redirect is never followed: it could carry the credentials (or the query) to
        // another host. Prometheus answering one is an error, like any other non-2xx.
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("canary-engine/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &self.config.ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| Error::Config(format!("CA certificate: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        if insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        let c = b
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(cell.get_or_init(|| c).clone())
    }

    /// The default address, if configured.
    pub fn default_url(&self) -> Option<&str> {
        self.config.url.as_deref()
    }

    /// Run one query.
    #[tracing::instrument(name = "prometheus.query", skip_all, fields(query = %q.query))]
    pub async fn query(&self, q: &PromQuery) -> Result<Answer, Error> {
        let address = q
            .address
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(self.config.url.as_deref())
            .ok_or_else(|| {
                Error::Config(
                    "prometheus address is not configured: set --prometheus (CANARY_PROMETHEUS_URL) \
                     or the metric's provider.prometheus.address"
                        .into(),
                )
            })?;
        let http = self.client(q.insecure)?;
        let client = Client::from(http, address)
            .map_err(|e| Error::Config(format!("prometheus address {address:?}: {e}")))?;
        let headers = self.headers(q)?;
        let timeout_ms = q.timeout.as_millis() as i64;
        let request = async {
            let _permit = match &self.in_flight {
                Some(s) => Some(
                    s.acquire()
                        .await
                        .map_err(|_| Error::Config("the query limiter was closed".into()))?,
                ),
                None => None,
            };
            let sent = match &q.range {
                None => {
                    let mut b = client.query(&q.query).timeout(timeout_ms).headers(headers);
                    if let Some(t) = q.time {
                        b = b.at(t.timestamp());
                    }
                    b.post_raw().await
                }
                Some(r) => {
                    client
                        .query_range(
                            &q.query,
                            r.start.timestamp(),
                            r.end.timestamp(),
                            r.step.as_secs_f64(),
                        )
                        .timeout(timeout_ms)
                        .headers(headers)
                        .post_raw()
                        .await
                }
            };
            let response = sent.map_err(|e| transport_error(address, &e))?;
            let status = response.status().as_u16();
            let is_json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let limit = self
                .config
                .max_answer_bytes
                .unwrap_or(super::DEFAULT_MAX_ANSWER_BYTES);
            let body = super::body::read_bounded(response, limit)
                .await
                .map_err(|e| match e {
                    super::body::ReadError::TooLarge { .. } => Error::Malformed {
                        url: address.to_string(),
                        message: e.to_string(),
                    },
                    super::body::ReadError::Transport(_) => Error::Unreachable {
                        url: address.to_string(),
                        message: e.to_string(),
                    },
                })?;
            Ok::<_, Error>((status, is_json, body))
        };
        let (status, is_json, body) =
            tokio::time::timeout(q.timeout, request)
                .await
                .map_err(|_| Error::Timeout {
                    url: address.to_string(),
                    timeout_ms: q.timeout.as_millis() as u64,
                })??;
        decode(address, status, is_json, &body)
    }

    fn headers(&self, q: &PromQuery) -> Result<HeaderMap, Error> {
        let mut map = HeaderMap::new();
        let mut put = |k: &str, v: &str| -> Result<(), Error> {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name {k:?}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| Error::Config(format!("invalid value for header {k:?}")))?;
            map.insert(name, value);
            Ok(())
        };
        for (k, v) in self.config.headers.iter().chain(&q.headers) {
            put(k, v)?;
        }
        if let Some((user, pass)) = q.basic_auth.as_ref().or(self.config.basic_auth.as_ref()) {
            use base64_engine::encode;
            put(
                AUTHORIZATION.as_str(),
                &format!("Basic {}", encode(&format!("{user}:{pass}"))),
            )?;
        } else if let Some(token) = &self.config.bearer_token {
            put(AUTHORIZATION.as_str(), &format!("Bearer {}", token.trim()))?;
        }
        Ok(map)
    }
}

/// Trait-free extension so both builders take a whole header map.
trait WithHeaders {
    fn headers(self, map: HeaderMap) -> Self;
}

impl WithHeaders for prometheus_http_query::InstantQueryBuilder {
    fn headers(mut self, map: HeaderMap) -> Self {
        for (k, v) in map.iter() {
            self = self.header(k.clone(), v.clone());
        }
        self
    }
}

impl WithHeaders for prometheus_http_query::RangeQueryBuilder {
    fn headers(mut self, map: HeaderMap) -> Self {
        for (k, v) in map.iter() {
            self = self.header(k.clone(), v.clone());
        }
        self
    }
}

fn transport_error(address: &str, e: &prometheus_http_query::Error) -> Error {
    let inner = match e {
        prometheus_http_query::Error::Client(c) => c.inner(),
        _ => None,
    };
    match inner {
        Some(r) if r.is_timeout() => Error::Timeout {
            url: address.to_string(),
            timeout_ms: 0,
        },
        Some(r) => Error::Unreachable {
            url: address.to_string(),
            message: error_chain(r),
        },
        None => Error::Unreachable {
            url: address.to_string(),
            message: e.to_string(),
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// Turn an HTTP answer into a result or a typed error.
/// A vector or matrix result with native histogram samples (`histogram`, `histograms`),
/// which the HTTP API client's types do not read.
fn has_native_histograms(data: &serde_json::Value) -> bool {
    data.get("result")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|s| s.get("histogram").is_some() || s.get("histograms").is_some())
        })
}

#[derive(Deserialize)]
struct NativeData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<NativeResult>,
}

#[derive(Deserialize)]
struct NativeResult {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    histogram: Option<(f64, NativeHistogram)>,
    #[serde(default)]
    histograms: Vec<(f64, NativeHistogram)>,
}

fn native_value(data: serde_json::Value) -> Result<QueryValue, serde_json::Error> {
    let d: NativeData = serde_json::from_value(data)?;
    let float = |(t, v): (f64, String)| (t, super::value::parse_float(&v).unwrap_or(f64::NAN));
    let series: Vec<Series> = d
        .result
        .into_iter()
        .map(|r| Series {
            labels: r.metric,
            samples: r.value.into_iter().chain(r.values).map(float).collect(),
            histograms: r.histogram.into_iter().chain(r.histograms).collect(),
        })
        .collect();
    Ok(if d.result_type == "vector" {
        QueryValue::Vector(series)
    } else {
        QueryValue::Matrix(series)
    })
}

pub fn decode(address: &str, status: u16, is_json: bool, body: &[u8]) -> Result<Answer, Error> {
    let text = String::from_utf8_lossy(body);
    if !is_json {
        if (200..300).contains(&status) {
            return Err(Error::Malformed {
                url: address.to_string(),
                message: format!("expected JSON, got {:?}", snippet(&text, 120)),
            });
        }
        return Err(Error::HttpStatus {
            url: address.to_string(),
            status,
            body: snippet(&text, 200),
        });
    }
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) if (200..300).contains(&status) => {
            return Err(Error::Malformed {
                url: address.to_string(),
                message: e.to_string(),
            })
        }
        Err(_) => {
            return Err(Error::HttpStatus {
                url: address.to_string(),
                status,
                body: snippet(&text, 200),
            })
        }
    };
    if envelope.status != "success" {
        return Err(Error::Prometheus {
            error_type: envelope.error_type.unwrap_or_else(|| "unknown".into()),
            message: envelope.error.unwrap_or_default(),
            status,
        });
    }
    let data = envelope.data.ok_or_else(|| Error::Malformed {
        url: address.to_string(),
        message: "success without data".into(),
    })?;
    let malformed = |e: serde_json::Error| Error::Malformed {
        url: address.to_string(),
        message: e.to_string(),
    };
    if has_native_histograms(&data) {
        return Ok(Answer {
            value: native_value(data).map_err(malformed)?,
            warnings: envelope.warnings,
        });
    }
    let data: Data = serde_json::from_value(data).map_err(malformed)?;
    let value = match data {
        Data::Scalar(s) => QueryValue::Scalar {
            time: s.timestamp(),
            value: s.value(),
        },
        Data::Vector(v) => QueryValue::Vector(
            v.into_iter()
                .map(|iv| {
                    let (labels, sample) = iv.into_inner();
                    Series::of(
                        labels.into_iter().collect(),
                        vec![(sample.timestamp(), sample.value())],
                    )
                })
                .collect(),
        ),
        Data::Matrix(m) => QueryValue::Matrix(
            m.into_iter()
                .map(|rv| {
                    let (labels, samples) = rv.into_inner();
                    Series::of(
                        labels.into_iter().collect(),
                        samples.iter().map(|s| (s.timestamp(), s.value())).collect(),
                    )
                })
                .collect(),
        ),
    };
    Ok(Answer {
        value,
        warnings: envelope.warnings,
    })
}

mod base64_engine {
    /// Standard base64 for the basic-auth header.
    pub fn encode(s: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_vectors_with_nan_and_inf() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1700000000,"NaN"]},
            {"metric":{},"value":[1700000000,"+Inf"]},
            {"metric":{},"value":[1700000000,"0.5"]}]},"warnings":["w"]}"#;
        let a = decode("http://p", 200, true, body).unwrap();
        assert_eq!(a.value.display(), "[NaN,+Inf,0.5]");
        assert_eq!(a.warnings, vec!["w".to_string()]);
    }

    #[test]
    fn typed_errors() {
        let e = decode(
            "http://p",
            400,
            true,
            br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .unwrap_err();
        assert!(
            matches!(e, Error::Prometheus { ref error_type, status: 400, .. } if error_type == "bad_data")
        );
        let e = decode("http://p", 502, false, b"<html>Bad Gateway</html>").unwrap_err();
        assert!(matches!(e, Error::HttpStatus { status: 502, .. }));
        let e = decode("http://p", 200, true, b"{not json").unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }));
        let e = decode("http://p", 200, false, b"garbage").unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }));
    }
}
