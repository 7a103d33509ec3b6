//! Where `canary serve` keeps what a later request may ask for: each judgement's answer
//! (`GET /api/v1/analyses/{id}`) and its report page (`GET /reports/{id}`).
//!
//! Two implementations of one trait: [`memory::MemoryStore`] (the default: one replica, and
//! tests) and [`postgres::PgStore`] (`--database-url`: several replicas behind one Service
//! answer any id, and a restart loses nothing). A result is stored *before* its answer is
//! sent, so an id a client has seen can always be read back, from any replica.
//!
//! The anchored analyses of the false-alarm budget need nothing here: every replica finds
//! the same anchor from the request's `since` or from the data itself.

pub mod memory;
mod migrations;
pub mod postgres;
mod record;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

pub use self::record::{document, Record};

/// How long and how many results are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// The most results kept (in all, not per replica); the oldest go first.
    pub keep: usize,
    /// Results older than this are deleted.
    pub keep_for: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep: 1000,
            keep_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Retention {
    /// The oldest creation time still kept at `now`.
    pub fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let age = chrono::Duration::from_std(self.keep_for).unwrap_or(chrono::Duration::MAX);
        now.checked_sub_signed(age)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// Why the store could not do what was asked. A judgement whose result cannot be stored is
/// answered 503 (never 200 with an id that later answers 404).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database accepts reads only (a replica in recovery, `default_transaction_read_only`).
    #[error("database is read-only: {0}")]
    ReadOnly(String),
    /// The database's schema was written by a newer canary-engine than this one.
    #[error(
        "the database schema is at version {found}, newer than the {known} this canary-engine \
         knows: upgrade canary-engine (or point it at another database)"
    )]
    NewerSchema {
        /// The version found in the database.
        found: i32,
        /// The newest version this binary knows.
        known: i32,
    },
    /// Anything else the database said.
    #[error("database error: {0}")]
    Database(String),
}

/// Keeps judgement results for later requests.
pub trait ResultStore: Send + Sync {
    /// Keep `record`; when this returns `Ok`, every replica can read it.
    fn put<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The API document of judgement `id` (JSON), if kept.
    fn document<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// The HTML report of judgement `id`, if kept.
    fn report<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>>;
    /// Delete what `retention` no longer keeps; the number deleted.
    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Whether the store can take writes now (for `/readyz`).
    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    /// For `/readyz` and the log: `memory` or `postgres`.
    fn kind(&self) -> &'static str;
}

/// Delete expired results every `every` until the process ends.
pub fn spawn_pruner(store: Arc<dyn ResultStore>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.prune().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired results deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete expired results"),
            }
        }
    });
}
