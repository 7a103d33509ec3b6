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
        assert_eq!(status, 404, "{name:.40}: {v}");
        assert_eq!(v["error"]["code"], "unknown_judge", "{name:.40}: {v}");
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
