//! Istio VirtualService weights, computed as a pure function of the object we read.
//!
//! The object is handled as unstructured JSON and only the `weight` of the canary and stable
//! destinations of the managed routes is changed; every other field — matches, retries,
//! timeouts, mirrors, headers, other routes, fields a future Istio adds — is kept byte for
//! byte in meaning. Route selection follows Argo Rollouts (`rollout/trafficrouting/istio`):
//! named HTTP routes, or with none named the only HTTP route, or else the first unnamed one;
//! TLS routes by port and SNI hosts; TCP routes by port. Destinations are recognised by subset
//! (with a DestinationRule) or by host, compared on its short name (`reviews` matches
//! `reviews.prod.svc.cluster.local`). Unlike Argo, which deletes any other destination of a
//! managed route, a foreign destination is an error: deleting traffic targets is not ours
//! to decide.

pub mod apply;

use serde_json::Value;

/// Which destinations are the stable and the canary version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destinations {
    /// DestinationRule subsets.
    Subsets {
        /// Stable subset name.
        stable: String,
        /// Canary subset name.
        canary: String,
    },
    /// Kubernetes Services (destination hosts).
    Hosts {
        /// Stable Service name.
        stable: String,
        /// Canary Service name.
        canary: String,
    },
}

/// A TLS route to manage, as Argo's `tlsRoutes` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRoute {
    /// Port of the route's match.
    pub port: i64,
    /// SNI hosts of the route's match (compared as a set).
    pub sni_hosts: Vec<String>,
}

/// What to manage in a VirtualService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// HTTP route names (empty: the only route, or the first unnamed one).
    pub http_routes: Vec<String>,
    /// TLS routes (port and SNI hosts) whose weights change.
    pub tls_routes: Vec<TlsRoute>,
    /// TCP routes, by port.
    pub tcp_ports: Vec<i64>,
    /// How destinations are told apart.
    pub destinations: Destinations,
}

/// One managed route, for reports and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRef {
    /// `http`, `tls` or `tcp`.
    pub kind: &'static str,
    /// Index in that list.
    pub index: usize,
    /// Route name, if it has one.
    pub name: Option<String>,
}

impl std::fmt::Display for RouteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}[{}] {n:?}", self.kind, self.index),
            None => write!(f, "{}[{}]", self.kind, self.index),
        }
    }
}

/// Why weights cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrafficError {
    /// A named route does not exist.
    #[error("HTTP route {0:?} is not in the VirtualService (routes: {1})")]
    RouteNotFound(String, String),
    /// No route could be chosen.
    #[error("{0}")]
    NoRoute(String),
    /// A managed route lacks the stable or the canary destination.
    #[error("{route}: no {which} destination ({expected}) in its route")]
    MissingDestination {
        /// The route, as `KIND[INDEX] "name"` (`http[0] "primary"`, `tls[1]`).
        route: String,
        /// `stable` or `canary`.
        which: &'static str,
        /// What was looked for.
        expected: String,
    },
    /// A managed route sends traffic somewhere else too.
    #[error("{route}: destination {destination} is neither stable nor canary; refusing to change its weight or drop it")]
    ForeignDestination {
        /// The route, as `KIND[INDEX] "name"` (`http[0] "primary"`, `tls[1]`).
        route: String,
        /// The destination, as host/subset.
        destination: String,
    },
    /// The object is not a VirtualService as expected.
    #[error("malformed VirtualService: {0}")]
    Malformed(String),
    /// Weight out of range.
    #[error("canary weight {0} is not between 0 and 100")]
    Weight(u32),
}

/// Current weights of one managed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteWeights {
    /// Which route of the VirtualService.
    pub route: RouteRef,
    /// Canary weight.
    pub canary: i64,
    /// Stable weight.
    pub stable: i64,
}

fn short_host(host: &str) -> &str {
    host.split('.').next().unwrap_or(host)
}

fn routes<'a>(vs: &'a Value, kind: &str) -> &'a [Value] {
    vs.pointer(&format!("/spec/{kind}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The managed routes of `vs`, in order.
pub fn managed_routes(vs: &Value, t: &Target) -> Result<Vec<RouteRef>, TrafficError> {
    let mut out = Vec::new();
    let http = routes(vs, "http");
    let name_of = |r: &Value| r.get("name").and_then(Value::as_str).map(str::to_string);
    if t.http_routes.is_empty() {
        if t.tls_routes.is_empty() && t.tcp_ports.is_empty() {
            let index = if http.len() == 1 {
                Some(0)
            } else {
                http.iter().position(|r| name_of(r).is_none())
            };
            match index {
                Some(index) => out.push(RouteRef {
                    kind: "http",
                    index,
                    name: name_of(&http[index]),
                }),
                None => {
                    return Err(TrafficError::NoRoute(if http.is_empty() {
                        "the VirtualService has no spec.http routes; name tls/tcp routes to manage"
                            .into()
                    } else {
                        "the VirtualService has several named HTTP routes: say which with --route"
                            .into()
                    }))
                }
            }
        }
    } else {
        for name in &t.http_routes {
            let index = http
                .iter()
                .position(|r| name_of(r).as_deref() == Some(name.as_str()))
                .ok_or_else(|| {
                    let names: Vec<String> = http.iter().filter_map(name_of).collect();
                    TrafficError::RouteNotFound(name.clone(), names.join(", "))
                })?;
            out.push(RouteRef {
                kind: "http",
                index,
                name: Some(name.clone()),
            });
        }
    }
    let ports_of = |r: &Value| -> Vec<i64> {
        let mut p: Vec<i64> = r
            .get("match")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m.get("port").and_then(Value::as_i64))
                    .collect()
            })
            .unwrap_or_default();
        p.sort();
        p.dedup();
        p
    };
    for want in &t.tls_routes {
        let mut want_sni = want.sni_hosts.clone();
        want_sni.sort();
        let found: Vec<usize> = routes(vs, "tls")
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let ports = ports_of(r);
                let mut sni: Vec<String> = r
                    .get("match")
                    .and_then(Value::as_array)
                    .map(|ms| {
                        ms.iter()
                            .flat_map(|m| {
                                m.get("sniHosts")
                                    .and_then(Value::as_array)
                                    .into_iter()
                                    .flatten()
                                    .filter_map(Value::as_str)
                                    .map(str::to_string)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                sni.sort();
                sni.dedup();
                ports.len() <= 1
                    && ports.first().copied().unwrap_or(0) == want.port
                    && sni == want_sni
            })
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(TrafficError::NoRoute(format!(
                "no TLS route matches port {} and SNI hosts {:?}",
                want.port, want.sni_hosts
            )));
        }
        out.extend(found.into_iter().map(|index| RouteRef {
            kind: "tls",
            index,
            name: None,
        }));
    }
    for port in &t.tcp_ports {
        let found: Vec<usize> = routes(vs, "tcp")
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                let ports = ports_of(r);
                ports.len() <= 1 && ports.first().copied().unwrap_or(0) == *port
            })
            .map(|(i, _)| i)
            .collect();
        if found.is_empty() {
            return Err(TrafficError::NoRoute(format!(
                "no TCP route matches port {port}"
            )));
        }
        out.extend(found.into_iter().map(|index| RouteRef {
            kind: "tcp",
            index,
            name: None,
        }));
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Stable,
    Canary,
}

fn role(dest: &Value, d: &Destinations) -> Option<Role> {
    let host = dest
        .pointer("/destination/host")
        .and_then(Value::as_str)
        .unwrap_or("");
    let subset = dest
        .pointer("/destination/subset")
        .and_then(Value::as_str)
        .unwrap_or("");
    match d {
        Destinations::Subsets { stable, canary } => {
            if subset == canary {
                Some(Role::Canary)
            } else if subset == stable {
                Some(Role::Stable)
            } else {
                None
            }
        }
        Destinations::Hosts { stable, canary } => {
            let h = short_host(host);
            if h == canary {
                Some(Role::Canary)
            } else if h == stable {
                Some(Role::Stable)
            } else {
                None
            }
        }
    }
}

fn describe(dest: &Value) -> String {
    let host = dest
        .pointer("/destination/host")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match dest.pointer("/destination/subset").and_then(Value::as_str) {
        Some(s) => format!("{host}/{s}"),
        None => host.to_string(),
    }
}

fn check_route(route: &Value, r: &RouteRef, d: &Destinations) -> Result<(), TrafficError> {
    let dests = route
        .get("route")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            TrafficError::Malformed(format!(
                "{r} has no `route` destinations (delegate routes cannot be weighted)"
            ))
        })?;
    let mut seen = (false, false);
    for dest in dests {
        match role(dest, d) {
            Some(Role::Stable) => seen.0 = true,
            Some(Role::Canary) => seen.1 = true,
            None => {
                return Err(TrafficError::ForeignDestination {
                    route: r.to_string(),
                    destination: describe(dest),
                })
            }
        }
    }
    let (stable_name, canary_name) = match d {
        Destinations::Subsets { stable, canary } => {
            (format!("subset {stable}"), format!("subset {canary}"))
        }
        Destinations::Hosts { stable, canary } => {
            (format!("host {stable}"), format!("host {canary}"))
        }
    };
    if !seen.0 {
        return Err(TrafficError::MissingDestination {
            route: r.to_string(),
            which: "stable",
            expected: stable_name,
        });
    }
    if !seen.1 {
        return Err(TrafficError::MissingDestination {
            route: r.to_string(),
            which: "canary",
            expected: canary_name,
        });
    }
    Ok(())
}

/// The weights the managed routes carry now.
pub fn current_weights(vs: &Value, t: &Target) -> Result<Vec<RouteWeights>, TrafficError> {
    let mut out = Vec::new();
    for r in managed_routes(vs, t)? {
        let route = &routes(vs, r.kind)[r.index];
        check_route(route, &r, &t.destinations)?;
        let (mut canary, mut stable) = (0, 0);
        for dest in route
            .get("route")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Istio: a destination without a weight takes all the traffic when it is alone.
            let w = dest.get("weight").and_then(Value::as_i64).unwrap_or(0);
            match role(dest, &t.destinations) {
                Some(Role::Canary) => canary += w,
                Some(Role::Stable) => stable += w,
                None => {}
            }
        }
        out.push(RouteWeights {
            route: r,
            canary,
            stable,
        });
    }
    Ok(out)
}

/// `vs` with the canary at `canary_weight` % and the stable at the rest on every managed
/// route; nothing else changes. Returns the new object and whether anything changed.
pub fn desired(vs: &Value, t: &Target, canary_weight: u32) -> Result<(Value, bool), TrafficError> {
    if canary_weight > 100 {
        return Err(TrafficError::Weight(canary_weight));
    }
    let managed = managed_routes(vs, t)?;
    let mut out = vs.clone();
    let mut changed = false;
    for r in &managed {
        check_route(&routes(vs, r.kind)[r.index], r, &t.destinations)?;
        let route = out
            .pointer_mut(&format!("/spec/{}/{}/route", r.kind, r.index))
            .and_then(Value::as_array_mut)
            .ok_or_else(|| TrafficError::Malformed(format!("{r} disappeared")))?;
        // Several destinations of one role (e.g. two ports): the first gets the weight.
        let mut given = (false, false);
        for dest in route.iter_mut() {
            let want = match role(dest, &t.destinations) {
                Some(Role::Canary) if !given.1 => {
                    given.1 = true;
                    canary_weight as i64
                }
                Some(Role::Stable) if !given.0 => {
                    given.0 = true;
                    100 - canary_weight as i64
                }
                _ => 0,
            };
            let obj = dest.as_object_mut().ok_or_else(|| {
                TrafficError::Malformed(format!("{r}: destination is not an object"))
            })?;
            if obj.get("weight").and_then(Value::as_i64) != Some(want) {
                obj.insert("weight".into(), Value::from(want));
                changed = true;
            }
        }
    }
    Ok((out, changed))
}

#[cfg(test)]
mod tests;
