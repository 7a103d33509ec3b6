//! A fault-injecting proxy in front of the real API server, for what the server itself
//! cannot be made to do on cue: answer 5xx, answer slowly, or be changed by another writer
//! exactly between our read and our write. Everything else is the real server's answer.
//! It logs the VirtualService calls it forwards (`GET name`, `PUT name rv=N`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::kube_server::KubeServer;

/// A scripted fault, used by the next call it applies to.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Before the next PUT is forwarded, another writer (field manager `other-writer`)
    /// really updates the object on the server, so the PUT meets a real 409.
    ConcurrentWrite,
    /// The next call answers this status without reaching the server.
    Status(u16),
    /// The next call waits this long before being forwarded.
    Slow(Duration),
}

struct Inner {
    server: String,
    token: String,
    http: reqwest::Client,
    faults: Mutex<VecDeque<Fault>>,
    outage_until: Mutex<Option<std::time::Instant>>,
    log: Mutex<Vec<String>>,
}

/// The running proxy.
#[derive(Clone)]
pub struct KubeProxy {
    /// `http://127.0.0.1:PORT` (plain HTTP; the proxy holds the credential).
    pub url: String,
    inner: Arc<Inner>,
}

impl KubeProxy {
    /// Start in front of `server`, inside the current tokio runtime.
    pub async fn start(server: &KubeServer) -> KubeProxy {
        let mut b = reqwest::Client::builder();
        for cert in reqwest::Certificate::from_pem_bundle(&server.ca_pem).expect("CA bundle") {
            b = b.add_root_certificate(cert);
        }
        let inner = Arc::new(Inner {
            server: server.url.clone(),
            token: server.token.clone(),
            http: b.build().expect("proxy client"),
            faults: Mutex::new(VecDeque::new()),
            outage_until: Mutex::new(None),
            log: Mutex::new(vec![]),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KubeProxy { url, inner }
    }

    /// A `kube` client pointed at the proxy.
    pub fn client(&self) -> kube::Client {
        kube::Client::try_from(kube::Config::new(self.url.parse().expect("url"))).expect("client")
    }

    /// Queue a fault.
    pub fn fault(&self, f: Fault) {
        self.inner.faults.lock().unwrap().push_back(f);
    }

    /// VirtualService calls forwarded or faulted.
    pub fn log(&self) -> Vec<String> {
        self.inner.log.lock().unwrap().clone()
    }

    /// From now on, for `d`, every call (not only the VirtualService's) answers 500.
    pub fn outage(&self, d: Duration) {
        *self.inner.outage_until.lock().unwrap() = Some(std::time::Instant::now() + d);
    }

    /// A kubeconfig file pointing at the proxy, in `dir`.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("proxy-kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: proxy\n  cluster:\n    server: \"{}\"\n\
                 users:\n- name: anonymous\n  user: {{}}\ncontexts:\n- name: proxy\n  context:\n    \
                 cluster: proxy\n    user: anonymous\ncurrent-context: proxy\n",
                self.url
            ),
        )
        .expect("write kubeconfig");
        path
    }
}

fn take(inner: &Inner, method: &Method) -> Option<Fault> {
    let mut q = inner.faults.lock().unwrap();
    match q.front() {
        Some(Fault::ConcurrentWrite) if method != Method::PUT => None,
        Some(_) => q.pop_front(),
        None => None,
    }
}

async fn send(
    inner: &Inner,
    method: Method,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes), reqwest::Error> {
    let mut req = inner
        .http
        .request(method, format!("{}{path}", inner.server))
        .bearer_auth(&inner.token)
        .body(body);
    for (k, v) in headers {
        if k == "content-type" || k == "accept" {
            req = req.header(k, v);
        }
    }
    let res = req.send().await?;
    let status = res.status();
    let mut out = HeaderMap::new();
    if let Some(ct) = res.headers().get("content-type") {
        out.insert("content-type", ct.clone());
    }
    Ok((status, out, res.bytes().await?))
}

async fn forward(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let is_vs = uri.path().contains("/virtualservices/");
    if is_vs {
        let name = uri.path().rsplit('/').next().unwrap_or_default();
        let line = if method == Method::PUT {
            let rv = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["metadata"]["resourceVersion"].as_str().map(String::from))
                .unwrap_or_default();
            format!("PUT {name} rv={rv}")
        } else {
            format!("{method} {name}")
        };
        inner.log.lock().unwrap().push(line);
    }
    let down = inner
        .outage_until
        .lock()
        .unwrap()
        .is_some_and(|t| std::time::Instant::now() < t);
    if down {
        if is_vs {
            inner.log.lock().unwrap().push("500 (outage)".into());
        }
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "injected by the test proxy: API server outage",
            "reason": "InternalError", "code": 500});
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response();
    }
    match if is_vs { take(&inner, &method) } else { None } {
        Some(Fault::Status(code)) => {
            let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "injected by the test proxy",
                "reason": "InternalError", "code": code});
            return (StatusCode::from_u16(code).unwrap(), axum::Json(body)).into_response();
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::ConcurrentWrite) => {
            let (status, _, current) = send(
                &inner,
                Method::GET,
                uri.path(),
                &HeaderMap::new(),
                Bytes::new(),
            )
            .await
            .expect("the other writer reads");
            assert!(status.is_success(), "the other writer's read: {status}");
            let mut v: Value = serde_json::from_slice(&current).unwrap();
            v["metadata"]["annotations"]["other-writer"] = json!("was here");
            let mut h = HeaderMap::new();
            h.insert("content-type", "application/json".parse().unwrap());
            let (status, _, _) = send(
                &inner,
                Method::PUT,
                &format!("{}?fieldManager=other-writer", uri.path()),
                &h,
                Bytes::from(serde_json::to_vec(&v).unwrap()),
            )
            .await
            .expect("the other writer writes");
            assert!(status.is_success(), "the other writer's write: {status}");
        }
        None => {}
    }
    match send(&inner, method, &path, &headers, body).await {
        Ok((status, h, b)) => (status, h, b).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// One test's corner of the real server: its namespace, a direct client, a proxy in front,
/// and the VirtualService `reviews` there.
#[derive(Clone)]
pub struct TestKube {
    /// The test's namespace.
    pub ns: String,
    /// Straight to the server, bypassing the proxy (for the test's own reads and writes).
    pub direct: kube::Client,
    /// The proxy the code under test talks to.
    pub proxy: KubeProxy,
}

impl TestKube {
    /// A fresh namespace on this binary's server, or `None` (announced) without Go.
    pub async fn start() -> Option<TestKube> {
        let server = super::kube_server::server()?;
        Some(TestKube {
            ns: server.namespace("promote"),
            direct: server.client().await,
            proxy: KubeProxy::start(server).await,
        })
    }

    /// A client for the code under test (through the proxy).
    pub fn client(&self) -> kube::Client {
        self.proxy.client()
    }

    /// Create `obj` in the namespace, or replace what is there (as `kubectl apply` would).
    pub async fn put(&self, mut obj: Value) -> Value {
        let name = obj["metadata"]["name"].as_str().unwrap().to_string();
        obj["metadata"]["namespace"] = json!(self.ns);
        match super::kube_server::get(&self.direct, &self.ns, &name).await {
            None => super::kube_server::create(&self.direct, &self.ns, "kubectl", obj).await,
            Some(_) => {
                super::kube_server::edit(&self.direct, &self.ns, &name, "kubectl", |v| {
                    let rv = v["metadata"]["resourceVersion"].clone();
                    let mut new = obj.clone();
                    new["metadata"]["resourceVersion"] = rv;
                    *v = new;
                })
                .await
            }
        }
    }

    /// The stored `reviews`.
    pub async fn object(&self) -> Option<Value> {
        super::kube_server::get(&self.direct, &self.ns, "reviews").await
    }

    /// Delete `reviews`.
    pub async fn delete(&self) {
        super::kube_server::delete(&self.direct, &self.ns, "reviews").await
    }

    /// Queue a fault at the proxy.
    pub fn fault(&self, f: Fault) {
        self.proxy.fault(f)
    }

    /// VirtualService calls through the proxy.
    pub fn log(&self) -> Vec<String> {
        self.proxy.log()
    }

    /// Every call through the proxy answers 500 for `d`, from now.
    pub fn outage(&self, d: Duration) {
        self.proxy.outage(d)
    }
}
