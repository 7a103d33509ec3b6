//! YAML documents as JSON values, with the line of every field kept.
//!
//! Kubernetes manifests are YAML, but Argo's semantics (and our validation against the CRD's
//! OpenAPI schema) are defined on the JSON they convert to. We parse with `saphyr`, which keeps
//! a source position on every node, turn each document into a `serde_json::Value`, and record
//! the line of every node under its JSON pointer (`/spec/metrics/0/count`). Any later error —
//! a wrong type, a schema violation, an Argo rule — can then name the line it is about.

use std::collections::HashMap;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde_json::{Map, Number, Value};

/// One YAML document converted to JSON, with the source line of each node.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document's content as JSON.
    pub value: Value,
    /// 1-based source line of every node, keyed by JSON pointer (`""` is the root).
    lines: HashMap<String, usize>,
}

impl Document {
    /// The line of the node at `pointer`, or of its nearest ancestor that has one.
    pub fn line_of(&self, pointer: &str) -> Option<usize> {
        let mut p = pointer;
        loop {
            if let Some(line) = self.lines.get(p) {
                return Some(*line);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// The first line of the document.
    pub fn start_line(&self) -> usize {
        self.lines.get("").copied().unwrap_or(1)
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the parser said.
    pub message: String,
}

/// Parse every document of a (possibly multi-document) YAML text. Empty documents are skipped.
pub fn load_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let nodes = MarkedYamlOwned::load_from_str(text).map_err(|e| SyntaxError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    let mut docs = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let mut lines = HashMap::new();
        let value = convert(node, String::new(), None, &mut lines)?;
        if value.is_null() {
            continue;
        }
        docs.push(Document { value, lines });
    }
    Ok(docs)
}

/// Escape one JSON-pointer token (RFC 6901).
pub fn pointer_token(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(['~', '/']) {
        key.replace('~', "~0").replace('/', "~1").into()
    } else {
        key.into()
    }
}

/// Convert one node; `key_line` is the line of the mapping key holding it, which is where a
/// reader looks for a field (the value may start on a later line).
fn convert(
    node: &MarkedYamlOwned,
    pointer: String,
    key_line: Option<usize>,
    lines: &mut HashMap<String, usize>,
) -> Result<Value, SyntaxError> {
    let line = node.span.start.line();
    let bad = |message: String| SyntaxError {
        line,
        column: node.span.start.col() + 1,
        message,
    };
    let value = match &node.data {
        YamlDataOwned::Value(scalar) => scalar_to_json(scalar),
        YamlDataOwned::Representation(text, _, _) => Value::String(text.clone()),
        YamlDataOwned::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, format!("{pointer}/{i}"), None, lines)?);
            }
            Value::Array(out)
        }
        YamlDataOwned::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map.iter() {
                let key = match &k.data {
                    YamlDataOwned::Value(ScalarOwned::String(s)) => s.clone(),
                    YamlDataOwned::Value(other) => match scalar_to_json(other) {
                        Value::String(s) => s,
                        v => v.to_string(),
                    },
                    _ => return Err(bad("mapping keys must be plain scalars".into())),
                };
                if out.contains_key(&key) {
                    return Err(SyntaxError {
                        line: k.span.start.line(),
                        column: k.span.start.col() + 1,
                        message: format!("duplicate key {key:?}"),
                    });
                }
                let child = format!("{pointer}/{}", pointer_token(&key));
                let value = convert(v, child, Some(k.span.start.line()), lines)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        YamlDataOwned::Tagged(tag, inner) => {
            let value = convert(inner, pointer.clone(), key_line, lines)?;
            if tag.suffix == "str" {
                match value {
                    Value::String(_) => value,
                    Value::Null => Value::String(String::new()),
                    other => Value::String(other.to_string()),
                }
            } else {
                value
            }
        }
        YamlDataOwned::Alias(_) => return Err(bad("unresolved YAML alias".into())),
        YamlDataOwned::BadValue => return Err(bad("invalid YAML value".into())),
    };
    lines.insert(pointer, key_line.unwrap_or(line));
    Ok(value)
}

fn scalar_to_json(scalar: &ScalarOwned) -> Value {
    match scalar {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(*b),
        ScalarOwned::Integer(i) => Value::Number((*i).into()),
        ScalarOwned::FloatingPoint(f) => Number::from_f64(f.into_inner())
            .map(Value::Number)
            // JSON has no NaN or infinity; keep YAML's spelling so the field stays visible.
            .unwrap_or_else(|| Value::String(f.into_inner().to_string())),
        ScalarOwned::String(s) => Value::String(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_with_lines() {
        let text = "a: 1\n---\nkind: X\nspec:\n  metrics:\n  - name: m\n    count: 3\n";
        let docs = load_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[1];
        assert_eq!(d.value["spec"]["metrics"][0]["count"], 3);
        assert_eq!(d.line_of("/spec/metrics/0/count"), Some(7));
        assert_eq!(d.line_of("/spec/metrics/0/name"), Some(6));
        assert_eq!(d.line_of("/spec/metrics/0/nothing/here"), Some(6));
        assert_eq!(d.start_line(), 3);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = load_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1, "{err}");
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = load_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("duplicate"), "{err}");
    }

    #[test]
    fn strings_stay_strings() {
        let docs = load_documents("q: 'sum(rate(x[5m]))'\nn: \"5\"\nt: !!str 10\n").unwrap();
        assert_eq!(docs[0].value["n"], "5");
        assert_eq!(docs[0].value["t"], "10");
    }
}
