//! The VirtualService applier through the real `kube` client against a fake API server:
//! resourceVersion conflicts, 404, 5xx and slow answers.

use std::time::Duration;

use canary_engine::traffic::apply::{Applier, ApplyError, VirtualServiceRef};
use canary_engine::traffic::fake_kube::{FakeKube, Fault};
use canary_engine::traffic::{current_weights, desired, Destinations, Target};
use serde_json::{json, Value};

fn vs() -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "prod", "annotations": {"team": "books"}},
        "spec": {"hosts": ["reviews"], "http": [{"name": "primary", "retries": {"attempts": 3},
            "route": [{"destination": {"host": "reviews-stable"}, "weight": 100},
                      {"destination": {"host": "reviews-canary"}, "weight": 0}]}]}})
}

fn target() -> Target {
    Target {
        http_routes: vec!["primary".into()],
        tls_routes: vec![],
        tcp_ports: vec![],
        destinations: Destinations::Hosts {
            stable: "reviews-stable".into(),
            canary: "reviews-canary".into(),
        },
    }
}

fn applier(kube: &FakeKube) -> Applier {
    let mut a = Applier::new(
        kube.client(),
        VirtualServiceRef {
            namespace: "prod".into(),
            name: "reviews".into(),
            version: "v1".into(),
        },
    );
    a.deadline = Duration::from_secs(5);
    a.call_timeout = Duration::from_millis(500);
    a
}

fn set(
    weight: u32,
) -> impl Fn(&Value) -> Result<Option<Value>, canary_engine::traffic::TrafficError> {
    move |v: &Value| {
        let (out, changed) = desired(v, &target(), weight)?;
        Ok(changed.then_some(out))
    }
}

fn weights(kube: &FakeKube) -> (i64, i64) {
    let w = current_weights(&kube.object("prod", "reviews").unwrap(), &target()).unwrap();
    (w[0].canary, w[0].stable)
}

#[tokio::test]
async fn update_carries_resource_version_and_is_verified() {
    let kube = FakeKube::start().await;
    kube.put(vs());
    applier(&kube).update(set(10)).await.unwrap();
    assert_eq!(weights(&kube), (10, 90));
    let stored = kube.object("prod", "reviews").unwrap();
    assert_eq!(stored["spec"]["http"][0]["retries"], json!({"attempts": 3}));
    assert_eq!(stored["metadata"]["annotations"]["team"], "books");
    assert_eq!(
        kube.log(),
        vec!["GET reviews", "PUT reviews rv=1", "GET reviews"]
    );
    // Nothing to change: no write.
    applier(&kube).update(set(10)).await.unwrap();
    assert_eq!(
        kube.log().iter().filter(|l| l.starts_with("PUT")).count(),
        1
    );
}

#[tokio::test]
async fn a_conflict_is_reread_recomputed_and_retried() {
    let kube = FakeKube::start().await;
    kube.put(vs());
    kube.fault(Fault::ConcurrentWrite);
    applier(&kube).update(set(50)).await.unwrap();
    assert_eq!(weights(&kube), (50, 50));
    // The other writer's change survived: we recomputed from the fresh object.
    let stored = kube.object("prod", "reviews").unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["other-writer"],
        "was here"
    );
    assert_eq!(
        kube.log(),
        vec![
            "GET reviews",
            "PUT reviews rv=1",
            "GET reviews",
            "PUT reviews rv=2",
            "GET reviews"
        ]
    );
}

#[tokio::test]
async fn not_found_is_final_and_server_errors_are_retried() {
    let kube = FakeKube::start().await;
    let e = applier(&kube).update(set(10)).await.unwrap_err();
    assert_eq!(e, ApplyError::NotFound("prod/reviews".into()));
    assert_eq!(kube.log().len(), 1, "404 is not retried");

    kube.put(vs());
    kube.fault(Fault::Status(503));
    kube.fault(Fault::Status(500));
    kube.fault(Fault::Slow(Duration::from_secs(2)));
    applier(&kube).update(set(100)).await.unwrap();
    assert_eq!(weights(&kube), (100, 0));
}

#[tokio::test]
async fn a_failing_api_server_ends_at_the_deadline() {
    let kube = FakeKube::start().await;
    kube.put(vs());
    for _ in 0..100 {
        kube.fault(Fault::Status(500));
    }
    let mut a = applier(&kube);
    a.deadline = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let e = a.update(set(10)).await.unwrap_err();
    assert!(matches!(e, ApplyError::Deadline { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(weights(&kube), (0, 100), "nothing was written");
}

#[tokio::test]
async fn impossible_changes_are_not_retried() {
    let kube = FakeKube::start().await;
    let mut v = vs();
    v["spec"]["http"][0]["route"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": {"host": "legacy"}, "weight": 0}));
    kube.put(v);
    let e = applier(&kube).update(set(10)).await.unwrap_err();
    assert!(matches!(e, ApplyError::Traffic(_)), "{e}");
    assert_eq!(kube.log(), vec!["GET reviews"]);
}
