//! Reading a JSON-lines ledger (`canary promote --audit FILE`) back, with the same filters a
//! PostgreSQL ledger answers.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::platform_event;
use super::postgres::Filter;

/// One entry that passed the filters.
#[derive(Debug, Clone, PartialEq)]
pub struct LineEntry {
    /// Its `time`, as written (RFC 3339).
    pub time: String,
    /// The whole entry.
    pub value: Value,
}

/// What a ledger file holds: the entries that pass, and the lines that are no entry (a line
/// cut short by a crash mid-write), each as `LINE: why`.
#[derive(Debug, Default)]
pub struct LinesRead {
    /// Entries that pass the filter, in file order.
    pub entries: Vec<LineEntry>,
    /// Lines that could not be read.
    pub damaged: Vec<String>,
}

/// Reads `text`, a ledger file's content, keeping what `filter` lets through (its paging
/// fields are ignored).
pub fn read(text: &str, filter: &Filter) -> LinesRead {
    let mut out = LinesRead::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.damaged
                    .push(format!("{}: not a ledger entry: {e}", i + 1));
                continue;
            }
        };
        let time = value.get("time").and_then(Value::as_str).unwrap_or("");
        if passes(&value, time, filter) {
            out.entries.push(LineEntry {
                time: time.to_string(),
                value,
            });
        }
    }
    out
}

fn passes(value: &Value, time: &str, filter: &Filter) -> bool {
    let parsed = DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.with_timezone(&Utc));
    if filter.since.is_some_and(|s| parsed.is_none_or(|t| t < s))
        || filter.until.is_some_and(|u| parsed.is_none_or(|t| t >= u))
    {
        return false;
    }
    let id = value.get("promotion").and_then(Value::as_str).unwrap_or("");
    if filter
        .promotion
        .as_deref()
        .is_some_and(|p| id != p && !id.contains(p))
    {
        return false;
    }
    let event = platform_event(value.get("event").and_then(Value::as_str).unwrap_or(""));
    filter.events.is_empty() || filter.events.iter().any(|e| event.starts_with(e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_the_database_does_and_reports_damaged_lines() {
        let text = r#"{"time":"2026-12-01T10:00:00Z","promotion":"ns/vs:c:10,100","event":"deployment.created"}
{"time":"2026-12-01T10:01:00Z","promotion":"ns/vs:c:10,100","event":"deployment.step","index":0}
{"time":"2026-12-01T10:02:00Z","promot

{"time":"2026-12-01T11:00:00Z","promotion":"other/vs:c:50","event":"deployment.rolled_back"}
"#;
        let all = read(text, &Filter::default());
        assert_eq!(all.entries.len(), 3);
        assert_eq!(all.damaged.len(), 1);
        assert!(
            all.damaged[0].starts_with("3: not a ledger entry"),
            "{:?}",
            all.damaged
        );

        let only = |f: Filter| -> Vec<String> {
            read(text, &f).entries.into_iter().map(|e| e.time).collect()
        };
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let by_id = Filter {
            promotion: Some("ns/vs".into()),
            ..Filter::default()
        };
        assert_eq!(only(by_id).len(), 2);
        let by_event = Filter {
            events: vec!["deployment.step".into()],
            ..Filter::default()
        };
        assert_eq!(only(by_event), ["2026-12-01T10:01:00Z"]);
        let window = Filter {
            since: Some(at("2026-12-01T10:01:00Z")),
            until: Some(at("2026-12-01T11:00:00Z")),
            ..Filter::default()
        };
        assert_eq!(only(window), ["2026-12-01T10:01:00Z"]);
    }
}
