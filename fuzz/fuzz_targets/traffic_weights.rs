//! PROPERTY: setting the canary weight of a VirtualService changes only weights, and every
//! managed route's weights sum to 100 (canary = the step, stable = the rest).
//!
//! VirtualServices are generated with HTTP, TLS and TCP routes, named and unnamed, with
//! stable, canary and foreign destinations (by host, FQDN or subset), weights present, absent
//! or ill-typed, and fields Istio may add; the managed routes are chosen as `canary promote`
//! would. [`desired`] must return an error or an object that
//! * equals the input once the weights of the managed routes are removed from both,
//! * gives each managed route destinations whose weights sum to 100, with the canary at the
//!   step (as [`current_weights`] reads it back),
//! * is a fixed point: applying the same step again changes nothing.
#![no_main]

use arbitrary::Arbitrary;
use canary_engine::traffic::{
    current_weights, desired, managed_routes, Destinations, Target, TlsRoute,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const HOSTS: [&str; 6] = [
    "reviews-stable",
    "reviews-canary",
    "reviews-stable.prod.svc.cluster.local",
    "reviews-canary.prod",
    "ratings",
    "",
];
const SUBSETS: [&str; 3] = ["stable", "canary", "v3"];
const NAMES: [&str; 3] = ["primary", "header-canary", "mirror"];
const SNI: [&str; 2] = ["reviews.example.com", "api.example.com"];

#[derive(Arbitrary, Debug)]
enum Weight {
    Absent,
    Int(i8),
    Big(i64),
    Float(f64),
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Dest {
    host: u8,
    subset: Option<u8>,
    port: Option<u16>,
    weight: Weight,
    headers: bool,
    not_an_object: bool,
}

#[derive(Arbitrary, Debug)]
struct Route {
    name: Option<u8>,
    ports: Vec<u16>,
    sni: Vec<u8>,
    dests: Option<Vec<Dest>>,
    retries: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    http: Vec<Route>,
    tls: Vec<Route>,
    tcp: Vec<Route>,
    http_names: Vec<u8>,
    tls_routes: Vec<(u16, Vec<u8>)>,
    tcp_ports: Vec<u16>,
    by_subset: bool,
    weight: u8,
}

fn dest(d: &Dest) -> Value {
    if d.not_an_object {
        return json!(HOSTS[usize::from(d.host) % HOSTS.len()]);
    }
    let mut destination = json!({"host": HOSTS[usize::from(d.host) % HOSTS.len()]});
    if let Some(s) = d.subset {
        destination["subset"] = json!(SUBSETS[usize::from(s) % SUBSETS.len()]);
    }
    if let Some(p) = d.port {
        destination["port"] = json!({"number": p});
    }
    let mut v = json!({"destination": destination});
    match &d.weight {
        Weight::Absent => {}
        Weight::Int(w) => v["weight"] = json!(w),
        Weight::Big(w) => v["weight"] = json!(w),
        Weight::Float(w) => v["weight"] = json!(w),
        Weight::Text(w) => v["weight"] = json!(w),
    }
    if d.headers {
        v["headers"] = json!({"response": {"add": {"x-version": "any"}}});
    }
    v
}

fn route(r: &Route) -> Value {
    let mut v = json!({});
    if let Some(n) = r.name {
        v["name"] = json!(NAMES[usize::from(n) % NAMES.len()]);
    }
    let matches: Vec<Value> = r
        .ports
        .iter()
        .take(3)
        .map(|p| {
            let sni: Vec<&str> = r
                .sni
                .iter()
                .take(3)
                .map(|s| SNI[usize::from(*s) % 2])
                .collect();
            json!({"port": p, "sniHosts": sni})
        })
        .collect();
    if !matches.is_empty() {
        v["match"] = json!(matches);
    }
    if let Some(ds) = &r.dests {
        v["route"] = Value::Array(ds.iter().take(5).map(dest).collect());
    }
    if r.retries {
        v["retries"] = json!({"attempts": 3});
        v["futureIstioField"] = json!([1, {"weight": 7}]);
    }
    v
}

/// The object with the `weight` of every destination of the given routes removed.
fn without_managed_weights(vs: &Value, managed: &[(&str, usize)]) -> Value {
    let mut v = vs.clone();
    for (kind, index) in managed {
        if let Some(ds) = v
            .pointer_mut(&format!("/spec/{kind}/{index}/route"))
            .and_then(Value::as_array_mut)
        {
            for d in ds.iter_mut().filter_map(Value::as_object_mut) {
                d.remove("weight");
            }
        }
    }
    v
}

fuzz_target!(|input: Input| {
    let vs = json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "reviews", "resourceVersion": "7"},
        "spec": {
            "hosts": ["reviews"],
            "http": input.http.iter().take(4).map(route).collect::<Vec<_>>(),
            "tls": input.tls.iter().take(3).map(route).collect::<Vec<_>>(),
            "tcp": input.tcp.iter().take(3).map(route).collect::<Vec<_>>(),
        }
    });
    let target = Target {
        http_routes: input
            .http_names
            .iter()
            .take(3)
            .map(|n| NAMES[usize::from(*n) % NAMES.len()].to_string())
            .collect(),
        tls_routes: input
            .tls_routes
            .iter()
            .take(2)
            .map(|(port, sni)| TlsRoute {
                port: i64::from(*port),
                sni_hosts: sni
                    .iter()
                    .take(3)
                    .map(|s| SNI[usize::from(*s) % 2].to_string())
                    .collect(),
            })
            .collect(),
        tcp_ports: input
            .tcp_ports
            .iter()
            .take(2)
            .map(|p| i64::from(*p))
            .collect(),
        destinations: if input.by_subset {
            Destinations::Subsets {
                stable: "stable".into(),
                canary: "canary".into(),
            }
        } else {
            Destinations::Hosts {
                stable: "reviews-stable".into(),
                canary: "reviews-canary".into(),
            }
        },
    };
    let step = u32::from(input.weight % 110);
    let Ok((out, _changed)) = desired(&vs, &target, step) else {
        return;
    };
    assert!(step <= 100, "weight {step} accepted");
    let managed = managed_routes(&vs, &target).expect("desired succeeded");
    let refs: Vec<(&str, usize)> = managed.iter().map(|r| (r.kind, r.index)).collect();
    assert_eq!(
        without_managed_weights(&out, &refs),
        without_managed_weights(&vs, &refs),
        "something besides the managed weights changed"
    );
    for (kind, index) in &refs {
        let dests = out
            .pointer(&format!("/spec/{kind}/{index}/route"))
            .and_then(Value::as_array)
            .expect("a managed route keeps its destinations");
        let sum: i64 = dests
            .iter()
            .map(|d| {
                d["weight"]
                    .as_i64()
                    .expect("every destination gets an integer weight")
            })
            .sum();
        assert_eq!(sum, 100, "{kind}[{index}] weights sum to {sum}: {dests:?}");
    }
    for w in current_weights(&out, &target).expect("the new object is still valid") {
        assert_eq!(
            (w.canary, w.stable),
            (i64::from(step), 100 - i64::from(step)),
            "{}",
            w.route
        );
    }
    let (again, changed) = desired(&out, &target, step).expect("still valid");
    assert!(!changed, "a second application changed something");
    assert_eq!(again, out);
});
