//! The ledger in PostgreSQL: table `canary_audit` (see the schema's migration 2), written
//! one entry per transaction under an advisory lock so that the hash chain has one order
//! however many promotions write at once.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde_json::Value;

use super::chain::{self, Row};
use super::{AuditError, Entry};
use crate::store::postgres::{classify, connect, pool_error, DatabaseUrl};
use crate::store::StoreError;

/// The key of the advisory lock every append holds ("ledger" in ASCII).
const LOCK: i64 = 0x6c_65_64_67_65_72;

/// Connections a promotion or `canary audit` needs.
const POOL_SIZE: usize = 2;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only promotions whose id contains this.
    pub promotion: Option<String>,
    /// Only events with one of these prefixes (none: every event).
    pub events: Vec<String>,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only rows after this position (paging).
    pub after: i64,
    /// At most this many rows.
    pub limit: i64,
}

/// The ledger in PostgreSQL.
pub struct PgLedger {
    pool: Pool,
    url: DatabaseUrl,
}

impl PgLedger {
    /// Connect and migrate the schema.
    pub async fn open(url: &DatabaseUrl) -> Result<PgLedger, AuditError> {
        let pool = connect(url, POOL_SIZE)
            .await
            .map_err(|source| AuditError::Database {
                url: url.to_string(),
                source,
            })?;
        Ok(PgLedger {
            pool,
            url: url.clone(),
        })
    }

    fn error(&self, source: StoreError) -> AuditError {
        AuditError::Database {
            url: self.url.to_string(),
            source,
        }
    }

    /// Append `e`, chained to the last row of the ledger and of its promotion.
    pub async fn append(&self, e: &Entry) -> Result<(), AuditError> {
        self.try_append(e).await.map_err(|s| self.error(s))
    }

    async fn try_append(&self, e: &Entry) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await
            .map_err(classify)?;
        tx.execute("SELECT canary_audit_partition($1)", &[&e.time])
            .await
            .map_err(classify)?;
        let last = |rows: Option<tokio_postgres::Row>| rows.map_or(String::new(), |r| r.get(0));
        let prev = last(
            tx.query_opt(
                "SELECT hash FROM canary_audit ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(classify)?,
        );
        let prev_promotion = last(
            tx.query_opt(
                "SELECT hash FROM canary_audit WHERE promotion = $1 ORDER BY seq DESC LIMIT 1",
                &[&e.promotion],
            )
            .await
            .map_err(classify)?,
        );
        let body = e.body.to_string();
        let hash = chain::hash(&prev, &prev_promotion, e, &body);
        tx.execute(
            "INSERT INTO canary_audit
                 (time, promotion, event, body, prev_hash, prev_promotion_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &e.time,
                &e.promotion,
                &e.event,
                &body,
                &prev,
                &prev_promotion,
                &hash,
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    /// The rows `f` picks, in ledger order.
    pub async fn read(&self, f: &Filter) -> Result<Vec<Row>, AuditError> {
        self.try_read(f).await.map_err(|s| self.error(s))
    }

    async fn try_read(&self, f: &Filter) -> Result<Vec<Row>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let events: Option<Vec<String>> = (!f.events.is_empty()).then(|| f.events.clone());
        let limit = if f.limit > 0 { f.limit } else { i64::MAX };
        let rows = client
            .query(
                "SELECT seq, time, promotion, event, body, prev_hash, prev_promotion_hash, hash
                 FROM canary_audit
                 WHERE ($1::text IS NULL OR strpos(promotion, $1) > 0)
                   AND ($2::text[] IS NULL
                        OR EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE starts_with(event, p)))
                   AND ($3::timestamptz IS NULL OR time >= $3)
                   AND ($4::timestamptz IS NULL OR time < $4)
                   AND seq > $5
                 ORDER BY seq
                 LIMIT $6",
                &[&f.promotion, &events, &f.since, &f.until, &f.after, &limit],
            )
            .await
            .map_err(classify)?;
        Ok(rows
            .iter()
            .map(|r| {
                let body: String = r.get(4);
                Row {
                    entry: Entry {
                        seq: Some(r.get(0)),
                        time: r.get(1),
                        promotion: r.get(2),
                        event: r.get(3),
                        body: serde_json::from_str(&body).unwrap_or(Value::Null),
                    },
                    body,
                    prev_hash: r.get(5),
                    prev_promotion_hash: r.get(6),
                    hash: r.get(7),
                }
            })
            .collect())
    }
}
