//! The promotion audit ledger: every decision `canary promote` makes, appended and never
//! changed. Two backends: JSON lines in a file (the default) and PostgreSQL (`--audit
//! postgres://…`), where rows are append-only and chained by hash so that a changed or
//! removed row is found by `canary audit --verify`.
//!
//! Event names are the platform Audit Ledger's: `deployment.created` (our
//! `deployment.started`), `deployment.step`, `analysis.completed`, `deployment.promoted`,
//! `deployment.rolled_back`, `deployment.paused`.

pub mod chain;
pub mod lines;
pub mod postgres;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::store::postgres::DatabaseUrl;

/// One ledger entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Position in the ledger (PostgreSQL only).
    pub seq: Option<i64>,
    /// When it happened (to the microsecond).
    pub time: DateTime<Utc>,
    /// The promotion it belongs to.
    pub promotion: String,
    /// The platform's event type, e.g. `deployment.promoted`.
    pub event: String,
    /// The whole event as JSON (with `promotion`, `time` and `event`).
    pub body: Value,
}

/// The platform's name for one of our event types (only `deployment.started` differs: the
/// platform calls it `deployment.created`).
pub fn platform_event(ours: &str) -> &str {
    match ours {
        "deployment.started" => "deployment.created",
        other => other,
    }
}

impl Entry {
    /// An entry for a promotion event serialized as `body` (its `event` field is our name),
    /// stamped now.
    pub fn new(promotion: &str, mut body: Value) -> Entry {
        let time = Utc::now();
        let time = DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time);
        let ours = body
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let event = platform_event(&ours).to_string();
        body["event"] = Value::String(event.clone());
        body["promotion"] = Value::String(promotion.to_string());
        body["time"] = Value::String(time.to_rfc3339_opts(SecondsFormat::Micros, true));
        Entry {
            seq: None,
            time,
            promotion: promotion.to_string(),
            event,
            body,
        }
    }
}

/// Why the ledger could not be written or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The ledger file.
    #[error("audit ledger {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The ledger database.
    #[error("audit ledger {url}: {source}")]
    Database {
        /// The database, without its password.
        url: String,
        /// What went wrong.
        source: crate::store::StoreError,
    },
    /// A target that is neither a file nor a PostgreSQL URL we can use.
    #[error("{0}")]
    Target(String),
}

/// Where the ledger is.
pub enum Ledger {
    /// JSON lines, one event a line, flushed and fsync'd per event.
    Lines {
        /// The file.
        path: PathBuf,
        /// Open for appending.
        file: Mutex<std::fs::File>,
    },
    /// PostgreSQL.
    Postgres(Box<postgres::PgLedger>),
}

/// Whether `target` names a database rather than a file.
pub fn is_database(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

impl Ledger {
    /// Open `target`: a `postgres://…` URL, or a file to append JSON lines to.
    pub async fn open(target: &str) -> Result<Ledger, AuditError> {
        if is_database(target) {
            let url: DatabaseUrl = target
                .parse()
                .map_err(|why| AuditError::Target(format!("--audit: {why}")))?;
            return Ok(Ledger::Postgres(Box::new(
                postgres::PgLedger::open(&url).await?,
            )));
        }
        Ledger::file(PathBuf::from(target))
    }

    /// A JSON-lines ledger at `path`.
    pub fn file(path: PathBuf) -> Result<Ledger, AuditError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| AuditError::File {
                path: path.display().to_string(),
                message: format!("cannot open: {e}"),
            })?;
        Ok(Ledger::Lines {
            path,
            file: Mutex::new(file),
        })
    }

    /// Append `e`; when this returns `Ok` the entry is durable.
    pub async fn append(&self, e: &Entry) -> Result<(), AuditError> {
        match self {
            Ledger::Lines { .. } => self.append_now(e).unwrap_or(Ok(())),
            Ledger::Postgres(pg) => pg.append(e).await,
        }
    }

    /// Append `e` without waiting on the async runtime, when the backend allows it (a file:
    /// written and fsync'd here); `None` for a database, which must be awaited.
    pub fn append_now(&self, e: &Entry) -> Option<Result<(), AuditError>> {
        let Ledger::Lines { path, file } = self else {
            return None;
        };
        let line = format!("{}\n", e.body);
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        Some(
            f.write_all(line.as_bytes())
                .and_then(|()| f.sync_data())
                .map_err(|err| AuditError::File {
                    path: path.display().to_string(),
                    message: err.to_string(),
                }),
        )
    }

    /// Append `e` from synchronous code (the promotion's event callback), so the next
    /// decision knows whether it was recorded: up to [`LEDGER_ATTEMPTS`] tries, backing off,
    /// and the last error if none took.
    pub fn append_blocking(&self, e: &Entry) -> Result<(), AuditError> {
        let mut last = None;
        for attempt in 0..LEDGER_ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(std::time::Duration::from_millis(250 << attempt));
            }
            let written = match self.append_now(e) {
                Some(done) => done,
                None => wait_for(self.append(e)),
            };
            match written {
                Ok(()) => return Ok(()),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| AuditError::Target("no attempt was made".into())))
    }
}

/// Attempts at writing one event to the ledger before the promotion is stopped.
pub const LEDGER_ATTEMPTS: u32 = 3;

/// Wait for a database ledger write from the promotion's own (synchronous) event callback,
/// so the next decision sees whether it was recorded: on this worker thread, while the
/// runtime's other workers go on. A single-threaded runtime cannot wait here; `promote`'s
/// has two workers.
fn wait_for(
    write: impl std::future::Future<Output = Result<(), AuditError>>,
) -> Result<(), AuditError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(|| h.block_on(write))
        }
        _ => Err(AuditError::Target(
            "a database ledger needs the multi-threaded runtime `canary promote` runs on".into(),
        )),
    }
}
