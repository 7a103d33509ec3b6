//! Results in this process's memory: the default, for one replica (with several, an id
//! answers only on the replica that made it, and a restart forgets everything).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use chrono::Utc;
use futures_util::future::{BoxFuture, FutureExt};

use super::{Record, ResultStore, Retention, StoreError};

/// The last `retention.keep` results, newer than `retention.keep_for`.
pub struct MemoryStore {
    retention: Retention,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    order: VecDeque<String>,
    by_id: HashMap<String, Record>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(retention: Retention) -> MemoryStore {
        MemoryStore {
            retention,
            kept: Mutex::new(Kept::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A kept record that has not expired.
    fn get(&self, id: &str) -> Option<Record> {
        let cutoff = self.retention.cutoff(Utc::now());
        self.lock()
            .by_id
            .get(id)
            .filter(|r| r.created_at >= cutoff)
            .cloned()
    }
}

impl ResultStore for MemoryStore {
    fn put<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), StoreError>> {
        let mut k = self.lock();
        k.by_id.insert(record.id.clone(), record.clone());
        k.order.push_back(record.id.clone());
        while k.order.len() > self.retention.keep.max(1) {
            if let Some(old) = k.order.pop_front() {
                k.by_id.remove(&old);
            }
        }
        futures_util::future::ready(Ok(())).boxed()
    }

    fn document<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let doc = match self.get(id).map(|r| r.document()).transpose() {
            Ok(d) => Ok(d),
            Err(e) => Err(StoreError::Database(format!(
                "cannot encode the result: {e}"
            ))),
        };
        futures_util::future::ready(doc).boxed()
    }

    fn report<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        futures_util::future::ready(Ok(self.get(id).map(|r| r.report()))).boxed()
    }

    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        let cutoff = self.retention.cutoff(Utc::now());
        let mut k = self.lock();
        let mut deleted = 0;
        while let Some(oldest) = k.order.front().cloned() {
            match k.by_id.get(&oldest) {
                Some(r) if r.created_at >= cutoff => break,
                _ => {
                    k.order.pop_front();
                    k.by_id.remove(&oldest);
                    deleted += 1;
                }
            }
        }
        futures_util::future::ready(Ok(deleted)).boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        futures_util::future::ready(Ok(())).boxed()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::record::tests::judgement;

    #[tokio::test]
    async fn keeps_the_newest_by_count() {
        let s = MemoryStore::new(Retention {
            keep: 2,
            keep_for: Duration::from_secs(3600),
        });
        let records: Vec<Record> = (0..3).map(|_| Record::new(judgement())).collect();
        for r in &records {
            s.put(r).await.expect("put");
        }
        assert!(s.document(&records[0].id).await.expect("read").is_none());
        for r in &records[1..] {
            let doc = s.document(&r.id).await.expect("read").expect("kept");
            let v: serde_json::Value = serde_json::from_slice(&doc).expect("json");
            assert_eq!(v["id"], r.id.as_str());
            assert_eq!(v["report"], format!("/reports/{}", r.id));
            assert!(s.report(&r.id).await.expect("read").is_some());
        }
    }

    #[tokio::test]
    async fn forgets_by_age() {
        let s = MemoryStore::new(Retention {
            keep: 10,
            keep_for: Duration::from_secs(60),
        });
        let mut old = Record::new(judgement());
        old.created_at -= chrono::Duration::seconds(120);
        let new = Record::new(judgement());
        s.put(&old).await.expect("put");
        s.put(&new).await.expect("put");
        assert!(s.document(&old.id).await.expect("read").is_none());
        assert_eq!(s.prune().await.expect("prune"), 1);
        assert!(s.document(&new.id).await.expect("read").is_some());
        assert_eq!(s.prune().await.expect("prune"), 0);
    }
}
