//! A builder for the Istio VirtualService the traffic and promotion tests shift, and the
//! [`Target`] that manages it: one HTTP route `primary` with a stable and a canary
//! destination, all traffic on stable unless told otherwise.

use canary_engine::traffic::{Destinations, Target};
use serde_json::{json, Map, Value};

/// A VirtualService `name` (host `name`, subsets `stable` and `canary`, weights 100/0).
pub fn virtual_service(name: &str) -> VirtualService {
    VirtualService {
        name: name.into(),
        namespace: None,
        destinations: Destinations::Subsets {
            stable: "stable".into(),
            canary: "canary".into(),
        },
        port: None,
        weights: (100, 0),
        metadata: Map::new(),
        gateways: vec![],
        route: Map::new(),
        fallback: None,
    }
}

/// What [`virtual_service`] builds; [`VirtualService::build`] makes the object.
#[derive(Debug, Clone)]
pub struct VirtualService {
    name: String,
    namespace: Option<String>,
    destinations: Destinations,
    port: Option<u16>,
    weights: (u32, u32),
    metadata: Map<String, Value>,
    gateways: Vec<String>,
    route: Map<String, Value>,
    fallback: Option<String>,
}

impl VirtualService {
    /// `metadata.namespace` (none by default: the API server's request decides).
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.into());
        self
    }

    /// Destinations told apart by DestinationRule subsets of the host `name`.
    pub fn subsets(mut self, stable: &str, canary: &str) -> Self {
        self.destinations = Destinations::Subsets {
            stable: stable.into(),
            canary: canary.into(),
        };
        self
    }

    /// Destinations told apart by host (one Service per version).
    pub fn hosts(mut self, stable: &str, canary: &str) -> Self {
        self.destinations = Destinations::Hosts {
            stable: stable.into(),
            canary: canary.into(),
        };
        self
    }

    /// A `port.number` on both destinations.
    pub fn port(mut self, number: u16) -> Self {
        self.port = Some(number);
        self
    }

    /// The route's (stable, canary) weights.
    pub fn weights(mut self, stable: u32, canary: u32) -> Self {
        self.weights = (stable, canary);
        self
    }

    /// `metadata.<key>`, e.g. `labels` or `annotations`.
    pub fn metadata(mut self, key: &str, value: Value) -> Self {
        self.metadata.insert(key.into(), value);
        self
    }

    /// `spec.gateways`.
    pub fn gateways(mut self, gateways: &[&str]) -> Self {
        self.gateways = gateways.iter().map(|g| g.to_string()).collect();
        self
    }

    /// Another field of the route `primary`, e.g. `timeout` or `retries`.
    pub fn route_field(mut self, key: &str, value: Value) -> Self {
        self.route.insert(key.into(), value);
        self
    }

    /// A second, unmanaged HTTP route `fallback` to `host`, after `primary`.
    pub fn fallback(mut self, host: &str) -> Self {
        self.fallback = Some(host.into());
        self
    }

    /// As a crashed or interrupted promotion leaves it: `progress` in the annotation
    /// `canary-engine.io/promotion` (replacing any other annotation).
    pub fn promotion(self, progress: Value) -> Self {
        let state = serde_json::to_string(&progress).expect("JSON");
        self.metadata("annotations", json!({"canary-engine.io/promotion": state}))
    }

    /// The object.
    pub fn build(&self) -> Value {
        let (mut stable, mut canary) = match &self.destinations {
            Destinations::Subsets { stable, canary } => (
                json!({"host": self.name, "subset": stable}),
                json!({"host": self.name, "subset": canary}),
            ),
            Destinations::Hosts { stable, canary } => {
                (json!({"host": stable}), json!({"host": canary}))
            }
        };
        if let Some(number) = self.port {
            for d in [&mut stable, &mut canary] {
                d["port"] = json!({"number": number});
            }
        }
        let mut primary = self.route.clone();
        primary.insert("name".into(), json!("primary"));
        primary.insert(
            "route".into(),
            json!([{"destination": stable, "weight": self.weights.0},
                   {"destination": canary, "weight": self.weights.1}]),
        );
        let mut http = vec![Value::Object(primary)];
        if let Some(host) = &self.fallback {
            http.push(json!({"name": "fallback", "route": [{"destination": {"host": host}}]}));
        }
        let mut metadata = self.metadata.clone();
        metadata.insert("name".into(), json!(self.name));
        if let Some(ns) = &self.namespace {
            metadata.insert("namespace".into(), json!(ns));
        }
        let mut spec = json!({"hosts": [self.name], "http": http});
        if !self.gateways.is_empty() {
            spec["gateways"] = json!(self.gateways);
        }
        json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": metadata, "spec": spec})
    }

    /// The [`Target`] managing its route `primary`.
    pub fn target(&self) -> Target {
        Target {
            http_routes: vec!["primary".into()],
            tls_routes: vec![],
            tcp_ports: vec![],
            destinations: self.destinations.clone(),
        }
    }
}
