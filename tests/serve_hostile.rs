//! `canary serve` against clients nobody planned for, over TCP.

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
