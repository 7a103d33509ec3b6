//! An upstream's answer read with a bound on its size. Prometheus behind a misconfigured
//! proxy, or a query that matches every series, can answer hundreds of megabytes; the engine
//! stops reading past the bound and reports a malformed answer (an *error*, never a pass)
//! instead of holding it all in memory. A body that never ends is cut by the caller's timeout.

/// The largest answer read by default: 16 MiB — far above any judgement's (a few KiB) or a
/// long backtest's range query (a few MiB).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 16 << 20;

/// Why a body was not read whole.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Declared or found larger than the bound.
    TooLarge { limit: usize },
    /// The transport failed mid-body.
    Transport(reqwest::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge { limit } => write!(
                f,
                "the answer is larger than {} MiB; narrow the query (or raise \
                 --prometheus-max-answer-mib)",
                limit >> 20
            ),
            ReadError::Transport(e) => write!(f, "reading the answer: {e}"),
        }
    }
}

/// Read `resp`'s body, refusing it as soon as it is known to exceed `limit` bytes (by its
/// `Content-Length`, or while streaming).
pub(crate) async fn read_bounded(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge { limit });
    }
    // Chunks are kept as they come and joined once at the end: a growing buffer would
    // reallocate to twice the bound on the way.
    let mut chunks = Vec::new();
    let mut len = 0usize;
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        len += chunk.len();
        if len > limit {
            return Err(ReadError::TooLarge { limit });
        }
        chunks.push(chunk);
    }
    Ok(chunks.concat())
}
