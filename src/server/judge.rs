//! `POST /api/v1/judge`: one judgement of a named (or, with `--allow-inline`, inline) Judge
//! spec, kept in the result store before it is answered.
//!
//! The body is checked by hand rather than by a serde struct so that each mistake gets its
//! own error code and a message that names the field (`bad_args`, `bad_since`, …), and so
//! that the checks run in a fixed order: the first problem found is the one reported.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::AppError;
use super::metrics::VerdictLabels;
use super::{store_error, AppState, Inner};
use crate::judging::{self, JudgeOptions};
use crate::store::Record;
use crate::template::judge_spec::{self, JudgeSpec};

/// The `judge` label of verdicts judged by inline specs.
const INLINE_LABEL: &str = "(inline)";

/// The fields a request may carry.
const FIELDS: [&str; 4] = ["judge", "args", "since", "decide_after"];

/// The handler: the body checked, the spec found, then judged within the deadline.
pub(super) async fn judge(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, AppError> {
    let inner = &state.inner;
    let body = json_body(body, inner.settings.max_body_bytes)?;
    refuse_nul(&body)?;
    let named = JudgeRef::of(&body)?;
    // Inline specs are counted under one label: their names are the client's to choose,
    // and a flood of distinct ones must not grow the metrics without bound.
    let inline = matches!(named, JudgeRef::Inline(_));
    let spec = resolve_spec(inner, named)?;
    let request = JudgeRequest::parse(&body)?;
    answer(inner, &spec, request, inline).await
}

/// The body as JSON, or why it is not: 413 over the size limit, 400 otherwise.
fn json_body(
    body: Result<Json<Value>, JsonRejection>,
    max_body_bytes: usize,
) -> Result<Value, AppError> {
    let Json(body) = body.map_err(|e| match e {
        JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body over {max_body_bytes} bytes"),
            )
        }
        JsonRejection::MissingJsonContentType(_) => AppError::bad_request(
            "bad_request",
            "send the body as JSON with Content-Type: application/json",
            None,
        ),
        other => AppError::bad_request("bad_json", other.body_text(), None),
    })?;
    Ok(body)
}

/// A NUL means nothing in a judge name, an arg or a spec, and PostgreSQL text cannot hold
/// one: refused here, where it was a 503 from the result store.
fn refuse_nul(body: &Value) -> Result<(), AppError> {
    let Some(field) = nul_at(body, "") else {
        return Ok(());
    };
    let code = if field.starts_with("args") {
        "bad_args"
    } else {
        "bad_request"
    };
    Err(AppError::bad_request(
        code,
        format!("{field}: contains a NUL character (U+0000)"),
        Some(&field),
    ))
}

/// Where in `v` (`args.service`, `judge.metrics.0.query`) a string or key holds a NUL.
fn nul_at(v: &Value, at: &str) -> Option<String> {
    let join = |key: &str| {
        if at.is_empty() {
            key.to_string()
        } else {
            format!("{at}.{key}")
        }
    };
    match v {
        Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "body".into()
        } else {
            at.into()
        }),
        Value::Object(m) => m.iter().find_map(|(k, x)| {
            if k.contains('\0') {
                Some(join(&k.replace('\0', "\\0")))
            } else {
                nul_at(x, &join(k))
            }
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| nul_at(x, &join(&i.to_string()))),
        _ => None,
    }
}

/// The `judge` field: the name of a loaded spec, or a whole spec inline.
enum JudgeRef<'a> {
    Named(&'a str),
    Inline(&'a Value),
}

impl<'a> JudgeRef<'a> {
    fn of(body: &'a Value) -> Result<JudgeRef<'a>, AppError> {
        match body.get("judge") {
            Some(Value::String(name)) => Ok(JudgeRef::Named(name)),
            Some(inline @ Value::Object(_)) => Ok(JudgeRef::Inline(inline)),
            _ => Err(AppError::bad_request(
                "bad_request",
                "`judge` must be a judge name or an inline spec",
                Some("judge"),
            )),
        }
    }
}

/// The spec to judge with: 404 for a name that is not loaded; 400 for an inline spec when
/// they are off, or when it is not a valid spec (every problem, `field: message`, joined).
fn resolve_spec(inner: &Inner, named: JudgeRef) -> Result<Arc<JudgeSpec>, AppError> {
    match named {
        JudgeRef::Named(name) => inner.specs.get(name).ok_or_else(|| {
            AppError::new(
                StatusCode::NOT_FOUND,
                "unknown_judge",
                format!(
                    "no judge named {name:?} (loaded: {})",
                    inner.specs.names().join(", ")
                ),
            )
        }),
        JudgeRef::Inline(inline) => {
            if !inner.settings.allow_inline {
                return Err(AppError::bad_request(
                    "inline_disabled",
                    "inline judge specs are off; start the server with --allow-inline or name a loaded judge",
                    Some("judge"),
                ));
            }
            let spec = judge_spec::from_json(inline).map_err(|e| {
                let field = match e.first().and_then(|f| f.field.clone()) {
                    Some(f) => format!("judge.{f}"),
                    None => "judge".to_string(),
                };
                let message = e
                    .iter()
                    .map(|e| match &e.field {
                        Some(f) => format!("{f}: {}", e.message),
                        None => e.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                AppError::bad_request("bad_spec", message, Some(&field))
            })?;
            Ok(Arc::new(spec))
        }
    }
}

/// The rest of the request, checked in this order: `args`, no unknown field, `since`,
/// `decide_after`.
struct JudgeRequest {
    /// The spec's args; numbers and booleans as their JSON text.
    args: BTreeMap<String, String>,
    /// The analysis's start (Argo: `{{analysis.startedAt}}`-style args, or promote's step
    /// start); without it, the start is found in the data.
    since: Option<DateTime<Utc>>,
    /// How long an analysis runs before an undecided pass is final (Argo: (count − 1) ×
    /// interval, so its last poll decides).
    decide_after: Option<Duration>,
}

impl JudgeRequest {
    fn parse(body: &Value) -> Result<JudgeRequest, AppError> {
        let args = args(body.get("args"))?;
        if let Some(extra) = body
            .as_object()
            .and_then(|o| o.keys().find(|k| !FIELDS.contains(&k.as_str())))
        {
            return Err(AppError::bad_request(
                "bad_request",
                format!("unknown field {extra:?}"),
                Some(extra),
            ));
        }
        Ok(JudgeRequest {
            args,
            since: since(body.get("since"))?,
            decide_after: decide_after(body.get("decide_after"))?,
        })
    }
}

/// `args`: absent, null or an object of strings, numbers and booleans.
fn args(v: Option<&Value>) -> Result<BTreeMap<String, String>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(AppError::bad_request(
                            "bad_args",
                            "arg values must be strings, numbers or booleans",
                            Some(&format!("args.{k}")),
                        ))
                    }
                };
                out.insert(k.clone(), s);
            }
            Ok(out)
        }
        Some(_) => Err(AppError::bad_request(
            "bad_args",
            "`args` must be an object",
            Some("args"),
        )),
    }
}

/// `since`: an RFC 3339 time; absent, null or blank for none.
fn since(v: Option<&Value>) -> Result<Option<DateTime<Utc>>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(
            DateTime::parse_from_rfc3339(s.trim())
                .map_err(|e| {
                    AppError::bad_request(
                        "bad_since",
                        format!(
                            "since: {s:?} is not an RFC 3339 time ({e}), e.g. 2026-12-02T17:00:00Z"
                        ),
                        Some("since"),
                    )
                })?
                .with_timezone(&Utc),
        )),
        Some(_) => Err(AppError::bad_request(
            "bad_since",
            "since: must be an RFC 3339 time string",
            Some("since"),
        )),
    }
}

/// `decide_after`: a duration (`8m`); absent, null or blank for none.
fn decide_after(v: Option<&Value>) -> Result<Option<Duration>, AppError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(humantime::parse_duration(s.trim()).map_err(|e| {
            AppError::bad_request(
                "bad_decide_after",
                format!("decide_after: {s:?} is not a duration ({e}), e.g. 8m"),
                Some("decide_after"),
            )
        })?)),
        Some(_) => Err(AppError::bad_request(
            "bad_decide_after",
            "decide_after: must be a duration string, e.g. 8m",
            Some("decide_after"),
        )),
    }
}

/// Judge within the deadline (503 when too many judgements are running, 504 past the
/// deadline), count the verdict, keep the record, and answer with it.
async fn answer(
    inner: &Inner,
    spec: &JudgeSpec,
    request: JudgeRequest,
    inline: bool,
) -> Result<Response, AppError> {
    let Ok(_permit) = inner.permits.clone().try_acquire_owned() else {
        inner.metrics.overloaded.inc();
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{} judgements already running; retry shortly",
                inner.settings.max_concurrent
            ),
        ));
    };
    let started = Instant::now();
    let deadline = inner.settings.deadline;
    let options = JudgeOptions {
        query_timeout: deadline,
        since: request.since,
        decide_after: request.decide_after,
    };
    let run = judging::run(spec, &request.args, &inner.sources, Utc::now(), options);
    let judgement = match tokio::time::timeout(deadline, run).await {
        Err(_) => {
            return Err(AppError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline_exceeded",
                format!(
                    "no judgement within the {} ms deadline",
                    deadline.as_millis()
                ),
            ))
        }
        Ok(r) => r?,
    };
    inner
        .metrics
        .judge_duration
        .observe(started.elapsed().as_secs_f64());
    let verdict = serde_json::to_value(judgement.verdict).unwrap_or(Value::Null);
    inner
        .metrics
        .verdicts
        .get_or_create(&VerdictLabels {
            judge: if inline {
                INLINE_LABEL.to_string()
            } else {
                judgement.judge.clone()
            },
            verdict: verdict.as_str().unwrap_or_default().to_string(),
        })
        .inc();
    let record = Record::new(judgement);
    tracing::info!(judge = %record.judgement.judge, verdict = %verdict, id = %record.id, "judged");
    // Kept before it is answered: an id a client has seen can be read back from any replica.
    inner.results.put(&record).await.map_err(store_error)?;
    let body = record
        .document()
        .map_err(|e| AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "encode", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
