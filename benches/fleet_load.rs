//! Fleet load harness for `canary serve`: N distinct analyses (one service and two
//! pod-template hashes each), each polling every `interval` as Argo does, against a real
//! Prometheus (Debian's, loaded with `promtool`) holding that many services, through one
//! replica (results in memory) and through two replicas sharing a real PostgreSQL.
//!
//! Reports sustained judgements/s, client-side p50/p99/max latency, the queries Prometheus
//! answered (from its own `prometheus_http_requests_total`), queries per judgement, each
//! server's peak RSS and the database connections open at the end.
//!
//! `cargo bench --bench fleet_load` runs N = 100, 1,000 and 5,000 (`FLEET_N=100,1000`) with a
//! 30 s interval for 90 s per run (`FLEET_INTERVAL`, `FLEET_SECS`); under
//! `cargo test --all-targets` it runs 10 analyses polling every second for 3 s, as a smoke
//! test. Loopback only; every request loop is bounded in time.

use serve::Server;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

// The tests' own harnesses for the real servers (`postgres` finds `prom` as `super::prom`).
#[path = "common/fleet_data.rs"]
mod fleet_data;
#[path = "common/serve.rs"]
#[macro_use]
mod serve;
#[allow(dead_code)]
#[path = "../tests/common/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "../tests/common/prom.rs"]
mod prom;

const SPEC: &str = "analysis-templates/judge-istio-golden-signals.yaml";
const TOKEN: &str = "fleet-bench-token";

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Queries Prometheus has answered so far (instant and range), from its own metrics.
async fn prometheus_queries(client: &reqwest::Client, prometheus: &str) -> f64 {
    let text = client
        .get(format!("{prometheus}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("prometheus_http_requests_total{"))
        .filter(|l| {
            l.contains("handler=\"/api/v1/query\"") || l.contains("handler=\"/api/v1/query_range\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

struct Outcome {
    judgements: usize,
    errors: BTreeMap<u16, usize>,
    verdicts: BTreeMap<String, usize>,
    seconds: f64,
    latencies_ms: Vec<f64>,
    queries: f64,
    rss_mib: Vec<f64>,
}

/// `n` analyses, analysis `i` polling every `interval` from `i · interval / n`, for
/// `duration`, spread round-robin over `servers`.
fn run(
    rt: &tokio::runtime::Runtime,
    prometheus: &str,
    servers: &[Server],
    n: usize,
    interval: Duration,
    duration: Duration,
) -> Outcome {
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let before = rt.block_on(prometheus_queries(&client, prometheus));
    let started = Instant::now();
    let results: Vec<(u16, f64, String)> = rt.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (client, urls) = (client.clone(), urls.clone());
                let body = json!({"judge": "istio-golden-signals", "since": since.to_rfc3339(),
                    "args": {"service": format!("svc{i}"), "namespace": "fleet",
                             "canary_hash": format!("c{i}"), "stable_hash": format!("s{i}")}});
                let offset = interval.mul_f64(i as f64 / n as f64);
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    let mut poll = 0u32;
                    loop {
                        let at = offset + interval * poll;
                        if at >= duration {
                            break out;
                        }
                        tokio::time::sleep_until((started + at).into()).await;
                        let url = &urls[(i + poll as usize) % urls.len()];
                        let t = Instant::now();
                        let sent = client
                            .post(format!("{url}/api/v1/judge"))
                            .bearer_auth(TOKEN)
                            .json(&body)
                            .send()
                            .await;
                        let (status, verdict) = match sent {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let v: Value = r.json().await.unwrap_or(Value::Null);
                                (status, v["verdict"].as_str().unwrap_or("").to_string())
                            }
                            Err(_) => (0, String::new()),
                        };
                        out.push((status, t.elapsed().as_secs_f64() * 1e3, verdict));
                        poll += 1;
                    }
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
    let after = rt.block_on(prometheus_queries(&client, prometheus));
    let mut o = Outcome {
        judgements: 0,
        errors: BTreeMap::new(),
        verdicts: BTreeMap::new(),
        seconds,
        latencies_ms: Vec::new(),
        queries: after - before,
        rss_mib: servers
            .iter()
            .map(|s| status_kib(s.child.id(), "VmHWM:") as f64 / 1024.0)
            .collect(),
    };
    for (status, ms, verdict) in results {
        if status == 200 {
            o.judgements += 1;
            o.latencies_ms.push(ms);
            *o.verdicts.entry(verdict).or_default() += 1;
        } else {
            *o.errors.entry(status).or_default() += 1;
        }
    }
    o.latencies_ms.sort_by(f64::total_cmp);
    o
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env_or = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let (sizes, interval, duration): (Vec<usize>, Duration, Duration) = if bench {
        (
            env_or("FLEET_N", "100,1000,5000")
                .split(',')
                .map(|s| s.trim().parse().expect("FLEET_N: numbers"))
                .collect(),
            humantime::parse_duration(&env_or("FLEET_INTERVAL", "30s")).unwrap(),
            humantime::parse_duration(&env_or("FLEET_SECS", "90s")).unwrap(),
        )
    } else {
        (vec![10], Duration::from_secs(1), Duration::from_secs(3))
    };
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let now = chrono::Utc::now().timestamp();
    let t = Instant::now();
    let now = now - now % 30;
    let data = fleet_data::openmetrics(largest, now - 900, now + 300);
    let prometheus = prom::Prometheus::start(&data);
    drop(data);
    println!(
        "fleet: a real Prometheus holding {largest} services (loaded in {:.0} s); each analysis \
         polls every {} for {}",
        t.elapsed().as_secs_f64(),
        humantime::format_duration(interval),
        humantime::format_duration(duration)
    );
    let postgres = postgres::Postgres::start();
    let judges = tempfile::tempdir().unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SPEC),
        judges.path().join("spec.yaml"),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{:<7} {:<22} {:>10} {:>7} {:>8} {:>8} {:>8} {:>10} {:>9} {:>12} {:>7}  errors / verdicts",
        "N",
        "replicas",
        "judgements",
        "per s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "queries/s",
        "q/judg.",
        "peak RSS MiB",
        "db conn"
    );
    for &n in &sizes {
        let mut setups: Vec<(&str, Option<String>)> = vec![("1, memory", None)];
        if let Some(pg) = &postgres {
            setups.push((
                "2, shared PostgreSQL",
                Some(pg.database(&format!("fleet{n}"))),
            ));
        }
        for (name, db) in setups {
            let replicas = if db.is_some() { 2 } else { 1 };
            let servers: Vec<Server> = (0..replicas)
                .map(|_| {
                    let token = judges.path().join("token");
                    std::fs::write(&token, TOKEN).unwrap();
                    let mut args = os_args![
                        "--judges",
                        judges.path(),
                        "--token-file",
                        &token,
                        "--max-concurrent",
                        "1024",
                        "--keep-results",
                        "100000",
                    ];
                    if let Some(db) = db.as_deref() {
                        args.extend(os_args!["--database-url", db]);
                    }
                    serve::start(&prometheus.url, args)
                })
                .collect();
            let o = run(&rt, &prometheus.url, &servers, n, interval, duration);
            let connections = match (&postgres, &db) {
                (Some(pg), Some(_)) => pg.sql(
                    "postgres",
                    &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = 'fleet{n}'"),
                ),
                _ => "-".into(),
            };
            assert!(o.judgements > 0, "no judgement succeeded: {:?}", o.errors);
            println!(
                "{:<7} {:<22} {:>10} {:>7.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1} {:>9.2} {:>12} {:>7}  {:?} / {:?}",
                n,
                name,
                o.judgements,
                o.judgements as f64 / o.seconds,
                quantile(&o.latencies_ms, 0.5),
                quantile(&o.latencies_ms, 0.99),
                o.latencies_ms.last().copied().unwrap_or(f64::NAN),
                o.queries / o.seconds,
                o.queries / o.judgements as f64,
                o.rss_mib
                    .iter()
                    .map(|r| format!("{r:.0}"))
                    .collect::<Vec<_>>()
                    .join("+"),
                connections,
                o.errors,
                o.verdicts
            );
        }
    }
}
