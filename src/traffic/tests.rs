use super::*;
use serde_json::json;

/// A VirtualService with everything a real one carries besides weights.
fn vs() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "prod", "resourceVersion": "42",
                     "annotations": {"team": "books"}},
        "spec": {
            "hosts": ["reviews.example.com"],
            "gateways": ["mesh"],
            "http": [
                {"name": "header-canary",
                 "match": [{"headers": {"x-canary": {"exact": "1"}}}],
                 "route": [{"destination": {"host": "reviews-canary", "port": {"number": 80}}}]},
                {"name": "primary",
                 "retries": {"attempts": 3, "perTryTimeout": "2s"},
                 "timeout": "10s",
                 "mirror": {"host": "shadow"},
                 "headers": {"request": {"set": {"x-route": "primary"}}},
                 "futureIstioField": {"anything": [1, 2, 3]},
                 "route": [
                    {"destination": {"host": "reviews-stable.prod.svc.cluster.local", "port": {"number": 80}}, "weight": 100,
                     "headers": {"response": {"add": {"x-version": "stable"}}}},
                    {"destination": {"host": "reviews-canary", "port": {"number": 80}}, "weight": 0}
                 ]}
            ],
            "tls": [
                {"match": [{"port": 443, "sniHosts": ["reviews.example.com"]}],
                 "route": [{"destination": {"host": "reviews-stable"}, "weight": 100},
                           {"destination": {"host": "reviews-canary"}, "weight": 0}]}
            ],
            "tcp": [
                {"match": [{"port": 3306}],
                 "route": [{"destination": {"host": "reviews-stable"}, "weight": 100},
                           {"destination": {"host": "reviews-canary"}, "weight": 0}]}
            ]
        }
    })
}

fn hosts(routes: &[&str]) -> Target {
    Target {
        http_routes: routes.iter().map(|s| s.to_string()).collect(),
        tls_routes: vec![],
        tcp_ports: vec![],
        destinations: Destinations::Hosts {
            stable: "reviews-stable".into(),
            canary: "reviews-canary".into(),
        },
    }
}

/// Put the original weights back: what remains must equal the original exactly.
fn without_weights(mut v: Value) -> Value {
    for kind in ["http", "tls", "tcp"] {
        if let Some(rs) = v
            .pointer_mut(&format!("/spec/{kind}"))
            .and_then(Value::as_array_mut)
        {
            for r in rs {
                if let Some(ds) = r.get_mut("route").and_then(Value::as_array_mut) {
                    for d in ds {
                        d.as_object_mut().unwrap().remove("weight");
                    }
                }
            }
        }
    }
    v
}

#[test]
fn sets_only_the_weights_of_the_managed_route() {
    let (out, changed) = desired(&vs(), &hosts(&["primary"]), 10).unwrap();
    assert!(changed);
    let w = current_weights(&out, &hosts(&["primary"])).unwrap();
    assert_eq!((w[0].canary, w[0].stable), (10, 90));
    assert_eq!(without_weights(out.clone()), without_weights(vs()));
    // The unmanaged header route, TLS and TCP routes keep their weights.
    assert_eq!(out["spec"]["tls"], vs()["spec"]["tls"]);
    assert_eq!(out["spec"]["http"][0], vs()["spec"]["http"][0]);
    // Applying the same weight again changes nothing.
    let (again, changed) = desired(&out, &hosts(&["primary"]), 10).unwrap();
    assert!(!changed);
    assert_eq!(again, out);
}

#[test]
fn route_selection_follows_argo() {
    let mut v = vs();
    // Two named routes and none named on the command line: ambiguous.
    let e = desired(&v, &hosts(&[]), 10).unwrap_err();
    assert!(matches!(e, TrafficError::NoRoute(_)), "{e}");
    let e = desired(&v, &hosts(&["nope"]), 10).unwrap_err();
    assert_eq!(
        e.to_string(),
        "HTTP route \"nope\" is not in the VirtualService (routes: header-canary, primary)"
    );
    // The first unnamed route is chosen when none is named.
    v["spec"]["http"][1].as_object_mut().unwrap().remove("name");
    let (out, _) = desired(&v, &hosts(&[]), 50).unwrap();
    assert_eq!(out["spec"]["http"][1]["route"][1]["weight"], 50);
}

#[test]
fn foreign_and_missing_destinations_are_errors() {
    let mut v = vs();
    v["spec"]["http"][1]["route"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": {"host": "legacy"}, "weight": 0}));
    let e = desired(&v, &hosts(&["primary"]), 10).unwrap_err();
    assert!(matches!(e, TrafficError::ForeignDestination { .. }), "{e}");
    let e = desired(&vs(), &hosts(&["header-canary"]), 10).unwrap_err();
    assert!(
        matches!(
            e,
            TrafficError::MissingDestination {
                which: "stable",
                ..
            }
        ),
        "{e}"
    );
    assert!(desired(&vs(), &hosts(&["primary"]), 101).is_err());
}

#[test]
fn subsets_tls_and_tcp() {
    let v = json!({"spec": {
        "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "stable"}, "weight": 90},
            {"destination": {"host": "reviews", "subset": "canary"}, "weight": 10}]}],
    }});
    let t = Target {
        http_routes: vec![],
        tls_routes: vec![],
        tcp_ports: vec![],
        destinations: Destinations::Subsets {
            stable: "stable".into(),
            canary: "canary".into(),
        },
    };
    let (out, _) = desired(&v, &t, 100).unwrap();
    assert_eq!(out["spec"]["http"][0]["route"][0]["weight"], 0);
    assert_eq!(out["spec"]["http"][0]["route"][1]["weight"], 100);

    let t = Target {
        http_routes: vec!["primary".into()],
        tls_routes: vec![TlsRoute {
            port: 443,
            sni_hosts: vec!["reviews.example.com".into()],
        }],
        tcp_ports: vec![3306],
        ..hosts(&[])
    };
    let (out, _) = desired(&vs(), &t, 50).unwrap();
    for kind in ["tls", "tcp"] {
        assert_eq!(out["spec"][kind][0]["route"][0]["weight"], 50, "{kind}");
        assert_eq!(out["spec"][kind][0]["route"][1]["weight"], 50, "{kind}");
    }
    let wrong_sni = Target {
        tls_routes: vec![TlsRoute {
            port: 443,
            sni_hosts: vec!["other".into()],
        }],
        ..t
    };
    assert!(desired(&vs(), &wrong_sni, 50).is_err());
}

#[test]
fn the_result_validates_against_istios_crd_schema() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/schemas/istio-networking-crds.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = crate::template::yaml::load_documents(&text).unwrap();
    let crd = docs
        .iter()
        .find(|d| {
            d.value.pointer("/spec/names/kind").and_then(Value::as_str) == Some("VirtualService")
        })
        .expect("VirtualService CRD");
    let version = crd.value["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .expect("v1");
    let schema = version["schema"]["openAPIV3Schema"].clone();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let (out, _) = desired(&vs(), &hosts(&["primary"]), 10).unwrap();
    // Our test fixture's made-up future field is not in the schema; real objects are.
    let mut real = out.clone();
    real["spec"]["http"][1]
        .as_object_mut()
        .unwrap()
        .remove("futureIstioField");
    let errors: Vec<String> = validator
        .iter_errors(&real)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}
