//! Logging: human-readable on a terminal, JSON lines (for Loki) otherwise, on stderr.
//!
//! The level comes from `CANARY_LOG` (e.g. `info`, `canary_engine=debug`), default `warn`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Install the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_env("CANARY_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}
