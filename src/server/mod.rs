//! `canary serve`: the judge as an HTTP service, for Argo Rollouts' web metric provider.
//!
//! Routes (contract in ARCHITECTURE.md, listed in [`openapi::Route`] and described by the
//! OpenAPI document `openapi.json`): `POST /api/v1/judge`, `GET /api/v1/analyses/{id}`,
//! `GET /reports/{id}`, `GET /healthz`, `GET /readyz`, `GET /metrics`. Infrastructure failures
//! are HTTP errors (502/503/504) so Argo records an Error measurement — never a pass.

mod audit;
mod connections;
pub mod error;
mod judge;
pub mod metrics;
pub mod openapi;
pub mod specs;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use self::error::AppError;
use self::metrics::{RouteLabels, ServerMetrics};
use self::openapi::{Access, Route};
use self::specs::JudgeStore;
use crate::audit::postgres::PgLedger;
use crate::judging;
use crate::source::{PromQuery, Sources};
use crate::store::{ResultStore, StoreError};

/// Server settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Accept inline specs in request bodies.
    pub allow_inline: bool,
    /// Answer (or give up with 504) within this.
    pub deadline: Duration,
    /// Bearer token required on the API, if set.
    pub token: Option<String>,
    /// Bearer token of the ledger's readers (`GET /api/v1/audit`); it cannot judge, and the
    /// judge token cannot read the ledger.
    pub reader_token: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Judgements running at once; more get 503.
    pub max_concurrent: usize,
    /// A client has this long to send a request's headers, and again its body; a client
    /// trickling bytes is cut off (headers) or answered 408 (body).
    pub client_timeout: Duration,
    /// Client connections open at once; more are answered 503 (plain HTTP) or closed (TLS)
    /// as they arrive.
    pub max_connections: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            allow_inline: false,
            deadline: Duration::from_secs(8),
            token: None,
            reader_token: None,
            max_body_bytes: 64 * 1024,
            max_concurrent: 256,
            client_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Everything the handlers share, built once at start-up.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    sources: Sources,
    specs: JudgeStore,
    results: Arc<dyn ResultStore>,
    ledger: Option<Arc<PgLedger>>,
    metrics: ServerMetrics,
    registry: Registry,
    permits: Arc<Semaphore>,
    ready: Mutex<Option<(Instant, Readiness)>>,
}

/// What `/readyz` last found.
#[derive(Clone)]
struct Readiness {
    prometheus: Result<(), String>,
    results: Result<(), String>,
}

impl AppState {
    /// Build the state: sources get the coalescing cache's metrics registered here; judge
    /// specs come from `specs`, and results are kept in `results`.
    pub fn new(
        settings: Settings,
        sources: impl FnOnce(&mut Registry) -> Sources,
        specs: JudgeStore,
        results: Arc<dyn ResultStore>,
        ledger: Option<Arc<PgLedger>>,
    ) -> Self {
        let mut registry = Registry::default();
        let metrics = ServerMetrics::register(&mut registry);
        let sources = sources(&mut registry);
        let permits = Arc::new(Semaphore::new(settings.max_concurrent.max(1)));
        AppState {
            inner: Arc::new(Inner {
                settings,
                sources,
                specs,
                results,
                ledger,
                metrics,
                registry,
                permits,
                ready: Mutex::new(None),
            }),
        }
    }

    /// The connection limit, counted in this server's metrics; `answer_refusals` for plain
    /// HTTP, where a refused connection can still be told why.
    fn connection_limit(&self, answer_refusals: bool) -> connections::ConnectionLimit {
        let m = &self.inner.metrics;
        connections::ConnectionLimit::new(
            self.inner.settings.max_connections,
            answer_refusals,
            m.open_connections.clone(),
            m.refused_connections.clone(),
        )
    }

    /// The judge specs.
    pub fn specs(&self) -> &JudgeStore {
        &self.inner.specs
    }

    /// Reload specs and account for failures.
    pub fn reload(&self) {
        let r = self.inner.specs.reload();
        if r.failed > 0 {
            self.inner.metrics.reload_failures.inc_by(r.failed as u64);
        }
        self.inner
            .metrics
            .broken_specs
            .set(self.inner.specs.broken().len() as i64);
    }
}

/// The router (tests drive it directly or over TCP): every [`Route`] and nothing else, each
/// behind the token its [`Access`] names; anything else is a JSON 404 or 405.
pub fn router(state: AppState) -> Router {
    let (mut api, mut ledger, mut public) = (Router::new(), Router::new(), Router::new());
    for route in Route::ALL {
        let served = endpoint(route);
        match route.access() {
            Access::Judge => api = api.route(route.path(), served),
            Access::Reader => ledger = ledger.route(route.path(), served),
            Access::Public => public = public.route(route.path(), served),
        }
    }
    let api = api.route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let ledger = ledger.route_layer(middleware::from_fn_with_state(state.clone(), audit::auth));
    Router::new()
        .merge(api)
        .merge(ledger)
        .merge(public)
        .fallback(openapi::not_found)
        .method_not_allowed_fallback(openapi::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(state.inner.settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .with_state(state)
}

/// The handler of `route` (the match makes a new [`Route`] need one).
fn endpoint(route: Route) -> axum::routing::MethodRouter<AppState> {
    match route {
        Route::Judge => route.on(judge::judge),
        Route::Analysis => route.on(analysis),
        Route::Judges => route.on(judges),
        Route::Budgets => route.on(budgets),
        Route::Report => route.on(report_page),
        Route::Audit => route.on(audit::read),
        Route::OpenApi => route.on(openapi::document),
        Route::Healthz => route.on(|| async { "ok\n" }),
        Route::Readyz => route.on(readyz),
        Route::Metrics => route.on(metrics_text),
    }
}

/// The most of an oversized body read (and discarded) so that the client, still writing,
/// can read the 413; past it, or after the client timeout, the connection is closed.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// `e` with `Connection: close`: the rest of what the client sends is not read.
fn closing(e: AppError) -> Response {
    let mut resp = e.into_response();
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}

fn too_large(limit: usize) -> Response {
    closing(AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body over {limit} bytes"),
    ))
}

/// Every request body is read here first, within the client timeout and the size limit:
/// - declared over the limit: read and discarded (bounded), then 413 with
///   `Connection: close` — answering while the client is still sending would make the
///   server close first, and an ordinary client would see a broken pipe, not the answer;
/// - sent without a length and over the limit: 413;
/// - trickled slower than the client timeout: 408, so a slow client cannot hold a
///   connection and a judgement slot for ever.
async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use futures_util::StreamExt as _;
    let limit = state.inner.settings.max_body_bytes;
    let timeout = state.inner.settings.client_timeout;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|d| d > limit as u64) {
        if declared.is_some_and(|d| d <= DRAIN_BYTES as u64) {
            let mut stream = req.into_body().into_data_stream();
            let drain = async {
                let mut read = 0usize;
                while let Some(Ok(chunk)) = stream.next().await {
                    read += chunk.len();
                    if read > DRAIN_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(timeout, drain).await;
        }
        return too_large(limit);
    }
    if declared == Some(0) || req.method() == axum::http::Method::GET {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => {
            return closing(AppError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "request body not received within {}",
                    humantime::format_duration(timeout)
                ),
            ))
        }
        Ok(Err(_)) => return too_large(limit),
        Ok(Ok(b)) => b,
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Serve plain HTTP on `listener` until `shutdown` resolves; then stop accepting and give
/// requests in flight up to `drain` to finish. A connection must send its request headers
/// within the client timeout.
pub async fn serve<F>(
    listener: TcpListener,
    state: AppState,
    drain: Duration,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let limit = state.connection_limit(true);
    let server = axum_server::from_tcp(listener.into_std()?)?.acceptor(limit);
    hardened(server, &state, drain, shutdown)
        .serve(router(state).into_make_service())
        .await
}

/// What plain HTTP and HTTPS share: request headers within the client timeout, and on
/// `shutdown` no new connections while requests in flight get up to `drain`.
fn hardened<Acc, F>(
    server: axum_server::Server<std::net::SocketAddr, Acc>,
    state: &AppState,
    drain: Duration,
    shutdown: F,
) -> axum_server::Server<std::net::SocketAddr, Acc>
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(drain));
    });
    let timeout = state.inner.settings.client_timeout;
    let mut server = server.handle(handle).first_request_timeout(timeout);
    server.http_builder().http1().header_read_timeout(timeout);
    server
}

/// Serve HTTPS with `config` (see [`tls_config`]), until `shutdown` resolves; then stop
/// accepting and give requests in flight up to `drain` to finish.
pub async fn serve_tls<F>(
    listener: TcpListener,
    state: AppState,
    config: axum_server::tls_rustls::RustlsConfig,
    drain: Duration,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let tls = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .acceptor(state.connection_limit(false));
    let server = axum_server::from_tcp(listener.into_std()?)?.acceptor(tls);
    hardened(server, &state, drain, shutdown)
        .serve(router(state).into_make_service())
        .await
}

/// Load a PEM certificate chain and private key for [`serve_tls`].
pub async fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<axum_server::tls_rustls::RustlsConfig> {
    axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await
}

/// Reload specs every `interval` and on SIGHUP, until the process ends.
pub fn spawn_reloader(state: AppState, interval: Duration) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            #[cfg(unix)]
            {
                let hup_signal = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = hup_signal => { tracing::info!("SIGHUP: reloading judge specs"); }
                }
            }
            #[cfg(not(unix))]
            tick.tick().await;
            state.reload();
        }
    });
}

/// Count every request by route and status; log it with a request id.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %request_id, route = %route);
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    state
        .inner
        .metrics
        .requests
        .get_or_create(&RouteLabels {
            route: route.clone(),
            status,
        })
        .inc();
    span.in_scope(|| {
        tracing::info!(
            status,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "handled"
        );
    });
    if let Ok(v) = request_id.parse() {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Whether `headers` carry bearer token `token` (compared in constant time).
fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// Bearer-token check (constant-time) when a token is configured; the ledger readers'
/// token is refused here with 403 (it may read the ledger, not judge).
async fn auth(
    State(state): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    if let Some(token) = &state.inner.settings.token {
        if !bearer_is(&headers, token) {
            let reader = state
                .inner
                .settings
                .reader_token
                .as_deref()
                .is_some_and(|r| bearer_is(&headers, r));
            return Err(if reader {
                AppError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "the ledger readers' token may read /api/v1/audit, not judge",
                )
            } else {
                AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong bearer token",
                )
            });
        }
    }
    Ok(next.run(req).await)
}

/// A store failure as the API answers it: 503 (Argo records an Error measurement and asks
/// again), with the reason.
fn store_error(e: StoreError) -> AppError {
    let code = match e {
        StoreError::ReadOnly(_) => "database_read_only",
        StoreError::Unavailable(_) => "database_unavailable",
        StoreError::NewerSchema { .. } | StoreError::Database(_) => "database_error",
    };
    AppError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
}

fn unknown_analysis(id: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "unknown_analysis",
        format!("no analysis {id:?} (kept: the most recent --keep-results, for --keep-for)"),
    )
}

async fn analysis(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, AppError> {
    let Path(id) = id?;
    let doc = state
        .inner
        .results
        .document(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| unknown_analysis(&id))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], doc).into_response())
}

async fn report_page(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, AppError> {
    let Path(id) = id?;
    let page = state
        .inner
        .results
        .report(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| unknown_analysis(&id))?;
    Ok(Html(page))
}

/// The error budgets of a judge's SLOs (query parameters are its args), shaped as a deploy
/// policy's input.
async fn budgets(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    args: Result<
        axum::extract::Query<BTreeMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Json<Value>, AppError> {
    let Path(name) = name?;
    let axum::extract::Query(args) =
        args.map_err(|e| AppError::bad_request("bad_args", e.body_text(), Some("args")))?;
    let inner = &state.inner;
    let spec = inner.specs.get(&name).ok_or_else(|| {
        AppError::new(
            StatusCode::NOT_FOUND,
            "unknown_judge",
            format!(
                "no judge named {name:?} (loaded: {})",
                inner.specs.names().join(", ")
            ),
        )
    })?;
    let deadline = inner.settings.deadline;
    let run = judging::budget::run(&spec, &args, &inner.sources, chrono::Utc::now(), deadline);
    let budgets = tokio::time::timeout(deadline, run).await.map_err(|_| {
        AppError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline_exceeded",
            format!("no answer within the {} ms deadline", deadline.as_millis()),
        )
    })??;
    Ok(Json(serde_json::to_value(budgets).unwrap_or(Value::Null)))
}

async fn judges(State(state): State<AppState>) -> Json<Value> {
    Json(json!({"judges": state.inner.specs.names(), "broken": state.inner.specs.broken()}))
}

/// Ready when Prometheus answers and the result store takes writes; the body says which
/// is not (checked at most every 5 s).
async fn readyz(State(state): State<AppState>) -> Response {
    let inner = &state.inner;
    let cached = inner
        .ready
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .filter(|(at, _)| at.elapsed() < Duration::from_secs(5));
    let ready = match cached {
        Some((_, r)) => r,
        None => {
            let mut q = PromQuery::instant("vector(1)");
            q.timeout = Duration::from_secs(2);
            let (prometheus, results) =
                tokio::join!(inner.sources.prometheus(&q), inner.results.check());
            let r = Readiness {
                prometheus: prometheus.map(|_| ()).map_err(|e| e.to_string()),
                results: results.map_err(|e| e.to_string()),
            };
            *inner.ready.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((Instant::now(), r.clone()));
            r
        }
    };
    let said = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let mut body = json!({
        "prometheus": said(&ready.prometheus),
        "results": {"store": inner.results.kind(), "status": said(&ready.results)},
        "judges": inner.specs.names(),
        "broken": inner.specs.broken(),
    });
    // Not ready is an error like any other non-2xx: the API's error shape, beside the parts.
    let not_ready = match (&ready.prometheus, &ready.results) {
        (Ok(()), Ok(())) => return (StatusCode::OK, Json(body)).into_response(),
        (Err(e), _) => format!("prometheus: {e}"),
        (_, Err(e)) => format!("result store: {e}"),
    };
    body["error"] = json!({"code": "not_ready", "message": not_ready});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &state.inner.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            out,
        )
            .into_response(),
        Err(e) => AppError::new(StatusCode::INTERNAL_SERVER_ERROR, "metrics", e.to_string())
            .into_response(),
    }
}
