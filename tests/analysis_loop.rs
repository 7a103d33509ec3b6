//! Argo's measurement semantics, run by the real loop on a paused clock, fed from a snapshot:
//! interval, count, initialDelay, limits, error retries, dry-run, termination and --once.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use canary_engine::analysis::{self, Phase, RunOptions, RunReport};
use canary_engine::source::snapshot::Entry;
use canary_engine::source::{Error, QueryValue, Sources};
use canary_engine::template;
use tokio::time::Instant;

/// One answer: a value, or an error.
enum A {
    V(f64),
    E,
}

fn snapshot(answers: &[(&str, Vec<A>)]) -> (tempfile::NamedTempFile, Sources) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for (query, list) in answers {
        for a in list {
            let (result, error) = match a {
                A::V(v) => (
                    Some(QueryValue::Scalar {
                        time: 0.0,
                        value: *v,
                    }),
                    None,
                ),
                A::E => (
                    None,
                    Some(Error::HttpStatus {
                        url: "p".into(),
                        status: 500,
                        body: String::new(),
                    }),
                ),
            };
            let e = Entry {
                kind: "prometheus".into(),
                key: query.to_string(),
                recorded_at: String::new(),
                result,
                warnings: vec![],
                response: None,
                error,
            };
            writeln!(f, "{}", serde_json::to_string(&e).unwrap()).unwrap();
        }
    }
    let sources = Sources::replay(f.path()).unwrap();
    (f, sources)
}

fn metrics(yaml_metrics: &str) -> Vec<template::ResolvedMetric> {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n{yaml_metrics}"
    );
    let t = template::parse_str("t.yaml", &yaml).unwrap();
    template::resolve(&t, &BTreeMap::new()).unwrap()
}

async fn run_with(
    m: &[template::ResolvedMetric],
    s: &Sources,
    options: RunOptions,
    terminate_after: Option<Duration>,
) -> (RunReport, Duration) {
    let start = Instant::now();
    let terminate = async move {
        match terminate_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let report = analysis::run(m, s, options, terminate, &mut |_| {}).await;
    (report, start.elapsed())
}

fn phases(r: &RunReport, metric: usize) -> Vec<Phase> {
    r.metrics[metric]
        .measurements
        .iter()
        .map(|m| m.phase)
        .collect()
}

const OK: &str = "result >= 0.9";

#[tokio::test(start_paused = true)]
async fn count_and_interval() {
    let m = metrics(&format!(
        "  metrics:\n  - name: a\n    interval: 1m\n    count: 3\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qa", vec![A::V(1.0)])]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Successful);
    assert_eq!(phases(&r, 0).len(), 3);
    assert_eq!(took.as_secs(), 120);
}

#[tokio::test(start_paused = true)]
async fn failure_limit_stops_the_run_early() {
    let m = metrics(&format!(
        "  metrics:\n  - name: a\n    interval: 1m\n    count: 5\n    failureLimit: 1\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n"
    ));
    let (_f, s) = snapshot(&[(
        "qa",
        vec![A::V(1.0), A::V(0.1), A::V(1.0), A::V(0.1), A::V(1.0)],
    )]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Failed);
    assert_eq!(phases(&r, 0).len(), 4);
    assert_eq!(took.as_secs(), 180);
    assert_eq!(
        r.message,
        "Metric \"a\" assessed Failed due to failed (2) > failureLimit (1)"
    );
}

#[tokio::test(start_paused = true)]
async fn errors_are_retried_after_10s_and_not_counted() {
    let m = metrics(&format!(
        "  metrics:\n  - name: a\n    interval: 1m\n    count: 2\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qa", vec![A::E, A::V(1.0), A::V(1.0)])]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Successful);
    assert_eq!(
        phases(&r, 0),
        vec![Phase::Error, Phase::Successful, Phase::Successful]
    );
    assert_eq!(r.metrics[0].count, 2);
    assert_eq!(took.as_secs(), 70, "10 s retry, then the 1 m interval");
}

#[tokio::test(start_paused = true)]
async fn consecutive_error_limit_defaults_to_4() {
    let m = metrics(&format!(
        "  metrics:\n  - name: a\n    interval: 1m\n    count: 2\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qa", vec![A::E])]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Error);
    assert_eq!(phases(&r, 0).len(), 5);
    assert_eq!(took.as_secs(), 40);
    assert!(
        r.message
            .contains("consecutiveErrors (5) > consecutiveErrorLimit (4)"),
        "{}",
        r.message
    );
}

#[tokio::test(start_paused = true)]
async fn initial_delay_and_inconclusive() {
    let m = metrics(
        "  metrics:\n  - name: a\n    initialDelay: 30s\n    successCondition: result > 0.9\n    failureCondition: result < 0.5\n    provider: {prometheus: {query: qa}}\n",
    );
    let (_f, s) = snapshot(&[("qa", vec![A::V(0.7)])]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Inconclusive);
    assert_eq!(took.as_secs(), 30);
}

#[tokio::test(start_paused = true)]
async fn dry_run_metrics_are_reported_but_do_not_decide() {
    let m = metrics(&format!(
        "  dryRun: [{{metricName: exp.*}}]\n  metrics:\n  - name: experimental\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qe}}}}\n  - name: a\n    interval: 1m\n    count: 2\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qe", vec![A::V(0.0)]), ("qa", vec![A::V(1.0)])]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Successful);
    assert_eq!(r.metrics[0].phase, Phase::Failed);
    assert!(r.metrics[0].dry_run);
    assert_eq!(
        took.as_secs(),
        60,
        "the dry-run failure did not stop the run"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_metric_terminates_an_endless_one() {
    let m = metrics(&format!(
        "  metrics:\n  - name: endless\n    interval: 1m\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n  - name: gate\n    initialDelay: 90s\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qg}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qa", vec![A::V(1.0)]), ("qg", vec![A::V(0.0)])]);
    let (r, took) = run_with(&m, &s, RunOptions::default(), None).await;
    assert_eq!(r.phase, Phase::Failed);
    assert_eq!(
        r.metrics[0].phase,
        Phase::Successful,
        "terminated metrics end Successful"
    );
    assert_eq!(phases(&r, 0).len(), 2, "measured at 0 and 60 s");
    assert_eq!(took.as_secs(), 90);
}

#[tokio::test(start_paused = true)]
async fn terminate_ends_an_endless_run_with_what_it_has() {
    let m = metrics(&format!(
        "  metrics:\n  - name: endless\n    interval: 1m\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qa", vec![A::V(1.0)])]);
    let (r, took) = run_with(
        &m,
        &s,
        RunOptions::default(),
        Some(Duration::from_secs(150)),
    )
    .await;
    assert_eq!(r.phase, Phase::Successful);
    assert_eq!(phases(&r, 0).len(), 3);
    assert_eq!(took.as_secs(), 150);
}

#[tokio::test(start_paused = true)]
async fn once_takes_one_measurement_per_metric_now() {
    let m = metrics(&format!(
        "  metrics:\n  - name: a\n    interval: 1m\n    count: 5\n    failureLimit: 3\n    initialDelay: 5m\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qa}}}}\n  - name: b\n    successCondition: {OK}\n    provider: {{prometheus: {{query: qb}}}}\n"
    ));
    let (_f, s) = snapshot(&[("qa", vec![A::V(0.1)]), ("qb", vec![A::V(1.0)])]);
    let (r, took) = run_with(
        &m,
        &s,
        RunOptions {
            once: true,
            ..RunOptions::default()
        },
        None,
    )
    .await;
    assert_eq!(took.as_secs(), 0);
    assert_eq!(
        r.phase,
        Phase::Failed,
        "the single measurement decides, whatever failureLimit"
    );
    assert_eq!(phases(&r, 0), vec![Phase::Failed]);
    assert_eq!(phases(&r, 1), vec![Phase::Successful]);
}
