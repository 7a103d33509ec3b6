//! Reading an Argo Rollout manifest (`--rollout FILE`): its `canary.steps`, its background
//! `canary.analysis`, and `trafficRouting.istio` — so a pipeline promotes exactly as the
//! Rollout says, without Argo Rollouts running the canary.
//!
//! Supported steps: `setWeight`, `pause` (with or without a duration) and `analysis`. Steps
//! that need the Rollouts controller (`setCanaryScale`, `setHeaderRoute`, `setMirrorRoute`,
//! `experiment`, `plugin`) are errors naming the step, never skipped silently.

use std::time::Duration;

use serde_json::Value;

use crate::template::argo::parse_duration;
use crate::template::yaml::{self, Document};
use crate::template::{dotted, syntax_error, TemplateError};
use crate::traffic::{Destinations, TlsRoute};

/// An AnalysisTemplate (or Judge) the Rollout names, with the args it passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysisRef {
    /// Template names (`templates[].templateName`).
    pub templates: Vec<String>,
    /// Args with literal values.
    pub args: Vec<(String, String)>,
    /// Args whose value only the cluster knows (`valueFrom`): name and where from. They must
    /// be given with `--arg`.
    pub from_cluster: Vec<(String, String)>,
}

/// One step of `canary.steps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStep {
    /// `setWeight`.
    SetWeight(u32),
    /// `pause` (no duration: until resumed).
    Pause(Option<Duration>),
    /// `analysis`.
    Analysis(AnalysisRef),
}

/// What `--rollout` gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPlan {
    /// The Rollout's name.
    pub name: String,
    /// The Rollout's namespace (`metadata.namespace`), if set.
    pub namespace: Option<String>,
    /// Steps in order.
    pub steps: Vec<RolloutStep>,
    /// Background analysis and the step it starts at.
    pub background: Option<(AnalysisRef, usize)>,
    /// VirtualService namespace (when given as `name.namespace`) and name.
    pub virtual_service: (Option<String>, String),
    /// HTTP route names.
    pub routes: Vec<String>,
    /// TLS routes (port and SNI hosts) whose weights the promotion sets.
    pub tls_routes: Vec<TlsRoute>,
    /// TCP route ports.
    pub tcp_ports: Vec<i64>,
    /// Subsets (with a DestinationRule) or Services.
    pub destinations: Destinations,
}

struct Reader<'a> {
    file: &'a str,
    doc: &'a Document,
    errors: Vec<TemplateError>,
}

impl Reader<'_> {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.errors.push(TemplateError {
            file: self.file.into(),
            line: self.doc.line_of(pointer),
            metric: None,
            field: Some(dotted(pointer)).filter(|f| !f.is_empty()),
            message: message.into(),
        });
    }

    fn get(&self, pointer: &str) -> Option<&Value> {
        self.doc.value.pointer(pointer)
    }

    fn string(&self, pointer: &str) -> Option<String> {
        self.get(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The array at `pointer` (empty when absent or not an array).
    fn array(&self, pointer: &str) -> Vec<Value> {
        self.get(pointer)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    fn strings(&self, pointer: &str) -> Vec<String> {
        strings(self.get(pointer))
    }

    fn analysis(&mut self, pointer: &str) -> AnalysisRef {
        let mut out = AnalysisRef {
            templates: Vec::new(),
            args: Vec::new(),
            from_cluster: Vec::new(),
        };
        let templates = self.array(&format!("{pointer}/templates"));
        if templates.is_empty() {
            self.error(
                pointer,
                "an analysis needs at least one entry in `templates`",
            );
        }
        for (i, t) in templates.iter().enumerate() {
            match t.get("templateName").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => out.templates.push(n.to_string()),
                _ => self.error(
                    &format!("{pointer}/templates/{i}"),
                    "templateName is required (templates selected by label are not supported)",
                ),
            }
        }
        let args = self.array(&format!("{pointer}/args"));
        for (i, a) in args.iter().enumerate() {
            let at = format!("{pointer}/args/{i}");
            let Some(name) = a.get("name").and_then(Value::as_str) else {
                self.error(&at, "an arg needs a name");
                continue;
            };
            if let Some(v) = a.get("value").and_then(Value::as_str) {
                out.args.push((name.into(), v.into()));
            } else if let Some(from) = a.get("valueFrom") {
                let from = if let Some(h) = from.get("podTemplateHashValue").and_then(Value::as_str)
                {
                    format!("podTemplateHashValue {h}")
                } else if let Some(f) = from.pointer("/fieldRef/fieldPath").and_then(Value::as_str)
                {
                    format!("fieldRef {f}")
                } else {
                    "valueFrom".to_string()
                };
                out.from_cluster.push((name.into(), from));
            } else {
                self.error(&at, format!("arg {name:?} has neither value nor valueFrom"));
            }
        }
        out
    }
}

/// The strings of an array value.
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Read the Rollout in `text` (the first document of kind `Rollout`).
pub fn parse(file: &str, text: &str) -> Result<RolloutPlan, Vec<TemplateError>> {
    let docs = yaml::load_documents(text).map_err(|e| vec![syntax_error(file, &e)])?;
    let Some(doc) = docs
        .iter()
        .find(|d| d.value.get("kind").and_then(Value::as_str) == Some("Rollout"))
    else {
        return Err(vec![TemplateError {
            file: file.into(),
            line: None,
            metric: None,
            field: None,
            message: "no document of kind Rollout".into(),
        }]);
    };
    let mut r = Reader {
        file,
        doc,
        errors: Vec::new(),
    };
    let canary = "/spec/strategy/canary";
    if r.get(canary).is_none() {
        r.error("/spec/strategy", "the Rollout has no canary strategy");
        return Err(r.errors);
    }

    let mut steps = Vec::new();
    let raw_steps = r.array(&format!("{canary}/steps"));
    for (i, s) in raw_steps.iter().enumerate() {
        let at = format!("{canary}/steps/{i}");
        let Some(obj) = s.as_object() else {
            r.error(&at, "a step must be a mapping");
            continue;
        };
        let Some((kind, body)) = obj.iter().next() else {
            r.error(&at, "empty step");
            continue;
        };
        match kind.as_str() {
            "setWeight" => match body.as_i64().filter(|w| (0..=100).contains(w)) {
                Some(w) => steps.push(RolloutStep::SetWeight(w as u32)),
                None => r.error(
                    &format!("{at}/setWeight"),
                    "setWeight must be a whole number from 0 to 100",
                ),
            },
            "pause" => {
                let d = body.get("duration");
                let parsed = match d {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => Ok(n.as_u64().map(Duration::from_secs)),
                    Some(Value::String(s)) => match s.parse::<u64>() {
                        Ok(secs) => Ok(Some(Duration::from_secs(secs))),
                        Err(_) => parse_duration(s).map(Some),
                    },
                    Some(other) => Err(format!("not a duration: {other}")),
                };
                match parsed {
                    Ok(d) => steps.push(RolloutStep::Pause(d)),
                    Err(e) => r.error(&format!("{at}/pause/duration"), e),
                }
            }
            "analysis" => {
                let a = r.analysis(&format!("{at}/analysis"));
                steps.push(RolloutStep::Analysis(a));
            }
            other => r.error(
                &format!("{at}/{other}"),
                format!(
                    "step `{other}` needs the Argo Rollouts controller; canary promote runs \
                     setWeight, pause and analysis steps only"
                ),
            ),
        }
    }
    if raw_steps.is_empty() {
        r.error(canary, "the canary strategy has no steps");
    }

    let background = r.get(&format!("{canary}/analysis")).cloned().map(|b| {
        let a = r.analysis(&format!("{canary}/analysis"));
        let start = b.get("startingStep").and_then(Value::as_u64).unwrap_or(0) as usize;
        (a, start)
    });

    let istio = format!("{canary}/trafficRouting/istio");
    if r.get(&istio).is_none() {
        r.error(
            &format!("{canary}/trafficRouting"),
            "the Rollout has no trafficRouting.istio",
        );
        return Err(r.errors);
    }
    let vs_pointer = if r.get(&format!("{istio}/virtualService")).is_some() {
        format!("{istio}/virtualService")
    } else {
        let n = r
            .get(&format!("{istio}/virtualServices"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if n != 1 {
            r.error(
                &format!("{istio}/virtualServices"),
                format!(
                    "canary promote manages one VirtualService; the Rollout lists {n} \
                     (run one promotion per VirtualService)"
                ),
            );
            return Err(r.errors);
        }
        format!("{istio}/virtualServices/0")
    };
    let vs_name = r.string(&format!("{vs_pointer}/name")).unwrap_or_default();
    if vs_name.is_empty() {
        r.error(&vs_pointer, "virtualService.name is required");
    }
    let virtual_service = match vs_name.split_once('.') {
        Some((name, ns)) => (Some(ns.to_string()), name.to_string()),
        None => (None, vs_name.clone()),
    };
    let routes = r.strings(&format!("{vs_pointer}/routes"));
    let mut tls_routes = Vec::new();
    let tls = r.array(&format!("{vs_pointer}/tlsRoutes"));
    for t in tls {
        tls_routes.push(TlsRoute {
            port: t.get("port").and_then(Value::as_i64).unwrap_or(0),
            sni_hosts: strings(t.get("sniHosts")),
        });
    }
    let tcp_ports = r
        .get(&format!("{vs_pointer}/tcpRoutes"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("port").and_then(Value::as_i64))
                .collect()
        })
        .unwrap_or_default();

    let destinations = match (
        r.string(&format!("{istio}/destinationRule/stableSubsetName")),
        r.string(&format!("{istio}/destinationRule/canarySubsetName")),
        r.string(&format!("{canary}/stableService")),
        r.string(&format!("{canary}/canaryService")),
    ) {
        (Some(stable), Some(canary), _, _) => Destinations::Subsets { stable, canary },
        (_, _, Some(stable), Some(canary)) => Destinations::Hosts { stable, canary },
        _ => {
            r.error(
                &istio,
                "give destinationRule.stableSubsetName and canarySubsetName, or the canary \
                 strategy's stableService and canaryService",
            );
            Destinations::Hosts {
                stable: String::new(),
                canary: String::new(),
            }
        }
    };
    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    Ok(RolloutPlan {
        name: r.string("/metadata/name").unwrap_or_default(),
        namespace: r.string("/metadata/namespace"),
        steps,
        background,
        virtual_service,
        routes,
        tls_routes,
        tcp_ports,
        destinations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLLOUT: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: checkout
  namespace: shop
spec:
  strategy:
    canary:
      canaryService: checkout-canary
      stableService: checkout-stable
      analysis:
        startingStep: 1
        templates:
        - templateName: judge-istio-golden-signals
        args:
        - name: service
          value: checkout
      trafficRouting:
        istio:
          virtualService:
            name: checkout-vs
            routes: [primary]
          destinationRule:
            name: checkout
            canarySubsetName: canary
            stableSubsetName: stable
      steps:
      - setWeight: 10
      - pause: {duration: 5m}
      - analysis:
          templates:
          - templateName: istio-success-rate
          args:
          - name: service
            value: checkout
          - name: canary-hash
            valueFrom:
              podTemplateHashValue: Latest
      - setWeight: 50
      - pause: {duration: 30}
      - pause: {}
      - setWeight: 100
"#;

    #[test]
    fn reads_steps_background_and_istio_routing() {
        let p = parse("r.yaml", ROLLOUT).unwrap();
        assert_eq!(p.name, "checkout");
        assert_eq!(p.namespace.as_deref(), Some("shop"));
        assert_eq!(p.virtual_service, (None, "checkout-vs".to_string()));
        assert_eq!(p.routes, vec!["primary"]);
        assert_eq!(
            p.destinations,
            Destinations::Subsets {
                stable: "stable".into(),
                canary: "canary".into()
            }
        );
        assert_eq!(p.steps.len(), 7);
        assert_eq!(p.steps[0], RolloutStep::SetWeight(10));
        assert_eq!(
            p.steps[1],
            RolloutStep::Pause(Some(Duration::from_secs(300)))
        );
        assert_eq!(
            p.steps[4],
            RolloutStep::Pause(Some(Duration::from_secs(30)))
        );
        assert_eq!(p.steps[5], RolloutStep::Pause(None));
        let RolloutStep::Analysis(a) = &p.steps[2] else {
            panic!("{:?}", p.steps[2])
        };
        assert_eq!(a.templates, vec!["istio-success-rate"]);
        assert_eq!(a.args, vec![("service".into(), "checkout".into())]);
        assert_eq!(
            a.from_cluster,
            vec![("canary-hash".into(), "podTemplateHashValue Latest".into())]
        );
        let (bg, start) = p.background.unwrap();
        assert_eq!(start, 1);
        assert_eq!(bg.templates, vec!["judge-istio-golden-signals"]);
    }

    #[test]
    fn unsupported_steps_and_missing_routing_name_the_line() {
        let text = ROLLOUT.replace(
            "      - setWeight: 50\n",
            "      - setCanaryScale: {replicas: 2}\n",
        );
        let e = parse("r.yaml", &text).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(39), "{}", e[0]);
        assert!(e[0].to_string().contains("setCanaryScale"), "{}", e[0]);

        let text = ROLLOUT.replace("        istio:\n", "        nginx:\n");
        let e = parse("r.yaml", &text).unwrap_err();
        assert!(
            e[0].to_string().contains("trafficRouting.istio"),
            "{}",
            e[0]
        );

        let e = parse("r.yaml", "kind: Deployment\n").unwrap_err();
        assert!(e[0].message.contains("no document of kind Rollout"));
    }

    #[test]
    fn hosts_and_namespaced_virtual_service_names() {
        let text = ROLLOUT
            .replace("name: checkout-vs", "name: checkout-vs.mesh")
            .replace("          destinationRule:\n            name: checkout\n            canarySubsetName: canary\n            stableSubsetName: stable\n", "");
        let p = parse("r.yaml", &text).unwrap();
        assert_eq!(
            p.virtual_service,
            (Some("mesh".to_string()), "checkout-vs".to_string())
        );
        assert_eq!(
            p.destinations,
            Destinations::Hosts {
                stable: "checkout-stable".into(),
                canary: "checkout-canary".into()
            }
        );
    }
}
