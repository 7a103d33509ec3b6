//! `promote` against a real Kubernetes API server (through a fault proxy) with the real
//! `kube` client, with analyses
//! answered from a snapshot: promotion, rollback, pause, crash-resume, abort, interruption.

mod common;

use common::promotion::{reviews, target, vs};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use canary_engine::cli::Exit;
use canary_engine::promote::{
    default_steps, progress_of, Event, OnInconclusive, Outcome, Promotion, Step,
};
use canary_engine::source::snapshot::Entry;
use canary_engine::source::{QueryValue, Sources};
use canary_engine::template;
use canary_engine::traffic::apply::{Applier, VirtualServiceRef};
use canary_engine::traffic::current_weights;
use common::kube_proxy::{Fault, TestKube};
use serde_json::json;

/// Snapshot answers: q_good 0.99, q_bad 0.1, q_meh 0.7.
fn sources(dir: &tempfile::TempDir) -> Sources {
    let path = dir.path().join("snap.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for (q, v) in [("q_good", 0.99), ("q_bad", 0.1), ("q_meh", 0.7)] {
        let e = Entry {
            kind: "prometheus".into(),
            key: q.into(),
            recorded_at: String::new(),
            result: Some(QueryValue::Scalar {
                time: 0.0,
                value: v,
            }),
            warnings: vec![],
            response: None,
            error: None,
        };
        writeln!(f, "{}", serde_json::to_string(&e).unwrap()).unwrap();
    }
    Sources::replay(&path).unwrap()
}

fn analysis(query: &str) -> Vec<template::ResolvedMetric> {
    let yaml = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  metrics:\n  - name: success\n    successCondition: result >= 0.9\n    failureCondition: result < 0.5\n    provider: {{prometheus: {{query: {query}}}}}\n"
    );
    template::resolve(
        &template::parse_str("t.yaml", &yaml).unwrap(),
        &BTreeMap::new(),
    )
    .unwrap()
}

fn promotion(kube: &TestKube, dir: &tempfile::TempDir, query: &str) -> Promotion {
    let mut applier = Applier::new(
        kube.client(),
        VirtualServiceRef {
            namespace: kube.ns.clone(),
            name: "reviews".into(),
            version: "v1".into(),
        },
    );
    applier.deadline = Duration::from_secs(5);
    Promotion {
        id: "reviews-v2".into(),
        steps: default_steps(&[10, 50, 100], Duration::ZERO, true),
        target: target(),
        analyses: vec![analysis(query)],
        background: None,
        watch: Duration::ZERO,
        sources: sources(dir),
        applier,
        on_inconclusive: OnInconclusive::Pause,
        analysis_once: true,
        recording: Default::default(),
    }
}

async fn weights(kube: &TestKube) -> (i64, i64) {
    let w = current_weights(&kube.object().await.unwrap(), &target()).unwrap();
    (w[0].canary, w[0].stable)
}

async fn phase(kube: &TestKube) -> String {
    progress_of(&kube.object().await.unwrap())
        .unwrap()
        .phase
        .to_string()
}

fn never() -> impl std::future::Future<Output = ()> {
    std::future::pending()
}

#[tokio::test]
async fn a_healthy_canary_is_promoted_step_by_step() {
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    kube.put(vs()).await;
    let mut seen = Vec::new();
    let report = promotion(&kube, &dir, "q_good")
        .run(never(), false, &mut |e| {
            seen.push(serde_json::to_value(e).unwrap())
        })
        .await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert_eq!(weights(&kube).await, (100, 0));
    assert_eq!(phase(&kube).await, "promoted");
    let kinds: Vec<&str> = seen.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"deployment.created"));
    assert_eq!(
        kinds.iter().filter(|k| **k == "analysis.completed").count(),
        3
    );
    assert_eq!(kinds.last(), Some(&"deployment.promoted"));
    // Every other field is untouched.
    assert_eq!(
        kube.object().await.unwrap()["spec"]["http"][0]["timeout"],
        "5s"
    );
    // Rerunning the same command does nothing more.
    let writes = kube.log().iter().filter(|l| l.starts_with("PUT")).count();
    let again = promotion(&kube, &dir, "q_good")
        .run(never(), false, &mut |_| {})
        .await;
    assert_eq!(again.outcome, Outcome::Promoted);
    assert_eq!(
        kube.log().iter().filter(|l| l.starts_with("PUT")).count(),
        writes
    );
}

#[tokio::test]
async fn a_failed_analysis_rolls_back_at_the_first_step() {
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    kube.put(vs()).await;
    let report = promotion(&kube, &dir, "q_bad")
        .run(never(), false, &mut |_| {})
        .await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(Exit::from(report.outcome).code(), 1);
    assert_eq!(weights(&kube).await, (0, 100));
    assert_eq!(phase(&kube).await, "rolled_back");
    assert!(
        report.reason.contains("analysis Failed at step 1"),
        "{}",
        report.reason
    );
    assert!(matches!(
        report.events.last(),
        Some(Event::RolledBack { .. })
    ));
}

#[tokio::test]
async fn an_inconclusive_analysis_pauses_or_rolls_back() {
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    kube.put(vs()).await;
    let report = promotion(&kube, &dir, "q_meh")
        .run(never(), false, &mut |_| {})
        .await;
    assert_eq!(
        (report.outcome, Exit::from(report.outcome).code()),
        (Outcome::Paused, 2)
    );
    assert_eq!(
        weights(&kube).await,
        (10, 90),
        "left at the step's weight for a human"
    );
    assert_eq!(phase(&kube).await, "paused");

    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    kube.put(vs()).await;
    let mut p = promotion(&kube, &dir, "q_meh");
    p.on_inconclusive = OnInconclusive::Rollback;
    assert_eq!(
        p.run(never(), false, &mut |_| {}).await.outcome,
        Outcome::RolledBack
    );
    assert_eq!(weights(&kube).await, (0, 100));
}

#[tokio::test]
async fn a_crashed_promotion_resumes_and_never_skips_an_analysis() {
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    // As left by a run killed right after setting 50 %: steps 0 (10 %) and 1 (its analysis)
    // done, step 2 (setWeight 50) applied, step 3 (its analysis) not recorded.
    let crashed = reviews().weights(50, 50).promotion(json!({
        "id": "reviews-v2", "phase": "progressing", "step": 2, "analyzed_through": 1, "weight": 50,
        "started_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:01:00Z", "verdicts": ["Successful"]}));
    kube.put(crashed.build()).await;
    let report = promotion(&kube, &dir, "q_good")
        .run(never(), false, &mut |_| {})
        .await;
    assert_eq!(report.outcome, Outcome::Promoted);
    let steps: Vec<usize> = report
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Step { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(
        steps,
        vec![3, 4, 5],
        "resumed with the analysis of the 50 % step"
    );
    assert!(matches!(
        report.events[0],
        Event::Started {
            resumed_at_step: Some(3),
            ..
        }
    ));
    assert_eq!(weights(&kube).await, (100, 0));
}

#[tokio::test]
async fn abort_and_interrupt_roll_back() {
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    kube.put(vs()).await;
    let mut p = promotion(&kube, &dir, "q_good");
    p.steps = vec![
        Step::SetWeight(10),
        Step::Pause(Some(Duration::from_secs(30))),
        Step::SetWeight(100),
    ];
    let interrupt = tokio::time::sleep(Duration::from_millis(300));
    let report = p.run(interrupt, false, &mut |_| {}).await;
    assert_eq!(report.outcome, Outcome::RolledBack, "{}", report.reason);
    assert_eq!(weights(&kube).await, (0, 100));

    kube.put(vs()).await;
    let interrupt = tokio::time::sleep(Duration::from_millis(300));
    let report = p.run(interrupt, true, &mut |_| {}).await;
    assert_eq!(report.outcome, Outcome::Paused);
    assert_eq!(weights(&kube).await, (10, 90));

    let report = p.abort().await;
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(weights(&kube).await, (0, 100));
    assert_eq!(phase(&kube).await, "rolled_back");
}

#[tokio::test]
async fn conflicts_and_api_errors_during_a_promotion_are_survived() {
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    kube.put(vs()).await;
    kube.fault(Fault::ConcurrentWrite);
    kube.fault(Fault::Status(503));
    let report = promotion(&kube, &dir, "q_good")
        .run(never(), false, &mut |_| {})
        .await;
    assert_eq!(report.outcome, Outcome::Promoted, "{}", report.reason);
    assert_eq!(weights(&kube).await, (100, 0));
    assert_eq!(
        kube.object().await.unwrap()["metadata"]["annotations"]["other-writer"],
        "was here"
    );
}

/// A promotion killed right after setting 50 %, rerun: its Judge analysis judges the steps
/// from the moment 50 % was set (kept in the annotation), not from the rerun — the same
/// sequence, no restart, no skipped analysis. The Judge's range queries start there.
#[tokio::test]
async fn a_resumed_promotion_judges_from_when_the_weight_was_set() {
    let prom = common::http::Server::start(|r| {
        let kind = if r.target.contains("query_range") {
            "matrix"
        } else {
            "vector"
        };
        common::http::Reply::json(
            200,
            &format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":[]}}}}"#),
        )
    });
    let (kube, dir) = (TestKube::start().await, tempfile::tempdir().unwrap());
    let Some(kube) = kube else { return };
    let set_at = chrono::Utc::now() - chrono::Duration::minutes(7);
    let set_at = chrono::DateTime::from_timestamp(set_at.timestamp() / 30 * 30 + 7, 0).unwrap();
    let crashed = reviews().weights(50, 50).promotion(json!({
        "id": "reviews-v2", "phase": "progressing", "step": 2, "analyzed_through": 1, "weight": 50,
        "started_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:01:00Z",
        "verdicts": ["Successful"], "weight_set_at": set_at.to_rfc3339()}));
    kube.put(crashed.build()).await;
    let text = std::fs::read_to_string(common::project_path(
        "analysis-templates/judge-istio-golden-signals.yaml",
    ))
    .unwrap();
    let spec = template::judge_spec::parse_str("g.yaml", &text)
        .unwrap()
        .remove(0);
    let args: BTreeMap<String, String> = [
        ("service", "reviews"),
        ("namespace", "prod"),
        ("canary_hash", "c"),
        ("stable_hash", "s"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut p = promotion(&kube, &dir, "q_good");
    p.analyses = vec![vec![template::judge_metric(spec, args, None)]];
    p.sources = Sources::live(canary_engine::source::PrometheusConfig {
        url: Some(prom.url.clone()),
        ..Default::default()
    })
    .unwrap();
    let report = p.run(never(), false, &mut |_| {}).await;
    // No traffic at all since the weight was set: inconclusive, never a pass — paused.
    assert_eq!(report.outcome, Outcome::Paused, "{:?}", report.events);
    let starts: Vec<String> = prom
        .seen()
        .iter()
        .filter(|r| r.target.contains("query_range"))
        .filter_map(|r| {
            r.body
                .split('&')
                .chain(r.target.split(['?', '&']))
                .find_map(|kv| kv.strip_prefix("start=").map(str::to_string))
        })
        .collect();
    assert!(!starts.is_empty(), "the Judge asked Prometheus for ranges");
    // The first judged step is the first whole 30 s step after set_at (set_at rounded up),
    // and counters need the sample one step before it. Every v2 metric is anchored, so every
    // range starts there.
    let secs = set_at.timestamp() + i64::from(set_at.timestamp_subsec_nanos() > 0);
    let want = ((secs + 29) / 30 * 30 - 30).to_string();
    for s in &starts {
        let s = s.split('.').next().unwrap();
        assert_eq!(s, want, "range start {s} vs the step's start {want}");
    }
    let progress = progress_of(&kube.object().await.unwrap()).unwrap();
    assert_eq!(
        progress.weight_set_at.as_deref(),
        Some(set_at.to_rfc3339().as_str())
    );
}
