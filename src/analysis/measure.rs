//! Taking one measurement: ask the provider, then judge the result with the conditions.
//!
//! Follows Argo's providers: a Prometheus scalar is a number and a vector or matrix a list of
//! numbers (`metricproviders/prometheus`); a web answer is decoded as JSON and the `jsonPath`'s
//! first match is the result, or the raw body when it is not JSON, and a non-2xx status is an
//! Error (`metricproviders/webmetric`). Any provider failure is an Error measurement.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::result::Measurement;
use super::Phase;
use crate::condition::{self, JsonPath};
use crate::source::{history, PromQuery, Range, Sources, WebRequest};
use crate::template::argo::{parse_duration, Metric, PrometheusMetric, WebMetric};
use crate::template::{JudgeProvider, ResolvedMetric};

/// Take one measurement of `metric`, now — or, in a backtest, as it would have been taken
/// at `at` (queries evaluated at that time; `now()` in a `rangeQuery` is `at`). `since` is
/// the analysis's start for Judge metrics.
pub async fn measure(
    resolved: &ResolvedMetric,
    sources: &Sources,
    at: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
) -> Measurement {
    let stamp = || at.unwrap_or_else(Utc::now).to_rfc3339();
    let started_at = stamp();
    let metric = &resolved.metric;
    let outcome = if let Some(p) = &metric.provider.prometheus {
        prometheus(metric, p, sources, at).await
    } else if let Some(w) = &metric.provider.web {
        match at {
            None => web(metric, w, sources).await,
            Some(_) if sources.is_replay() => web(metric, w, sources).await,
            Some(_) => Err(
                "a web metric cannot be measured in the past: backtest it from a \
                            snapshot recorded with --record, or through a Judge spec"
                    .to_string(),
            ),
        }
    } else if let Some(j) = &resolved.judge {
        judged(metric, j, sources, at, since).await
    } else {
        Err("no supported provider".to_string())
    };
    let finished_at = stamp();
    match outcome {
        Ok(o) => Measurement {
            phase: o.phase,
            value: o.value,
            message: o.message,
            started_at,
            finished_at,
            warnings: o.warnings,
        },
        Err(message) => Measurement {
            phase: Phase::Error,
            value: String::new(),
            message,
            started_at,
            finished_at,
            warnings: Vec::new(),
        },
    }
}

struct Outcome {
    phase: Phase,
    value: String,
    message: String,
    warnings: Vec<String>,
}

fn judge(metric: &Metric, result: &expr::Value, value: String, warnings: Vec<String>) -> Outcome {
    match condition::evaluate(result, &metric.success_condition, &metric.failure_condition) {
        Ok(phase) => Outcome {
            phase,
            value,
            message: String::new(),
            warnings,
        },
        Err(e) => Outcome {
            phase: Phase::Error,
            value,
            message: e.to_string(),
            warnings,
        },
    }
}

/// The query a Prometheus metric runs now, or at `at` (a backtest).
pub fn prometheus_query(
    p: &PrometheusMetric,
    at: Option<DateTime<Utc>>,
) -> Result<PromQuery, String> {
    let mut q = PromQuery::instant(p.query.clone());
    q.time = at;
    q.timeout = Duration::from_secs(p.timeout.unwrap_or(30).max(0) as u64);
    if q.timeout.is_zero() {
        q.timeout = Duration::from_secs(30);
    }
    q.address = Some(p.address.clone()).filter(|a| !a.is_empty());
    q.headers = p
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    q.insecure = p.insecure;
    q.basic_auth = p
        .authentication
        .basic_auth
        .as_ref()
        .filter(|b| !b.username.is_empty())
        .map(|b| (b.username.clone(), b.password.clone()));
    if let Some(r) = &p.range_query {
        let start = condition::eval_time(&r.start)
            .map_err(|e| format!("failed to parse rangeQuery.start as time: {e}"))?;
        let end = condition::eval_time(&r.end)
            .map_err(|e| format!("failed to parse rangeQuery.end as time: {e}"))?;
        let step = parse_duration(&r.step)
            .map_err(|e| format!("failed to parse rangeQuery.step as duration: {e}"))?;
        q.range = Some(match at {
            None => Range { start, end, step },
            // `now()` was the wall clock: move the window to `at`, on the step grid (Argo's
            // own windows start at arbitrary offsets; a backtest's share the grid, so that
            // they can be sliced from one fetch).
            Some(at) => {
                let shift = at - Utc::now();
                Range {
                    start: history::align_down(start + shift, step),
                    end: history::align_down(end + shift, step),
                    step,
                }
            }
        });
    }
    Ok(q)
}

async fn prometheus(
    metric: &Metric,
    p: &PrometheusMetric,
    sources: &Sources,
    at: Option<DateTime<Utc>>,
) -> Result<Outcome, String> {
    let q = prometheus_query(p, at)?;
    let answer = sources.prometheus(&q).await.map_err(|e| e.to_string())?;
    let result = answer.value.argo_result();
    Ok(judge(
        metric,
        &result,
        answer.value.display(),
        answer.warnings,
    ))
}

/// The HTTP call a web metric makes.
pub fn web_request(w: &WebMetric) -> WebRequest {
    let mut headers: Vec<(String, String)> = w
        .headers
        .iter()
        .map(|h| (h.key.clone(), h.value.clone()))
        .collect();
    let body = if !w.body.is_empty() {
        Some(w.body.clone())
    } else if let Some(j) = &w.json_body {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        headers.push(("Content-Type".into(), "application/json".into()));
        Some(j.to_string())
    } else {
        None
    };
    let timeout = if w.timeout_seconds <= 0 {
        10
    } else {
        w.timeout_seconds as u64
    };
    WebRequest {
        method: w.method.clone().unwrap_or_else(|| "GET".into()),
        url: w.url.clone(),
        headers,
        body,
        timeout_ms: timeout * 1000,
        insecure: w.insecure,
    }
}

async fn web(metric: &Metric, w: &WebMetric, sources: &Sources) -> Result<Outcome, String> {
    let path = JsonPath::parse(&w.json_path).map_err(|e| e.to_string())?;
    let response = sources
        .web(&web_request(w))
        .await
        .map_err(|e| e.to_string())?;
    match serde_json::from_str::<serde_json::Value>(&response.body) {
        Err(_) => {
            let result = expr::Value::String(response.body.clone());
            Ok(judge(metric, &result, response.body, Vec::new()))
        }
        Ok(json) => {
            let selected = path.first(&json).map_err(|e| e.to_string())?;
            let result = condition::from_json(selected);
            Ok(judge(metric, &result, selected.to_string(), Vec::new()))
        }
    }
}

/// One judgement of a Judge spec: the result is `{verdict, score, reasons}`; a failed query is
/// an Error measurement, never a verdict.
async fn judged(
    metric: &Metric,
    j: &JudgeProvider,
    sources: &Sources,
    at: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
) -> Result<Outcome, String> {
    let now = at.unwrap_or_else(Utc::now);
    // A step that waited longer than the spec's look-back is judged from the look-back's
    // start (the judgement says so), not refused.
    let lookback = chrono::Duration::from_std(j.spec.lookback).unwrap_or_default();
    let since = since.map(|s| {
        s.max(now - lookback + chrono::Duration::seconds(1))
            .min(now)
    });
    let judgement = crate::judging::run(
        &j.spec,
        &j.args,
        sources,
        now,
        crate::judging::JudgeOptions {
            since,
            ..crate::judging::JudgeOptions::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    // The evidence so far rides along, so a promotion's report shows it grow poll by poll.
    let evidence: Vec<serde_json::Value> = judgement
        .metrics
        .iter()
        .flat_map(|m| {
            m.judgement.evidence.iter().map(move |e| {
                serde_json::json!({"metric": m.name, "test": e.test, "e_value": e.e_value,
                    "threshold": e.threshold, "alpha": e.alpha, "state": e.state})
            })
        })
        .collect();
    let json = serde_json::json!({
        "verdict": judgement.verdict,
        "decision": judgement.decision,
        "score": judgement.score,
        "reasons": judgement.reasons,
        "steps": judgement.anchor.as_ref().map(|a| a.steps),
        "evidence": evidence,
    });
    let result = condition::from_json(&json);
    let mut outcome = judge(metric, &result, json.to_string(), Vec::new());
    if outcome.message.is_empty() {
        outcome.message = judgement.reasons.join("; ");
    }
    Ok(outcome)
}
