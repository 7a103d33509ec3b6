//! `canary serve` against clients and upstreams nobody planned for, over TCP: oversized and
//! trickled requests, a redirecting Prometheus, hostile names and ids.

mod common;

use std::time::Duration;

use common::serve::{Serve, TOKEN};
use serde_json::Value;

/// An ordinary client sending 8 MiB reads the documented 413 with the JSON error shape —
/// it used to get a broken pipe, the server closing while the client was still writing.
#[test]
fn an_oversized_body_is_answered_413_not_a_broken_pipe() {
    // No Prometheus is needed: the body is refused before anything is judged.
    let port = common::prom::free_port();
    let s = Serve::start(&format!("http://127.0.0.1:{port}"), &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (size, token) in [
        (8 << 20, Some(TOKEN)),
        (8 << 20, None),
        (200_000, Some(TOKEN)),
    ] {
        let body = format!(
            r#"{{"judge": "istio-kayenta-compatible", "args": {{"service": "{}"}}}}"#,
            "x".repeat(size)
        );
        let (status, v) = rt.block_on(async {
            let mut req = reqwest::Client::new()
                .post(format!("{}/api/v1/judge", s.url))
                .header("content-type", "application/json")
                .body(body)
                .timeout(Duration::from_secs(30));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{size} bytes: the client got no answer: {e:?}"));
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        });
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (413, Some("body_too_large")),
            "{size} bytes: {v}"
        );
    }
}

/// Send `head`, then `trickle` one byte a second; the time until the server answers or
/// closes, and what it answered.
fn trickle(url: &str, head: &str, trickle: &[u8]) -> (Duration, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let started = std::time::Instant::now();
    c.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for b in trickle.iter().cycle() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server still holds a trickling client after 20 s"
        );
        if c.write_all(&[*b]).is_err() {
            break;
        }
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

/// A client trickling one byte a second cannot hold a connection: its headers are cut off
/// at the client timeout, and a body that does not arrive in time is answered 408.
#[test]
fn a_trickling_client_is_cut_off() {
    let port = common::prom::free_port();
    let s = Serve::start(
        &format!("http://127.0.0.1:{port}"),
        &["--client-timeout", "2s"],
    );
    let (took, answer) = trickle(
        &s.url,
        "POST /api/v1/judge HTTP/1.1\r\nHost: x\r\n",
        b"X-Slow: a\r\n",
    );
    assert!(took < Duration::from_secs(8), "headers held {took:?}");
    assert!(!answer.contains("200 OK"), "{answer}");

    let head = format!(
        "POST /api/v1/judge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    let (took, answer) = trickle(&s.url, &head, b" ");
    assert!(took < Duration::from_secs(8), "body held {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}

/// Prometheus answering with a redirect to another host: never followed (it would carry
/// the query, and with a careless client the credentials, elsewhere) — an upstream error.
#[test]
fn a_prometheus_redirect_is_never_followed() {
    let elsewhere = common::http::Server::start(|_| {
        common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let target = elsewhere.url.clone();
    let prom = common::http::Server::start(move |r| common::http::Reply {
        location: Some(format!("{target}{}", r.target)),
        ..common::http::Reply::text(307, "")
    });
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("prom-token");
    std::fs::write(&token, "prom-secret\n").unwrap();
    let s = Serve::start(
        &prom.url,
        &["--prometheus-bearer-token-file", token.to_str().unwrap()],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, v) = rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v1/judge", s.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"judge": "istio-kayenta-compatible",
                "args": {"service": "x", "namespace": "prod", "canary_hash": "c", "stable_hash": "s"}}))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
    });
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (502, Some("prometheus_error")),
        "{v}"
    );
    assert!(!prom.seen().is_empty(), "Prometheus was asked");
    assert_eq!(
        prom.seen()[0].header("authorization"),
        Some("Bearer prom-secret")
    );
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect was followed: {:?}",
        elsewhere.seen()
    );
}

/// Judge names and analysis ids that try path traversal, odd bytes or huge lengths get a
/// JSON 404 (or 400/414-class refusal), never a file, never a 5xx.
#[test]
fn hostile_names_and_ids_are_refused_cleanly() {
    let port = common::prom::free_port();
    let s = Serve::start(&format!("http://127.0.0.1:{port}"), &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let long = "a".repeat(60_000);
    for name in [
        "../../../../etc/passwd",
        "..%2f..%2fetc%2fpasswd",
        "/etc/passwd",
        "judge\u{0}name",
        "istio-golden-signals/../istio-golden-signals",
        long.as_str(),
    ] {
        let (status, v) = rt.block_on(async {
            let r = client
                .post(format!("{}/api/v1/judge", s.url))
                .bearer_auth(TOKEN)
                .json(&serde_json::json!({"judge": name, "args": {}}))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        });
        // A NUL is refused before any lookup (PostgreSQL text cannot hold one).
        let expected = if name.contains('\0') {
            (400, "bad_request")
        } else {
            (404, "unknown_judge")
        };
        assert_eq!(status, expected.0, "{name:.40}: {v}");
        assert_eq!(v["error"]["code"], expected.1, "{name:.40}: {v}");
        assert!(!v.to_string().contains("root:"), "{v}");
    }
    for id in ["..%2F..%2Fetc%2Fpasswd", "%00", "x".repeat(4000).as_str()] {
        let (status, body) = rt.block_on(async {
            let r = client
                .get(format!("{}/api/v1/analyses/{id}", s.url))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
        assert!(
            (400..500).contains(&status),
            "{id:.40}: {status} {body:.200}"
        );
        assert!(!body.contains("root:"), "{body:.200}");
    }
}

/// How a hostile Prometheus answers every query.
#[derive(Clone, Copy, Debug)]
enum Flood {
    /// `Content-Length: 100 MiB`, then the bytes.
    Declared,
    /// 100 MiB with no length, the end marked by closing.
    Undeclared,
    /// A valid start, then a few bytes every 100 ms, for ever.
    Endless,
}

/// A Prometheus that answers every request as `flood` says, over raw TCP.
fn flooding_prometheus(flood: Flood) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let total = 100usize << 20;
                let length = match flood {
                    Flood::Declared => format!("Content-Length: {total}\r\n"),
                    _ => String::new(),
                };
                let start = r#"{"status":"success","data":{"resultType":"matrix","result":["#;
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n{start}"
                );
                let series = r#"{"metric":{"h":"c"},"values":[[1700000000,"1"]]},"#.repeat(1000);
                let mut sent = start.len();
                while sent < total {
                    let chunk = match flood {
                        Flood::Endless => {
                            std::thread::sleep(Duration::from_millis(100));
                            &series[..64]
                        }
                        _ => series.as_str(),
                    };
                    if stream.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                    if !matches!(flood, Flood::Endless) {
                        sent += chunk.len();
                    }
                }
            });
        }
    });
    url
}

fn judge(
    rt: &tokio::runtime::Runtime,
    s: &Serve,
    spec: &str,
    args: Value,
) -> (u16, Value, Duration) {
    let started = std::time::Instant::now();
    let (status, v) = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/judge", s.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"judge": spec, "args": args}))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("an answer");
        (
            r.status().as_u16(),
            r.json::<Value>().await.unwrap_or(Value::Null),
        )
    });
    (status, v, started.elapsed())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A Prometheus answering 100 MiB (declared, or undeclared until it closes), or an answer
/// that never ends: each judgement is an upstream error (502, or 504 at the deadline) within
/// the deadline, never a pass, and the server's peak memory stays far below what holding
/// the answers would take (the Kayenta-compatible spec asks 6 queries at once: 600 MiB).
/// The limit is 4 MiB here, so the bound holds with room: each query in flight may hold up
/// to the limit (16 MiB by default: six at once reached 266 MiB on a loaded CI machine).
#[test]
fn a_flooding_or_endless_prometheus_is_an_error_in_bounded_memory() {
    for flood in [Flood::Declared, Flood::Undeclared, Flood::Endless] {
        let prom = flooding_prometheus(flood);
        let s = Serve::start(
            &prom,
            &["--deadline", "4s", "--prometheus-max-answer-mib", "4"],
        );
        let rt = runtime();
        for _ in 0..2 {
            let (status, v, took) = judge(
                &rt,
                &s,
                "istio-kayenta-compatible",
                serde_json::json!({"service": "x", "namespace": "prod", "canary_hash": "c", "stable_hash": "s"}),
            );
            assert!(matches!(status, 502 | 504), "{flood:?}: {status} {v:.300}");
            assert!(v["error"]["code"].is_string(), "{flood:?}: {v}");
            assert!(took < Duration::from_secs(10), "{flood:?}: took {took:?}");
            if matches!(flood, Flood::Declared | Flood::Undeclared) {
                assert!(
                    v.to_string().contains("larger than 4 MiB"),
                    "{flood:?}: {v:.300}"
                );
            }
        }
        let peak_mib = s.memory_kib("VmHWM") / 1024;
        eprintln!("{flood:?}: peak RSS {peak_mib} MiB");
        assert!(peak_mib < 160, "{flood:?}: peak RSS {peak_mib} MiB");
    }
}

/// A Prometheus whose every value — canary's, baseline's, both — is NaN, +Inf or -Inf, or
/// whose timestamps are not numbers: never a 5xx the contract does not list, and never a
/// pass on a canary with no finite measurement.
#[test]
fn non_finite_values_in_every_position_never_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("judges")).unwrap();
    std::fs::write(
        dir.path().join("judges/latency.yaml"),
        "kind: Judge\nname: latency\nargs: [canary_hash, stable_hash]\nwindow: 10m\nstep: 30s\n\
         metrics:\n- name: latency\n  query: latency_ms{h=\"{{variant.hash}}\"}\n",
    )
    .unwrap();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("NaN", "100", "canary NaN"),
        ("+Inf", "100", "canary +Inf"),
        ("-Inf", "100", "canary -Inf"),
        ("100", "NaN", "baseline NaN"),
        ("100", "+Inf", "baseline +Inf"),
        ("NaN", "NaN", "both NaN"),
        ("+Inf", "+Inf", "both +Inf"),
        ("-Inf", "+Inf", "-Inf and +Inf"),
    ];
    for (canary, baseline, what) in cases {
        for bad_time in [false, true] {
            let points = move |v: &str| {
                (0..20)
                    .map(|i| {
                        let t = 1_700_000_000 + 30 * i;
                        if bad_time {
                            format!(r#"["{v}","{v}"]"#)
                        } else {
                            format!(r#"[{t},"{v}"]"#)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let (c, b) = (points(canary), points(baseline));
            let prom = common::http::Server::start(move |r| {
                let q = r.body.clone() + &r.target;
                let mut series = vec![];
                if q.contains("%22c%22") || q.contains("%3D%7E") || q.contains("=~") {
                    series.push(format!(r#"{{"metric":{{"h":"c"}},"values":[{c}]}}"#));
                }
                if q.contains("%22s%22") || q.contains("%3D%7E") || q.contains("=~") {
                    series.push(format!(r#"{{"metric":{{"h":"s"}},"values":[{b}]}}"#));
                }
                common::http::Reply::json(
                    200,
                    &format!(
                        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{}]}}}}"#,
                        series.join(",")
                    ),
                )
            });
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir(d.path().join("judges")).unwrap();
            std::fs::copy(
                dir.path().join("judges/latency.yaml"),
                d.path().join("judges/latency.yaml"),
            )
            .unwrap();
            let s = Serve::start_in(d, &prom.url, &[]);
            let (status, v, _) = judge(
                &runtime(),
                &s,
                "latency",
                serde_json::json!({"canary_hash": "c", "stable_hash": "s"}),
            );
            let case = format!("{what}, timestamps {}", if bad_time { "NaN" } else { "ok" });
            assert!(matches!(status, 200 | 502), "{case}: {status} {v:.300}");
            if status == 200 {
                assert_ne!(v["verdict"], "pass", "{case}: {v:.400}");
            } else {
                assert!(v["error"]["code"].is_string(), "{case}: {v}");
            }
            assert!(!prom.seen().is_empty(), "{case}: Prometheus was asked");
        }
    }
}

/// More connections than `--max-connections` (idle ones count): the one over the limit
/// reads a 503 `too_many_connections` in the JSON error shape at once; when one closes,
/// the next is served.
#[test]
fn connections_over_the_limit_are_refused_with_a_json_503() {
    use std::io::{Read, Write};
    let port = common::prom::free_port();
    let s = Serve::start(
        &format!("http://127.0.0.1:{port}"),
        &["--max-connections", "4", "--client-timeout", "60s"],
    );
    let addr = s.url.trim_start_matches("http://").to_string();
    let get = |path: &str| {
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let mut idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    // The server has taken the four (the gauge says so) before the fifth is tried.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut probe = std::net::TcpStream::connect(&addr).unwrap();
        probe
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = write!(probe, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut answer = String::new();
        let _ = probe.read_to_string(&mut answer);
        if answer.starts_with("HTTP/1.1 503") {
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            let v: Value = serde_json::from_str(body).expect("JSON error body");
            assert_eq!(v["error"]["code"], "too_many_connections");
            assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a fifth connection was still served: {answer:.200}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    idle.pop();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get("/healthz");
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a freed place was not reused: {answer:.200}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(idle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = get("/metrics");
        let refused = metrics
            .lines()
            .find_map(|l| l.strip_prefix("canary_http_refused_connections_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if metrics.contains("HTTP/1.1 200") && refused >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refusals not counted: {metrics:.2000}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A flood of distinct inline specs under `--allow-inline` — each a new name and a new
/// query — holds the server's memory: results are kept up to `--keep-results`, verdicts are
/// counted under one `(inline)` label (not one series per name), and the query cache sweeps.
#[test]
fn a_flood_of_distinct_inline_specs_holds_memory() {
    let prom = common::http::Server::start(|_| {
        common::http::Reply::json(
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        )
    });
    let s = Serve::start(&prom.url, &["--allow-inline", "--keep-results", "200"]);
    let rt = runtime();
    let client = reqwest::Client::new();
    let flood = |from: usize, to: usize| {
        rt.block_on(async {
            for i in from..to {
                let spec = serde_json::json!({"kind": "Judge", "name": format!("flood-{i}-{}", "n".repeat(200)),
                    "args": ["canary_hash", "stable_hash"], "window": "10m", "step": "30s",
                    "metrics": [{"name": format!("m{i}"), "query": format!("flood_metric_{i}{{h=\"{{{{variant.hash}}}}\"}}")}]});
                let r = client
                    .post(format!("{}/api/v1/judge", s.url))
                    .bearer_auth(TOKEN)
                    .json(&serde_json::json!({"judge": spec, "args": {"canary_hash": "c", "stable_hash": "s"}}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert_eq!(status, 200, "{v:.300}");
            }
        })
    };
    flood(0, 1000);
    let after_first = s.memory_kib("VmRSS");
    flood(1000, 3000);
    let after_all = s.memory_kib("VmRSS");
    let metrics = rt.block_on(async {
        client
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let verdict_series = metrics
        .lines()
        .filter(|l| l.starts_with("canary_verdicts_total{"))
        .count();
    eprintln!(
        "RSS after 1,000 inline specs {} MiB, after 3,000 {} MiB; {verdict_series} verdict series",
        after_first / 1024,
        after_all / 1024
    );
    assert!(
        metrics.contains(r#"judge="(inline)""#),
        "inline verdicts not counted under one label"
    );
    assert!(verdict_series <= 4, "{verdict_series} verdict series");
    assert!(
        after_all.saturating_sub(after_first) < 24 * 1024,
        "RSS grew {} MiB over 2,000 more inline specs",
        after_all.saturating_sub(after_first) / 1024
    );
}
