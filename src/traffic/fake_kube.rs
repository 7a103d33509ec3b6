//! A small HTTP server standing in for the Kubernetes API, for VirtualServices only.
//!
//! `canary demo` runs promotions against it with no cluster, and the tests drive the real
//! `kube` client through it. It keeps one object per (namespace, name), enforces
//! `resourceVersion` on PUT (409 on a stale one), and plays scripted faults — another writer
//! changing the object, an HTTP status, a slow answer. Every call is logged.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// A scripted fault, used by the next call it applies to.
#[derive(Debug, Clone)]
pub enum Fault {
    /// On the next PUT: another writer changes the object first (the PUT then gets 409).
    ConcurrentWrite,
    /// The next call answers this status.
    Status(u16),
    /// The next call waits this long first.
    Slow(Duration),
}

#[derive(Default)]
struct Inner {
    objects: HashMap<(String, String), Value>,
    version: u64,
    faults: VecDeque<Fault>,
    log: Vec<String>,
}

/// The fake API server.
#[derive(Clone)]
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(body)).into_response()
}

impl FakeKube {
    /// Start on a free loopback port, inside the current tokio runtime.
    pub async fn start() -> FakeKube {
        Self::try_start().await.expect("bind a loopback port")
    }

    /// Start on a free loopback port, inside the current tokio runtime.
    pub async fn try_start() -> std::io::Result<FakeKube> {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route(
                "/apis/networking.istio.io/{version}/namespaces/{ns}/virtualservices/{name}",
                get(get_vs).put(put_vs),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeKube { url, inner })
    }

    /// A `kube` client pointed at this server.
    pub fn client(&self) -> kube::Client {
        let url = self.url.parse().expect("own URL parses");
        kube::Client::try_from(kube::Config::new(url)).expect("client for a plain-HTTP URL")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Store an object (its resourceVersion is set).
    pub fn put(&self, mut obj: Value) {
        let mut g = self.lock();
        g.version += 1;
        obj["metadata"]["resourceVersion"] = json!(g.version.to_string());
        let key = (
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
        );
        g.objects.insert(key, obj);
    }

    /// The stored object.
    pub fn object(&self, ns: &str, name: &str) -> Option<Value> {
        self.inner
            .lock()
            .unwrap()
            .objects
            .get(&(ns.into(), name.into()))
            .cloned()
    }

    /// Delete the stored object (as `kubectl delete` would, mid-promotion).
    pub fn delete(&self, ns: &str, name: &str) {
        self.lock().objects.remove(&(ns.into(), name.into()));
    }

    /// Queue faults.
    pub fn fault(&self, f: Fault) {
        self.lock().faults.push_back(f);
    }

    /// Calls received (`GET name`, `PUT name rv=N`).
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }
}

type S = State<Arc<Mutex<Inner>>>;

async fn take_fault(inner: &Arc<Mutex<Inner>>, for_put: bool) -> Option<Response> {
    let fault = {
        let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.faults.front() {
            Some(Fault::ConcurrentWrite) if !for_put => None,
            Some(_) => g.faults.pop_front(),
            None => None,
        }
    };
    match fault {
        Some(Fault::Status(code)) => Some(status(code, "InternalError", "scripted failure")),
        Some(Fault::Slow(d)) => {
            tokio::time::sleep(d).await;
            None
        }
        Some(Fault::ConcurrentWrite) => {
            let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
            g.version += 1;
            let v = g.version.to_string();
            for obj in g.objects.values_mut() {
                obj["metadata"]["resourceVersion"] = json!(v);
                obj["metadata"]["annotations"]["other-writer"] = json!("was here");
            }
            None
        }
        None => None,
    }
}

async fn get_vs(State(inner): S, Path((_v, ns, name)): Path<(String, String, String)>) -> Response {
    inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .log
        .push(format!("GET {name}"));
    if let Some(r) = take_fault(&inner, false).await {
        return r;
    }
    match inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .objects
        .get(&(ns, name.clone()))
    {
        Some(o) => Json(o.clone()).into_response(),
        None => status(
            404,
            "NotFound",
            &format!("virtualservices \"{name}\" not found"),
        ),
    }
}

async fn put_vs(
    State(inner): S,
    Path((_v, ns, name)): Path<(String, String, String)>,
    Json(mut body): Json<Value>,
) -> Response {
    let rv = body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    inner
        .lock()
        .unwrap()
        .log
        .push(format!("PUT {name} rv={rv}"));
    if let Some(r) = take_fault(&inner, true).await {
        return r;
    }
    let mut g = inner.lock().unwrap_or_else(|p| p.into_inner());
    let key = (ns, name.clone());
    let Some(current) = g.objects.get(&key) else {
        return status(
            404,
            "NotFound",
            &format!("virtualservices \"{name}\" not found"),
        );
    };
    if current["metadata"]["resourceVersion"].as_str() != Some(rv.as_str()) {
        return status(409, "Conflict", "the object has been modified; please apply your changes to the latest version and try again");
    }
    g.version += 1;
    body["metadata"]["resourceVersion"] = json!(g.version.to_string());
    g.objects.insert(key, body.clone());
    Json(body).into_response()
}
