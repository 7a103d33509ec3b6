//! YAML documents as JSON values, with the line of every field kept.
//!
//! Kubernetes manifests are YAML, but Argo's semantics (and our validation against the CRD's
//! OpenAPI schema) are defined on the JSON they convert to. We parse with `saphyr`, which keeps
//! a source position on every node, turn each document into a `serde_json::Value`, and record
//! the line of every node under its JSON pointer (`/spec/metrics/0/count`). Any later error —
//! a wrong type, a schema violation, an Argo rule — can then name the line it is about.
//!
//! Templates arrive from people and from HTTP requests, so a text is first walked as a stream
//! of parser events — nothing built — and refused with a clear error, before it can cost
//! memory or time, when it breaks one of these limits (real templates are far inside them):
//!
//! * [`MAX_BYTES`] of text (Kubernetes stores at most about 1.5 MiB per object);
//! * [`MAX_DEPTH`] levels of nesting (the loader and the checks after it recurse);
//! * [`MAX_NODES`] nodes and [`MAX_EXPANDED_BYTES`] of scalar text *after* aliases are
//!   expanded, so a "billion laughs" (`&a [*b, *b, …]` nested) is refused at its first alias
//!   past the budget;
//! * only the YAML core tags (`!!str`, `!!int`, …): `!!python/object` or a custom `!tag` is
//!   an error, never silently read as plain data.
//!
//! Duplicate keys are errors, at the line of the second key (keys compare as the JSON object
//! keys they become: `1` and `"1"` are the same key).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};

/// The largest YAML text read (4 MiB).
pub const MAX_BYTES: usize = 4 << 20;
/// The deepest nesting of sequences and mappings.
pub const MAX_DEPTH: usize = 64;
/// The most nodes (scalars, sequences, mappings) in a text, counting every alias as the
/// nodes it expands to.
pub const MAX_NODES: usize = 100_000;
/// The most scalar text in a text, counting every alias as the text it expands to.
pub const MAX_EXPANDED_BYTES: usize = MAX_BYTES;
/// The most text spent on the JSON pointers that locate the nodes (deep nesting under long
/// keys would otherwise cost their product).
const MAX_POINTER_BYTES: usize = 16 << 20;
/// The tags of the YAML core schema, the only ones accepted.
const CORE_TAGS: [&str; 7] = ["str", "int", "float", "bool", "null", "map", "seq"];

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

/// A YAML syntax error, or a text refused by a limit, with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What the parser said, or which limit was broken.
    pub message: String,
    /// The text is well-formed but refused by a limit ([`MAX_BYTES`], [`MAX_DEPTH`],
    /// [`MAX_NODES`], [`MAX_EXPANDED_BYTES`], or a tag outside the core schema).
    pub refused: bool,
}

/// Read a YAML file, refusing one larger than [`MAX_BYTES`] without reading all of it.
pub fn read_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, the most a template file may hold",
                MAX_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|e| Error::new(ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

/// Parse every document of a (possibly multi-document) YAML text. Empty documents are skipped.
/// A text breaking one of the module's limits is refused before anything is built.
pub fn load_documents(text: &str) -> Result<Vec<Document>, SyntaxError> {
    check_limits(text)?;
    let nodes = MarkedYamlOwned::load_from_str(text).map_err(|e| {
        let (line, column) = position(text, e.marker());
        SyntaxError {
            line,
            column,
            message: e.info().to_string(),
            refused: false,
        }
    })?;
    let mut docs = Vec::with_capacity(nodes.len());
    let mut pointer_budget = MAX_POINTER_BYTES;
    for node in &nodes {
        let mut lines = HashMap::new();
        let value = convert(node, String::new(), None, &mut lines, &mut pointer_budget)?;
        if value.is_null() {
            continue;
        }
        docs.push(Document { value, lines });
    }
    Ok(docs)
}

/// Size of a node once its aliases are expanded: (nodes, scalar bytes).
type Size = (usize, usize);

/// A sequence or mapping still open while the events are walked.
struct Open {
    /// Its anchor (0: none).
    anchor: usize,
    /// Its size so far, aliases expanded.
    size: Size,
    /// For a mapping: the scalar keys seen so far, and whether the next node is a key.
    keys: Option<(HashSet<String>, bool)>,
}

/// Walk the parser's events once, building nothing, and refuse a text past the limits or
/// with a duplicate key.
fn check_limits(text: &str) -> Result<(), SyntaxError> {
    if text.len() > MAX_BYTES {
        return Err(SyntaxError {
            line: 1,
            column: 1,
            message: format!(
                "the text is {} bytes, more than the {} MiB a template may hold",
                text.len(),
                MAX_BYTES >> 20
            ),
            refused: true,
        });
    }
    let too_deep = format!("nested deeper than {MAX_DEPTH} levels of sequences and mappings");
    // The expanded size of every anchor, and of every open collection so far.
    let mut anchors: HashMap<usize, Size> = HashMap::new();
    let mut open: Vec<Open> = Vec::new();
    let mut total: Size = (0, 0);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            // The scanner gives up on its own past 255 flow levels, before the events
            // reach ours: the same limit, in the same words.
            let deep = e.info() == "recursion limit exceeded";
            let (line, column) = position(text, e.marker());
            SyntaxError {
                line,
                column,
                message: if deep {
                    too_deep.clone()
                } else {
                    e.info().to_string()
                },
                refused: deep,
            }
        })?;
        let at = |message: String, refused: bool| {
            let (line, column) = position(text, &span.start);
            SyntaxError {
                line,
                column,
                message,
                refused,
            }
        };
        let refuse = |message: String| at(message, true);
        if let Event::Scalar(..)
        | Event::Alias(_)
        | Event::SequenceStart(..)
        | Event::MappingStart(..) = &event
        {
            // In a mapping, nodes alternate between key and value.
            if let Some((keys, next_is_key)) = open.last_mut().and_then(|o| o.keys.as_mut()) {
                let is_key = std::mem::replace(next_is_key, !*next_is_key);
                if let (true, Event::Scalar(value, style, _, tag)) = (is_key, &event) {
                    if let Some(key) = json_key(value, *style, tag.as_ref()) {
                        if let Some(key) = keys.replace(key) {
                            return Err(at(format!("duplicate key {}", shown_key(&key)), false));
                        }
                    }
                }
            }
        }
        let (size, anchor, alias) = match &event {
            Event::Scalar(value, _, anchor, tag) => {
                check_tag(tag.as_deref()).map_err(refuse)?;
                ((1, value.len()), *anchor, false)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                check_tag(tag.as_deref()).map_err(refuse)?;
                if open.len() >= MAX_DEPTH {
                    return Err(refuse(too_deep));
                }
                let is_mapping = matches!(event, Event::MappingStart(..));
                open.push(Open {
                    anchor: *anchor,
                    size: (0, 0),
                    keys: is_mapping.then(|| (HashSet::new(), true)),
                });
                ((1, 0), 0, false)
            }
            // Unknown anchors are the parser's error.
            Event::Alias(id) => (anchors.get(id).copied().unwrap_or((0, 0)), 0, true),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Open { anchor, size, .. }) = open.pop() else {
                    continue;
                };
                if anchor > 0 {
                    // The collection's own node was counted when it opened.
                    anchors.insert(anchor, (size.0 + 1, size.1));
                }
                if let Some(parent) = open.last_mut() {
                    parent.size.0 += size.0 + 1;
                    parent.size.1 += size.1;
                }
                continue;
            }
            _ => continue,
        };
        if anchor > 0 {
            anchors.insert(anchor, size);
        }
        // A collection's size reaches its parent when it closes.
        let is_open = matches!(event, Event::SequenceStart(..) | Event::MappingStart(..));
        if !is_open {
            if let Some(parent) = open.last_mut() {
                parent.size.0 += size.0;
                parent.size.1 += size.1;
            }
        }
        total = (total.0 + size.0, total.1 + size.1);
        let what = if alias {
            "with its aliases expanded, the text"
        } else {
            "the text"
        };
        if total.0 > MAX_NODES {
            return Err(refuse(format!(
                "{what} has more than {MAX_NODES} nodes (a template has hundreds)"
            )));
        }
        if total.1 > MAX_EXPANDED_BYTES {
            return Err(refuse(format!(
                "{what} holds more than {} MiB of scalars",
                MAX_EXPANDED_BYTES >> 20
            )));
        }
    }
    Ok(())
}

/// The 1-based line and column of a parser position, kept inside the text: at the end of a
/// text without a final line break the parser points at a line after it.
fn position(text: &str, marker: &Marker) -> (usize, usize) {
    // YAML's line breaks: `\r\n`, `\n` and a lone `\r`.
    let bytes = text.as_bytes();
    let mut lines = 1;
    let mut last_line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            lines += 1;
            last_line_start = i + 1;
        }
    }
    if marker.line() <= lines {
        (marker.line(), marker.col() + 1)
    } else {
        (lines, text[last_line_start..].chars().count() + 1)
    }
}

/// The JSON object key a scalar mapping key becomes (as [`convert`] makes it): `1` and `"1"`
/// are the same key, `~` and `"~"` are not. `None` for a scalar its tag refuses.
fn json_key(value: &str, style: ScalarStyle, tag: Option<&Cow<'_, Tag>>) -> Option<String> {
    Some(
        match ScalarOwned::parse_from_cow_and_metadata(Cow::Borrowed(value), style, tag)? {
            ScalarOwned::String(s) => s,
            other => match scalar_to_json(&other) {
                Value::String(s) => s,
                v => v.to_string(),
            },
        },
    )
}

/// A mapping key for an error message: quoted, and cut short if long.
fn shown_key(key: &str) -> String {
    const MAX_CHARS: usize = 60;
    match key.char_indices().nth(MAX_CHARS) {
        None => format!("{key:?}"),
        Some((cut, _)) => format!("{:?}…", &key[..cut]),
    }
}

/// Only the core schema's tags: anything else (`!!python/object`, `!custom`) would be read as
/// plain data by us and as something else by another tool.
fn check_tag(tag: Option<&Tag>) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) if t.is_yaml_core_schema() && CORE_TAGS.contains(&t.suffix.as_str()) => Ok(()),
        Some(t) => {
            let shown = if t.is_yaml_core_schema() {
                format!("!!{}", t.suffix)
            } else {
                format!("{}{}", t.handle, t.suffix)
            };
            Err(format!(
                "unsupported YAML tag {shown}: only the core tags !!{} are accepted",
                CORE_TAGS.join(", !!")
            ))
        }
    }
}

/// Escape one JSON-pointer token (RFC 6901).
pub fn pointer_token(key: &str) -> Cow<'_, str> {
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
    pointer_budget: &mut usize,
) -> Result<Value, SyntaxError> {
    let line = node.span.start.line();
    let bad = |message: String| SyntaxError {
        line,
        column: node.span.start.col() + 1,
        message,
        refused: false,
    };
    *pointer_budget = pointer_budget
        .checked_sub(pointer.len())
        .ok_or_else(|| SyntaxError {
            refused: true,
            ..bad(format!(
                "the paths of its fields exceed {} MiB (long keys over deep nesting)",
                MAX_POINTER_BYTES >> 20
            ))
        })?;
    let value = match &node.data {
        YamlDataOwned::Value(scalar) => scalar_to_json(scalar),
        YamlDataOwned::Representation(text, _, _) => Value::String(text.clone()),
        YamlDataOwned::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(
                    item,
                    format!("{pointer}/{i}"),
                    None,
                    lines,
                    pointer_budget,
                )?);
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
                        message: format!("duplicate key {}", shown_key(&key)),
                        refused: false,
                    });
                }
                let child = format!("{pointer}/{}", pointer_token(&key));
                let value = convert(v, child, Some(k.span.start.line()), lines, pointer_budget)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        YamlDataOwned::Tagged(tag, inner) => {
            let value = convert(inner, pointer.clone(), key_line, lines, pointer_budget)?;
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
    fn an_error_at_the_end_of_the_text_points_into_it() {
        // Found by the template_argo fuzz target: the parser points at line 2 of a text of
        // one line (no final line break).
        let err = load_documents("[[:= !ho").unwrap_err();
        assert_eq!((err.line, err.column), (1, 9), "{err}");
        let err = load_documents("a: [1,\r\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn duplicate_keys_compare_as_json_keys() {
        // Found by the judge_spec fuzz target: two empty (null) keys, the second after the
        // last line, and `~` against `"~"` (different keys) taken for a duplicate.
        let err = load_documents("?\n\n? \n  \n  ").unwrap_err();
        assert_eq!(err.message, "duplicate key \"null\"");
        assert_eq!(err.line, 5, "{err}");
        let docs = load_documents("~: 1\n\"~\": 2\n").unwrap();
        assert_eq!(docs[0].value, serde_json::json!({"null": 1, "~": 2}));
        let err = load_documents("0x10: a\n16: b\n").unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.line),
            ("duplicate key \"16\"", 2)
        );
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
