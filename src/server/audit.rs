//! `GET /api/v1/audit`: the promotion audit ledger, read-only, for its readers' token only;
//! every read is itself recorded in the ledger as `audit.accessed`.

use axum::extract::Request;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::AppError;
use super::{bearer_is, AppState};
use crate::audit::postgres::Filter;
use crate::audit::Entry;

/// The most entries one page holds.
const MAX_LIMIT: i64 = 1000;

/// Only the readers' token passes; the judge token gets 403.
pub(super) async fn auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let settings = &state.inner.settings;
    let (Some(reader), Some(_)) = (&settings.reader_token, &state.inner.ledger) else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "audit_disabled",
            "the ledger API is off: start canary serve with --audit-url and --reader-token-file",
        ));
    };
    if bearer_is(&headers, reader) {
        return Ok(next.run(req).await);
    }
    if settings
        .token
        .as_deref()
        .is_some_and(|t| bearer_is(&headers, t))
    {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the judge token may judge, not read the ledger: use the readers' token",
        ));
    }
    Err(AppError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or wrong bearer token",
    ))
}

/// The query: every filter `canary audit` has, and a page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    promotion: Option<String>,
    /// Event prefixes, comma-separated.
    event: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// Entries after this position (the `next` of the previous page).
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

fn time(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, AppError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(text)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            AppError::bad_request(
                "bad_query",
                format!("{field}: {text:?} is not an RFC 3339 time ({e})"),
                Some(field),
            )
        })
}

/// One page of entries, oldest first, with the position to continue from.
pub(super) async fn read(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AppError> {
    let Query(q) = query.map_err(|e| AppError::bad_request("bad_query", e.body_text(), None))?;
    let Some(ledger) = &state.inner.ledger else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "audit_disabled",
            "no ledger",
        ));
    };
    // PostgreSQL text cannot hold a NUL: a filter with one is the client's error (400), not
    // a ledger failure (it was a 503).
    for (field, value) in [("promotion", &q.promotion), ("event", &q.event)] {
        if value.as_deref().is_some_and(|v| v.contains('\0')) {
            return Err(AppError::bad_request(
                "bad_query",
                format!("{field}: contains a NUL character (U+0000)"),
                Some(field),
            ));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::bad_request(
            "bad_query",
            format!("limit: {limit} is not between 1 and {MAX_LIMIT}"),
            Some("limit"),
        ));
    }
    let filter = Filter {
        promotion: q.promotion.clone().filter(|p| !p.is_empty()),
        events: q
            .event
            .as_deref()
            .map(|e| {
                e.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        since: time("since", q.since.as_deref())?,
        until: time("until", q.until.as_deref())?,
        after: q.after,
        limit: limit + 1,
    };
    // Recorded before anything is returned: a read the ledger cannot record does not happen.
    let access = Entry::new(
        "",
        json!({"event": "audit.accessed", "query": {
            "promotion": filter.promotion, "event": filter.events, "since": q.since,
            "until": q.until, "after": q.after, "limit": limit}}),
    );
    let unavailable = |e: crate::audit::AuditError| {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            e.to_string(),
        )
    };
    ledger.append(&access).await.map_err(unavailable)?;
    let mut rows = ledger.read(&filter).await.map_err(unavailable)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().and_then(|r| r.entry.seq)
    } else {
        None
    };
    let entries: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut body = r.entry.body;
            body["seq"] = json!(r.entry.seq);
            body
        })
        .collect();
    Ok(Json(json!({"entries": entries, "next_after": next})))
}
