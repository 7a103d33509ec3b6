//! The engine's own overhead on a 5-metric `analyze --once`, against the bare Prometheus
//! round-trips for the same five queries, both against one real Prometheus in this process.
//!
//! * reference: the five resolved queries POSTed concurrently to `/api/v1/query` with a plain
//!   reqwest client, bodies read and parsed as JSON — the least any client must do;
//! * engine, measuring: the loop with `--once` on the resolved template (five measurements,
//!   concurrently), conditions evaluated, report built — what repeats on every analysis of a
//!   loaded template (`serve`, `promote`, `analyze` with count > 1);
//! * engine, whole run: the same plus reading, parsing and validating the template file and
//!   resolving its args — a one-shot `canary analyze --once` minus process start.
//!
//! Runs are interleaved (reference, engine, reference, …) so drift hits both alike; the ratio
//! of medians is printed. Needs Debian's `prometheus` and `promtool` (see .ci/run).
//! Run: `cargo bench --bench analyze_overhead`.

#[path = "../tests/common/prom.rs"]
#[allow(dead_code)]
mod prom;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use canary_engine::analysis::{self, RunOptions};
use canary_engine::source::{PrometheusConfig, Sources};
use canary_engine::template;

const TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: five}
spec:
  args: [{name: service}, {name: namespace, value: prod}]
  metrics:
  - name: success-rate
    successCondition: len(result) > 0 && result[0] >= 0.99
    provider: {prometheus: {query: 'sum(rate(istio_requests_total{destination_service_name="{{args.service}}",response_code!~"5.."}[2m])) / sum(rate(istio_requests_total{destination_service_name="{{args.service}}"}[2m]))'}}
  - name: p99
    successCondition: len(result) > 0 && result[0] <= 500
    provider: {prometheus: {query: 'histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{destination_service_name="{{args.service}}"}[2m])))'}}
  - name: p50
    successCondition: len(result) > 0 && result[0] <= 100
    provider: {prometheus: {query: 'histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{destination_service_name="{{args.service}}"}[2m])))'}}
  - name: rps
    successCondition: all(result, {# > 0})
    provider: {prometheus: {query: 'sum by (response_code) (rate(istio_requests_total{destination_service_namespace="{{args.namespace}}",destination_service_name="{{args.service}}"}[2m]))'}}
  - name: errors
    failureCondition: len(result) > 0 && result[0] > 5
    provider: {prometheus: {query: 'sum(rate(istio_requests_total{destination_service_name="{{args.service}}",response_code=~"5.."}[2m]))'}}
"#;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let prom = prom::Prometheus::start(&prom::scenario_openmetrics());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("five.yaml");
    std::fs::write(&file, TEMPLATE).unwrap();
    let args: BTreeMap<String, String> = [("service".to_string(), "healthy".to_string())].into();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sources = Sources::live(PrometheusConfig {
        url: Some(prom.url.clone()),
        ..Default::default()
    })
    .unwrap();
    let queries: Vec<String> = {
        let t = template::load_file(&file).unwrap();
        template::resolve(&t, &args)
            .unwrap()
            .iter()
            .map(|m| m.metric.provider.prometheus.as_ref().unwrap().query.clone())
            .collect()
    };
    let client = reqwest::Client::new();
    let endpoint = format!("{}/api/v1/query", prom.url);

    let reference = || async {
        let calls = queries.iter().map(|q| {
            let client = client.clone();
            let endpoint = endpoint.clone();
            async move {
                let body = client
                    .post(&endpoint)
                    .form(&[("query", q.as_str()), ("timeout", "30000ms")])
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["status"], "success");
            }
        });
        futures_util::future::join_all(calls).await;
    };
    let resolved = template::resolve(&template::load_file(&file).unwrap(), &args).unwrap();
    let measuring = || async {
        let report = analysis::run(
            &resolved,
            &sources,
            RunOptions {
                once: true,
                ..RunOptions::default()
            },
            std::future::pending::<()>(),
            &mut |_| {},
        )
        .await;
        assert_eq!(
            report.phase,
            analysis::Phase::Successful,
            "{}",
            report.message
        );
    };
    let engine = || async {
        let t = template::load_file(&file).unwrap();
        let metrics = template::resolve(&t, &args).unwrap();
        let report = analysis::run(
            &metrics,
            &sources,
            RunOptions {
                once: true,
                ..RunOptions::default()
            },
            std::future::pending::<()>(),
            &mut |_| {},
        )
        .await;
        assert_eq!(
            report.phase,
            analysis::Phase::Successful,
            "{}",
            report.message
        );
    };

    // `cargo test --all-targets` runs this too (without `--bench`): then a few rounds only, as a
    // smoke test that both paths work.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let (warmup, rounds) = if bench_mode { (20, 400) } else { (1, 3) };
    // Warm up connections, caches and Prometheus' own query path.
    for _ in 0..warmup {
        rt.block_on(reference());
        rt.block_on(measuring());
        rt.block_on(engine());
    }
    let (mut r, mut m, mut e) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        rt.block_on(reference());
        r.push(t.elapsed());
        let t = Instant::now();
        rt.block_on(measuring());
        m.push(t.elapsed());
        let t = Instant::now();
        rt.block_on(engine());
        e.push(t.elapsed());
    }
    let (mr, mm, me) = (median(r), median(m), median(e));
    let pct = |x: Duration| (x.as_secs_f64() / mr.as_secs_f64() - 1.0) * 100.0;
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    println!("5-metric analyze --once, {rounds} interleaved rounds, Prometheus 2.42 on loopback");
    println!(
        "  bare round-trips (reference)      median {:>7.3} ms",
        ms(mr)
    );
    println!(
        "  engine, measuring                 median {:>7.3} ms  overhead {:+.1} %",
        ms(mm),
        pct(mm)
    );
    println!(
        "  engine, whole run (load template) median {:>7.3} ms  overhead {:+.1} %",
        ms(me),
        pct(me)
    );
}
