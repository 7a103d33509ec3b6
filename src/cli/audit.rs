//! `canary audit`: read the promotion audit ledger (`canary promote --audit FILE|URL`),
//! filter it, show it as a table or JSON lines, and check a PostgreSQL ledger's hash chain.

use chrono::Utc;
use clap::{Args, ValueEnum};
use serde_json::Value;

use super::args::parse_time;
use super::{write_stdout, CliError, Exit};
use crate::audit::postgres::{Filter, PgLedger};
use crate::audit::{is_database, platform_event};
use crate::store::postgres::DatabaseUrl;

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
    /// Ledgers written by `canary promote --audit`: JSON-lines files, or a PostgreSQL URL
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`).
    #[arg(required = true, value_name = "LEDGER")]
    pub files: Vec<String>,
    /// Check the hash chain of a PostgreSQL ledger and name the first row that was changed
    /// or whose predecessor was removed (exit 1); exit 0 when every row checks out.
    #[arg(long)]
    pub verify: bool,
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

/// One ledger entry that passed the filters.
struct Entry {
    time: String,
    value: Value,
}

/// What an entry says, in a few words.
fn detail(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| v.get(k).map(|x| x.to_string()).unwrap_or_default();
    match platform_event(v.get("event").and_then(Value::as_str).unwrap_or("")) {
        "deployment.created" => match v.get("resumed_at_step").filter(|x| !x.is_null()) {
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

fn open_database(target: &str) -> Result<(tokio::runtime::Runtime, PgLedger), CliError> {
    let url: DatabaseUrl = target
        .parse()
        .map_err(|why| CliError::usage(format!("LEDGER: {why}")))?;
    let runtime = super::runtime(Some(1))?;
    let ledger = runtime
        .block_on(PgLedger::open(&url))
        .map_err(CliError::from)?;
    Ok((runtime, ledger))
}

fn read_database(target: &str, filter: &Filter) -> Result<Vec<crate::audit::chain::Row>, CliError> {
    let (runtime, ledger) = open_database(target)?;
    runtime
        .block_on(ledger.read(filter))
        .map_err(CliError::from)
}

/// `--verify`: every PostgreSQL ledger's chain, checked whole.
fn verify(targets: &[String]) -> Result<Exit, CliError> {
    let mut broken = false;
    for t in targets {
        if !is_database(t) {
            return Err(CliError::usage(format!(
                "--verify checks a PostgreSQL ledger's hash chain; {t} is a JSON-lines file, \
                 which has none"
            )));
        }
        let (runtime, ledger) = open_database(t)?;
        let rows = runtime
            .block_on(ledger.read(&Filter::default()))
            .map_err(CliError::from)?;
        match crate::audit::chain::verify(&rows) {
            None => write_stdout(&format!(
                "ledger intact: {} rows, every hash checks out",
                rows.len()
            ))?,
            Some((_, why)) => {
                broken = true;
                write_stdout(&format!("ledger BROKEN at {why}"))?;
            }
        }
    }
    Ok(Exit::yes_or_no(!broken))
}

/// Run the command.
pub fn run(a: &AuditArgs) -> Result<Exit, CliError> {
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
    if a.verify {
        return verify(&a.files);
    }
    let filter = Filter {
        promotion: a.promotion.clone(),
        events: a.events.clone(),
        since,
        until,
        ..Filter::default()
    };
    let mut entries = Vec::new();
    let mut damaged = 0;
    for file in &a.files {
        if is_database(file) {
            for row in read_database(file, &filter)? {
                entries.push(Entry {
                    time: row
                        .entry
                        .time
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    value: row.entry.body,
                });
            }
            continue;
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::usage(format!("cannot read {file}: {e}")))?;
        let read = crate::audit::lines::read(&text, &filter);
        for why in &read.damaged {
            // A line cut short by a crash mid-write: say so, keep reading.
            eprintln!("warning: {file}:{why}");
        }
        damaged += read.damaged.len();
        entries.extend(read.entries.into_iter().map(|e| Entry {
            time: e.time,
            value: e.value,
        }));
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
    Ok(Exit::Success)
}
