//! `canary backtest` against a real Prometheus loaded with the judge scenarios (75 minutes of
//! history, one sample per 15 s): the timeline is what the analysis would have said at each
//! moment — checked moment by moment against asking Prometheus directly — fetched with a few
//! range queries, recorded and replayed offline, and an error (never a pass) when Prometheus
//! is down.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use canary_engine::backtest::{self, Plan, Subject};
use canary_engine::source::{PrometheusConfig, Sources};
use chrono::{DateTime, Utc};
use common::judge_data::{Scenarios, BASELINE, CANARY};
use serde_json::Value;

fn data() -> &'static Scenarios {
    static D: OnceLock<Scenarios> = OnceLock::new();
    D.get_or_init(Scenarios::start)
}

fn at(offset_minutes: i64) -> String {
    data().at(offset_minutes)
}

const JUDGE: &str = "analysis-templates/judge-istio-kayenta-compatible.yaml";
const ARGO: &str = "analysis-templates/istio-success-rate.yaml";

fn judge_args(service: &str) -> Vec<String> {
    [
        format!("service={service}"),
        "namespace=prod".into(),
        format!("canary_hash={CANARY}"),
        format!("stable_hash={BASELINE}"),
    ]
    .into_iter()
    .flat_map(|a| ["--arg".to_string(), a])
    .collect()
}

fn backtest(extra: &[String]) -> (i32, Value, String) {
    let mut args: Vec<String> = vec!["backtest".into(), "--output".into(), "json".into()];
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = common::canary(&refs);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, json, stderr)
}

fn outcomes(v: &Value) -> Vec<String> {
    v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["outcome"].as_str().unwrap().to_string())
        .collect()
}

fn judge_run(service: &str, from: i64, to: i64, every: &str) -> (i32, Value, String) {
    let mut a = vec![
        JUDGE.to_string(),
        "--prometheus".into(),
        data().prometheus.url.clone(),
        "--from".into(),
        at(from),
        "--to".into(),
        at(to),
        "--every".into(),
        every.into(),
    ];
    a.extend(judge_args(service));
    backtest(&a)
}

#[test]
fn a_judge_backtest_fails_the_regressed_service_and_passes_the_healthy_one() {
    let (code, errors, stderr) = judge_run("errors", -50, 0, "5m");
    assert_eq!(code, 0, "{stderr}");
    let o = outcomes(&errors);
    assert_eq!(
        o.len(),
        11,
        "every 5 minutes over 50 minutes, both ends: {o:?}"
    );
    assert!(
        o.iter().all(|x| x == "fail"),
        "5 % canary errors fail: {o:?}"
    );
    let why = errors["points"][0]["why"].as_str().unwrap();
    assert!(
        why.contains("error-ratio"),
        "the deciding metric is named: {why}"
    );
    assert_eq!(errors["summary"]["fail"], 11);

    let (code, healthy, stderr) = judge_run("healthy", -50, 0, "5m");
    assert_eq!(code, 0, "{stderr}");
    let o = outcomes(&healthy);
    assert!(
        o.iter().all(|x| x == "pass"),
        "identical variants pass: {o:?}"
    );
    // Canary and baseline over the whole range, merged from the windows, for the charts.
    let canary = healthy["series"]["p99-latency"]["canary"]
        .as_array()
        .unwrap();
    assert!(canary.len() >= 100, "{} points", canary.len());
}

#[test]
fn each_query_is_fetched_once_for_the_whole_range() {
    let (_, v, _) = judge_run("tail", -60, 0, "1m");
    let q = &v["queries"];
    // 4 metrics, each query folded over both variants (error-ratio has bad and total) = 5
    // range queries, plus the SLO's 2 burn windows × 2 (long, short) × 2 (errors, total)
    // folded into 1 (they were 10 + 8 = 18 before folding).
    assert_eq!(q["range_queries"], 6, "{q}");
    assert_eq!(q["passed_through"], 0, "{q}");
    assert_eq!(q["from_memory"], 61 * 6, "61 moments × 6 queries: {q}");
    let o = outcomes(&v);
    assert!(
        o.iter().skip(5).all(|x| x == "fail" || x == "marginal"),
        "a 3× p99 is caught at every moment once the window holds it: {o:?}"
    );
}

/// Exactness: the judgement sliced from memory at a moment is the judgement Prometheus gives
/// when asked at that moment.
#[test]
fn moments_from_memory_equal_moments_asked_directly() {
    let d = data();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let given: BTreeMap<String, String> = [
        ("service", "tail"),
        ("namespace", "prod"),
        ("canary_hash", CANARY),
        ("stable_hash", BASELINE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let path = common::project_path(JUDGE);
    let metrics = canary_engine::template::load_analysis(&[path], &given, None).unwrap();
    let Subject::Judge(judge) = Subject::of(metrics) else {
        panic!("a lone Judge spec is backtested as a judge");
    };
    let sources = Sources::live(PrometheusConfig {
        url: Some(d.prometheus.url.clone()),
        ..Default::default()
    })
    .unwrap();
    let plan = Plan {
        from: DateTime::from_timestamp(d.now - 40 * 60, 0).unwrap(),
        to: DateTime::from_timestamp(d.now, 0).unwrap(),
        every: Duration::from_secs(600),
        limit: Duration::from_secs(600),
    };
    let b = rt.block_on(backtest::run(
        &Subject::Judge(judge.clone()),
        &given,
        plan,
        &sources,
        &mut |_, _, _| {},
    ));
    assert_eq!(b.points.len(), 5);
    for p in &b.points {
        let t: DateTime<Utc> = DateTime::from_timestamp(p.t, 0).unwrap();
        let direct = rt
            .block_on(canary_engine::judging::run(
                &judge.spec,
                &judge.args,
                &sources,
                t,
                Default::default(),
            ))
            .unwrap();
        let from_memory = serde_json::to_value(p.judgement.as_ref().unwrap()).unwrap();
        let mut asked = serde_json::to_value(&direct).unwrap();
        // The backtest moves the raw points into its per-metric series.
        for m in asked["metrics"].as_array_mut().unwrap() {
            let m = m.as_object_mut().unwrap();
            m.remove("canary_points");
            m.remove("baseline_points");
        }
        for m in from_memory["metrics"].as_array().unwrap() {
            assert!(m.get("canary_points").is_none());
        }
        assert_eq!(from_memory, asked, "at {}", p.at);
    }
}

#[test]
fn an_argo_template_runs_as_whole_analysis_runs_on_a_virtual_clock() {
    let d = data();
    let started = std::time::Instant::now();
    let mut a = vec![
        ARGO.to_string(),
        "--prometheus".into(),
        d.prometheus.url.clone(),
        "--from".into(),
        at(-40),
        "--to".into(),
        at(-10),
        "--every".into(),
        "10m".into(),
        "--arg".into(),
        "namespace=prod".into(),
        "--arg".into(),
        "revision=.*".into(),
    ];
    let mut errors = a.clone();
    errors.extend(["--arg".to_string(), "service=errors".into()]);
    a.extend(["--arg".to_string(), "service=healthy".into()]);
    let (code, healthy, stderr) = backtest(&a);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcomes(&healthy), vec!["Successful"; 4]);
    // count: 5, interval: 1m → five measurements a minute apart, at the moment and after.
    let run = &healthy["points"][1]["run"]["metrics"][0];
    let ms = run["measurements"].as_array().unwrap();
    assert_eq!(ms.len(), 5, "{run}");
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m["finished_at"].as_str().unwrap(), &at(-30 + i as i64));
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no real waiting: {:?}",
        started.elapsed()
    );
    // 2.6 % errors fails success-rate ≥ 0.99: failureLimit 1 → the second failure ends it.
    let (code, failing, stderr) = backtest(&errors);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(outcomes(&failing), vec!["Failed"; 4]);
    let p = &failing["points"][0];
    assert!(
        p["why"].as_str().unwrap().contains("failureLimit"),
        "Argo's message: {p}"
    );
    assert_eq!(
        p["run"]["metrics"][0]["measurements"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(failing["queries"]["passed_through"], 0);
    assert_eq!(failing["queries"]["range_queries"], 1);
}

#[test]
fn a_recorded_backtest_reruns_offline_with_the_same_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("backtest.jsonl");
    let mut a = vec![
        JUDGE.to_string(),
        "--prometheus".into(),
        data().prometheus.url.clone(),
        "--from".into(),
        at(-30),
        "--to".into(),
        at(0),
        "--every".into(),
        "10m".into(),
        "--record".into(),
        snap.display().to_string(),
    ];
    a.extend(judge_args("errors"));
    let (code, live, _) = backtest(&a);
    assert_eq!(code, 0);
    let mut offline = vec![
        JUDGE.to_string(),
        "--source".into(),
        format!("snapshot:{}", snap.display()),
        "--from".into(),
        at(-30),
        "--to".into(),
        at(0),
        "--every".into(),
        "10m".into(),
    ];
    offline.extend(judge_args("errors"));
    let (code, replayed, stderr) = backtest(&offline);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(replayed["points"], live["points"]);
    assert_eq!(replayed["series"], live["series"]);
}

#[test]
fn prometheus_down_is_an_error_at_every_moment_never_a_pass() {
    let port = common::prom::free_port();
    let mut a = vec![
        JUDGE.to_string(),
        "--prometheus".into(),
        format!("http://127.0.0.1:{port}"),
        "--from".into(),
        at(-20),
        "--to".into(),
        at(0),
        "--every".into(),
        "10m".into(),
    ];
    a.extend(judge_args("healthy"));
    let (code, v, _) = backtest(&a);
    assert_eq!(code, 3);
    assert_eq!(outcomes(&v), vec!["error"; 3]);
    assert!(v["points"][0]["why"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
}

#[test]
fn the_table_shows_a_timeline_sparklines_and_the_html_report_has_charts() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("backtest.html");
    let mut a: Vec<String> = vec![
        "backtest".into(),
        JUDGE.into(),
        "--prometheus".into(),
        data().prometheus.url.clone(),
        "--from".into(),
        at(-60),
        "--to".into(),
        at(0),
        "--every".into(),
        "5m".into(),
        "--html".into(),
        page.display().to_string(),
    ];
    a.extend(judge_args("tail"));
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, stdout, stderr) = common::canary(&refs);
    assert_eq!(code, 0, "{stderr}");
    std::fs::write("/tmp/backtest-table.txt", &stdout).ok();
    std::fs::copy(&page, "/tmp/backtest.html").ok();
    assert!(stdout.contains("timeline  "), "{stdout}");
    assert!(stdout.contains('✗'), "{stdout}");
    assert!(
        stdout.contains('▁') && stdout.contains('█'),
        "sparklines: {stdout}"
    );
    assert!(stdout.contains("would have failed"), "{stdout}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.matches("<svg").count() >= 4,
        "timeline + 3 series metrics"
    );
    assert!(html.contains("Verdict timeline") && html.contains("p99-latency"));
    assert!(!html.contains("<script"), "readable without JavaScript");
}

/// On a terminal (a pseudo-terminal made by util-linux's `script`) a progress bar counts the
/// moments on stderr; piped, as in every other test here, there is none.
#[test]
fn a_terminal_gets_a_progress_bar() {
    let mut a = vec![
        env!("CARGO_BIN_EXE_canary").to_string(),
        "backtest".into(),
        JUDGE.into(),
        "--prometheus".into(),
        data().prometheus.url.clone(),
        "--from".into(),
        at(-60),
        "--to".into(),
        at(0),
        "--every".into(),
        "1m".into(),
    ];
    a.extend(judge_args("healthy"));
    let line = a
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("{line} >/dev/null"), "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("script (util-linux) runs a command on a pseudo-terminal");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("backtest [") && tty.contains("/61 moments"),
        "no progress bar on the terminal: {tty:?}"
    );
    let (_, piped, stderr) = backtest(&a[2..].iter().map(String::clone).collect::<Vec<_>>());
    assert_eq!(piped["points"].as_array().unwrap().len(), 61);
    assert!(!stderr.contains("backtest ["), "{stderr}");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let (code, _, stderr) =
        common::canary(&["backtest", JUDGE, "--from", "yesterday-ish", "--arg", "x=1"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("--from"), "{stderr}");
    let (code, _, stderr) = common::canary(&["backtest", JUDGE, "--from", "1h", "--to", "2h"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("after --to"), "{stderr}");
}
