//! The VirtualService the promotion tests shift: `prod/reviews`, one named HTTP route with a
//! timeout, stable and canary subsets.

use canary_engine::traffic::Target;
use serde_json::{json, Value};

use super::virtual_service::{virtual_service, VirtualService};

/// Its builder, all traffic on stable (tests change the weights or add a promotion's state).
pub fn reviews() -> VirtualService {
    virtual_service("reviews")
        .namespace("prod")
        .subsets("stable", "canary")
        .route_field("timeout", json!("5s"))
}

/// The object, all traffic on stable.
pub fn vs() -> Value {
    reviews().build()
}

/// Its route `primary`, by subsets.
pub fn target() -> Target {
    reviews().target()
}
