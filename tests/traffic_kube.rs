//! The VirtualService applier through the real `kube` client against a real API server
//! (`tests/kube-apiserver`, Istio's CRDs registered): optimistic concurrency with a real
//! concurrent writer, 404, the structural schema rejecting or pruning a write, and — through
//! a fault-injecting proxy in front of the server — 5xx and slow answers.

mod common;

use std::time::Duration;

use canary_engine::traffic::apply::{Applier, ApplyError, VirtualServiceRef, FIELD_MANAGER};
use canary_engine::traffic::{current_weights, desired, Target, TrafficError};
use common::kube_proxy::{Fault, KubeProxy};
use common::kube_server::{self, KubeServer};
use common::virtual_service::{virtual_service, VirtualService};
use serde_json::{json, Value};

/// `reviews`, by host, with fields a weight change must leave alone: labels, annotations,
/// gateways, the route's retries and timeout, ports, and an unmanaged second route.
fn reviews() -> VirtualService {
    virtual_service("reviews")
        .hosts("reviews-stable", "reviews-canary")
        .port(9080)
        .metadata("annotations", json!({"team": "books"}))
        .metadata("labels", json!({"app": "reviews"}))
        .gateways(&["mesh"])
        .route_field("retries", json!({"attempts": 3, "perTryTimeout": "2s"}))
        .route_field("timeout", json!("10s"))
        .fallback("reviews-stable")
}

fn vs() -> Value {
    reviews().build()
}

fn target() -> Target {
    reviews().target()
}

fn applier(client: kube::Client, ns: &str) -> Applier {
    let mut a = Applier::new(
        client,
        VirtualServiceRef {
            namespace: ns.into(),
            name: "reviews".into(),
            version: "v1".into(),
        },
    );
    a.deadline = Duration::from_secs(5);
    a.call_timeout = Duration::from_millis(500);
    a
}

fn set(weight: u32) -> impl Fn(&Value) -> Result<Option<Value>, TrafficError> {
    move |v: &Value| {
        let (out, changed) = desired(v, &target(), weight)?;
        Ok(changed.then_some(out))
    }
}

fn weights(v: &Value) -> (i64, i64) {
    let w = current_weights(v, &target()).unwrap();
    (w[0].canary, w[0].stable)
}

/// A test's namespace, a client of the real server, a proxy in front of it, and the
/// VirtualService created there by the manager `kubectl-create`.
struct Setup {
    ns: String,
    direct: kube::Client,
    proxy: KubeProxy,
    created: Value,
}

async fn setup(server: &KubeServer) -> Setup {
    let ns = server.namespace("traffic");
    let direct = server.client().await;
    let created = kube_server::create(&direct, &ns, "kubectl-create", vs()).await;
    let proxy = KubeProxy::start(server).await;
    Setup {
        ns,
        direct,
        proxy,
        created,
    }
}

fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

fn managers(v: &Value) -> Vec<(String, String)> {
    v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap().to_string(),
                m["operation"].as_str().unwrap().to_string(),
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// `v` without what a weight change may legitimately alter: the weights themselves,
/// resourceVersion, generation, and our own managedFields entry `ours`. The other managers'
/// entries stay, less the fields we took over (`spec.http` is an atomic list: whoever
/// writes it last owns all of it).
fn normalised(v: &Value, ours: &Value) -> Value {
    let mut v = v.clone();
    for r in v["spec"]["http"][0]["route"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("weight");
    }
    let meta = v["metadata"].as_object_mut().unwrap();
    meta.remove("resourceVersion");
    meta.remove("generation");
    let fields = meta["managedFields"].as_array_mut().unwrap();
    fields.retain(|m| m["manager"] != FIELD_MANAGER);
    for m in fields.iter_mut() {
        m.as_object_mut().unwrap().remove("time");
        minus(&mut m["fieldsV1"], ours);
    }
    v
}

/// Remove from the field set `theirs` every field that `ours` owns.
fn minus(theirs: &mut Value, ours: &Value) {
    let (Some(t), Some(o)) = (theirs.as_object_mut(), ours.as_object()) else {
        return;
    };
    for (k, sub) in o {
        let leaf = sub.as_object().is_none_or(|m| m.is_empty());
        if leaf {
            t.remove(k);
        } else if let Some(child) = t.get_mut(k) {
            minus(child, sub);
        }
    }
}

fn our_fields(v: &Value) -> Value {
    v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == FIELD_MANAGER)
        .map(|m| m["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_update_changes_the_weights_and_nothing_else() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let s = setup(server).await;
    applier(s.proxy.client(), &s.ns)
        .update(set(10))
        .await
        .unwrap();
    let stored = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert_eq!(weights(&stored), (10, 90));
    let ours = our_fields(&stored);
    assert!(ours.to_string().contains("f:http"), "{ours}");
    assert_eq!(normalised(&stored, &ours), normalised(&s.created, &ours));
    assert_eq!(
        managers(&stored),
        vec![
            (FIELD_MANAGER.into(), "Update".into()),
            ("kubectl-create".into(), "Update".into()),
        ]
    );
    assert_eq!(
        s.proxy.log(),
        vec![
            "GET reviews".to_string(),
            format!("PUT reviews rv={}", rv(&s.created)),
            "GET reviews".into()
        ]
    );
    // Nothing to change: no write.
    applier(s.proxy.client(), &s.ns)
        .update(set(10))
        .await
        .unwrap();
    assert_eq!(
        s.proxy
            .log()
            .iter()
            .filter(|l| l.starts_with("PUT"))
            .count(),
        1
    );
    let again = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert_eq!(rv(&again), rv(&stored));
}

#[tokio::test]
async fn a_concurrent_writer_keeps_its_change() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let s = setup(server).await;
    s.proxy.fault(Fault::ConcurrentWrite);
    applier(s.proxy.client(), &s.ns)
        .update(set(50))
        .await
        .unwrap();
    let stored = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert_eq!(weights(&stored), (50, 50));
    // The other writer's change survived: the 409 made us re-read and recompute. An applier
    // that retried its first computed object with a fresh resourceVersion would erase it.
    assert_eq!(
        stored["metadata"]["annotations"]["other-writer"],
        "was here"
    );
    assert!(managers(&stored).contains(&("other-writer".into(), "Update".into())));
    let log = s.proxy.log();
    assert_eq!(log.len(), 5, "{log:?}");
    assert_eq!(log[1], format!("PUT reviews rv={}", rv(&s.created)));
    assert_ne!(
        log[3], log[1],
        "the retry carries the other writer's version"
    );
    assert_eq!(log[2], "GET reviews");
}

/// The check above can fail: a blind write — the first computed object sent again with the
/// newest resourceVersion — really does erase the other writer's change on this server.
#[tokio::test]
async fn a_blind_retry_would_erase_the_other_writer() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let s = setup(server).await;
    let (mut ours, _) = desired(&s.created, &target(), 50).unwrap();
    let theirs = kube_server::edit(&s.direct, &s.ns, "reviews", "other-writer", |v| {
        v["metadata"]["annotations"]["other-writer"] = json!("was here");
    })
    .await;
    ours["metadata"]["resourceVersion"] = json!(rv(&theirs));
    let o: kube::api::DynamicObject = serde_json::from_value(ours).unwrap();
    kube_server::virtual_services(&s.direct, &s.ns)
        .replace("reviews", &Default::default(), &o)
        .await
        .unwrap();
    let stored = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert!(stored["metadata"]["annotations"]
        .get("other-writer")
        .is_none());
}

#[tokio::test]
async fn not_found_is_final_and_server_errors_are_retried() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let proxy = KubeProxy::start(server).await;
    let ns = server.namespace("traffic");
    let e = applier(proxy.client(), &ns)
        .update(set(10))
        .await
        .unwrap_err();
    assert_eq!(e, ApplyError::NotFound(format!("{ns}/reviews")));
    assert_eq!(proxy.log().len(), 1, "404 is not retried");

    let s = setup(server).await;
    s.proxy.fault(Fault::Status(503));
    s.proxy.fault(Fault::Status(500));
    s.proxy.fault(Fault::Slow(Duration::from_secs(2)));
    applier(s.proxy.client(), &s.ns)
        .update(set(100))
        .await
        .unwrap();
    let stored = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert_eq!(weights(&stored), (100, 0));
    assert!(s.proxy.log().len() >= 5, "{:?}", s.proxy.log());
}

#[tokio::test]
async fn a_failing_api_server_ends_at_the_deadline() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let s = setup(server).await;
    for _ in 0..100 {
        s.proxy.fault(Fault::Status(500));
    }
    let mut a = applier(s.proxy.client(), &s.ns);
    a.deadline = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let e = a.update(set(10)).await.unwrap_err();
    assert!(matches!(e, ApplyError::Deadline { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let stored = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert_eq!(weights(&stored), (0, 100), "nothing was written");
    assert_eq!(rv(&stored), rv(&s.created));
}

#[tokio::test]
async fn impossible_changes_are_not_retried() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let ns = server.namespace("traffic");
    let direct = server.client().await;
    let mut v = vs();
    v["spec"]["http"][0]["route"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": {"host": "legacy"}, "weight": 0}));
    kube_server::create(&direct, &ns, "kubectl-create", v).await;
    let proxy = KubeProxy::start(server).await;
    let e = applier(proxy.client(), &ns)
        .update(set(10))
        .await
        .unwrap_err();
    assert!(matches!(e, ApplyError::Traffic(_)), "{e}");
    assert_eq!(proxy.log(), vec!["GET reviews"]);
}

#[tokio::test]
async fn a_write_the_schema_rejects_is_final_and_names_the_field() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let s = setup(server).await;
    let e = applier(s.proxy.client(), &s.ns)
        .update(|v: &Value| {
            let mut v = v.clone();
            v["spec"]["http"][0]["route"][0]["weight"] = json!("ninety");
            Ok(Some(v))
        })
        .await
        .unwrap_err();
    match &e {
        ApplyError::Api { code: 422, message } => {
            assert!(
                message.contains("spec.http[0].route[0].weight"),
                "{message}"
            )
        }
        other => panic!("expected 422 Invalid, got {other}"),
    }
    let puts = s
        .proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("PUT"))
        .count();
    assert_eq!(puts, 1, "422 is not retried");
    let stored = kube_server::get(&s.direct, &s.ns, "reviews").await.unwrap();
    assert_eq!(rv(&stored), rv(&s.created));
}

#[tokio::test]
async fn a_field_the_schema_prunes_fails_verification() {
    let Some(server) = kube_server::server() else {
        return;
    };
    let s = setup(server).await;
    let e = applier(s.proxy.client(), &s.ns)
        .update(|v: &Value| {
            if v["spec"]["http"][0].get("canaryWeightHint").is_some() {
                return Ok(None);
            }
            let mut v = v.clone();
            v["spec"]["http"][0]["canaryWeightHint"] = json!(10);
            Ok(Some(v))
        })
        .await
        .unwrap_err();
    assert_eq!(e, ApplyError::NotVerified(format!("{}/reviews", s.ns)));
}
