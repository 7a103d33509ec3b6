//! Requests to a live server, and their answers checked against the document: status,
//! media type, body schema (JSON Schema 2020-12 with the document's components, formats
//! asserted) and required headers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::time::Duration;

use canary_engine::server::openapi::Route;
use serde_json::{json, Value};

use crate::common::serve::TOKEN;
use crate::{document, operation, resolve};

/// One answer, as read off the wire.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A request: method, URL, bearer token, body (JSON unless `content_type` says otherwise).
pub struct Ask<'a> {
    pub method: &'a str,
    pub url: String,
    pub token: Option<&'a str>,
    pub body: Option<(String, &'a str)>,
}

impl<'a> Ask<'a> {
    pub fn get(url: String, token: Option<&'a str>) -> Self {
        Ask {
            method: "GET",
            url,
            token,
            body: None,
        }
    }

    pub fn post(url: String, token: Option<&'a str>, body: &Value) -> Self {
        Ask {
            method: "POST",
            url,
            token,
            body: Some((body.to_string(), "application/json")),
        }
    }

    pub fn send(self) -> Answer {
        rt().block_on(async {
            let method = reqwest::Method::from_bytes(self.method.as_bytes()).unwrap();
            let mut req = reqwest::Client::new()
                .request(method, &self.url)
                .timeout(Duration::from_secs(30));
            if let Some(t) = self.token {
                req = req.bearer_auth(t);
            }
            if let Some((body, content_type)) = self.body {
                req = req.header("content-type", content_type).body(body);
            }
            let resp = req
                .send()
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", self.url));
            Answer {
                status: resp.status().as_u16(),
                headers: resp.headers().clone(),
                body: resp.bytes().await.unwrap_or_default().to_vec(),
            }
        })
    }
}

/// Validates `instance` against `schema`, a schema of the document (its `$ref`s resolve in
/// the document's components); formats are asserted.
pub fn validate(doc: &Value, schema: &Value, instance: &Value) -> Result<(), String> {
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"].clone(),
    });
    match schema {
        Value::Object(m) => {
            for (k, v) in m {
                root[k] = v.clone();
            }
        }
        Value::Bool(true) => {}
        other => panic!("schema {other}"),
    }
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Checks answers against the document and remembers which (operation, status) it saw.
pub struct Contract {
    pub doc: Value,
    /// "METHOD /path" → the statuses checked.
    pub seen: BTreeMap<String, BTreeSet<u16>>,
}

impl Contract {
    pub fn new() -> Contract {
        Contract {
            doc: document(),
            seen: BTreeMap::new(),
        }
    }

    /// `answer` to a request for `route` is what the document says it can be: a listed
    /// status, a listed media type, a body its schema admits, the headers it requires.
    pub fn check(&mut self, route: Route, what: &str, answer: &Answer) -> Value {
        let doc = &self.doc;
        let op = operation(doc, route);
        let label = format!("{} {} ({what})", route.method(), route.path());
        let body_text = String::from_utf8_lossy(&answer.body);
        let response = op["responses"]
            .get(answer.status.to_string())
            .map(|r| resolve(doc, r))
            .unwrap_or_else(|| {
                panic!(
                    "{label}: status {} is not in the document: {body_text}",
                    answer.status
                )
            });
        self.check_response(&label, response, answer);
        self.seen
            .entry(format!("{} {}", route.method(), route.path()))
            .or_default()
            .insert(answer.status);
        answer.json()
    }

    fn check_response(&self, label: &str, response: &Value, answer: &Answer) {
        let doc = &self.doc;
        let body_text = String::from_utf8_lossy(&answer.body);
        let content_type = answer.header("content-type").unwrap_or("");
        let media = content_type.split(';').next().unwrap_or("").trim();
        let content = response["content"].as_object().expect("content");
        let Some(media_type) = content.get(media) else {
            panic!(
                "{label}: {} answered as {content_type:?}; the document has {:?}",
                answer.status,
                content.keys().collect::<Vec<_>>()
            );
        };
        let instance = if media == "application/json" {
            serde_json::from_slice(&answer.body)
                .unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {body_text}"))
        } else {
            Value::String(body_text.to_string())
        };
        if let Err(e) = validate(doc, &media_type["schema"], &instance) {
            panic!(
                "{label}: the {} body is not as documented: {e}\n{body_text}",
                answer.status
            );
        }
        for (name, header) in response["headers"].as_object().into_iter().flatten() {
            let header = resolve(doc, header);
            match answer.header(name) {
                None if header["required"] == true => {
                    panic!("{label}: {} without its {name} header", answer.status)
                }
                None => {}
                Some(v) => {
                    if let Err(e) = validate(doc, &header["schema"], &json!(v)) {
                        panic!("{label}: header {name}: {v:?}: {e}");
                    }
                }
            }
        }
    }

    /// An answer to what no operation describes (an unknown path, a method a path does
    /// not have): the error shape, per the document's `Error` schema.
    pub fn check_unrouted(&self, what: &str, answer: &Answer) -> Value {
        let error = json!({"$ref": "#/components/schemas/Error"});
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or_else(|e| {
            panic!(
                "{what}: not JSON ({e}): {}",
                String::from_utf8_lossy(&answer.body)
            )
        });
        assert!(
            answer
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}"
        );
        validate(&self.doc, &error, &v).unwrap_or_else(|e| panic!("{what}: {e}: {v}"));
        v
    }
}

/// `request` written as is on a new connection to `url`, and the answer read to its end.
pub fn raw(url: &str, request: &str) -> Answer {
    let addr = url.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = c.write_all(request.as_bytes());
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
            v.trim().parse().unwrap(),
        );
    }
    Answer {
        status,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// A request whose body trickles: headers and a first byte, then nothing — the server's
/// answer once its client timeout passes.
pub fn trickle(url: &str) -> Answer {
    let request = format!(
        "POST /api/v1/judge HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
    );
    raw(url, &request)
}
