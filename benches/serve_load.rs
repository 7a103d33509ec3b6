//! Load harness for `canary serve`: many concurrent Argo-style clients asking for the same
//! judgement, against a fast Prometheus stand-in, loopback only, bounded in time.
//!
//! The server is the real binary (`canary serve`, release build) in its own process, so its
//! peak RSS is its own. The stand-in answers every query and range query in microseconds with
//! a fixed 21-point series and counts what it receives, so the latency measured is the
//! engine's own (plus loopback) and "queries per judgement" is exact.
//!
//! Three runs: one client alone without the cache (the unloaded latency of a judgement:
//! 18 queries and the statistics), then many clients with query coalescing (the default)
//! and with `--no-query-cache`.
//! `cargo bench --bench serve_load` runs 200 clients for 30 s per run; under
//! `cargo test --all-targets` it runs 20 clients for 2 s, as a smoke test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/serve.rs"]
#[macro_use]
mod serve;

use axum::extract::State;
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{json, Value};

const SPEC: &str = "analysis-templates/judge-istio-kayenta-compatible.yaml";

/// The stand-in's answer to any query: a range query gets a 21-point matrix, an instant query
/// a one-sample vector. Values are deterministic per query text.
async fn answer(
    State(count): State<Arc<AtomicU64>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Json<Value> {
    count.fetch_add(1, Ordering::Relaxed);
    let query = form
        .iter()
        .find(|(k, _)| k == "query")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let seed = query.len() as f64;
    let start: f64 = form
        .iter()
        .find(|(k, _)| k == "start")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0);
    if form.iter().any(|(k, _)| k == "step") {
        let values: Vec<Value> = (0..21)
            .map(|i| {
                json!([
                    start + 30.0 * i as f64,
                    format!("{}", 100.0 + ((i as f64 * 7.0 + seed) % 13.0))
                ])
            })
            .collect();
        Json(
            json!({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]}}),
        )
    } else {
        Json(
            json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [start, "1000"]}]}}),
        )
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct RunResult {
    judgements: u64,
    errors: u64,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    queries: u64,
    rss_mib: f64,
}

fn run(
    rt: &tokio::runtime::Runtime,
    clients: usize,
    duration: Duration,
    extra: &[&str],
) -> RunResult {
    let count = Arc::new(AtomicU64::new(0));
    let prom_url = rt.block_on(async {
        let app = Router::new()
            .route("/api/v1/query", post(answer))
            .route("/api/v1/query_range", post(answer))
            .with_state(count.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://{addr}")
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC),
        dir.path().join("spec.yaml"),
    )
    .unwrap();
    let mut args = os_args!["--judges", dir.path(), "--max-concurrent", "1024"];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    let server = serve::start(&prom_url, args);
    let url = server.url.clone();

    let body = json!({"judge": "istio-kayenta-compatible", "args": {
        "service": "checkout", "namespace": "prod", "canary_hash": "c0ffee", "stable_hash": "5tab1e"}});
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let latencies: Vec<Duration> = rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (client, url, body, errors) =
                    (client.clone(), url.clone(), body.clone(), errors.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while started.elapsed() < duration {
                        let t = Instant::now();
                        let ok = match client
                            .post(format!("{url}/api/v1/judge"))
                            .json(&body)
                            .send()
                            .await
                        {
                            Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        if ok {
                            lat.push(t.elapsed());
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let seconds = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib(server.child.id());
    drop(server);
    let mut sorted = latencies.clone();
    sorted.sort();
    let q = |p: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * p) as usize)
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN)
    };
    RunResult {
        judgements: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        seconds,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: sorted
            .last()
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(f64::NAN),
        queries: count.load(Ordering::Relaxed),
        rss_mib: rss as f64 / 1024.0,
    }
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (clients, duration) = if bench {
        (200, Duration::from_secs(30))
    } else {
        (20, Duration::from_secs(2))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("canary serve under load: {clients} concurrent clients, {} s per run, identical judgements, loopback", duration.as_secs());
    println!(
        "{:<22} {:>10} {:>8} {:>9} {:>9} {:>9} {:>14} {:>9}",
        "run", "judgements", "per s", "p50 ms", "p99 ms", "max ms", "queries/judg.", "RSS MiB"
    );
    let runs: [(&str, usize, &[&str]); 3] = [
        ("1 client, no cache", 1, &["--no-query-cache"]),
        ("coalescing (default)", clients, &[]),
        ("--no-query-cache", clients, &["--no-query-cache"]),
    ];
    for (name, clients, extra) in runs {
        let r = run(&rt, clients, duration, extra);
        assert!(
            r.judgements > 0,
            "no judgement succeeded ({} errors)",
            r.errors
        );
        println!(
            "{:<22} {:>10} {:>8.0} {:>9.2} {:>9.2} {:>9.2} {:>14.3} {:>9.1}{}",
            name,
            r.judgements,
            r.judgements as f64 / r.seconds,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.queries as f64 / r.judgements as f64,
            r.rss_mib,
            if r.errors > 0 {
                format!("  ({} errors)", r.errors)
            } else {
                String::new()
            }
        );
    }
}
