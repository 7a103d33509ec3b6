//! Argo Rollouts' own web metric provider as the client of `canary serve`: the shipped
//! `canary-engine-judge.yaml` metric run exactly as the controller runs it
//! (`NewWebMetricHttpClient`, `NewWebMetricJsonParser`, `NewWebMetricProvider(...).Run`,
//! `EvaluateResult` inside), through `tests/argo-rollouts` (Go, Argo v1.9.1), against a real
//! Prometheus loaded with the judge scenarios.

mod common;

use std::process::Command;
use std::time::Duration;

use common::judge_data::{BASELINE, CANARY};
use common::prom::Prometheus;
use common::serve::{Serve, TOKEN};
use serde_json::Value;

fn prometheus() -> &'static Prometheus {
    common::judge_data::shared_prometheus()
}

/// Argo's measurement of the shipped metric for `service`, or `None` (announced) without Go.
fn argo(engine_url: &str, service: &str, token: &str, extra: &[&str]) -> Option<Value> {
    let bin = common::kube_server::go_harness("argo-rollouts")?;
    let template = common::project_path("analysis-templates/canary-engine-judge.yaml");
    let out = Command::new(bin)
        .arg("web")
        .arg("--template")
        .arg(&template)
        .args(["--arg", &format!("service={service}")])
        .args(["--arg", "namespace=prod"])
        .args(["--arg", &format!("canary-hash={CANARY}")])
        .args(["--arg", &format!("stable-hash={BASELINE}")])
        .args(["--arg", &format!("canary-engine-url={engine_url}")])
        .args(["--arg", &format!("token={token}")])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn argo_reads_every_verdict_as_its_phase() {
    let s = Serve::start(&prometheus().url, &[]);
    for (service, phase, value) in [
        ("healthy", "Successful", "\"pass\""),
        ("errors", "Failed", "\"fail\""),
        ("tail", "Failed", "\"fail\""),
        ("burning", "Failed", "\"fail\""),
        ("quiet", "Inconclusive", "\"inconclusive\""),
        ("silent", "Inconclusive", "\"inconclusive\""),
    ] {
        let Some(m) = argo(&s.url, service, TOKEN, &[]) else {
            return;
        };
        assert_eq!(
            (m["phase"].as_str().unwrap(), m["value"].as_str().unwrap()),
            (phase, value),
            "{service}: {m}"
        );
    }
}

/// Early stopping through Argo's own code: with a `decide-after` longer than any poll has
/// seen, a healthy canary whose tests cannot rule every regression out yet (no request of
/// either variant over 500 ms: nothing shows the canary has fewer) is `wait`, an
/// Inconclusive measurement Argo tolerates; a busy one whose every test has ruled its
/// regression out is `pass` at once — with the template's consecutiveSuccessLimit 1, the
/// measurement that ends the analysis Successful.
#[test]
fn a_decided_pass_ends_early_and_an_undecided_one_waits() {
    let s = Serve::start(&prometheus().url, &[]);
    for (service, phase, value) in [
        ("busy", "Successful", "\"pass\""),
        ("healthy", "Inconclusive", "\"wait\""),
    ] {
        let Some(m) = argo(&s.url, service, TOKEN, &["--arg", "decide-after=2h"]) else {
            return;
        };
        assert_eq!(
            (m["phase"].as_str().unwrap(), m["value"].as_str().unwrap()),
            (phase, value),
            "{service}: {m}"
        );
    }
}

#[test]
fn a_wrong_token_is_an_error_measurement() {
    let s = Serve::start(&prometheus().url, &[]);
    let Some(m) = argo(&s.url, "healthy", "not-the-token", &[]) else {
        return;
    };
    assert_eq!(m["phase"], "Error", "{m}");
    assert!(m["message"].as_str().unwrap().contains("401"), "{m}");
}

#[test]
fn prometheus_down_is_an_error_never_a_pass() {
    let port = common::prom::free_port();
    let s = Serve::start(&format!("http://127.0.0.1:{port}"), &[]);
    let Some(m) = argo(&s.url, "healthy", TOKEN, &[]) else {
        return;
    };
    assert_eq!(m["phase"], "Error", "{m}");
    assert!(m["message"].as_str().unwrap().contains("503"), "{m}");
}

#[test]
fn prometheus_slower_than_the_judge_is_an_error() {
    let slow = common::http::Server::start(|_| common::http::Reply {
        delay: Duration::from_secs(5),
        ..common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let s = Serve::start(&slow.url, &["--deadline", "1s"]);
    let Some(m) = argo(&s.url, "healthy", TOKEN, &[]) else {
        return;
    };
    assert_eq!(m["phase"], "Error", "{m}");
    assert!(m["message"].as_str().unwrap().contains("504"), "{m}");
}

/// Argo's metric timeout shorter than the judge takes: Argo gives up first (its HTTP
/// client's timeout), an Error measurement — not a verdict.
#[test]
fn a_metric_timeout_shorter_than_the_judge_is_an_error() {
    let slow = common::http::Server::start(|_| common::http::Reply {
        delay: Duration::from_secs(3),
        ..common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let s = Serve::start(&slow.url, &["--deadline", "20s"]);
    let started = std::time::Instant::now();
    let Some(m) = argo(&s.url, "healthy", TOKEN, &["--timeout-seconds", "1"]) else {
        return;
    };
    assert_eq!(m["phase"], "Error", "{m}");
    assert!(m["message"].as_str().unwrap().contains("Timeout"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
