//! `canary calibrate` against a real Prometheus loaded with the judge scenarios: an A/A test
//! of identical variants raises no alarm and catches injected regressions above the allowed
//! effect but not below it; a service whose errors jump mid-history raises a false alarm in
//! the adjacent-window A/A and misses the target.

mod common;

use std::sync::OnceLock;

use common::judge_data::{Scenarios, BASELINE, CANARY};
use serde_json::Value;

fn data() -> &'static Scenarios {
    static D: OnceLock<Scenarios> = OnceLock::new();
    D.get_or_init(Scenarios::start)
}

fn at(offset_minutes: i64) -> String {
    data().at(offset_minutes)
}

const JUDGE: &str = "tests/fixtures/judge-v1-golden-signals.yaml";

fn calibrate(service: &str, extra: &[&str]) -> (i32, String, String) {
    let d = data();
    let from = at(-50);
    let to = at(0);
    let service = format!("service={service}");
    let canary = format!("canary_hash={CANARY}");
    let stable = format!("stable_hash={BASELINE}");
    let mut args = vec![
        "calibrate",
        JUDGE,
        "--prometheus",
        &d.prometheus.url,
        "--from",
        &from,
        "--to",
        &to,
        "--arg",
        &service,
        "--arg",
        "namespace=prod",
        "--arg",
        &canary,
        "--arg",
        &stable,
    ];
    args.extend_from_slice(extra);
    common::canary(&args)
}

fn metric<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name}: {v}"))
}

fn detection(m: &Value, factor: f64) -> &Value {
    m["detection"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["factor"].as_f64() == Some(factor))
        .unwrap()
}

#[test]
fn identical_variants_raise_no_alarm_and_catch_what_exceeds_the_allowed_effect() {
    let (code, out, err) = calibrate(
        "healthy",
        &["--mode", "args", "--inject", "1.1,2", "--output", "json"],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["moments"], 6, "every window (10m) from -50m to now: {v}");
    assert_eq!(v["fail"], 0);
    assert_eq!(v["meets_target"], true);
    for m in v["metrics"].as_array().unwrap() {
        assert_eq!(m["false_alarms"], 0, "{m}");
        assert!(m["windows"].as_u64().unwrap() >= 5, "{m}");
    }
    // p99 and p50 allow a 1.2× mean ratio: a 2× regression is caught in every window, a
    // 1.1× one in none.
    for name in ["p99-latency", "p50-latency"] {
        let m = metric(&v, name);
        assert_eq!(detection(m, 2.0)["rate"], 1.0, "{m}");
        assert_eq!(detection(m, 1.1)["rate"], 0.0, "{m}");
        let d = detection(m, 2.0);
        let median = d["median_seconds"].as_f64().unwrap();
        assert!(
            median > 0.0 && median <= 600.0,
            "caught within the 10 m window: {d}"
        );
        assert_eq!(d["caught_within_window"], 1.0, "{d}");
    }
    // request-rate is bad when it drops: a 2× regression halves the canary's traffic.
    assert_eq!(metric(&v, "request-rate")["direction"], "decrease");
    assert_eq!(detection(metric(&v, "request-rate"), 2.0)["rate"], 1.0);
    // A threshold that never alarms on identical data meets any target at its strictest.
    let p99 = metric(&v, "p99-latency");
    assert_eq!(p99["recommended_effect"], 1.0, "{p99}");
}

#[test]
fn a_jump_in_errors_is_a_false_alarm_in_adjacent_windows_and_misses_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("calibration.html");
    let page_arg = page.display().to_string();
    let (code, out, err) = calibrate(
        "burning",
        &["--output", "json", "--html", &page_arg, "--target", "5%"],
    );
    assert_eq!(code, 1, "above the target is exit 1: {err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let errors = metric(&v, "error-ratio");
    // Errors rise to 20 % an hour ago: only the window comparing before with after alarms.
    assert_eq!(errors["false_alarms"], 1, "{errors}");
    assert_eq!(v["verdicts"][0][1], "fail", "{v}");
    assert!(v["false_alarm_rate"].as_f64().unwrap() > 0.05);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("False-alarm rate per metric") && html.matches("<svg").count() >= 10);
    assert!(!html.contains("<script"));
}

/// The threshold sweeps re-judge the same A/A windows: a more lenient setting never alarms
/// more, the configured setting's rate is the reported one, and the recommendation is the
/// most sensitive setting whose rate meets the target.
#[test]
fn recommendations_are_the_most_sensitive_settings_that_meet_the_target() {
    let (code, out, err) = calibrate(
        "healthy",
        &["--every", "1m", "--target", "5%", "--output", "json"],
    );
    assert!(code == 0 || code == 1, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["moments"], 51);
    let mut strict_alarms = false;
    for m in v["metrics"].as_array().unwrap() {
        for (curve, now, recommended) in [
            ("effect_curve", "effect", "recommended_effect"),
            ("confidence_curve", "confidence", "recommended_confidence"),
        ] {
            let pts: Vec<(f64, f64)> = m[curve]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p["value"].as_f64().unwrap(), p["rate"].as_f64().unwrap()))
                .collect();
            for w in pts.windows(2) {
                assert!(w[1].1 <= w[0].1, "{} {curve}: {pts:?}", m["name"]);
            }
            let current = pts
                .iter()
                .find(|p| (p.0 - m[now].as_f64().unwrap()).abs() < 1e-9)
                .unwrap_or_else(|| panic!("{curve} lacks the configured {now}: {pts:?}"));
            assert_eq!(current.1, m["false_alarm_rate"].as_f64().unwrap(), "{m}");
            let first_ok = pts.iter().find(|p| p.1 <= 0.05).map(|p| p.0);
            assert_eq!(m[recommended].as_f64(), first_ok, "{} {curve}", m["name"]);
            strict_alarms |= pts[0].1 > 0.05;
        }
    }
    assert!(
        strict_alarms,
        "at the strictest settings some metric alarms on A/A data, so the sweep decides something: {v}"
    );
}

#[test]
fn the_table_names_rates_recommendations_and_detection() {
    let (code, out, err) = calibrate("healthy", &["--mode", "args"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("A/A calibration of istio-golden-signals"),
        "{out}"
    );
    assert!(out.contains("false alarms") && out.contains("confidence now → for target"));
    assert!(out.contains("×1.25") && out.contains("Overall"), "{out}");
}

#[test]
fn prometheus_down_is_an_error_and_bad_arguments_are_usage_errors() {
    let port = common::prom::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, _, err) = common::canary(&[
        "calibrate",
        JUDGE,
        "--prometheus",
        &url,
        "--from",
        "1h",
        "--arg",
        "service=x",
        "--arg",
        "namespace=y",
        "--arg",
        "canary_hash=a",
        "--arg",
        "stable_hash=b",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("unreachable"), "{err}");
    let (code, _, err) = common::canary(&["calibrate", JUDGE, "--from", "1h", "--target", "150%"]);
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = common::canary(&[
        "calibrate",
        "analysis-templates/istio-success-rate.yaml",
        "--from",
        "1h",
        "--arg",
        "service=x",
        "--arg",
        "namespace=y",
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("one Judge spec"), "{err}");
}

#[test]
#[ignore = "prints the reports for a person to look at"]
fn show() {
    let (_, out, _) = calibrate("tail", &["--html", "/tmp/calibration.html"]);
    println!("{out}");
}

const V2: &str = "analysis-templates/judge-istio-golden-signals.yaml";

fn calibrate_v2(service: &str, extra: &[&str]) -> (i32, String, String) {
    let d = data();
    let (from, to) = (at(-50), at(0));
    let service = format!("service={service}");
    let canary = format!("canary_hash={CANARY}");
    let stable = format!("stable_hash={BASELINE}");
    let mut args = vec![
        "calibrate",
        V2,
        "--prometheus",
        &d.prometheus.url,
        "--from",
        &from,
        "--to",
        &to,
        "--arg",
        &service,
        "--arg",
        "namespace=prod",
        "--arg",
        &canary,
        "--arg",
        &stable,
        "--arg",
        "canary_weight=50",
    ];
    args.extend_from_slice(extra);
    common::canary(&args)
}

/// The v2 kinds (raw counters, histogram buckets, traffic share) replayed by calibrate: an
/// A/A of identical variants judges every window with data and raises no alarm; errors ×2
/// and every request ×2 slower, injected into the same steps, are caught; a starved canary
/// is caught by the share test once it gets less than half its share (its requests ÷4 —
/// ÷2 leaves it two thirds of its share, which the spec tolerates).
#[test]
fn the_v2_kinds_are_calibrated_on_their_own_steps() {
    let (code, out, err) = calibrate_v2(
        "healthy",
        &["--mode", "args", "--inject", "1.05,2,4", "--output", "json"],
    );
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    for name in ["errors", "latency", "traffic"] {
        let m = metric(&v, name);
        assert_eq!(m["nodata"], 0, "{name} judged every window: {m}");
        assert_eq!(m["windows"], 6, "{m}");
        assert_eq!(m["false_alarms"], 0, "{m}");
    }
    // Twice the errors, every request twice as slow, a quarter of the requests: caught in
    // every fully regressed window.
    for (name, factor) in [("errors", 2.0), ("latency", 2.0), ("traffic", 4.0)] {
        assert_eq!(
            detection(metric(&v, name), factor)["rate"],
            1.0,
            "{name}: {v}"
        );
    }
    assert_eq!(detection(metric(&v, "traffic"), 2.0)["rate"], 0.0, "{v}");
    // ×1.05 is under the allowed effects of errors and traffic: never an alarm. (Latency
    // ×1.05 pushes requests past 500 ms where the baseline has none at all, which the
    // slow-request test rightly flags.)
    for name in ["errors", "traffic"] {
        assert_eq!(
            detection(metric(&v, name), 1.05)["rate"],
            0.0,
            "{name}: {v}"
        );
    }
}

/// `--polls`: analyses replayed the way Argo polls them, anchored at their starts. A/A: no
/// analysis fails; each metric made worse from the start (×2; the share ÷4) fails every
/// analysis, at a look within the analysis; the table says so.
#[test]
fn polled_analyses_give_the_per_analysis_rate_and_time_to_detection() {
    let poll = [
        "--mode",
        "args",
        "--inject",
        "2,4",
        "--polls",
        "5",
        "--poll-interval",
        "2m",
        "--every",
        "10m",
    ];
    let mut json = poll.to_vec();
    json.extend(["--output", "json"]);
    let (code, out, err) = calibrate_v2("healthy", &json);
    assert_eq!(code, 0, "{err}\n{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let p = &v["polled"];
    assert_eq!(p["count"], 5, "{p}");
    assert_eq!(p["interval_seconds"], 120);
    assert!(p["analyses"].as_u64().unwrap() >= 4, "{p}");
    assert_eq!(p["failed"], 0, "{p}");
    assert_eq!(p["inconclusive"], 0, "{p}");
    assert_eq!(p["looks"], p["analyses"].as_u64().unwrap() * 5, "{p}");
    assert!(p["false_alarm_rate_upper95"].as_f64().unwrap() > 0.0);
    for d in p["detection"].as_array().unwrap() {
        if d["metric"] == "traffic" && d["factor"] == 2.0 {
            assert_eq!(d["caught"], 0, "two thirds of its share is tolerated: {d}");
            continue;
        }
        assert_eq!(d["caught"], d["analyses"], "{d}");
        let t = d["median_seconds"].as_f64().unwrap();
        assert!((120.0..=600.0).contains(&t), "{d}");
    }
    let (code, table, _) = calibrate_v2("healthy", &poll);
    assert_eq!(code, 0);
    assert!(
        table.contains("Polled as Argo polls (count 5, interval 2m, failureLimit 0): 0 of"),
        "{table}"
    );
}
