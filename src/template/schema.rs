//! Validation against the Argo Rollouts CRD's OpenAPI schema.
//!
//! `schemas/analysis-template.schema.json` is the `openAPIV3Schema` of Argo's
//! `AnalysisTemplate` CRD (upstream copy in `../shared/schemas/`) reduced by
//! [`for_validation`]; a test keeps it identical to that reduction of upstream. We validate as `kubectl apply` does with its default
//! strict field validation: types and required fields from the schema, and unknown fields are
//! errors (a misspelt `sucessCondition` is rejected, not silently ignored).

use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The committed, description-free schema.
pub const SCHEMA_JSON: &str = include_str!("../../schemas/analysis-template.schema.json");

/// One schema violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the offending node (`/spec/metrics/0/count`).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

fn validator() -> &'static jsonschema::Validator {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    V.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA_JSON).expect("committed schema is JSON");
        let strict = strict(schema);
        jsonschema::validator_for(&strict).expect("committed schema compiles")
    })
}

/// Validate one AnalysisTemplate/ClusterAnalysisTemplate document.
pub fn validate(document: &Value) -> Vec<Violation> {
    let mut out: Vec<Violation> = validator()
        .iter_errors(document)
        .map(|e| Violation {
            pointer: e.instance_path().as_str().to_string(),
            message: explain(&e.to_string()),
        })
        .collect();
    out.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    out.dedup();
    out
}

/// The CRD marks integer fields that may hold `{{args.x}}` as int-or-string (`anyOf`); say so
/// plainly rather than quoting the JSON Schema keyword.
fn explain(message: &str) -> String {
    match message
        .strip_suffix(" is not valid under any of the schemas listed in the 'anyOf' keyword")
    {
        Some(value) => format!("{value} must be an integer or a string"),
        None => message.to_string(),
    }
}

/// Reduce a CRD's `openAPIV3Schema` to what validation needs: descriptions dropped, and the
/// `job` provider's schema (a whole Kubernetes Job spec, 90 % of the schema) replaced by "any
/// object" — canary-engine cannot run Job metrics and says so when it meets one, and compiling
/// that subtree cost every `canary analyze` several milliseconds.
pub fn for_validation(crd_schema: &Value) -> Value {
    let mut s = strip_descriptions(crd_schema);
    if let Some(job) = s
        .pointer_mut("/properties/spec/properties/metrics/items/properties/provider/properties/job")
    {
        *job = serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    }
    s
}

/// The schema with every `description` removed.
pub fn strip_descriptions(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "description")
                .map(|(k, v)| {
                    // `properties` maps field names to schemas: a field may be called
                    // "description", so only strip inside the schemas, not the names.
                    if k == "properties" {
                        if let Value::Object(props) = v {
                            let props: Map<String, Value> = props
                                .iter()
                                .map(|(name, s)| (name.clone(), strip_descriptions(s)))
                                .collect();
                            return (k.clone(), Value::Object(props));
                        }
                    }
                    (k.clone(), strip_descriptions(v))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_descriptions).collect()),
        other => other.clone(),
    }
}

/// Make every object schema that lists its properties reject unknown ones, unless it says
/// `x-kubernetes-preserve-unknown-fields` — Kubernetes' strict field validation.
fn strict(schema: Value) -> Value {
    match schema {
        Value::Object(mut map) => {
            let preserve = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            for (k, v) in map.iter_mut() {
                if k == "properties" {
                    if let Value::Object(props) = v {
                        for (_, s) in props.iter_mut() {
                            *s = strict(std::mem::take(s));
                        }
                    }
                } else {
                    *v = strict(std::mem::take(v));
                }
            }
            if map.contains_key("properties")
                && !map.contains_key("additionalProperties")
                && !preserve
            {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(map)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(strict).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(metric: Value) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "t"},
            "spec": {"metrics": [metric]}
        })
    }

    #[test]
    fn valid_template_passes() {
        let d = doc(json!({
            "name": "m", "interval": "1m", "count": 3, "failureLimit": "{{args.f}}",
            "successCondition": "result[0] > 0",
            "provider": {"prometheus": {"address": "http://p", "query": "up"}}
        }));
        assert_eq!(validate(&d), vec![]);
    }

    #[test]
    fn unknown_field_and_wrong_type_are_reported_with_pointers() {
        let d = doc(json!({
            "name": "m", "sucessCondition": "true", "count": true,
            "provider": {"prometheus": {"query": "up"}}
        }));
        let v = validate(&d);
        let pointers: Vec<&str> = v.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/spec/metrics/0"), "{v:?}");
        assert!(pointers.contains(&"/spec/metrics/0/count"), "{v:?}");
        assert!(
            v.iter().any(|v| v.message.contains("sucessCondition")),
            "{v:?}"
        );
    }

    #[test]
    fn missing_required_is_reported() {
        let d = doc(json!({"provider": {"prometheus": {"query": "up"}}}));
        let v = validate(&d);
        assert!(v.iter().any(|v| v.message.contains("name")), "{v:?}");
    }
}
