//! Prometheus failures through real sockets: down, slower than the timeout, HTTP 500,
//! a Prometheus error, garbage. Each is an Error (exit 3), never Successful.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::http::{Reply, Server};
use serde_json::Value;

const TEMPLATE: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: faults}
spec:
  args: [{name: service}]
  metrics:
  - name: success-rate
    consecutiveErrorLimit: 0
    successCondition: len(result) > 0 && result[0] >= 0.99
    provider:
      prometheus:
        timeout: 1
        headers: [{key: X-Team, value: payments}]
        query: sum(rate(req{service="{{args.service}}"}[5m]))
"#;

fn run(prometheus_url: &str, extra: &[&str]) -> (i32, Value, f64) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.yaml");
    std::fs::write(&t, TEMPLATE).unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["analyze", t.to_str().unwrap(), "--arg", "service=checkout"])
        .args(["--prometheus", prometheus_url, "-o", "json"])
        .args(extra)
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no JSON; stderr: {}", String::from_utf8_lossy(&out.stderr)));
    (
        out.status.code().unwrap(),
        json,
        started.elapsed().as_secs_f64(),
    )
}

fn message(r: &Value) -> String {
    r["metrics"][0]["measurements"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn prometheus_down_is_an_error() {
    let port = common::prom::free_port();
    let (code, r, _) = run(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(code, 3, "{r:#}");
    assert_eq!(r["phase"], "Error");
    assert!(message(&r).contains("unreachable"), "{}", message(&r));
}

#[test]
fn prometheus_slower_than_the_timeout_is_an_error() {
    let slow = Server::start(|_| Reply {
        delay: Duration::from_secs(5),
        ..Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
    });
    let (code, r, elapsed) = run(&slow.url, &[]);
    assert_eq!(code, 3, "{r:#}");
    assert!(message(&r).contains("within 1000 ms"), "{}", message(&r));
    assert!(elapsed < 4.0, "the 1 s timeout was honoured: {elapsed}");
}

#[test]
fn http_500_and_prometheus_errors_are_errors() {
    let s = Server::start(|_| Reply::text(500, "internal error"));
    let (code, r, _) = run(&s.url, &[]);
    assert_eq!(code, 3);
    assert!(message(&r).contains("HTTP 500"), "{}", message(&r));

    let s = Server::start(|_| {
        Reply::json(
            503,
            r#"{"status":"error","errorType":"unavailable","error":"too many queries"}"#,
        )
    });
    let (code, r, _) = run(&s.url, &[]);
    assert_eq!(code, 3);
    assert!(
        message(&r).contains("Prometheus unavailable error (HTTP 503): too many queries"),
        "{}",
        message(&r)
    );

    let s = Server::start(|_| {
        Reply::json(
            422,
            r#"{"status":"error","errorType":"execution","error":"many-to-many"}"#,
        )
    });
    let (code, r, _) = run(&s.url, &[]);
    assert_eq!(code, 3);
    assert!(message(&r).contains("execution"), "{}", message(&r));
}

#[test]
fn garbage_is_an_error() {
    for reply in [
        Reply::json(200, "{garbage"),
        Reply::text(200, "<html>login page</html>"),
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
        ),
    ] {
        let s = Server::start(move |_| reply.clone());
        let (code, r, _) = run(&s.url, &[]);
        assert_eq!(code, 3, "{r:#}");
        assert!(message(&r).contains("malformed"), "{}", message(&r));
    }
}

#[test]
fn the_query_carries_auth_tenant_and_headers() {
    let s = Server::start(|_| {
        Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"0.995"]}]}}"#,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let (code, r, _) = run(
        &s.url,
        &[
            "--prometheus-tenant",
            "team-a",
            "--prometheus-bearer-token-file",
            token.to_str().unwrap(),
            "--prometheus-header",
            "X-Extra=1",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    let seen = s.seen();
    let req = &seen[0];
    assert_eq!(req.method, "POST");
    assert!(req.target.starts_with("/api/v1/query"), "{}", req.target);
    assert_eq!(req.header("x-scope-orgid"), Some("team-a"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(req.header("x-extra"), Some("1"));
    assert_eq!(req.header("x-team"), Some("payments"));
    let form: Vec<(String, String)> = url::form_urlencoded::parse(req.body.as_bytes())
        .into_owned()
        .collect();
    assert!(
        form.contains(&(
            "query".into(),
            r#"sum(rate(req{service="checkout"}[5m]))"#.into()
        )),
        "{form:?}"
    );
    assert!(
        form.contains(&("timeout".into(), "1000ms".into())),
        "{form:?}"
    );
}
