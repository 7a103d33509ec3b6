//! The VirtualService the promotion tests shift: `prod/reviews`, one named HTTP route with a
//! timeout, stable and canary subsets.

use canary_engine::traffic::{Destinations, Target};
use serde_json::{json, Value};

/// The object, all traffic on stable.
pub fn vs() -> Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "reviews", "namespace": "prod"},
        "spec": {"hosts": ["reviews"], "http": [{"name": "primary", "timeout": "5s",
            "route": [{"destination": {"host": "reviews", "subset": "stable"}, "weight": 100},
                      {"destination": {"host": "reviews", "subset": "canary"}, "weight": 0}]}]}})
}

/// Its route `primary`, by subsets.
pub fn target() -> Target {
    Target {
        http_routes: vec!["primary".into()],
        tls_routes: vec![],
        tcp_ports: vec![],
        destinations: Destinations::Subsets {
            stable: "stable".into(),
            canary: "canary".into(),
        },
    }
}
