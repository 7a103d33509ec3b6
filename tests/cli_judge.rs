//! `canary judge` as a user runs it: the real binary, its JSON contract, its errors.

mod common;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn canary(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn canary");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn judge_stdin(input: &str) -> Output {
    canary(&["judge", "--input", "-"], Some(input))
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs a bad input and returns the one-line error, checking exit code 64.
fn bad(input: &str) -> String {
    let out = judge_stdin(input);
    assert_eq!(out.status.code(), Some(64), "input {input}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn regression_example_is_high_with_numbers() {
    let v = json(&canary(
        &["judge", "--input", "examples/judge/latency-regression.json"],
        None,
    ));
    assert_eq!(v["classification"], "high");
    let mw = &v["mann_whitney"];
    for k in [
        "u",
        "p_value",
        "estimate",
        "ci_lower",
        "ci_upper",
        "n_canary",
        "n_baseline",
    ] {
        assert!(mw[k].is_number(), "mann_whitney.{k} = {}", mw[k]);
    }
    assert!(mw["ci_lower"].as_f64().unwrap() > 0.0);
    assert_eq!(mw["n_canary"], 80);
    assert!(v["effect_size"]["mean_ratio"].as_f64().unwrap() > 1.2);
    assert!(v["effect_size"]["cles"].as_f64().unwrap() > 0.5);
    let reason = v["reasons"][0].as_str().unwrap();
    assert!(reason.contains("CI ["), "{reason}");
    // Contract field order: classification first.
    let text = String::from_utf8_lossy(
        &canary(
            &["judge", "-i", "examples/judge/latency-regression.json"],
            None,
        )
        .stdout,
    )
    .to_string();
    assert!(text.trim_start().starts_with("{\n  \"classification\""));
}

#[test]
fn issue_example_input_with_samples_and_counts() {
    let v = json(&judge_stdin(
        r#"{"canary": [1.0, 2.0], "baseline": [1.1, 2.2],
            "confidence": 0.95, "direction": "either", "nan": "remove",
            "effect": {"measure": "mean_ratio", "allowed_increase": 1.1, "critical_increase": 1.5},
            "canary_counts": {"bad": 12, "total": 10000}, "baseline_counts": {"bad": 90, "total": 90000}}"#,
    ));
    // Two points are below min_samples: nodata, yet the rank-sum numbers are reported.
    assert_eq!(v["classification"], "nodata");
    assert_eq!(v["mann_whitney"]["n_canary"], 2);
    assert!(v["mann_whitney"]["p_value"].is_number());
    let c = &v["counts"];
    assert!(c["p_value"].as_f64().unwrap() > 0.0 && c["p_value"].as_f64().unwrap() < 1.0);
    assert!(c["sequential_p_value"].as_f64().unwrap() <= 1.0);
    assert!(v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r.as_str().unwrap().contains("min_samples")));
}

#[test]
fn all_tied_reports_nulls_where_r_cannot_compute() {
    let v = json(&judge_stdin(
        r#"{"canary": [5, 5, 5], "baseline": [5, 5], "min_samples": 1}"#,
    ));
    assert_eq!(v["classification"], "pass");
    let mw = &v["mann_whitney"];
    assert_eq!(mw["u"], 3.0);
    assert!(mw["p_value"].is_null() && mw["ci_lower"].is_null() && mw["ci_upper"].is_null());
}

#[test]
fn counts_only_and_stdin() {
    let v = json(&judge_stdin(
        r#"{"canary_counts": {"bad": 0, "total": 5000}, "baseline_counts": {"bad": 3, "total": 45000}}"#,
    ));
    assert_eq!(
        v["classification"], "pass",
        "zero errors with traffic is health, not no data"
    );
    assert!(v["mann_whitney"].is_null());
    let v = json(&judge_stdin(
        r#"{"canary_counts": {"bad": 0, "total": 20}, "baseline_counts": {"bad": 0, "total": 45000}}"#,
    ));
    assert_eq!(v["classification"], "nodata");
}

#[test]
fn table_output_for_people() {
    let out = canary(
        &[
            "judge",
            "-i",
            "examples/judge/latency-regression.json",
            "--output",
            "table",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.starts_with("classification: HIGH"), "{text}");
    assert!(text.contains("confidence interval"));
}

#[test]
fn bad_input_names_the_field_and_exits_64() {
    assert!(bad("not json").contains("not valid JSON"));
    assert!(bad("[1, 2]").contains("expected a JSON object"));
    assert!(bad(r#"{"canary": "x", "baseline": [1]}"#).contains("canary"));
    assert!(bad(r#"{"canary": [1, "a"], "baseline": [1]}"#).contains("canary[1]"));
    assert!(bad(r#"{"canary": [], "baseline": [1]}"#).contains("canary: empty array"));
    assert!(bad(r#"{"canary": [1], "baseline": [1e999]}"#).contains("baseline"));
    assert!(bad(r#"{"canary": [1]}"#).contains("baseline: missing"));
    assert!(bad(r#"{"canary": [1], "baseline": [1], "confidance": 0.9}"#).contains("confidance"));
    assert!(bad(r#"{"canary": [1], "baseline": [1], "confidence": 1.5}"#).contains("confidence"));
    assert!(bad(r#"{"canary": [1], "baseline": [1], "direction": "up"}"#).contains("direction"));
    assert!(
        bad(r#"{"canary": [1], "baseline": [1], "effect": {"allowed_increase": "a"}}"#)
            .contains("effect.allowed_increase")
    );
    assert!(bad(
        r#"{"canary_counts": {"bad": 5, "total": 2}, "baseline_counts": {"bad": 0, "total": 9}}"#
    )
    .contains("canary_counts.bad"));
    assert!(bad(
        r#"{"canary_counts": {"bad": -1, "total": 2}, "baseline_counts": {"bad": 0, "total": 9}}"#
    )
    .contains("canary_counts.bad[0]"));
    assert!(bad(r#"{"confidence": 0.9}"#).contains("no data"));
    let out = canary(&["judge", "--input", "/nonexistent/file.json"], None);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.json"));
}

#[test]
fn a_closed_pipe_is_not_a_crash() {
    // `canary judge … | head -1`: the reader is gone before the result is written.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["judge", "--input", "examples/judge/latency-regression.json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run canary");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    assert_eq!(canary(&["judge"], None).status.code(), Some(64));
    assert_eq!(canary(&["frobnicate"], None).status.code(), Some(64));
    let help = canary(&["judge", "--help"], None);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--input"));
}

#[test]
fn histogram_input_is_judged_request_by_request() {
    let out = canary(
        &[
            "judge",
            "--input",
            "examples/judge/histogram-latency-regression.json",
        ],
        None,
    );
    let v = json(&out);
    assert_eq!(v["classification"], "high", "{v}");
    let reasons = v["reasons"].to_string();
    assert!(reasons.contains("slower request by request"), "{reasons}");
    let h = &v["histogram"];
    assert!(h["test"]["z"].as_f64().unwrap() > 5.0, "{h}");
    let p50 = &h["quantiles"][0];
    assert_eq!(p50["quantile"], 0.5);
    assert!(p50["ratio"].as_f64().unwrap() > 1.1, "{p50}");
    assert!(h["e_value_threshold"].as_f64().unwrap() > 100.0);
    let shift = &v["evidence"][0];
    assert_eq!(
        (shift["test"].as_str(), shift["state"].as_str()),
        (Some("latency shift"), Some("decided")),
        "{v}"
    );
    assert!(shift["e_value"].as_f64().unwrap() >= shift["threshold"].as_f64().unwrap());
    // The table shows the same numbers for people.
    let t = canary(
        &[
            "judge",
            "--input",
            "examples/judge/histogram-latency-regression.json",
            "--output",
            "table",
        ],
        None,
    );
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(
        text.contains("stratified CLES") && text.contains("p99 canary / baseline"),
        "{text}"
    );
}

#[test]
fn histogram_counter_readings_survive_a_reset() {
    // Raw readings at step boundaries: the canary's counters reset after the second step (a
    // pod restart). The reset step counts the new value, as Prometheus' increase does.
    let input = r#"{"histogram": {"bounds": [10, 100, "+Inf"], "counters": true,
        "canary":   [[0, 0, 0], [10, 60, 100], [20, 120, 200], [2, 12, 20], [12, 72, 120]],
        "baseline": [[0, 0, 0], [90, 540, 900], [180, 1080, 1800], [270, 1620, 2700], [360, 2160, 3600]]},
        "direction": "increase", "min_requests": 10}"#;
    let v = json(&judge_stdin(input));
    let h = &v["histogram"]["test"];
    assert_eq!(h["canary_requests"], 320.0, "{v}");
    assert_eq!(h["baseline_requests"], 3600.0);
    assert_eq!(v["classification"], "pass", "{v}");
}

#[test]
fn bad_histogram_input_names_the_field() {
    let cases = [
        (
            r#"{"histogram": {"bounds": [10, 100], "canary": [[1, 2]], "baseline": [[1, 2]]}}"#,
            "error: histogram.bounds: give at least two bounds, the last \"+Inf\"",
        ),
        (
            r#"{"histogram": {"bounds": [10, "+Inf"], "canary": [[1, 2, 3]], "baseline": [[1, 2]]}}"#,
            "error: histogram.canary[0]: 3 counts for 2 bounds",
        ),
        (
            r#"{"histogram": {"bounds": [10, "+Inf"], "canary": [[1, 2]], "baseline": [[1, -2]]}}"#,
            "error: histogram.baseline[0][1]: a count must be a finite number ≥ 0",
        ),
        (
            r#"{"histogram": {"bounds": [100, 10, "+Inf"], "canary": [[1, 2, 3]], "baseline": [[1, 2, 3]]}}"#,
            "error: histogram.bounds[1]: bounds must be strictly ascending",
        ),
        (
            r#"{"histogram": {"bounds": [10, "+Inf"], "canary": [[1, 2]], "baseline": [[1, 2]], "slower_than": 50}}"#,
            "error: histogram.slower_than: 50 is not one of the bounds",
        ),
    ];
    for (input, want) in cases {
        let msg = bad(input);
        assert!(msg.starts_with(want), "{input}\n→ {msg}");
    }
}
