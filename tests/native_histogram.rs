//! Native histograms end to end: `tests/native-exporter` (Go, Prometheus' own client library)
//! serves request latencies as native histograms, a real Prometheus scrapes them every second
//! with `--enable-feature=native-histograms`, and the judge reads the native series through
//! `canary serve`'s code path (`judging::run`): a canary like the stable passes, a canary
//! 1.5× slower is `high`, with the quantiles interpolated on the native buckets.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use canary_engine::judging::{self, JudgeOptions, Judgement};
use canary_engine::source::{PrometheusConfig, Sources};
use canary_engine::template::judge_spec;

const SPEC: &str = r#"kind: Judge
name: native-latency
args: [service]
variants:
  canary: {hash: can}
  baseline: {hash: stb}
window: 1m
step: 2s
lookback: 10m
metrics:
- name: latency
  histogram:
    native: sum by (rollouts_pod_template_hash) (istio_request_duration_milliseconds{destination_service_name="{{args.service}}", rollouts_pod_template_hash="{{variant.hash}}"})
    slower_than: 100
  direction: increase
  effect: {allowed_increase: 1.1}
  alpha: 0.01
  min_requests: 100
"#;

fn judge(sources: &Sources, service: &str, since: chrono::DateTime<chrono::Utc>) -> Judgement {
    let spec = judge_spec::parse_str("native.yaml", SPEC)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .remove(0);
    let args = BTreeMap::from([("service".to_string(), service.to_string())]);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(judging::run(
            &spec,
            &args,
            sources,
            chrono::Utc::now(),
            JudgeOptions {
                since: Some(since),
                ..JudgeOptions::default()
            },
        ))
        .unwrap()
}

#[test]
fn a_slower_canary_is_caught_on_native_buckets_and_a_like_one_passes() {
    let Some(bin) = common::kube_server::go_harness("native-exporter") else {
        return;
    };
    let mut exporter = Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(exporter.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let target = line.trim().strip_prefix("ready ").unwrap().to_string();
    let prom = common::prom::Prometheus::scraping(&target);
    let since = chrono::Utc::now();
    let sources = Sources::live(PrometheusConfig {
        url: Some(prom.url.clone()),
        ..PrometheusConfig::default()
    })
    .unwrap();

    // Wait until a few steps of both variants are in: then judge.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (same, slow) = loop {
        std::thread::sleep(Duration::from_secs(3));
        let (same, slow) = (
            judge(&sources, "same", since),
            judge(&sources, "slow", since),
        );
        let decided = |j: &Judgement| j.metrics[0].judgement.classification.as_str() != "nodata";
        if (decided(&same) && decided(&slow)) && same.anchor.as_ref().unwrap().steps >= 8
            || Instant::now() > deadline
        {
            break (same, slow);
        }
    };
    drop(exporter.stdin.take());
    let _ = exporter.wait();

    let m = &same.metrics[0].judgement;
    assert_eq!(m.classification.as_str(), "pass", "{:?}", m.reasons);
    let h = m.histogram.as_ref().unwrap();
    assert!(h.test.canary_requests >= 100.0, "{:?}", h.test);
    let p50 = h.quantiles[0].ratio.unwrap();
    assert!((p50 - 1.0).abs() < 0.1, "p50 ratio {p50}");

    let m = &slow.metrics[0].judgement;
    assert_eq!(m.classification.as_str(), "high", "{:?}", m.reasons);
    let h = m.histogram.as_ref().unwrap();
    let p50 = h.quantiles[0].ratio.unwrap();
    assert!(
        (1.3..1.7).contains(&p50),
        "p50 ratio {p50}: {:?}",
        m.reasons
    );
    // slower_than moved to the native bound at or above 100 ms (schema 3: 2^(54/8) ≈ 107.6),
    // and the tail test counts past it.
    let t = h.slower_than.unwrap();
    assert!((100.0..112.0).contains(&t), "{t}");
    assert!(h.slow.is_some());
    assert_eq!(slow.verdict.as_str(), "fail");
}
