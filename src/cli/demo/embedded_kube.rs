//! The embedded default of `canary demo`: a minimal in-process stand-in for the Kubernetes
//! API, serving VirtualServices only, so the demo runs a promotion with no cluster.
//!
//! It keeps one object per (namespace, name) and enforces `resourceVersion` on PUT (409 on a
//! stale one), which is all the applier relies on. It is not evidence that anything works
//! against Kubernetes: the tests use a real API server for that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Default)]
struct Store {
    objects: HashMap<(String, String), Value>,
    version: u64,
    weights: WeightLog,
}

/// When the canary's weight changed: `(unix seconds, percent)`, oldest first — what the
/// demo's embedded Prometheus routes its simulated requests by.
pub type WeightLog = Vec<(f64, u32)>;

/// The weight of the `canary` subset on the first HTTP route that has one.
fn canary_weight(obj: &Value) -> Option<u32> {
    obj.pointer("/spec/http")?
        .as_array()?
        .iter()
        .flat_map(|r| r["route"].as_array().into_iter().flatten())
        .find(|d| d.pointer("/destination/subset").and_then(Value::as_str) == Some("canary"))
        .and_then(|d| d["weight"].as_u64())
        .map(|w| w.min(100) as u32)
}

impl Store {
    fn insert(&mut self, key: (String, String), obj: Value) {
        if let Some(w) = canary_weight(&obj) {
            if self.weights.last().map(|l| l.1) != Some(w) {
                self.weights.push((now(), w));
            }
        }
        self.objects.insert(key, obj);
    }
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

type Shared = Arc<Mutex<Store>>;

fn lock(store: &Shared) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running stand-in.
#[derive(Clone)]
pub struct EmbeddedKube {
    url: url::Url,
    store: Shared,
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    (code, Json(body)).into_response()
}

fn not_found(name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("virtualservices \"{name}\" not found"),
    )
}

impl EmbeddedKube {
    /// Start on a free loopback port, inside the current tokio runtime.
    pub async fn start() -> std::io::Result<EmbeddedKube> {
        let store = Shared::default();
        let app = Router::new()
            .route(
                "/apis/networking.istio.io/{version}/namespaces/{ns}/virtualservices/{name}",
                get(get_vs).put(put_vs),
            )
            .with_state(store.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let url = url::Url::parse(&format!("http://{addr}"))
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(EmbeddedKube { url, store })
    }

    /// A `kube` client pointed at this server.
    pub fn client(&self) -> Result<kube::Client, String> {
        let uri = self
            .url
            .as_str()
            .parse()
            .map_err(|e| format!("embedded API server URL: {e}"))?;
        kube::Client::try_from(kube::Config::new(uri))
            .map_err(|e| format!("client for the embedded API server: {e}"))
    }

    /// Store an object (its resourceVersion is set).
    pub fn put(&self, mut obj: Value) {
        let mut g = lock(&self.store);
        g.version += 1;
        obj["metadata"]["resourceVersion"] = json!(g.version.to_string());
        let key = (
            obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
        );
        g.insert(key, obj);
    }

    /// Every change of the canary's weight so far.
    pub fn weights(&self) -> WeightLog {
        lock(&self.store).weights.clone()
    }

    /// The stored object.
    pub fn object(&self, ns: &str, name: &str) -> Option<Value> {
        lock(&self.store)
            .objects
            .get(&(ns.into(), name.into()))
            .cloned()
    }
}

async fn get_vs(
    State(store): State<Shared>,
    Path((_v, ns, name)): Path<(String, String, String)>,
) -> Response {
    match lock(&store).objects.get(&(ns, name.clone())) {
        Some(o) => Json(o.clone()).into_response(),
        None => not_found(&name),
    }
}

async fn put_vs(
    State(store): State<Shared>,
    Path((_v, ns, name)): Path<(String, String, String)>,
    Json(mut body): Json<Value>,
) -> Response {
    let mut g = lock(&store);
    let key = (ns, name.clone());
    let Some(current) = g.objects.get(&key) else {
        return not_found(&name);
    };
    if current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"] {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version and try again",
        );
    }
    g.version += 1;
    body["metadata"]["resourceVersion"] = json!(g.version.to_string());
    g.insert(key, body.clone());
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stale_resource_version_is_a_conflict() {
        let kube = EmbeddedKube::start().await.unwrap();
        kube.put(json!({"metadata": {"name": "r", "namespace": "n"}}));
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            kube.client().unwrap(),
            "n",
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                "networking.istio.io",
                "v1",
                "VirtualService",
            )),
        );
        let mut o = api.get("r").await.unwrap();
        api.replace("r", &Default::default(), &o).await.unwrap();
        o.metadata.resource_version = Some("1".into());
        let e = api.replace("r", &Default::default(), &o).await.unwrap_err();
        assert!(matches!(e, kube::Error::Api(s) if s.code == 409));
        assert!(matches!(api.get("nope").await, Err(kube::Error::Api(s)) if s.code == 404));
    }
}
