//! Results in PostgreSQL (`--database-url`): several `canary serve` replicas share them, and
//! a restart or a rolling update loses nothing.
//!
//! A bounded connection pool (deadpool) with short timeouts, so a database that is down
//! turns a judgement into a quick 503 rather than a hung request. Every statement is a
//! fixed text with bound parameters.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use futures_util::future::{BoxFuture, FutureExt};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::{migrations, Record, ResultStore, Retention, StoreError};

/// How long to wait for a connection (from the pool, or a new one) before answering 503.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection settings parsed from a `--database-url`.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
    shown: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for DatabaseUrl {
    /// The URL without its password, for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    /// A `postgres://USER:PASSWORD@HOST:PORT/DB?…` URL, or libpq's `key=value` form. The
    /// error never repeats the text (it may hold a password).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty".into());
        }
        let mut config = tokio_postgres::Config::from_str(s).map_err(|e| {
            let mut why = e.to_string();
            if let Some(p) = password_of(s) {
                why = why.replace(&p, "***");
            }
            format!("not a PostgreSQL URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE): {why}")
        })?;
        if config.get_hosts().is_empty() {
            return Err("names no host (postgres://USER:PASSWORD@HOST:PORT/DATABASE)".into());
        }
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(
                "sslmode=require: TLS to the database is not supported yet; use a connection \
                 on a trusted network (e.g. a sidecar proxy) with sslmode=disable or prefer"
                    .into(),
            );
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("canary-engine");
        let shown = shown(&config);
        Ok(DatabaseUrl { config, shown })
    }
}

/// The password of a URL-form connection string, to keep it out of messages.
fn password_of(s: &str) -> Option<String> {
    let rest = s.split_once("://")?.1;
    let userinfo = rest.split('@').next().filter(|_| rest.contains('@'))?;
    let (_, p) = userinfo.split_once(':')?;
    (!p.is_empty()).then(|| p.to_string())
}

fn shown(c: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        c.get_user().unwrap_or(""),
        c.get_dbname().unwrap_or("")
    )
}

/// Map a database error to what the server does about it.
pub(crate) fn classify(e: tokio_postgres::Error) -> StoreError {
    // The server's own words where there are some ("db error" alone says nothing).
    let said = match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    match e.code() {
        Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly(said),
        Some(c)
            if c.code().starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS =>
        {
            StoreError::Unavailable(said)
        }
        Some(_) => StoreError::Database(said),
        // No SQLSTATE: the connection itself failed or closed.
        None => StoreError::Unavailable(said),
    }
}

pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => classify(e),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// A pool of at most `pool_size` connections to `url`, the schema migrated (results and the
/// audit ledger share one schema history). Fails with [`StoreError::NewerSchema`] on a
/// database a newer canary-engine has migrated.
pub(crate) async fn connect(url: &DatabaseUrl, pool_size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        url.config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(pool_size.max(1))
        .timeouts(Timeouts {
            wait: Some(CONNECT_TIMEOUT),
            create: Some(CONNECT_TIMEOUT),
            recycle: Some(CONNECT_TIMEOUT),
        })
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Database(e.to_string()))?;
    let mut client = pool.get().await.map_err(pool_error)?;
    let before = migrations::migrate(&mut client).await?;
    tracing::info!(
        database = %url,
        schema = migrations::latest(),
        was = before,
        "PostgreSQL schema ready"
    );
    drop(client);
    Ok(pool)
}

/// Results in PostgreSQL.
pub struct PgStore {
    pool: Pool,
    retention: Retention,
    url: DatabaseUrl,
}

impl PgStore {
    /// Connect (see [`connect`]): a pool of at most `pool_size`, the schema migrated.
    pub async fn open(
        url: &DatabaseUrl,
        pool_size: usize,
        retention: Retention,
    ) -> Result<PgStore, StoreError> {
        let pool = connect(url, pool_size).await?;
        Ok(PgStore {
            pool,
            retention,
            url: url.clone(),
        })
    }

    /// The database, without its password.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn insert(&self, r: &Record) -> Result<(), StoreError> {
        let document = r
            .document()
            .map_err(|e| StoreError::Database(format!("cannot encode the result: {e}")))?;
        let document = String::from_utf8(document)
            .map_err(|e| StoreError::Database(format!("cannot encode the result: {e}")))?;
        let report = r.report();
        let verdict = r.judgement.verdict.as_str();
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO canary_judgements (id, judge, verdict, created_at, document, report)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &r.id,
                    &r.judgement.judge,
                    &verdict,
                    &r.created_at,
                    &document,
                    &report,
                ],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn text_of(&self, id: &str, column: Column) -> Result<Option<String>, StoreError> {
        let cutoff = self.retention.cutoff(Utc::now());
        let client = self.client().await?;
        let statement = match column {
            Column::Document => {
                "SELECT document FROM canary_judgements WHERE id = $1 AND created_at >= $2"
            }
            Column::Report => {
                "SELECT report FROM canary_judgements WHERE id = $1 AND created_at >= $2"
            }
        };
        let row = client
            .query_opt(statement, &[&id, &cutoff])
            .await
            .map_err(classify)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let cutoff: DateTime<Utc> = self.retention.cutoff(Utc::now());
        let keep = i64::try_from(self.retention.keep.max(1)).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let old = client
            .execute(
                "DELETE FROM canary_judgements WHERE created_at < $1",
                &[&cutoff],
            )
            .await
            .map_err(classify)?;
        let over = client
            .execute(
                "DELETE FROM canary_judgements WHERE id IN (
                     SELECT id FROM canary_judgements
                     ORDER BY created_at DESC, id DESC OFFSET $1)",
                &[&keep],
            )
            .await
            .map_err(classify)?;
        Ok(old + over)
    }

    async fn writable(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let read_only: String = client
            .query_one("SHOW transaction_read_only", &[])
            .await
            .map_err(classify)?
            .get(0);
        if read_only == "on" {
            return Err(StoreError::ReadOnly(
                "the database accepts reads only (transaction_read_only = on)".into(),
            ));
        }
        Ok(())
    }
}

enum Column {
    Document,
    Report,
}

impl ResultStore for PgStore {
    fn put<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Result<(), StoreError>> {
        self.insert(record).boxed()
    }

    fn document<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        async move {
            Ok(self
                .text_of(id, Column::Document)
                .await?
                .map(String::into_bytes))
        }
        .boxed()
    }

    fn report<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        self.text_of(id, Column::Report).boxed()
    }

    fn prune(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.delete_expired().boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        self.writable().boxed()
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let u: DatabaseUrl = "postgres://canary:s3cret@db.example:6432/results"
            .parse()
            .expect("valid");
        assert_eq!(u.to_string(), "postgres://canary@db.example:6432/results");
        assert!(!format!("{u:?}").contains("s3cret"));
    }

    #[test]
    fn a_malformed_url_never_repeats_its_password() {
        for bad in [
            "postgres://canary:s3cret@db:notaport/results",
            "postgres://canary:s3cret@db:5432/results?sslmode=sometimes",
            "postgres://canary:s3cret@db:5432/results?connect_timeout=soon",
        ] {
            let e = bad.parse::<DatabaseUrl>().expect_err(bad);
            assert!(!e.contains("s3cret"), "{bad}: {e}");
            assert!(e.contains("PostgreSQL URL"), "{bad}: {e}");
        }
        assert!("".parse::<DatabaseUrl>().is_err());
        assert!("postgres://canary:s3cret@db/x?sslmode=require"
            .parse::<DatabaseUrl>()
            .is_err_and(|e| e.contains("TLS")));
    }

    #[test]
    fn the_password_is_found_in_a_url() {
        assert_eq!(
            password_of("postgres://u:p%40ss@h/db").as_deref(),
            Some("p%40ss")
        );
        assert_eq!(password_of("postgres://u@h/db"), None);
        assert_eq!(password_of("host=h user=u"), None);
    }
}
