//! The web provider against a real HTTP server: jsonPath, JSON bodies, non-JSON answers,
//! non-2xx statuses and timeouts, as Argo's webmetric provider handles them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::http::{Reply, Server};
use serde_json::Value;

fn template(url: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: judge}}
spec:
  args: [{{name: service}}]
  metrics:
  - name: verdict
    consecutiveErrorLimit: 0
    successCondition: result == "pass"
    failureCondition: result == "fail"
    provider:
      web:
        url: {url}/api/v1/judge
{extra}"#
    )
}

fn run(yaml: &str, service: &str) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.yaml");
    std::fs::write(&t, yaml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["analyze", t.to_str().unwrap(), "--arg"])
        .arg(format!("service={service}"))
        .args(["-o", "json"])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("stderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

const POST: &str = r#"        method: POST
        timeoutSeconds: 2
        headers: [{key: Authorization, value: Bearer t0ken}]
        jsonBody: {judge: golden-signals, args: {service: "{{args.service}}"}}
        jsonPath: "{$.verdict}"
"#;

#[test]
fn verdicts_map_to_phases_and_the_body_is_json() {
    let s = Server::start(|req| {
        let body: Value = serde_json::from_str(&req.body).unwrap_or(Value::Null);
        let verdict = match body["args"]["service"].as_str() {
            Some("good") => "pass",
            Some("bad") => "fail",
            _ => "marginal",
        };
        Reply::json(200, &format!(r#"{{"verdict":"{verdict}","score":90}}"#))
    });
    let yaml = template(&s.url, POST);
    assert_eq!(run(&yaml, "good").0, 0);
    assert_eq!(run(&yaml, "bad").0, 1);
    let (code, r) = run(&yaml, r#"we"ird"#);
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["metrics"][0]["measurements"][0]["value"], "\"marginal\"");
    let req = s.seen().pop().unwrap();
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer t0ken"));
    let body: Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(
        body["args"]["service"], r#"we"ird"#,
        "a quote in an arg stays inside the string"
    );
}

#[test]
fn non_json_body_is_the_raw_string() {
    let s = Server::start(|_| Reply::text(200, "pass"));
    let (code, r) = run(&template(&s.url, ""), "x");
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(s.seen()[0].method, "GET");
}

#[test]
fn non_2xx_missing_path_and_timeouts_are_errors() {
    let s = Server::start(|_| Reply::json(503, r#"{"verdict":"pass"}"#));
    let (code, r) = run(&template(&s.url, POST), "x");
    assert_eq!(code, 3, "{r:#}");
    assert!(r["message"].as_str().unwrap().contains("HTTP 503"), "{r:#}");

    let s = Server::start(|_| Reply::json(200, r#"{"other":"pass"}"#));
    let (code, r) = run(&template(&s.url, POST), "x");
    assert_eq!(code, 3, "{r:#}");
    assert!(r["message"].as_str().unwrap().contains("JSONPath"), "{r:#}");

    let s = Server::start(|_| Reply {
        delay: Duration::from_secs(4),
        ..Reply::json(200, r#"{"verdict":"pass"}"#)
    });
    let (code, r) = run(&template(&s.url, POST), "x");
    assert_eq!(code, 3, "{r:#}");
}
