//! Anchored analyses through the real `canary serve` over TCP and a real Prometheus: Argo's
//! five polls of one analysis extend one sequence (what the fifth poll knows includes what
//! the first knew), and a second server process asked the third poll gives the same verdict
//! and evidence — nothing about the sequence lives in one replica's memory.
//!
//! The data run from a minute before the test to two minutes after it (5 s steps), so each
//! poll, taken in real time, sees more of the canary's requests.

mod common;

use common::serve::{Serve, TOKEN};
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::Duration;

const STEP: i64 = 5;

fn openmetrics(start: i64, end: i64, canary_from: i64) -> String {
    let bounds = ["5", "10", "25", "50", "100", "250", "500", "1000", "+Inf"];
    // Per-step requests per bucket (non-cumulative), the same shape for both variants.
    let shape = [2u64, 10, 30, 40, 12, 4, 1, 1, 0];
    let mut buckets = String::new();
    let mut requests = String::new();
    for (hash, scale) in [("can1", 1u64), ("stb1", 9u64)] {
        let l = format!(
            "reporter=\"destination\",destination_service_name=\"live\",\
             destination_service_namespace=\"prod\",rollouts_pod_template_hash=\"{hash}\""
        );
        let first = if hash == "can1" { canary_from } else { start };
        let mut cum = vec![0u64; bounds.len()];
        let (mut ok, mut bad) = (0u64, 0u64);
        let mut t = first;
        let mut k = 0u64;
        while t <= end {
            if t > first {
                for (j, s) in shape.iter().enumerate() {
                    // A little deterministic noise, so ranks are not all tied.
                    cum[j] += (s + (k * 7 + j as u64 * 3) % 3) * scale;
                }
                let n: u64 = (0..shape.len())
                    .map(|j| (shape[j] + (k * 7 + j as u64 * 3) % 3) * scale)
                    .sum();
                bad += u64::from(k.is_multiple_of(10)) * scale;
                ok += n;
                k += 1;
            }
            let mut c = 0;
            for (b, v) in bounds.iter().zip(&cum) {
                c += v;
                let _ = writeln!(
                    buckets,
                    "istio_request_duration_milliseconds_bucket{{{l},le=\"{b}\"}} {c} {t}"
                );
            }
            let _ = writeln!(
                requests,
                "istio_requests_total{{{l},response_code=\"200\"}} {ok} {t}"
            );
            let _ = writeln!(
                requests,
                "istio_requests_total{{{l},response_code=\"503\"}} {bad} {t}"
            );
            t += STEP;
        }
    }
    format!(
        "# TYPE istio_request_duration_milliseconds histogram\n{buckets}# TYPE istio_requests counter\n{requests}# EOF\n"
    )
}

/// The shipped v2 spec at 5 s steps, without the service-wide SLO.
fn spec(dir: &std::path::Path) {
    let text = std::fs::read_to_string(common::project_path(
        "analysis-templates/judge-istio-golden-signals.yaml",
    ))
    .unwrap();
    let cut = text.find("slos:").unwrap();
    let scoring = text.find("scoring:").unwrap();
    let text = format!("{}{}", &text[..cut], &text[scoring..])
        .replace("name: istio-golden-signals", "name: live")
        .replace("step: 30s", "step: 5s")
        .replace("lookback: 1h", "lookback: 10m");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("live.yaml"), text).unwrap();
}

fn post(url: &str, body: &Value) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{url}/api/v1/judge"))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    })
}

/// Sleep until 1 s past the next 5 s boundary, so two requests land in the same step.
fn to_step_start() {
    let now = chrono::Utc::now();
    let ms = now.timestamp_millis().rem_euclid(STEP * 1000);
    std::thread::sleep(Duration::from_millis((STEP * 1000 - ms + 1000) as u64));
}

fn latency(v: &Value) -> &Value {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "latency")
        .unwrap()
}

#[test]
fn five_polls_extend_one_sequence_and_any_replica_answers_the_same() {
    let now = chrono::Utc::now().timestamp();
    let start = now - now.rem_euclid(STEP) - 120;
    let canary_from = start + 60;
    let prom = common::prom::Prometheus::start(&openmetrics(start, start + 300, canary_from));
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        spec(&d.path().join("judges"));
    }
    let [a, b] = dirs.map(|d| Serve::start_in(d, &prom.url, &["--cache-ttl", "1s"]));
    let body = json!({"judge": "live", "args": {"service": "live", "namespace": "prod",
        "canary_hash": "can1", "stable_hash": "stb1", "canary_weight": "10"}});
    let mut polls = Vec::new();
    for i in 0..5 {
        to_step_start();
        let v = post(&a.url, &body);
        if i == 2 {
            let other = post(&b.url, &body);
            let strip = |v: &Value| {
                let mut v = v.clone();
                let o = v.as_object_mut().unwrap();
                o.remove("id");
                o.remove("report");
                v
            };
            assert_eq!(
                strip(&v),
                strip(&other),
                "replica B answers poll 3 as A does"
            );
        }
        polls.push(v);
    }
    let anchor = &polls[0]["anchor"];
    assert_eq!(anchor["source"], "first_traffic", "{anchor}");
    let want_start = chrono::DateTime::from_timestamp(canary_from, 0)
        .unwrap()
        .to_rfc3339();
    assert_eq!(anchor["start"], want_start.as_str());
    for w in polls.windows(2) {
        let (p, q) = (&w[0], &w[1]);
        assert_eq!(p["anchor"]["start"], q["anchor"]["start"], "one sequence");
        assert!(q["anchor"]["steps"].as_u64() > p["anchor"]["steps"].as_u64());
        let (hp, hq) = (&latency(p)["histogram"], &latency(q)["histogram"]);
        for key in ["canary_requests", "baseline_requests", "v"] {
            assert!(
                hq["test"][key].as_f64() > hp["test"][key].as_f64(),
                "{key} grows: {} → {}",
                hp["test"][key],
                hq["test"][key]
            );
        }
        // The always-valid p-value only ever falls: later polls keep the earlier evidence, and
        // every test's e-value only grows toward its threshold.
        assert!(hq["test"]["p_value"].as_f64() <= hp["test"]["p_value"].as_f64());
        for (mp, mq) in p["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .zip(q["metrics"].as_array().unwrap())
        {
            let (ep, eq) = (
                mp["evidence"].as_array().unwrap(),
                mq["evidence"].as_array().unwrap(),
            );
            assert!(!ep.is_empty() && ep.len() == eq.len(), "{mp}");
            for (a, b) in ep.iter().zip(eq) {
                assert_eq!(a["test"], b["test"]);
                assert!(b["e_value"].as_f64() >= a["e_value"].as_f64(), "{a} → {b}");
                assert!(
                    b["clear_e_value"].as_f64() >= a["clear_e_value"].as_f64(),
                    "{a} → {b}"
                );
                assert_eq!(a["threshold"], b["threshold"]);
            }
        }
    }
    let last = &polls[4];
    assert_eq!(last["verdict"], "pass", "{last}");
    let states: Vec<&Value> = last["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["evidence"].as_array().unwrap())
        .map(|e| &e["state"])
        .collect();
    assert!(
        states.iter().all(|s| *s == "not_yet" || *s == "cleared"),
        "a healthy canary: no regression decided, {states:?}"
    );
}
