//! `canary audit`: read the promotion audit ledger (`canary promote --audit FILE`), filter it,
//! and show it as a table or JSON lines.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{write_stdout, CliError};

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// A table for people.
    Table,
    /// The matching ledger lines, unchanged (JSON lines).
    Json,
}

/// List the decisions in promotion audit ledgers, oldest first: who was promoted, which
/// step ran, what each analysis said, what was rolled back and why.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Ledger files written by `canary promote --audit` (JSON lines).
    #[arg(required = true, value_name = "LEDGER")]
    pub files: Vec<PathBuf>,
    /// Only this promotion (exact id, or a substring of it such as the VirtualService).
    #[arg(long, value_name = "ID")]
    pub promotion: Option<String>,
    /// Only these events (repeatable; a prefix matches: `deployment` takes every
    /// `deployment.*`).
    #[arg(long = "event", value_name = "TYPE")]
    pub events: Vec<String>,
    /// Only events at or after this time: RFC 3339 (`2026-11-22T10:00:00Z`) or a duration
    /// back from now (`2h`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
}

pub(crate) fn parse_time(
    flag: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now - d)
        .ok_or_else(|| {
            CliError::usage(format!(
                "{flag} {text:?}: expected an RFC 3339 time or a duration such as 2h"
            ))
        })
}

/// One ledger entry that passed the filters.
struct Entry {
    time: String,
    value: Value,
}

/// What an entry says, in a few words.
fn detail(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    match v.get("event").and_then(Value::as_str).unwrap_or("") {
        "deployment.started" => match v.get("resumed_at_step").filter(|x| !x.is_null()) {
            Some(step) => format!("resumed at step {step}"),
            None => "started".into(),
        },
        "deployment.step" => format!(
            "step {}: {} (canary {} %)",
            n("index"),
            s("step"),
            n("weight")
        ),
        "analysis.completed" => {
            let who = if v.get("background").and_then(Value::as_bool) == Some(true) {
                "background analysis"
            } else {
                "analysis"
            };
            format!("step {}: {who} {} {}", n("index"), s("phase"), s("message"))
        }
        "deployment.promoted" => format!("canary at {} %", n("weight")),
        _ => s("reason"),
    }
}

/// Run the command.
pub fn run(a: &AuditArgs) -> Result<u8, CliError> {
    let now = Utc::now();
    let since = a
        .since
        .as_deref()
        .map(|t| parse_time("--since", t, now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|t| parse_time("--until", t, now))
        .transpose()?;
    let mut entries = Vec::new();
    let mut damaged = 0;
    for file in &a.files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", file.display())))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    // A line cut short by a crash mid-write: say so, keep reading.
                    eprintln!(
                        "warning: {}:{}: not a ledger entry: {e}",
                        file.display(),
                        i + 1
                    );
                    damaged += 1;
                    continue;
                }
            };
            let time = value.get("time").and_then(Value::as_str).unwrap_or("");
            let parsed = DateTime::parse_from_rfc3339(time)
                .ok()
                .map(|t| t.with_timezone(&Utc));
            if since.is_some_and(|s| parsed.is_none_or(|t| t < s))
                || until.is_some_and(|u| parsed.is_none_or(|t| t >= u))
            {
                continue;
            }
            let id = value.get("promotion").and_then(Value::as_str).unwrap_or("");
            if a.promotion
                .as_deref()
                .is_some_and(|p| id != p && !id.contains(p))
            {
                continue;
            }
            let event = value.get("event").and_then(Value::as_str).unwrap_or("");
            if !a.events.is_empty() && !a.events.iter().any(|e| event.starts_with(e.as_str())) {
                continue;
            }
            entries.push(Entry {
                time: time.to_string(),
                value,
            });
        }
    }
    entries.sort_by(|x, y| x.time.cmp(&y.time));
    match a.output {
        AuditOutput::Json => {
            for e in &entries {
                write_stdout(&e.value.to_string())?;
            }
        }
        AuditOutput::Table => {
            use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
            let mut t = Table::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(["time", "promotion", "event", "detail"]);
            for e in &entries {
                let v = &e.value;
                t.add_row([
                    e.time.clone(),
                    v.get("promotion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    v.get("event")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    detail(v),
                ]);
            }
            write_stdout(&t.to_string())?;
            write_stdout(&format!(
                "{} entries{}",
                entries.len(),
                if damaged > 0 {
                    format!(", {damaged} damaged lines skipped")
                } else {
                    String::new()
                }
            ))?;
        }
    }
    Ok(0)
}
