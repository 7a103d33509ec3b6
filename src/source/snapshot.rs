//! Snapshots: every query of a run and its answer, written as JSON lines and replayed later.
//!
//! `--record FILE` appends one line per query (flushed as it happens, so a run that crashes
//! still leaves what it saw); `--source snapshot:FILE` answers queries from such a file with no
//! Prometheus at all. Answers are matched by the query text (and, for range queries, the
//! window length and step), in recorded order; the last answer for a query is repeated when a
//! replay asks more often than the recording did. Recorded errors replay as the same errors.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::{snippet, Error};
use super::prometheus::{Answer, PromQuery};
use super::value::QueryValue;
use super::web::{WebRequest, WebResponse};

/// One recorded call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// `prometheus` or `web`.
    pub kind: String,
    /// What the call is matched on at replay.
    pub key: String,
    /// When it was recorded (RFC 3339).
    pub recorded_at: String,
    /// Prometheus result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<QueryValue>,
    /// Prometheus warnings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Web answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<WebResponse>,
    /// The error, when the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

/// The key a Prometheus query is recorded and replayed under.
pub fn prometheus_key(q: &PromQuery) -> String {
    match &q.range {
        None => q.query.clone(),
        Some(r) => {
            let window = (r.end - r.start).num_seconds();
            format!(
                "{} [range {}s step {}s]",
                q.query,
                window,
                r.step.as_secs_f64()
            )
        }
    }
}

/// The key a web call is recorded and replayed under.
pub fn web_key(r: &WebRequest) -> String {
    format!("{} {} {}", r.method, r.url, r.body.as_deref().unwrap_or(""))
}

/// Appends entries to a snapshot file.
#[derive(Debug)]
pub struct Recorder {
    file: Mutex<File>,
}

impl Recorder {
    /// Create (truncate) the file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(Recorder {
            file: Mutex::new(file),
        })
    }

    /// Append one entry and flush it.
    pub fn write(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(line.as_bytes())?;
        f.flush()
    }

    /// Record a Prometheus query's outcome.
    pub fn prometheus(
        &self,
        q: &PromQuery,
        outcome: &Result<Answer, Error>,
    ) -> std::io::Result<()> {
        let (result, warnings, error) = match outcome {
            Ok(a) => (Some(a.value.clone()), a.warnings.clone(), None),
            Err(e) => (None, Vec::new(), Some(e.clone())),
        };
        self.write(&Entry {
            kind: "prometheus".into(),
            key: prometheus_key(q),
            recorded_at: chrono::Utc::now().to_rfc3339(),
            result,
            warnings,
            response: None,
            error,
        })
    }

    /// Record a web call's outcome.
    pub fn web(&self, r: &WebRequest, outcome: &Result<WebResponse, Error>) -> std::io::Result<()> {
        let (response, error) = match outcome {
            Ok(resp) => (Some(resp.clone()), None),
            Err(e) => (None, Some(e.clone())),
        };
        self.write(&Entry {
            kind: "web".into(),
            key: web_key(r),
            recorded_at: chrono::Utc::now().to_rfc3339(),
            result: None,
            warnings: Vec::new(),
            response,
            error,
        })
    }
}

/// Recorded answers to one call, and which one the next replay gets.
#[derive(Debug, Default)]
struct Answers {
    entries: Vec<Entry>,
    next: usize,
}

/// Answers queries from a snapshot.
#[derive(Debug)]
pub struct Replay {
    /// Keyed by (kind, key).
    entries: Mutex<HashMap<(String, String), Answers>>,
}

/// A snapshot file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("snapshot {file}:{line}: {message}")]
pub struct SnapshotError {
    /// Path of the snapshot file.
    pub file: String,
    /// 1-based line (0 when the file cannot be read).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl Replay {
    /// Load a snapshot file.
    pub fn load(path: &Path) -> Result<Self, SnapshotError> {
        let label = path.display().to_string();
        let file = File::open(path).map_err(|e| SnapshotError {
            file: label.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let mut entries: HashMap<(String, String), Answers> = HashMap::new();
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| SnapshotError {
                file: label.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = serde_json::from_str(&line).map_err(|e| SnapshotError {
                file: label.clone(),
                line: i + 1,
                message: e.to_string(),
            })?;
            entries
                .entry((entry.kind.clone(), entry.key.clone()))
                .or_default()
                .entries
                .push(entry);
        }
        Ok(Replay {
            entries: Mutex::new(entries),
        })
    }

    fn next(&self, kind: &str, key: &str) -> Result<Entry, Error> {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let answers = map
            .get_mut(&(kind.to_string(), key.to_string()))
            .ok_or_else(|| Error::NotRecorded(format!("{kind} query {}", snippet(key, 160))))?;
        let i = answers.next.min(answers.entries.len() - 1);
        answers.next += 1;
        Ok(answers.entries[i].clone())
    }

    /// The recorded answer to a Prometheus query.
    pub fn prometheus(&self, q: &PromQuery) -> Result<Answer, Error> {
        let e = self.next("prometheus", &prometheus_key(q))?;
        match (e.error, e.result) {
            (Some(err), _) => Err(err),
            (None, Some(value)) => Ok(Answer {
                value,
                warnings: e.warnings,
            }),
            (None, None) => Err(Error::NotRecorded(format!(
                "prometheus {:?} (empty entry)",
                e.key
            ))),
        }
    }

    /// The recorded answer to a web call.
    pub fn web(&self, r: &WebRequest) -> Result<WebResponse, Error> {
        let e = self.next("web", &web_key(r))?;
        match (e.error, e.response) {
            (Some(err), _) => Err(err),
            (None, Some(resp)) => Ok(resp),
            (None, None) => Err(Error::NotRecorded(format!("web {:?} (empty entry)", e.key))),
        }
    }
}
