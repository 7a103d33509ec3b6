//! `canary analyze` against a real Prometheus (Debian's package, loaded with scenario data):
//! every starter template gives its documented phase on healthy, regressed, empty and
//! zero-traffic services; record and replay give the same answers with Prometheus gone.

mod common;

use std::process::Command;
use std::sync::OnceLock;

use common::prom::{scenario_openmetrics, Prometheus};
use serde_json::Value;

fn prometheus() -> &'static Prometheus {
    static P: OnceLock<Prometheus> = OnceLock::new();
    P.get_or_init(|| Prometheus::start(&scenario_openmetrics()))
}

fn canary(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn analyze_once(template: &str, service: &str) -> (i32, Value) {
    let path = common::project_path(&format!("analysis-templates/{template}"));
    let url = &prometheus().url;
    let (code, json, stderr) = canary(&[
        "analyze",
        path.to_str().unwrap(),
        "--arg",
        &format!("service={service}"),
        "--arg",
        "namespace=prod",
        "--prometheus",
        url,
        "--once",
        "-o",
        "json",
    ]);
    assert!(json.is_object(), "no JSON report; stderr: {stderr}");
    (code, json)
}

fn last_value(report: &Value) -> String {
    report["metrics"][0]["measurements"][0]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn starter_templates_give_the_documented_phase_per_scenario() {
    let cases = [
        // (template, service, exit code, phase)
        ("istio-success-rate.yaml", "healthy", 0, "Successful"),
        ("istio-success-rate.yaml", "regressed", 1, "Failed"),
        ("istio-success-rate.yaml", "ghost", 2, "Inconclusive"),
        ("istio-success-rate.yaml", "zero", 2, "Inconclusive"),
        ("istio-p99-latency.yaml", "healthy", 0, "Successful"),
        ("istio-p99-latency.yaml", "regressed", 1, "Failed"),
        ("istio-p99-latency.yaml", "ghost", 2, "Inconclusive"),
        ("istio-p99-latency.yaml", "zero", 2, "Inconclusive"),
        ("error-budget-burn-rate.yaml", "healthy", 0, "Successful"),
        ("error-budget-burn-rate.yaml", "regressed", 1, "Failed"),
        ("error-budget-burn-rate.yaml", "ghost", 2, "Inconclusive"),
        ("error-budget-burn-rate.yaml", "zero", 2, "Inconclusive"),
    ];
    for (template, service, code, phase) in cases {
        let (got, report) = analyze_once(template, service);
        assert_eq!(
            (got, report["phase"].as_str().unwrap()),
            (code, phase),
            "{template} on {service}: {report:#}"
        );
    }
}

#[test]
fn values_are_the_ones_prometheus_computed() {
    let (_, r) = analyze_once("istio-success-rate.yaml", "healthy");
    let v: Vec<f64> = serde_json::from_str(&last_value(&r)).unwrap();
    assert!((v[0] - 0.999).abs() < 1e-9, "{v:?}");
    let (_, r) = analyze_once("istio-success-rate.yaml", "regressed");
    let v: Vec<f64> = serde_json::from_str(&last_value(&r)).unwrap();
    assert!((v[0] - 0.9).abs() < 1e-9, "{v:?}");
    // 0/0 keeps its NaN; no series is an empty list.
    let (_, r) = analyze_once("istio-success-rate.yaml", "zero");
    assert_eq!(last_value(&r), "[NaN]");
    let (_, r) = analyze_once("istio-success-rate.yaml", "ghost");
    assert_eq!(last_value(&r), "[]");
    // p99 interpolated inside the (50, 100] and (500, 1000] buckets.
    let p99 = |service: &str| {
        let (_, r) = analyze_once("istio-p99-latency.yaml", service);
        serde_json::from_str::<Vec<f64>>(&last_value(&r)).unwrap()[0]
    };
    assert!((p99("healthy") - 95.0).abs() < 1e-9);
    assert!((p99("regressed") - 975.0).abs() < 1e-9);
    // Burn rate: 10 % errors against a 0.1 % budget is 100× in both windows.
    let (_, r) = analyze_once("error-budget-burn-rate.yaml", "regressed");
    let v: Vec<f64> = serde_json::from_str(&last_value(&r)).unwrap();
    assert!((v[0] - 100.0).abs() < 1e-6, "{v:?}");
}

#[test]
fn record_then_replay_without_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("run.jsonl");
    let snap_s = snap.to_str().unwrap();
    let template = common::project_path("analysis-templates/istio-success-rate.yaml");
    let t = template.to_str().unwrap();
    let live = canary(&[
        "analyze",
        t,
        "--arg",
        "service=regressed",
        "--arg",
        "namespace=prod",
        "--prometheus",
        &prometheus().url,
        "--once",
        "-o",
        "json",
        "--record",
        snap_s,
    ]);
    assert_eq!(live.0, 1, "{}", live.2);
    let replay = canary(&[
        "analyze",
        t,
        "--arg",
        "service=regressed",
        "--arg",
        "namespace=prod",
        "--source",
        &format!("snapshot:{snap_s}"),
        "--prometheus",
        "http://127.0.0.1:9",
        "--once",
        "-o",
        "json",
    ]);
    assert_eq!(replay.0, 1, "{}", replay.2);
    assert_eq!(last_value(&live.1), last_value(&replay.1));
    // Replaying with other args asks a query that was never recorded: an Error, not a pass.
    let other = canary(&[
        "analyze",
        t,
        "--arg",
        "service=healthy",
        "--arg",
        "namespace=prod",
        "--source",
        &format!("snapshot:{snap_s}"),
        "--once",
        "-o",
        "json",
    ]);
    assert_eq!(other.0, 3);
    assert!(other.1["message"]
        .as_str()
        .unwrap()
        .contains("no recorded answer"));
}

#[test]
fn measurement_loop_runs_in_real_time_against_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.yaml");
    std::fs::write(
        &t,
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: quick}
spec:
  args: [{name: service}]
  metrics:
  - name: requests
    interval: 1s
    count: 3
    successCondition: result[0] > 0
    provider:
      prometheus:
        query: sum(rate(istio_requests_total{destination_service_name="{{args.service}}"}[2m]))
  - name: broken-query
    consecutiveErrorLimit: 1
    provider:
      prometheus:
        query: sum(rate(
"#,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (code, r, stderr) = canary(&[
        "analyze",
        t.to_str().unwrap(),
        "--arg",
        "service=healthy",
        "--prometheus",
        &prometheus().url,
        "-o",
        "json",
    ]);
    let elapsed = started.elapsed().as_secs_f64();
    // A PromQL syntax error is Prometheus' bad_data: an Error measurement, retried after 10 s;
    // the second one exceeds consecutiveErrorLimit 1 and the run is Error (exit 3).
    assert_eq!(code, 3, "{stderr}");
    let broken = &r["metrics"][1];
    assert_eq!(broken["phase"], "Error", "{r:#}");
    assert_eq!(broken["error"], 2, "{r:#}");
    assert_eq!(broken["count"], 0, "Error measurements do not count: {r:#}");
    let message = broken["measurements"][0]["message"].as_str().unwrap();
    assert!(message.contains("bad_data"), "{message}");
    assert!(
        (10.0..20.0).contains(&elapsed),
        "retried after 10 s: {elapsed}"
    );
    // Meanwhile the healthy metric took its 3 measurements, 1 s apart.
    let requests = &r["metrics"][0];
    assert_eq!(requests["phase"], "Successful", "{r:#}");
    assert_eq!(requests["successful"], 3, "{r:#}");
    assert!(r["message"]
        .as_str()
        .unwrap()
        .contains("consecutiveErrors (2) > consecutiveErrorLimit (1)"));
}

const STARTERS: [&str; 3] = [
    "analysis-templates/istio-success-rate.yaml",
    "analysis-templates/istio-p99-latency.yaml",
    "analysis-templates/error-budget-burn-rate.yaml",
];

/// `cargo test --test analyze_prometheus -- --ignored` re-records the example snapshots in
/// `examples/analyze/` from this scenario Prometheus.
#[test]
#[ignore = "rewrites examples/analyze/"]
fn record_example_snapshots() {
    for (service, code) in [("healthy", 0), ("regressed", 1)] {
        let out = common::project_path(&format!("examples/analyze/{service}.jsonl"));
        let mut args: Vec<String> = STARTERS
            .iter()
            .map(|t| common::project_path(t).display().to_string())
            .collect();
        for a in [
            "--arg",
            &format!("service={service}"),
            "--arg",
            "namespace=prod",
            "--prometheus",
            &prometheus().url,
            "--once",
            "-o",
            "json",
            "--record",
            out.to_str().unwrap(),
        ] {
            args.push(a.to_string());
        }
        let refs: Vec<&str> = std::iter::once("analyze")
            .chain(args.iter().map(String::as_str))
            .collect();
        let (got, report, stderr) = canary(&refs);
        assert_eq!(got, code, "{service}: {stderr} {report:#}");
    }
}

/// The committed example snapshots still replay to the phases the README shows.
#[test]
fn example_snapshots_replay() {
    for (service, code) in [("healthy", 0), ("regressed", 1)] {
        let snap = common::project_path(&format!("examples/analyze/{service}.jsonl"));
        let mut args: Vec<String> = vec!["analyze".into()];
        args.extend(
            STARTERS
                .iter()
                .map(|t| common::project_path(t).display().to_string()),
        );
        for a in [
            "--arg",
            &format!("service={service}"),
            "--arg",
            "namespace=prod",
            "--source",
            &format!("snapshot:{}", snap.display()),
            "--once",
            "-o",
            "json",
        ] {
            args.push(a.to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (got, report, stderr) = canary(&refs);
        assert_eq!(got, code, "{service}: {stderr} {report:#}");
        assert_eq!(report["metrics"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn range_queries_flatten_every_sample_of_every_series() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.yaml");
    std::fs::write(
        &t,
        r#"apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata: {name: range}
spec:
  args: [{name: service}]
  metrics:
  - name: per-code-rate
    successCondition: len(result) == 12 && all(result, {# > 0})
    provider:
      prometheus:
        rangeQuery:
          start: 'now() - duration("5m")'
          end: now()
          step: 1m
        query: sum by (response_code) (rate(istio_requests_total{destination_service_name="{{args.service}}"}[2m]))
"#,
    )
    .unwrap();
    let (code, r, stderr) = canary(&[
        "analyze",
        t.to_str().unwrap(),
        "--arg",
        "service=regressed",
        "--prometheus",
        &prometheus().url,
        "-o",
        "json",
    ]);
    // Two series (200 and 503) × six steps (now-5m … now), flattened into one list.
    assert_eq!(code, 0, "{stderr} {r:#}");
    let v: Vec<f64> = serde_json::from_str(&last_value(&r)).unwrap();
    assert_eq!(v.len(), 12, "{v:?}");
    let (ok, bad): (Vec<f64>, Vec<f64>) = (v[..6].to_vec(), v[6..].to_vec());
    let (ok, bad) = if ok[0] < bad[0] { (bad, ok) } else { (ok, bad) };
    assert!(
        ok.iter().all(|x| (x - 60.0).abs() < 1e-9),
        "900 per 15 s is 60/s: {ok:?}"
    );
    assert!(
        bad.iter().all(|x| (x - 100.0 / 15.0).abs() < 1e-9),
        "{bad:?}"
    );
}
