//! Query coalescing and a short-lived result cache.
//!
//! When many rollouts of one service are judged at once, they ask identical queries (the
//! judgement window is aligned to the step for that reason). The first asker runs the query;
//! askers arriving while it runs wait for the same answer; askers within `ttl` after it get
//! the stored answer. Errors are shared with the waiters of that one query but never cached.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::prometheus::Answer;
use super::Error;

/// How a query was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Ran the query.
    Miss,
    /// Waited for an identical query already running.
    Coalesced,
    /// Answered from a stored result.
    Hit,
}

impl CacheOutcome {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Miss => "miss",
            CacheOutcome::Coalesced => "coalesced",
            CacheOutcome::Hit => "hit",
        }
    }
}

struct Slot {
    created: Instant,
    cell: OnceCell<Result<Answer, Error>>,
}

/// The cache. Cheap to share behind an `Arc`.
pub struct QueryCache {
    ttl: Duration,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Above this many stored entries, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 4096;

impl QueryCache {
    /// A cache keeping answers for `ttl` (zero: coalescing only).
    pub fn new(ttl: Duration) -> Self {
        QueryCache {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Answer `key` from the cache, or by running `fetch`; with how it was answered, for the
    /// caller to record.
    pub async fn get_or_fetch<F>(
        &self,
        key: String,
        fetch: F,
    ) -> (CacheOutcome, Result<Answer, Error>)
    where
        F: Future<Output = Result<Answer, Error>>,
    {
        let now = Instant::now();
        let (slot, outcome) = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let usable = slots.get(&key).and_then(|s| match s.cell.get() {
                None => Some((s.clone(), CacheOutcome::Coalesced)),
                Some(Ok(_)) if now.duration_since(s.created) < self.ttl => {
                    Some((s.clone(), CacheOutcome::Hit))
                }
                _ => None,
            });
            match usable {
                Some(found) => found,
                None => {
                    if slots.len() > SWEEP_ABOVE {
                        let ttl = self.ttl;
                        slots.retain(|_, s| {
                            s.cell.get().is_none() || now.duration_since(s.created) < ttl
                        });
                    }
                    let slot = Arc::new(Slot {
                        created: now,
                        cell: OnceCell::new(),
                    });
                    slots.insert(key, slot.clone());
                    (slot, CacheOutcome::Miss)
                }
            }
        };
        (outcome, slot.cell.get_or_init(|| fetch).await.clone())
    }
}
