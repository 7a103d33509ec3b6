//! End to end over TCP: a real Prometheus with scenario data → `canary serve` →
//! `canary analyze` running the shipped Argo web-provider template against it. The Argo
//! phase must be right for every scenario; the HTTP contract is checked on the same server.

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::judge_data::{BASELINE, CANARY};
use common::prom::Prometheus;
use serde_json::{json, Value};

use common::serve::{Serve, TOKEN};
use common::wait;

/// How long to wait for a server to act on a signal or a request before failing: generous,
/// since a loaded CI machine is slow; waits end as soon as the condition holds.
const PATIENCE: Duration = Duration::from_secs(30);

fn prometheus() -> &'static Prometheus {
    common::judge_data::shared_prometheus()
}

fn server() -> &'static Serve {
    static S: OnceLock<Serve> = OnceLock::new();
    S.get_or_init(|| Serve::start(&prometheus().url, &[]))
}

/// Argo's view: run the shipped AnalysisTemplate with `canary analyze --once`.
fn argo_phase(service: &str, engine_url: &str) -> (i32, Value) {
    let template = common::project_path("analysis-templates/canary-engine-judge.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("analyze")
        .arg(&template)
        .args([
            "--arg",
            &format!("service={service}"),
            "--arg",
            "namespace=prod",
        ])
        .args([
            "--arg",
            &format!("canary-hash={CANARY}"),
            "--arg",
            &format!("stable-hash={BASELINE}"),
        ])
        .args([
            "--arg",
            &format!("canary-engine-url={engine_url}"),
            "--arg",
            &format!("token={TOKEN}"),
        ])
        .args(["--once", "-o", "json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no report: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn post(url: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new()
            .post(format!("{url}/api/v1/judge"))
            .json(body)
            .timeout(Duration::from_secs(20));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    })
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

fn judge_body(service: &str) -> Value {
    json!({"judge": "istio-kayenta-compatible", "args": {
        "service": service, "namespace": "prod", "canary_hash": CANARY, "stable_hash": BASELINE}})
}

#[test]
fn argo_phase_is_right_for_every_scenario() {
    let s = server();
    let cases = [
        ("healthy", 0, "Successful", "\"pass\""),
        ("errors", 1, "Failed", "\"fail\""),
        ("tail", 1, "Failed", "\"fail\""),
        ("burning", 1, "Failed", "\"fail\""),
        ("quiet", 2, "Inconclusive", "\"inconclusive\""),
        ("silent", 2, "Inconclusive", "\"inconclusive\""),
    ];
    for (service, code, phase, verdict) in cases {
        let (got, report) = argo_phase(service, &s.url);
        let m = &report["metrics"][0]["measurements"][0];
        assert_eq!(
            (
                got,
                report["phase"].as_str().unwrap(),
                m["value"].as_str().unwrap_or("")
            ),
            (code, phase, verdict),
            "{service}: {report:#}"
        );
    }
}

#[test]
fn verdicts_carry_their_reasons() {
    let s = server();
    let (status, v) = post(&s.url, &judge_body("errors"), Some(TOKEN));
    assert_eq!(status, 200, "{v:#}");
    assert_eq!(v["verdict"], "fail");
    let errors = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "error-ratio")
        .unwrap();
    assert_eq!(errors["classification"], "high", "{errors:#}");
    assert!(v["slos"][0]["outcome"] == "fail", "{:#}", v["slos"]);
    for key in ["id", "score", "reasons", "report", "window"] {
        assert!(!v[key].is_null(), "{key} missing: {v:#}");
    }

    let (_, v) = post(&s.url, &judge_body("tail"), Some(TOKEN));
    let by = |n: &str| {
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by("p99-latency")["classification"], "high", "{v:#}");
    assert_eq!(by("p50-latency")["classification"], "pass", "{v:#}");
    assert_eq!(v["slos"][0]["outcome"], "pass");

    let (_, v) = post(&s.url, &judge_body("burning"), Some(TOKEN));
    assert_eq!(v["verdict"], "fail");
    assert!(
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["classification"] == "pass"),
        "{v:#}"
    );
    let reason = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r.as_str().unwrap().starts_with("availability"))
        .unwrap();
    assert!(
        reason.as_str().unwrap().contains("error budget is gone in"),
        "{reason}"
    );

    // The stored analysis and its report page.
    let id = v["id"].as_str().unwrap();
    let (status, body) = get(&format!("{}/api/v1/analyses/{id}", s.url), Some(TOKEN));
    assert_eq!(status, 200);
    let stored: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stored["verdict"], "fail");
    let (status, html) = get(
        &format!("{}{}", s.url, v["report"].as_str().unwrap()),
        Some(TOKEN),
    );
    assert_eq!(status, 200);
    assert!(
        html.contains("class=\"badge\"")
            && html.contains(">fail</span>")
            && html.contains("availability")
            && html.matches("<svg").count() >= 4
            // canary vs baseline with the decision point, distributions with the HL interval,
            // burn rate against each rule's threshold
            && html.contains("canary vs baseline")
            && html.contains("decided: pass")
            && html.contains("distributions (ECDF) and the shift interval")
            && html.contains("burn rate over 1h/5m")
            && html.contains("threshold 14.4x"),
        "{html}"
    );
}

#[test]
fn http_contract_errors() {
    let s = server();
    let (status, v) = post(&s.url, &judge_body("healthy"), None);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = post(&s.url, &judge_body("healthy"), Some("wrong-token"));
    assert_eq!(status, 401);
    let (status, v) = post(&s.url, &json!({"judge": "nope", "args": {}}), Some(TOKEN));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("unknown_judge")),
        "{v}"
    );
    let (status, v) = post(
        &s.url,
        &json!({"judge": "istio-kayenta-compatible", "args": {"service": "x"}}),
        Some(TOKEN),
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["field"], "args.namespace", "{v}");
    let (status, v) = post(
        &s.url,
        &json!({"judge": {"kind": "Judge"}, "args": {}}),
        Some(TOKEN),
    );
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("inline_disabled")),
        "{v}"
    );
    let big =
        json!({"judge": "istio-kayenta-compatible", "args": {"service": "x".repeat(100_000)}});
    let (status, v) = post(&s.url, &big, Some(TOKEN));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("body_too_large")),
        "{v}"
    );
    // Not JSON at all.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, v) = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/judge", s.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    });
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_json")),
        "{v}"
    );
    let (status, _) = get(&format!("{}/api/v1/analyses/unknown", s.url), Some(TOKEN));
    assert_eq!(status, 404);
    let (status, body) = get(&format!("{}/healthz", s.url), None);
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = get(&format!("{}/readyz", s.url), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("istio-kayenta-compatible"), "{body}");
    let (status, body) = get(&format!("{}/metrics", s.url), None);
    assert_eq!(status, 200);
    assert!(body.contains("canary_http_requests_total"), "{body}");
}

#[test]
fn identical_concurrent_judgements_share_one_set_of_queries() {
    // A fresh server, so its counters start at zero.
    let s = Serve::start(&prometheus().url, &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = s.url.clone();
    let verdicts: Vec<String> = rt.block_on(async {
        let client = reqwest::Client::new();
        let calls = (0..50).map(|_| {
            let client = client.clone();
            let url = url.clone();
            async move {
                let r = client
                    .post(format!("{url}/api/v1/judge"))
                    .bearer_auth(TOKEN)
                    .json(&judge_body("healthy"))
                    .send()
                    .await
                    .unwrap();
                r.json::<Value>().await.unwrap()["verdict"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        });
        futures_util::future::join_all(calls).await
    });
    assert!(verdicts.iter().all(|v| v == "pass"), "{verdicts:?}");
    let (_, metrics) = get(&format!("{}/metrics", s.url), None);
    let count = |kind: &str| -> f64 {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("canary_prometheus_cache_total")
                    && l.contains(&format!("kind=\"{kind}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // 6 queries per judgement: each metric query folded over both variants (3 series
    // metrics, 1 count metric × 2) and the SLO's 2 rules × 4 folded into one — 18 before
    // folding. 50 judgements: at most two sets (if a 30 s step boundary fell in between).
    let misses = count("miss");
    assert!(
        misses == 6.0 || misses == 12.0,
        "misses {misses}\n{metrics}"
    );
    assert_eq!(
        count("miss") + count("coalesced") + count("hit"),
        50.0 * 6.0
    );
}

#[test]
fn prometheus_failures_are_http_errors_and_argo_errors() {
    // Down.
    let port = common::prom::free_port();
    let down = Serve::start(&format!("http://127.0.0.1:{port}"), &[]);
    let (status, v) = post(&down.url, &judge_body("healthy"), Some(TOKEN));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (503, Some("prometheus_unreachable")),
        "{v}"
    );
    let (code, report) = argo_phase("healthy", &down.url);
    assert_eq!(
        (code, report["phase"].as_str()),
        (3, Some("Error")),
        "{report:#}"
    );
    let (status, _) = get(&format!("{}/readyz", down.url), None);
    assert_eq!(status, 503);

    // Slower than the deadline.
    let slow = common::http::Server::start(|_| common::http::Reply {
        delay: Duration::from_secs(5),
        ..common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let s = Serve::start(&slow.url, &["--deadline", "1s"]);
    let started = std::time::Instant::now();
    let (status, v) = post(&s.url, &judge_body("healthy"), Some(TOKEN));
    assert_eq!(status, 504, "{v}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // HTTP 500 and garbage.
    for reply in [
        common::http::Reply::text(500, "oops"),
        common::http::Reply::json(200, "{garbage"),
    ] {
        let fake = common::http::Server::start(move |_| reply.clone());
        let s = Serve::start(&fake.url, &[]);
        let (status, v) = post(&s.url, &judge_body("healthy"), Some(TOKEN));
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (502, Some("prometheus_error")),
            "{v}"
        );
        let (code, _) = argo_phase("healthy", &s.url);
        assert_eq!(code, 3);
    }
}

#[test]
fn sigterm_drains_in_flight_requests() {
    // Prometheus answers after 2 s with no data: the judgement is slow but completes.
    let slow = common::http::Server::start(|_| common::http::Reply {
        delay: Duration::from_secs(2),
        ..common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let s = Serve::start(&slow.url, &["--deadline", "6s"]);
    let url = s.url.clone();
    let request = std::thread::spawn(move || post(&url, &judge_body("healthy"), Some(TOKEN)));
    // In flight for sure once the server is waiting on the slow Prometheus.
    wait::until("the judgement is querying Prometheus", PATIENCE, || {
        (!slow.seen().is_empty()).then_some(())
    });
    let (url, pid) = (s.url.clone(), s.pid());
    drop(s); // SIGTERM while the request is in flight
    let (status, v) = request.join().unwrap();
    assert_eq!(status, 200, "the in-flight request was answered: {v}");
    assert_eq!(v["verdict"], "inconclusive");
    // And the server is gone afterwards: the process has exited, new connections are refused.
    wait::until("canary serve has exited", PATIENCE, || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = rt.block_on(async { reqwest::get(format!("{url}/healthz")).await.is_err() });
    assert!(refused);
}

#[test]
fn specs_reload_and_a_broken_file_keeps_its_last_good_version() {
    let spec = |window: &str| {
        format!(
            "kind: Judge\nname: small\nargs: [canary_hash, stable_hash]\nwindow: {window}\nstep: 30s\nmetrics:\n- name: rate\n  query: sum(rate(istio_requests_total{{rollouts_pod_template_hash=\"{{{{variant.hash}}}}\"}}[2m]))\n"
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let judges = dir.path().join("judges");
    std::fs::create_dir(&judges).unwrap();
    let file = judges.join("small.yaml");
    std::fs::write(&file, spec("10m")).unwrap();
    // A long poll interval: the change below is picked up by SIGHUP, not by polling.
    let s = Serve::start_in(dir, &prometheus().url, &["--reload-interval", "1h"]);
    let body = json!({"judge": "small", "args": {"canary_hash": CANARY, "stable_hash": BASELINE}});
    // The judged window's length in seconds.
    let window = |v: &Value| {
        let at = |k: &str| {
            let t = v["window"][k].as_str().unwrap_or_else(|| panic!("{v}"));
            chrono::DateTime::parse_from_rfc3339(t).unwrap()
        };
        (at("end") - at("start")).num_seconds()
    };
    let (status, v) = post(&s.url, &body, Some(TOKEN));
    assert_eq!((status, window(&v)), (200, 600), "{v}");

    std::fs::write(&file, spec("5m")).unwrap();
    s.signal("HUP");
    wait::until("the 5m window is in use after SIGHUP", PATIENCE, || {
        let (status, v) = post(&s.url, &body, Some(TOKEN));
        assert_eq!(status, 200, "{v}");
        (window(&v) == 300).then_some(())
    });

    std::fs::write(&file, "kind: Judge\nname: small\nwindow: soon\n").unwrap();
    s.signal("HUP");
    // The reload's metrics are updated last, after the list of broken files.
    let metrics = wait::until("/metrics counts the failed reload", PATIENCE, || {
        let (_, metrics) = get(&format!("{}/metrics", s.url), None);
        metrics
            .contains("canary_judge_spec_reload_failures_total 1")
            .then_some(metrics)
    });
    assert!(metrics.contains("canary_judge_specs_broken 1"), "{metrics}");
    let (status, v) = post(&s.url, &body, Some(TOKEN));
    assert_eq!(status, 200, "the last good version still serves: {v}");
    assert_eq!(window(&v), 300, "the last good version is the 5m one: {v}");
    let (_, ready) = get(&format!("{}/readyz", s.url), None);
    assert!(
        ready.contains("small.yaml") && ready.contains("window"),
        "{ready}"
    );
}

#[test]
fn tls_with_a_certificate_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    // A test CA, and a server certificate it signs (rustls refuses a CA as the end entity).
    let steps: [Vec<String>; 3] = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ]
        .map(String::from)
        .to_vec(),
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ]
        .map(String::from)
        .to_vec(),
        [
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p("ext"),
            "-out",
            &p("cert.pem"),
        ]
        .map(String::from)
        .to_vec(),
    ];
    for args in steps {
        let made = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl (installed by .ci/run) makes the test certificates");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let s = Serve::start(
        &prometheus().url,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = s.url.replace("http://", "https://");
    let pem = std::fs::read(p("ca.pem")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (health, verdict) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let health = client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let v: Value = client
            .post(format!("{url}/api/v1/judge"))
            .bearer_auth(TOKEN)
            .json(&judge_body("healthy"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (health, v["verdict"].clone())
    });
    assert_eq!((health, verdict), (200, json!("pass")));
    // Plain HTTP to the TLS port is not served.
    let rt2 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plain = rt2.block_on(async { reqwest::get(format!("{}/healthz", s.url)).await });
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[test]
fn inline_specs_when_allowed() {
    let s = Serve::start(&prometheus().url, &["--allow-inline"]);
    // Ranges of one step, so the points do not overlap (a longer range would be thinned).
    let spec = json!({"kind": "Judge", "name": "adhoc", "args": ["canary_hash", "stable_hash"],
        "window": "20m", "step": "1m",
        "metrics": [{"name": "rate", "direction": "decrease",
            "query": "sum(rate(istio_requests_total{destination_service_name=\"healthy\",rollouts_pod_template_hash=\"{{variant.hash}}\"}[{{step}}]))"}]});
    let (status, v) = post(
        &s.url,
        &json!({"judge": spec, "args": {"canary_hash": CANARY, "stable_hash": BASELINE}}),
        Some(TOKEN),
    );
    assert_eq!((status, v["verdict"].as_str()), (200, Some("pass")), "{v}");
    let bad = json!({"kind": "Judge", "name": "adhoc", "metrics": [{"name": "m", "query": "up", "direction": "sideways"}]});
    let (status, v) = post(&s.url, &json!({"judge": bad, "args": {}}), Some(TOKEN));
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("bad_spec")),
        "{v}"
    );
    assert_eq!(v["error"]["field"], "judge.metrics[0].direction", "{v}");
}

#[test]
fn the_concurrency_limit_answers_503_with_retry_after() {
    // Prometheus answers after 1.5 s, so the first judgement holds the only slot.
    let slow = common::http::Server::start(|_| common::http::Reply {
        delay: Duration::from_millis(1500),
        ..common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let s = Serve::start(&slow.url, &["--max-concurrent", "1", "--no-query-cache"]);
    let url = s.url.clone();
    let first = std::thread::spawn(move || post(&url, &judge_body("healthy"), Some(TOKEN)));
    // The first judgement holds the slot once it is waiting on Prometheus.
    wait::until(
        "the first judgement is querying Prometheus",
        PATIENCE,
        || (!slow.seen().is_empty()).then_some(()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, retry_after, body) = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/judge", s.url))
            .bearer_auth(TOKEN)
            .json(&judge_body("healthy"))
            .send()
            .await
            .unwrap();
        let ra = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (r.status().as_u16(), ra, r.json::<Value>().await.unwrap())
    });
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("overloaded")),
        "{body}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(
        first.join().unwrap().0,
        200,
        "the running judgement completes"
    );
}

/// Early stopping (STATISTICS.md §5): the `decision` Argo reads. A busy healthy canary has
/// ruled every regression out — each metric `cleared`, every test's mirror e-value past its
/// threshold — and is `pass` long before `decide_after`; a healthy canary with no request of
/// either variant over 500 ms cannot rule out "1.5× as many slow requests" and `wait`s; once
/// the analysis has run `decide_after`, its pass is final; a fail is `fail` at once.
#[test]
fn a_decided_pass_is_early_and_an_undecided_one_waits_for_decide_after() {
    let s = server();
    let body = |service: &str, after: &str| {
        json!({"judge": "istio-golden-signals", "decide_after": after, "args": {
            "service": service, "namespace": "prod", "canary_hash": CANARY,
            "stable_hash": BASELINE}})
    };
    let (status, busy) = post(&s.url, &body("busy", "2h"), Some(TOKEN));
    assert_eq!(status, 200, "{busy}");
    assert_eq!(
        (&busy["verdict"], &busy["decision"]),
        (&json!("pass"), &json!("pass")),
        "{busy}"
    );
    assert!(
        busy["decision_reason"]
            .as_str()
            .unwrap()
            .contains("decided early"),
        "{busy}"
    );
    for m in busy["metrics"].as_array().unwrap() {
        assert_eq!(m["cleared"], true, "{m}");
        for e in m["evidence"].as_array().unwrap() {
            assert_eq!(e["state"], "cleared", "{e}");
            assert!(e["clear_e_value"].as_f64().unwrap() >= e["threshold"].as_f64().unwrap());
        }
    }

    let (_, healthy) = post(&s.url, &body("healthy", "2h"), Some(TOKEN));
    assert_eq!(
        (&healthy["verdict"], &healthy["decision"]),
        (&json!("pass"), &json!("wait")),
        "{healthy}"
    );
    let why = healthy["decision_reason"].as_str().unwrap();
    assert!(
        why.contains("latency") && why.contains("poll again"),
        "{why}"
    );
    let (_, after) = post(&s.url, &body("healthy", "8m"), Some(TOKEN));
    assert_eq!(after["decision"], "pass", "{after}");
    let (_, errors) = post(&s.url, &body("errors", "2h"), Some(TOKEN));
    assert_eq!(errors["decision"], "fail", "{errors}");
    let (_, quiet) = post(&s.url, &body("quiet", "8m"), Some(TOKEN));
    assert_eq!(quiet["decision"], "inconclusive", "{quiet}");

    for bad in [json!("soon"), json!(5)] {
        let mut b = body("healthy", "");
        b["decide_after"] = bad;
        let (status, v) = post(&s.url, &b, Some(TOKEN));
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "bad_decide_after", "{v}");
        assert_eq!(v["error"]["field"], "decide_after", "{v}");
    }
}

#[test]
fn error_budgets_for_deploy_policies() {
    let s = server();
    let budget = |service: &str| {
        get(
            &format!(
                "{}/api/v1/budgets/istio-golden-signals?service={service}&namespace=prod",
                s.url
            ),
            Some(TOKEN),
        )
    };
    let (status, body) = budget("busy");
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let slo = &v["slos"][0];
    assert_eq!(slo["objective"], 0.999, "{v}");
    assert_eq!(slo["period"], "30d", "{v}");
    assert_eq!(slo["rules"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(slo["exhausted"], false, "{v}");
    let (_, body) = budget("burning");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["exhausted"].as_bool(), v["fast_burn"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    let (status, body) = get(&format!("{}/api/v1/budgets/nope", s.url), Some(TOKEN));
    assert_eq!(status, 404, "{body}");
    let (status, _) = get(
        &format!("{}/api/v1/budgets/istio-golden-signals?service=busy", s.url),
        None,
    );
    assert_eq!(status, 401, "the judge token guards the budgets too");
}
