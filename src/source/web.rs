//! HTTP calls of Argo's `web` metric provider.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{snippet, Error};

/// One web provider call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebRequest {
    /// `GET`, `POST` or `PUT`.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body, if any.
    pub body: Option<String>,
    /// Give up after this many milliseconds.
    pub timeout_ms: u64,
    /// Skip TLS verification.
    pub insecure: bool,
}

/// A 2xx answer's body. Non-2xx answers are errors, as in Argo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebResponse {
    /// HTTP status.
    pub status: u16,
    /// Body text.
    pub body: String,
}

/// Make the call.
pub async fn call(client: &reqwest::Client, r: &WebRequest) -> Result<WebResponse, Error> {
    let method = reqwest::Method::from_bytes(r.method.as_bytes())
        .map_err(|_| Error::Config(format!("invalid HTTP method {:?}", r.method)))?;
    let timeout = Duration::from_millis(r.timeout_ms);
    let mut req = client.request(method, &r.url).timeout(timeout);
    for (k, v) in &r.headers {
        req = req.header(k, v);
    }
    if let Some(b) = &r.body {
        req = req.body(b.clone());
    }
    let work = async {
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                Error::Timeout {
                    url: r.url.clone(),
                    timeout_ms: r.timeout_ms,
                }
            } else {
                Error::Unreachable {
                    url: r.url.clone(),
                    message: e.to_string(),
                }
            }
        })?;
        let status = resp.status().as_u16();
        let body = super::body::read_bounded(resp, super::DEFAULT_MAX_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                super::body::ReadError::TooLarge { .. } => Error::Malformed {
                    url: r.url.clone(),
                    message: e.to_string(),
                },
                super::body::ReadError::Transport(_) => Error::Unreachable {
                    url: r.url.clone(),
                    message: e.to_string(),
                },
            })?;
        let body = String::from_utf8_lossy(&body).into_owned();
        if !(200..300).contains(&status) {
            return Err(Error::HttpStatus {
                url: r.url.clone(),
                status,
                body: snippet(&body, 200),
            });
        }
        Ok(WebResponse { status, body })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Timeout {
            url: r.url.clone(),
            timeout_ms: r.timeout_ms,
        })?
}
