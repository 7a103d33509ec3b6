//! The web provider's `jsonPath`: Kubernetes-style `{$.data.value}` selecting one value.
//!
//! Argo uses client-go's JSONPath template (`{.a.b}`, `{$.items[0].x}`, filters
//! `[?(@.ok == true)]`) and takes the first match. We translate the expression inside the
//! braces to RFC 9535 JSONPath (the `serde_json_path` crate), whose syntax is a superset for
//! everything a metric template selects. A missing field or an empty match is an error, as in
//! Argo: a measurement without a value is an Error, never a pass.

use serde_json::Value;
use serde_json_path::JsonPath as Rfc9535;

/// A compiled `jsonPath`.
#[derive(Debug, Clone)]
pub struct JsonPath {
    source: String,
    path: Rfc9535,
}

/// A `jsonPath` that cannot be parsed or selects nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// Not a JSONPath expression.
    #[error("invalid jsonPath {path:?}: {message}")]
    Parse {
        /// The expression as written.
        path: String,
        /// Parser message.
        message: String,
    },
    /// Nothing matched.
    #[error("Could not find JSONPath in body: {0} matched no value")]
    NoMatch(String),
}

impl JsonPath {
    /// Parse Argo's `jsonPath` (empty means `{$}`, the whole body).
    pub fn parse(text: &str) -> Result<Self, JsonPathError> {
        let source = if text.trim().is_empty() {
            "{$}"
        } else {
            text.trim()
        };
        let inner = source
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(source)
            .trim();
        let rfc = if inner.starts_with('$') {
            inner.to_string()
        } else if inner.starts_with('.') || inner.starts_with('[') {
            format!("${inner}")
        } else {
            format!("$.{inner}")
        };
        let path = Rfc9535::parse(&rfc).map_err(|e| JsonPathError::Parse {
            path: text.to_string(),
            message: e.to_string(),
        })?;
        Ok(JsonPath {
            source: source.to_string(),
            path,
        })
    }

    /// The first value the path selects.
    pub fn first<'a>(&self, data: &'a Value) -> Result<&'a Value, JsonPathError> {
        self.path
            .query(data)
            .first()
            .ok_or_else(|| JsonPathError::NoMatch(self.source.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubernetes_forms() {
        let data = json!({"data": {"ok": true, "items": [{"v": 1}, {"v": 2, "name": "b"}]}});
        let first = |p: &str| JsonPath::parse(p).unwrap().first(&data).cloned();
        assert_eq!(first("{$.data.ok}"), Ok(json!(true)));
        assert_eq!(first("{.data.ok}"), Ok(json!(true)));
        assert_eq!(first("{$.data.items[1].v}"), Ok(json!(2)));
        assert_eq!(first("{$.data.items[?(@.name == 'b')].v}"), Ok(json!(2)));
        assert_eq!(first("{$.data.items[*].v}"), Ok(json!(1)));
        assert_eq!(first(""), Ok(data.clone()));
        assert_eq!(first("{$}"), Ok(data.clone()));
        assert!(matches!(
            first("{$.data.missing}"),
            Err(JsonPathError::NoMatch(_))
        ));
        assert!(JsonPath::parse("{$.data[}").is_err());
    }
}
