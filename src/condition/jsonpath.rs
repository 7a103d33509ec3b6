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
        let parse_error = |message: String| JsonPathError::Parse {
            path: text.to_string(),
            message,
        };
        check_nesting(&rfc).map_err(parse_error)?;
        // The parser reaches an `unreachable!` on a literal ending in a cut-short escape
        // (`$['a\u`, found by the jsonpath fuzz target): an error, never a crash.
        let path = std::panic::catch_unwind(|| Rfc9535::parse(&rfc))
            .map_err(|_| parse_error("unterminated or invalid literal".into()))?
            .map_err(|e| parse_error(e.to_string()))?;
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

/// The deepest nesting of brackets (`[`, `(`) a `jsonPath` may have. The parser backtracks
/// over nested filters (`[?(@.a[?(@.b…`: 20 levels take a minute) and recurses once per
/// level (20 000 parentheses overflow the stack); a real path nests two or three.
pub const MAX_PATH_NESTING: usize = 8;

/// Refuse a path nested deeper than [`MAX_PATH_NESTING`] (brackets in string literals do not
/// count), before it reaches the parser.
fn check_nesting(path: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(' | '{') => {
                depth += 1;
                if depth > MAX_PATH_NESTING {
                    return Err(format!(
                        "brackets nested deeper than {MAX_PATH_NESTING} levels"
                    ));
                }
            }
            (None, ']' | ')' | '}') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    Ok(())
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
