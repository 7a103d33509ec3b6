//! The traffic share against the canary's share of the ready pods (STATISTICS.md §5), when
//! traffic is split by pod count (an Argo canary without a traffic router), through
//! `judging::run` on a real Prometheus loaded with `promtool`: the canary's ready pods go
//! 1 → 3 of 6 during the analysis. A canary whose requests follow its pods passes; one whose
//! pods are ready but that gets a fraction of their share (failing requests routed away,
//! a broken readiness gate on the Service) is `low`.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write;

use canary_engine::judging::{self, JudgeOptions};
use canary_engine::source::{PrometheusConfig, Sources};
use canary_engine::template::judge_spec;

const STEP: i64 = 30;

/// Per-step requests of one variant, and its ready pods, from `start` to `end`.
fn openmetrics(start: i64, end: i64, canary_follows: bool) -> String {
    let mut requests = String::new();
    let mut pods = String::new();
    for hash in ["can", "stb"] {
        let l = format!("service=\"shop\",rollouts_pod_template_hash=\"{hash}\"");
        let mut total = 0.0f64;
        let mut t = start;
        while t <= end {
            let k = (t - start) / STEP;
            // The canary's ready pods: 1 of 6 for the first 10 steps, then 3 of 6.
            let canary_pods = if k < 10 { 1.0 } else { 3.0 };
            let ready = if hash == "can" {
                canary_pods
            } else {
                6.0 - canary_pods
            };
            let share = if hash == "can" && !canary_follows {
                ready / 6.0 * 0.3
            } else {
                ready / 6.0
            };
            // 6000 requests a step in all, a little uneven so steps differ.
            total += (6000.0 * share * (1.0 + 0.01 * ((k % 5) as f64 - 2.0))).round();
            let _ = writeln!(requests, "http_requests_total{{{l}}} {total} {t}");
            let _ = writeln!(pods, "ready_pods{{{l}}} {ready} {t}");
            t += STEP;
        }
    }
    format!("# TYPE http_requests counter\n{requests}# TYPE ready_pods gauge\n{pods}# EOF\n")
}

const SPEC: &str = r#"kind: Judge
name: ready-share
args: [canary_hash, stable_hash]
window: 10m
step: 30s
lookback: 1h
metrics:
- name: traffic
  share:
    requests: http_requests_total{service="shop", rollouts_pod_template_hash="{{variant.hash}}"}
    ready_pods: ready_pods{service="shop", rollouts_pod_template_hash="{{variant.hash}}"}
  direction: decrease
  effect: {allowed_decrease: 0.5}
  alpha: 0.01
  min_requests: 100
"#;

fn judge(canary_follows: bool) -> canary_engine::judging::Judgement {
    let now = chrono::Utc::now().timestamp();
    let end = now - now.rem_euclid(STEP);
    let start = end - 20 * STEP;
    let prom = common::prom::Prometheus::start(&openmetrics(start, end, canary_follows));
    let spec = judge_spec::parse_str("ready-share.yaml", SPEC)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .remove(0);
    let sources = Sources::live(PrometheusConfig {
        url: Some(prom.url.clone()),
        ..PrometheusConfig::default()
    })
    .unwrap();
    let args = BTreeMap::from([
        ("canary_hash".to_string(), "can".to_string()),
        ("stable_hash".to_string(), "stb".to_string()),
    ]);
    let since = chrono::DateTime::from_timestamp(start, 0).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(judging::run(
            &spec,
            &args,
            &sources,
            chrono::DateTime::from_timestamp(end + 1, 0).unwrap(),
            JudgeOptions {
                since: Some(since),
                ..JudgeOptions::default()
            },
        ))
        .unwrap()
}

#[test]
fn a_canary_that_follows_its_ready_pods_passes_and_one_that_does_not_is_low() {
    let ok = judge(true);
    let m = &ok.metrics[0].judgement;
    assert_eq!(m.classification.as_str(), "pass", "{:?}", m.reasons);
    let share = m.share.unwrap();
    // Requests-weighted expected share: between 1/6 and 3/6, as the pods changed.
    assert!(
        share.expected > 1.0 / 6.0 && share.expected < 0.5,
        "{share:?}"
    );
    assert!((share.ratio.unwrap() - 1.0).abs() < 0.05, "{share:?}");

    let starved = judge(false);
    let m = &starved.metrics[0].judgement;
    assert_eq!(m.classification.as_str(), "low", "{:?}", m.reasons);
    assert!(
        m.reasons[0].contains("far less than its share"),
        "{:?}",
        m.reasons
    );
    assert_eq!(starved.verdict.as_str(), "fail");
}

#[test]
fn expected_and_ready_pods_together_name_the_field() {
    let both = SPEC.replace("    ready_pods:", "    expected: \"10\"\n    ready_pods:");
    let errors = judge_spec::parse_str("both.yaml", &both).unwrap_err();
    let text = format!("{errors:?}");
    assert!(
        text.contains("both.yaml") && text.contains("share") && text.contains("ready_pods"),
        "{text}"
    );
}
