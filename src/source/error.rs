//! Why a query got no answer. Every variant is an *error* — never a pass, never "no data".

use serde::{Deserialize, Serialize};

/// A failed query or web call, typed by what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Error {
    /// No connection could be made (refused, DNS, TLS handshake).
    #[error("{url} is unreachable: {message}")]
    Unreachable {
        /// Where we tried to connect.
        url: String,
        /// The transport's explanation.
        message: String,
    },
    /// No complete answer within the timeout.
    #[error("no answer from {url} within {timeout_ms} ms")]
    Timeout {
        /// Where the request went.
        url: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },
    /// The server answered with a non-success HTTP status and no Prometheus error body.
    #[error("{url} answered HTTP {status}: {body}")]
    HttpStatus {
        /// Where the request went.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the body, for the log.
        body: String,
    },
    /// Prometheus rejected or failed the query (`bad_data`, `execution`, `timeout`, …).
    #[error("Prometheus {error_type} error (HTTP {status}): {message}")]
    Prometheus {
        /// Prometheus' `errorType`.
        error_type: String,
        /// Prometheus' `error` message.
        message: String,
        /// HTTP status of the answer.
        status: u16,
    },
    /// The answer could not be understood.
    #[error("malformed answer from {url}: {message}")]
    Malformed {
        /// Where the request went.
        url: String,
        /// What was wrong with it.
        message: String,
    },
    /// The engine is not configured to make this call.
    #[error("{0}")]
    Config(String),
    /// A snapshot being replayed has no answer for this call.
    #[error("snapshot has no recorded answer for {0}")]
    NotRecorded(String),
}

impl Error {
    /// A short machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Unreachable { .. } => "unreachable",
            Error::Timeout { .. } => "timeout",
            Error::HttpStatus { .. } => "http_status",
            Error::Prometheus { .. } => "prometheus",
            Error::Malformed { .. } => "malformed",
            Error::Config(_) => "config",
            Error::NotRecorded(_) => "not_recorded",
        }
    }
}

/// The first `n` characters of a body, on one line.
pub(crate) fn snippet(body: &str, n: usize) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > n {
        let cut: String = one_line.chars().take(n).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}
