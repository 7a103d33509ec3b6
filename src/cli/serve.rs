//! `canary serve`: the judge service Argo Rollouts calls as a web metric provider.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::prometheus_args::PrometheusArgs;
use super::{CliError, Exit};
use crate::audit::postgres::PgLedger;
use crate::server::{self, specs::JudgeStore, AppState, Settings};
use crate::source::{metrics::SourceMetrics, Sources};
use crate::store::memory::MemoryStore;
use crate::store::postgres::{DatabaseUrl, PgStore};
use crate::store::{ResultStore, Retention, StoreError};

/// Serve judgements over HTTP for Argo Rollouts' web metric provider:
/// POST /api/v1/judge {"judge": NAME, "args": {...}} → {"verdict": "pass|marginal|fail|inconclusive", ...}.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the bound address is logged).
    #[arg(
        long,
        env = "CANARY_LISTEN",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Directory of Judge specs (YAML, `kind: Judge`; other kinds are skipped). Reloaded when
    /// files change and on SIGHUP; a broken file keeps its last good version serving.
    #[arg(long, env = "CANARY_JUDGES", value_name = "DIR")]
    pub judges: Option<PathBuf>,
    /// File holding the bearer token the API requires (else CANARY_TOKEN; neither: no auth).
    #[arg(long, env = "CANARY_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Accept inline Judge specs in request bodies (off by default).
    #[arg(long, env = "CANARY_ALLOW_INLINE")]
    pub allow_inline: bool,
    /// Answer within this, or give up with 504 (keep it under Argo's web timeout, 10 s by default).
    #[arg(long, env = "CANARY_DEADLINE", default_value = "8s", value_parser = humantime::parse_duration)]
    pub deadline: Duration,
    /// Largest request body accepted (bytes); larger gets 413.
    #[arg(long, env = "CANARY_MAX_BODY_BYTES", default_value_t = 65536)]
    pub max_body_bytes: usize,
    /// A client must send its request headers within this, and its body within this again;
    /// slower clients are cut off (headers) or answered 408 (body).
    #[arg(long, env = "CANARY_CLIENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub client_timeout: Duration,
    /// Judgements running at once; more get 503 with Retry-After.
    #[arg(long, env = "CANARY_MAX_CONCURRENT", default_value_t = 256)]
    pub max_concurrent: usize,
    /// Client connections open at once (idle keep-alive ones included); more are answered
    /// 503 `too_many_connections` as they arrive (over TLS: closed).
    #[arg(long, env = "CANARY_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Keep Prometheus answers this long; identical concurrent queries always share one answer.
    #[arg(long, env = "CANARY_CACHE_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub cache_ttl: Duration,
    /// Send every query to Prometheus: no coalescing of identical queries, no cache
    /// (for debugging, and to measure what coalescing saves).
    #[arg(long, env = "CANARY_NO_QUERY_CACHE")]
    pub no_query_cache: bool,
    /// How often to look for changed Judge spec files.
    #[arg(long, env = "CANARY_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key; e.g. from a cert-manager
    /// Secret). Without both, plain HTTP.
    #[arg(
        long,
        env = "CANARY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        long,
        env = "CANARY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Results kept for GET /api/v1/analyses/{id} and /reports/{id} (with a database, in all;
    /// without, per replica); the oldest go first.
    #[arg(long, env = "CANARY_KEEP_RESULTS", default_value_t = 1000)]
    pub keep_results: usize,
    /// Results older than this are deleted.
    #[arg(long, env = "CANARY_KEEP_FOR", default_value = "30d", value_parser = humantime::parse_duration)]
    pub keep_for: Duration,
    /// Keep results in PostgreSQL (postgres://USER:PASSWORD@HOST:PORT/DATABASE), so that every
    /// replica answers any id and a restart loses nothing. The schema is created or upgraded
    /// at start. Unset: results live in this process's memory (run one replica).
    #[arg(
        long,
        env = "CANARY_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Connections to the database at most, per replica.
    #[arg(
        long,
        env = "CANARY_DATABASE_POOL_SIZE",
        default_value_t = 8,
        value_name = "N"
    )]
    pub database_pool_size: usize,
    /// Serve the promotion audit ledger in this PostgreSQL database read-only at
    /// GET /api/v1/audit (with --reader-token-file); every read is recorded as
    /// `audit.accessed`.
    #[arg(
        long,
        env = "CANARY_AUDIT_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub audit_url: Option<String>,
    /// File holding the bearer token of the ledger's readers (else CANARY_READER_TOKEN): it
    /// may read GET /api/v1/audit and nothing else; the judge token may not read the ledger.
    #[arg(long, env = "CANARY_READER_TOKEN_FILE", value_name = "FILE")]
    pub reader_token_file: Option<PathBuf>,
    /// How often expired results are deleted.
    #[arg(long, env = "CANARY_PRUNE_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration, hide = true)]
    pub prune_interval: Duration,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
}

/// A token from `file`, else from the environment variable `var`; `None` when neither.
fn token_from(flag: &str, file: Option<&PathBuf>, var: &str) -> Result<Option<String>, CliError> {
    if let Some(p) = file {
        let t = std::fs::read_to_string(p)
            .map_err(|e| CliError::usage(format!("cannot read {flag} {}: {e}", p.display())))?;
        let t = t.trim().to_string();
        if t.is_empty() {
            return Err(CliError::usage(format!("{flag} {} is empty", p.display())));
        }
        return Ok(Some(t));
    }
    Ok(std::env::var(var)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// Run the server until SIGTERM or Ctrl-C, then drain in-flight requests.
pub fn run(a: &ServeArgs) -> Result<Exit, CliError> {
    let config = a.prometheus.config()?;
    if config.url.is_none() {
        return Err(CliError::usage(
            "set --prometheus (or CANARY_PROMETHEUS_URL): the server never takes an address from a request",
        ));
    }
    if let Some(dir) = &a.judges {
        if !dir.is_dir() {
            return Err(CliError::usage(format!(
                "--judges {} is not a directory",
                dir.display()
            )));
        }
    }
    let settings = Settings {
        allow_inline: a.allow_inline,
        deadline: a.deadline,
        token: token_from("--token-file", a.token_file.as_ref(), "CANARY_TOKEN")?,
        reader_token: token_from(
            "--reader-token-file",
            a.reader_token_file.as_ref(),
            "CANARY_READER_TOKEN",
        )?,
        max_body_bytes: a.max_body_bytes,
        max_concurrent: a.max_concurrent,
        client_timeout: a.client_timeout,
        max_connections: a.max_connections,
    };
    let sources = Sources::live(config).map_err(|e| CliError::usage(e.to_string()))?;
    let ttl = a.cache_ttl;
    let no_cache = a.no_query_cache;
    let database = match a.database_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => Some(u.parse::<DatabaseUrl>().map_err(|why| {
            CliError::usage(format!("--database-url (CANARY_DATABASE_URL): {why}"))
        })?),
    };
    let audit_url = match a.audit_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => Some(
            u.parse::<DatabaseUrl>()
                .map_err(|why| CliError::usage(format!("--audit-url (CANARY_AUDIT_URL): {why}")))?,
        ),
    };
    if settings.reader_token.is_some() && settings.reader_token == settings.token {
        return Err(CliError::usage(
            "--reader-token-file: the readers' token must differ from the judge token",
        ));
    }
    let retention = Retention {
        keep: a.keep_results,
        keep_for: a.keep_for,
    };
    let specs = JudgeStore::new(a.judges.clone());
    let runtime = super::runtime(None)?;
    runtime.block_on(async {
        let results = open_results(database.as_ref(), a.database_pool_size, retention).await?;
        crate::store::spawn_pruner(results.clone(), a.prune_interval);
        let ledger = match &audit_url {
            None => None,
            Some(url) => Some(Arc::new(
                PgLedger::open(url)
                    .await
                    .map_err(|e| CliError::infrastructure(e.to_string()))?,
            )),
        };
        let state = AppState::new(
            settings,
            |registry| {
                let sources = sources.with_metrics(SourceMetrics::register(registry));
                if no_cache {
                    sources
                } else {
                    sources.with_cache(ttl)
                }
            },
            specs,
            results,
            ledger,
        );
        state.reload();
        for b in state.specs().broken() {
            tracing::warn!(file = %b.file, error = %b.error, "judge spec not loaded");
        }
        let tls = match (&a.tls_cert, &a.tls_key) {
            (Some(cert), Some(key)) => Some(server::tls_config(cert, key).await.map_err(|e| {
                CliError::usage(format!(
                    "cannot use --tls-cert {} / --tls-key {}: {e}",
                    cert.display(),
                    key.display()
                ))
            })?),
            _ => None,
        };
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .map_err(|e| CliError::usage(format!("cannot listen on {}: {e}", a.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::usage(e.to_string()))?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // The handlers go in before the address is announced: a SIGTERM sent as soon as the
        // line appears (a pod stopped while it starts) drains instead of killing.
        let shutdown = shutdown_signal();
        eprintln!(
            "canary serve listening on {addr} ({scheme}, {} judges)",
            state.specs().names().len()
        );
        server::spawn_reloader(state.clone(), a.reload_interval);
        // Requests in flight get the deadline plus a margin to finish.
        let drain = a.deadline + Duration::from_secs(2);
        let served = match tls {
            Some(config) => server::serve_tls(listener, state, config, drain, shutdown).await,
            None => server::serve(listener, state, drain, shutdown).await,
        };
        served.map_err(|e| CliError::infrastructure(format!("server failed: {e}")))?;
        eprintln!("canary serve: drained, exiting");
        Ok(Exit::Success)
    })
}

/// How long a database that cannot be reached at start is retried before giving up.
const DATABASE_START_PATIENCE: Duration = Duration::from_secs(30);

/// The result store: PostgreSQL (migrated, waiting up to [`DATABASE_START_PATIENCE`] for it to
/// come up), or memory.
async fn open_results(
    database: Option<&DatabaseUrl>,
    pool_size: usize,
    retention: Retention,
) -> Result<Arc<dyn ResultStore>, CliError> {
    let Some(url) = database else {
        return Ok(Arc::new(MemoryStore::new(retention)));
    };
    let started = std::time::Instant::now();
    loop {
        match PgStore::open(url, pool_size, retention).await {
            Ok(s) => return Ok(Arc::new(s)),
            Err(e @ StoreError::Unavailable(_)) if started.elapsed() < DATABASE_START_PATIENCE => {
                tracing::warn!(database = %url, error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(CliError::new(Exit::from(&e), format!("{url}: {e}"))),
        }
    }
}

fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    let signal = super::terminate_signal();
    async move {
        signal.await;
        tracing::info!("shutting down: draining in-flight requests");
    }
}
