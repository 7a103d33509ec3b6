//! PROPERTY: an arg's value substituted into a string literal stays inside that literal.
//!
//! A template is generated with placeholders inside PromQL label-matcher literals (`"…"`,
//! `'…'`, `` `…` ``) and inside the strings of a JSON web body; the values are arbitrary.
//! After substitution:
//! * the PromQL parses (with promql-parser) to exactly the template's selectors — same metric
//!   names, same label matchers in the same order, no `or` matchers — and each matcher's value
//!   is the template's literal text with the arg values in place;
//! * the JSON body parses and equals the template's structure with each value inside the one
//!   string it was placed in.
//!
//! The only refusal allowed is a value that cannot be written inside a raw (backtick) literal.
//! promql-parser (unlike Prometheus) reads backslash escapes inside raw literals, so values
//! lose their backslashes when a template puts a placeholder in one.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use canary_engine::template::args::{substitute, ArgError, Syntax};
use libfuzzer_sys::fuzz_target;
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};
use serde_json::{Map, Value};

const METRICS: [&str; 3] = ["up", "http_requests_total", "istio_requests_total"];
const LABELS: [&str; 4] = ["service", "namespace", "code", "le"];
const MAX_DEPTH: usize = 6;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Double,
    Single,
    Raw,
}

impl Quote {
    fn char(self) -> char {
        match self {
            Quote::Double => '"',
            Quote::Single => '\'',
            Quote::Raw => '`',
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Piece {
    /// Template text inside the literal (characters that need no escape there).
    Text(String),
    /// An escape sequence written in the template.
    Escape(u8),
    /// `{{args.aN}}` (`true`: `{{ args.aN }}`).
    Arg(u8, bool),
}

#[derive(Arbitrary, Debug)]
struct MatcherT {
    label: u8,
    op: Op,
    quote: Quote,
    pieces: Vec<Piece>,
}

#[derive(Arbitrary, Debug)]
struct SelectorT {
    metric: u8,
    wrap: u8,
    matchers: Vec<MatcherT>,
}

#[derive(Arbitrary, Debug)]
enum JsonT {
    Null,
    Bool(bool),
    Num(i32),
    Str(Vec<Piece>),
    Arr(Vec<JsonT>),
    Obj(Vec<(Vec<Piece>, JsonT)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    values: [String; 3],
    selectors: Vec<SelectorT>,
    body: JsonT,
}

fn placeholder(i: u8, spaced: bool) -> String {
    if spaced {
        format!("{{{{ args.a{} }}}}", i % 3)
    } else {
        format!("{{{{args.a{}}}}}", i % 3)
    }
}

/// Template text and expected value of one PromQL string literal.
fn promql_literal(pieces: &[Piece], quote: Quote, values: &[String; 3]) -> (String, String) {
    let q = quote.char();
    let mut text = String::from(q);
    let mut want = String::new();
    for p in pieces {
        match p {
            Piece::Text(s) => {
                // promql-parser reads a backslash as an escape even in a raw string.
                let s: String = s
                    .chars()
                    .filter(|&c| c != q && c != '\\' && c != '{' && c != '}' && c >= ' ')
                    .collect();
                text.push_str(&s);
                want.push_str(&s);
            }
            Piece::Escape(k) if quote != Quote::Raw => {
                let (esc, c) = match k % 4 {
                    0 => ("\\\\".to_string(), '\\'),
                    1 => ("\\n".to_string(), '\n'),
                    2 => ("\\t".to_string(), '\t'),
                    _ => (format!("\\{q}"), q),
                };
                text.push_str(&esc);
                want.push(c);
            }
            Piece::Escape(_) => {}
            Piece::Arg(i, spaced) => {
                text.push_str(&placeholder(*i, *spaced));
                want.push_str(&values[usize::from(i % 3)]);
            }
        }
    }
    text.push(q);
    (text, want)
}

/// One selector as (metric, [(label, op, value)]).
type Selector = (String, Vec<(String, &'static str, String)>);

fn render_query(
    input: &Input,
    values: &[String; 3],
    regex_as_equal: bool,
) -> (String, Vec<Selector>) {
    let mut parts = Vec::new();
    let mut want = Vec::new();
    for s in input.selectors.iter().take(4) {
        let metric = METRICS[usize::from(s.metric) % METRICS.len()];
        let mut matchers = Vec::new();
        let mut expected = Vec::new();
        for m in s.matchers.iter().take(4) {
            let label = LABELS[usize::from(m.label) % LABELS.len()];
            let op = match (m.op, regex_as_equal) {
                (Op::Re, true) => Op::Eq,
                (Op::NotRe, true) => Op::Ne,
                (op, _) => op,
            };
            let (literal, value) = promql_literal(&m.pieces, m.quote, values);
            matchers.push(format!("{label}{}{literal}", op.text()));
            expected.push((label.to_string(), op.text(), value));
        }
        let selector = format!("{metric}{{{}}}", matchers.join(", "));
        // Around the selector: code with string literals and a comment holding quotes, which
        // the substitution's lexer must read as PromQL does.
        let wrapped = match s.wrap % 4 {
            0 => selector,
            1 => format!("sum by (code) (rate({selector}[5m]))"),
            2 => format!(r#"label_replace({selector}, "dst", "a\"'b", 'src', 'it\'s(.*)')"#),
            _ => format!("{selector} # a \" or ' or ` in a comment\n"),
        };
        parts.push(wrapped);
        want.push((metric.to_string(), expected));
    }
    if parts.is_empty() {
        parts.push("vector(1)".into());
    }
    (parts.join("\n+ "), want)
}

struct Selectors(Vec<Selector>, usize);

impl ExprVisitor for Selectors {
    type Error = ();

    fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
        let vs = match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        self.1 += vs.matchers.or_matchers.len();
        let matchers = vs
            .matchers
            .matchers
            .iter()
            .filter(|m| m.name != "__name__")
            .map(|m| {
                let op = match m.op {
                    MatchOp::Equal => "=",
                    MatchOp::NotEqual => "!=",
                    MatchOp::Re(_) => "=~",
                    MatchOp::NotRe(_) => "!~",
                };
                (m.name.clone(), op, m.value.clone())
            })
            .collect();
        self.0.push((vs.name.clone().unwrap_or_default(), matchers));
        Ok(true)
    }
}

fn selectors_of(query: &str) -> Result<Selectors, String> {
    let expr = parser::parse(query)?;
    let mut s = Selectors(Vec::new(), 0);
    let _ = walk_expr(&mut s, &expr);
    Ok(s)
}

fn check_promql(input: &Input) {
    // promql-parser, the oracle, reads escapes inside a raw (backtick) string; Prometheus
    // does not, so there a backslash is plain text and cannot end the literal. The oracle
    // cannot follow a value with a backslash into a raw literal: such values lose it.
    let raw_placeholder = input.selectors.iter().take(4).any(|s| {
        s.matchers
            .iter()
            .take(4)
            .any(|m| m.quote == Quote::Raw && m.pieces.iter().any(|p| matches!(p, Piece::Arg(..))))
    });
    let values = input.values.clone().map(|v| {
        if raw_placeholder {
            v.replace('\\', "")
        } else {
            v
        }
    });
    let args = args_of(&values);
    let args = &args;
    let input_values = &values;
    let (template, want) = render_query(input, input_values, false);
    let query = match substitute(&template, args, Syntax::PromQl) {
        Ok(q) => q,
        Err(ArgError::Backtick(_)) => return,
        Err(e) => panic!("unexpected substitution error {e} for {template:?}"),
    };
    let got = match selectors_of(&query) {
        Ok(s) => s,
        Err(e) => {
            // A value may be an invalid regular expression: with the regex operators made
            // plain, the very same literals must then parse to the template's selectors.
            let (plain_template, plain_want) = render_query(input, input_values, true);
            let plain = substitute(&plain_template, args, Syntax::PromQl)
                .expect("same values, same literals");
            let s = selectors_of(&plain).unwrap_or_else(|e2| {
                panic!("substituted query does not parse: {e} / {e2}\ntemplate: {template}\nquery: {query}")
            });
            assert_eq!(s.0, plain_want, "selectors changed\nquery: {plain}");
            assert_eq!(s.1, 0, "`or` matchers appeared\nquery: {plain}");
            assert!(
                input
                    .selectors
                    .iter()
                    .take(4)
                    .flat_map(|s| s.matchers.iter().take(4))
                    .any(|m| matches!(m.op, Op::Re | Op::NotRe)),
                "parse error without a regex matcher: {e}\nquery: {query}"
            );
            return;
        }
    };
    assert_eq!(
        got.0, want,
        "selectors changed\ntemplate: {template}\nquery: {query}"
    );
    assert_eq!(got.1, 0, "`or` matchers appeared\nquery: {query}");
}

/// JSON text of a template string and the string it must become.
fn json_string(pieces: &[Piece], values: &[String; 3]) -> (String, String) {
    let mut text = String::from('"');
    let mut want = String::new();
    for p in pieces {
        match p {
            Piece::Text(s) => {
                let s: String = s.chars().filter(|&c| c != '{' && c != '}').collect();
                let quoted = serde_json::to_string(&s).expect("a string serialises");
                text.push_str(&quoted[1..quoted.len() - 1]);
                want.push_str(&s);
            }
            Piece::Escape(k) => {
                let (esc, c) = match k % 5 {
                    0 => ("\\\\", '\\'),
                    1 => ("\\n", '\n'),
                    2 => ("\\\"", '"'),
                    3 => ("\\u00e9", 'é'),
                    _ => ("\\/", '/'),
                };
                text.push_str(esc);
                want.push(c);
            }
            Piece::Arg(i, spaced) => {
                text.push_str(&placeholder(*i, *spaced));
                want.push_str(&values[usize::from(i % 3)]);
            }
        }
    }
    text.push('"');
    (text, want)
}

fn render_json(t: &JsonT, values: &[String; 3], depth: usize) -> (String, Value) {
    if depth > MAX_DEPTH {
        return ("null".into(), Value::Null);
    }
    match t {
        JsonT::Null => ("null".into(), Value::Null),
        JsonT::Bool(b) => (b.to_string(), Value::Bool(*b)),
        JsonT::Num(n) => (n.to_string(), Value::from(*n)),
        JsonT::Str(p) => {
            let (text, s) = json_string(p, values);
            (text, Value::String(s))
        }
        JsonT::Arr(items) => {
            let (texts, vals): (Vec<String>, Vec<Value>) = items
                .iter()
                .take(8)
                .map(|i| render_json(i, values, depth + 1))
                .unzip();
            (format!("[{}]", texts.join(", ")), Value::Array(vals))
        }
        JsonT::Obj(fields) => {
            let mut texts = Vec::new();
            let mut map = Map::new();
            for (k, v) in fields.iter().take(8) {
                let (kt, ks) = json_string(k, values);
                let (vt, vv) = render_json(v, values, depth + 1);
                texts.push(format!("{kt}: {vt}"));
                map.insert(ks, vv);
            }
            (format!("{{{}}}", texts.join(", ")), Value::Object(map))
        }
    }
}

fn check_json(input: &Input) {
    let args = &args_of(&input.values);
    let (template, want) = render_json(&input.body, &input.values, 0);
    let body = substitute(&template, args, Syntax::JsonText)
        .unwrap_or_else(|e| panic!("unexpected substitution error {e} for {template:?}"));
    let got: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!("substituted body is not JSON: {e}\ntemplate: {template}\nbody: {body}")
    });
    assert_eq!(
        got, want,
        "body changed shape\ntemplate: {template}\nbody: {body}"
    );
}

/// The args `a0`, `a1`, `a2` with the given values.
fn args_of(values: &[String; 3]) -> BTreeMap<String, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("a{i}"), v.clone()))
        .collect()
}

fuzz_target!(|input: Input| {
    check_promql(&input);
    check_json(&input);
});
