//! The PostgreSQL schema, one numbered step at a time.
//!
//! Each replica migrates at start; a transaction-scoped advisory lock makes replicas that
//! start together take turns, so each step runs once. A database whose schema is newer than
//! the steps below was migrated by a newer canary-engine: this one refuses to start rather
//! than write rows that binary might not read.

use deadpool_postgres::Client;

use super::postgres::classify;
use super::StoreError;

/// The key of the advisory lock held while migrating ("canary" in ASCII).
const LOCK: i64 = 0x63_61_6e_61_72_79;

/// One schema step: applied in order, never edited once released.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "judgement results",
        sql: "CREATE TABLE canary_judgements (
              id text PRIMARY KEY,
              judge text NOT NULL,
              verdict text NOT NULL,
              created_at timestamptz NOT NULL,
              document text NOT NULL,
              report text NOT NULL
          );
          CREATE INDEX canary_judgements_created_at ON canary_judgements (created_at);",
    },
    Migration {
        version: 2,
        name: "audit ledger",
        sql: LEDGER,
    },
];

/// The audit ledger: append-only (a trigger refuses UPDATE, DELETE and TRUNCATE, whoever
/// asks; role `canary_ledger` may only INSERT and SELECT), each row chained by hash to the
/// row before it in its promotion and in the whole ledger, in monthly partitions that
/// `canary_audit_partition` makes as they are needed (so old months can be detached and
/// archived).
const LEDGER: &str = "
CREATE TABLE canary_audit (
    seq bigserial NOT NULL,
    time timestamptz NOT NULL,
    promotion text NOT NULL,
    event text NOT NULL,
    body text NOT NULL,
    prev_hash text NOT NULL,
    prev_promotion_hash text NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (seq, time)
) PARTITION BY RANGE (time);
CREATE INDEX canary_audit_promotion ON canary_audit (promotion, seq);
CREATE INDEX canary_audit_event ON canary_audit (event, time);

CREATE FUNCTION canary_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit ledger is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER canary_audit_no_change BEFORE UPDATE OR DELETE ON canary_audit
    FOR EACH ROW EXECUTE FUNCTION canary_audit_append_only();
CREATE TRIGGER canary_audit_no_truncate BEFORE TRUNCATE ON canary_audit
    FOR EACH STATEMENT EXECUTE FUNCTION canary_audit_append_only();

CREATE FUNCTION canary_audit_partition(at timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    first timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
    name text := 'canary_audit_' || to_char(first, 'YYYY_MM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF canary_audit FOR VALUES FROM (%L) TO (%L)',
            name, first AT TIME ZONE 'UTC', (first + interval '1 month') AT TIME ZONE 'UTC');
        EXECUTE format(
            'CREATE TRIGGER canary_audit_no_truncate BEFORE TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION canary_audit_append_only()', name);
    END IF;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'canary_ledger') THEN
        CREATE ROLE canary_ledger NOLOGIN;
    END IF;
END
$$;
GRANT SELECT, INSERT ON canary_audit TO canary_ledger;
GRANT USAGE ON SEQUENCE canary_audit_seq_seq TO canary_ledger;
GRANT EXECUTE ON FUNCTION canary_audit_partition(timestamptz) TO canary_ledger;
";

/// The newest schema version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Bring the schema up to [`latest`]; the version it was at before.
///
/// Writes nothing when the schema is current, so a read-only database that is already
/// migrated still starts (and answers judgements 503 until it takes writes).
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await.map_err(classify)?;
    // A replica stuck behind another's migration gives up rather than hang its start.
    tx.batch_execute("SET LOCAL lock_timeout = '60s'")
        .await
        .map_err(classify)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
        .await
        .map_err(classify)?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass('canary_schema_migrations') IS NOT NULL",
            &[],
        )
        .await
        .map_err(classify)?
        .get(0);
    let current: i32 = if exists {
        tx.query_one(
            "SELECT coalesce(max(version), 0) FROM canary_schema_migrations",
            &[],
        )
        .await
        .map_err(classify)?
        .get(0)
    } else {
        0
    };
    let known = latest();
    if current >= known {
        // Ended here rather than on drop, so the lock is released before this returns.
        tx.rollback().await.map_err(classify)?;
        return if current > known {
            Err(StoreError::NewerSchema {
                found: current,
                known,
            })
        } else {
            Ok(current)
        };
    }
    if !exists {
        tx.batch_execute(
            "CREATE TABLE canary_schema_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(classify)?;
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await.map_err(classify)?;
        tx.execute(
            "INSERT INTO canary_schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await
        .map_err(classify)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "database schema migrated"
        );
    }
    tx.commit().await.map_err(classify)?;
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_run_one_to_latest_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "migration {:?}", m.name);
        }
        assert_eq!(latest(), MIGRATIONS.len() as i32);
    }
}
