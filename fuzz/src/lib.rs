//! The properties the byte-input fuzz targets check, one function per target.
//!
//! Shared by the targets in `fuzz_targets/` (nightly, libFuzzer) and by
//! `tests/fuzz_regressions.rs` (a plain `cargo test` on stable, which includes this file), so
//! an input that crashed a target replays through exactly the same checks. Every function
//! panics when its property fails; an `Err` from the library is an answer, not a failure.
//! The structure-aware targets (`args_substitution`, `traffic_weights`) keep their checks in
//! their own files.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use canary_engine::analysis::Phase;
use canary_engine::cli::judge::{parse_input, to_json};
use canary_engine::condition::{self, JsonPath, MAX_PATH_NESTING};
use canary_engine::judge::classify;
use canary_engine::lint;
use canary_engine::source::prometheus::decode;
use canary_engine::source::QueryValue;
use canary_engine::template::{self, judge_spec, TemplateError};
use serde_json::Value;

/// The crates whose panics `canary_engine::condition` catches and turns into errors (their
/// parsers have `unreachable!`s that some texts reach), by a part of their source path.
const CAUGHT_PANICS: [&str; 2] = ["/expr-lang-", "/serde_json_path-"];

/// Let a panic raised inside one of [`CAUGHT_PANICS`] unwind to the library's
/// `catch_unwind` instead of aborting the fuzzer; any other panic still aborts, as
/// libFuzzer's hook does. Called from a target's `init`.
pub fn let_caught_panics_unwind() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let caught = info
            .location()
            .is_some_and(|l| CAUGHT_PANICS.iter().any(|c| l.file().contains(c)));
        if !caught {
            abort(info);
        }
    }));
}

/// The file name errors must carry.
const FILE: &str = "fuzz.yaml";

/// A line number must point into the text (a parser may point just past its last line).
/// Lines end as YAML says: at `\r\n`, `\n` or a lone `\r`.
fn check_line(line: Option<usize>, text: &str, what: &dyn std::fmt::Display) {
    if let Some(line) = line {
        let last = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
        assert!((1..=last).contains(&line), "line {line} of {last}: {what}");
    }
}

fn check_errors(errors: &[TemplateError], text: &str) {
    assert!(!errors.is_empty(), "Err without an error");
    for e in errors {
        assert_eq!(e.file, FILE, "error without the file: {e}");
        check_line(e.line, text, e);
    }
}

/// Argo AnalysisTemplate loading: YAML text → parsed, schema-checked templates → resolved,
/// validated metrics; and `canary lint` over the same text. Errors must be values (never a
/// panic, a hang or unbounded memory), must name the file, and a line they give must be a
/// line of the text.
pub fn template_argo(text: &str) {
    match template::parse_str(FILE, text) {
        Ok(templates) => {
            // Args without a default get a value that tries to break out of a label matcher,
            // so substitution and validation run on every metric.
            let given: BTreeMap<String, String> = templates
                .iter()
                .flat_map(|t| &t.args)
                .filter(|a| a.value.is_none())
                .map(|a| (a.name.clone(), r#"x"} or vector(1) #"#.to_string()))
                .collect();
            if let Err(errors) = template::resolve(&templates, &given) {
                assert!(!errors.is_empty(), "Err without an error");
                for e in errors {
                    assert!(e.file.contains(FILE), "error without the file: {e}");
                    check_line(e.line, text, &e);
                }
            }
        }
        Err(errors) => check_errors(&errors, text),
    }
    for finding in lint::lint_text(FILE, text) {
        assert_eq!(finding.file, FILE);
        check_line(finding.line, text, &finding);
    }
}

/// Judge spec loading (YAML files and inline JSON specs), arg resolution and query
/// rendering. Errors must be values that name the file, with a line (if any) in the text.
pub fn judge_spec(text: &str) {
    if let Err(errors) = judge_spec::parse_str(FILE, text) {
        check_errors(&errors, text);
    }
    match judge_spec::judges_in(FILE, text) {
        Ok(specs) => {
            for spec in specs {
                let given: BTreeMap<String, String> = spec
                    .args
                    .iter()
                    .filter(|(_, default)| default.is_none())
                    .map(|(name, _)| (name.clone(), r#"a"}'` or \"#.to_string()))
                    .collect();
                if let Ok(values) = spec.resolve_args(&given) {
                    let _ = spec.render(&values);
                }
                let _ = spec.with_budget_share(0.5);
            }
        }
        Err(errors) => check_errors(&errors, text),
    }
    // An inline spec in a request body arrives as JSON.
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        let _ = judge_spec::from_json(&value);
    }
}

/// `canary judge`'s JSON input: parsed and validated, then judged and printed. Any input
/// must give a usage error or a judgement printed as JSON, never a panic or a hang.
pub fn judge_input(text: &str) {
    if let Ok((data, cfg)) = parse_input(text) {
        let judgement = classify(&cfg, &data);
        let json = to_json(&judgement);
        assert!(
            serde_json::from_str::<Value>(&json).is_ok(),
            "the printed judgement is not JSON: {json}"
        );
    }
}

/// Argo success/failure conditions (the expr language) against a measurement result.
///
/// Input: `successCondition \n failureCondition \n result`, the result as JSON (a web
/// provider's answer) or, if it is not JSON, as a string. The phase must follow Argo's rule
/// from each condition evaluated on its own (a second evaluation, from the compiled-program
/// cache, agrees): an error in either is an Error that names the condition; failure wins;
/// with one condition, the other is its negation; neither true is Inconclusive; none given is
/// Successful.
pub fn condition(text: &str) {
    let mut parts = text.splitn(3, '\n');
    let success = parts.next().unwrap_or("");
    let failure = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");
    let json = serde_json::from_str::<Value>(body).unwrap_or_else(|_| Value::String(body.into()));
    let result = condition::from_json(&json);
    let phase = condition::evaluate(&result, success, failure);
    // A rangeQuery's start/end are expressions too.
    let _ = condition::eval_time(success);

    // `now()` may give another answer the second time.
    if text.contains("now") {
        return;
    }
    let eval = |c: &str| (!c.is_empty()).then(|| condition::eval_condition(c, &result));
    let expected = match (eval(success), eval(failure)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => None,
        (None, None) => Some(Phase::Successful),
        (Some(Ok(ok)), None) => Some(if ok { Phase::Successful } else { Phase::Failed }),
        (None, Some(Ok(failed))) => Some(if failed {
            Phase::Failed
        } else {
            Phase::Successful
        }),
        (Some(Ok(ok)), Some(Ok(failed))) => Some(if failed {
            Phase::Failed
        } else if ok {
            Phase::Successful
        } else {
            Phase::Inconclusive
        }),
    };
    match (&phase, expected) {
        (Ok(got), Some(want)) => assert_eq!(*got, want, "{success:?} / {failure:?} on {body:?}"),
        (Err(e), None) => assert!(
            e.0.starts_with("could not evaluate "),
            "an error that does not say which condition: {e}"
        ),
        (got, want) => panic!("evaluate gave {got:?}, the conditions alone {want:?}"),
    }
}

/// The most values of one body [`jsonpath`] checks.
const MAX_VALUES: usize = 64;

/// One member name as a normalized-path segment: `['name']`, escaped as RFC 9535 says.
fn name_segment(name: &str) -> String {
    let mut s = String::from("['");
    for c in name.chars() {
        match c {
            '\'' => s.push_str("\\'"),
            '\\' => s.push_str("\\\\"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push_str("']");
    s
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value of a body with its normalized path and, if it has one, its dotted path.
type Located<'a> = (String, Option<String>, &'a Value);

/// Values nested deeper than the paths `JsonPath` accepts are not visited.
fn walk<'a>(
    v: &'a Value,
    normalized: String,
    dotted: Option<String>,
    depth: usize,
    out: &mut Vec<Located<'a>>,
) {
    if out.len() >= MAX_VALUES || depth > MAX_PATH_NESTING {
        return;
    }
    out.push((normalized.clone(), dotted.clone(), v));
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let dotted = dotted.as_ref().map(|d| format!("{d}[{i}]"));
                walk(item, format!("{normalized}[{i}]"), dotted, depth + 1, out);
            }
        }
        Value::Object(members) => {
            for (name, item) in members {
                let dotted = dotted
                    .as_ref()
                    .filter(|_| is_identifier(name))
                    .map(|d| format!("{d}.{name}"));
                let normalized = format!("{normalized}{}", name_segment(name));
                walk(item, normalized, dotted, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The web provider's `jsonPath` (Kubernetes-style `{$.a.b}`) over an answer body.
///
/// Input: `jsonPath \n body`. An arbitrary path is parsed or refused, never a panic; and
/// every value of a JSON body is what its own path selects, written as RFC 9535's normalized
/// path (`{$['a'][0]}`) and, when its names are identifiers, in Argo's dotted form
/// (`{.a[0]}`).
pub fn jsonpath(text: &str) {
    let (path, body) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        let _ = JsonPath::parse(path);
        return;
    };
    if let Ok(path) = JsonPath::parse(path) {
        if let Ok(selected) = path.first(&json) {
            let _ = condition::from_json(selected);
        }
    }
    let mut values = Vec::new();
    walk(&json, "$".into(), Some(String::new()), 0, &mut values);
    for (normalized, dotted, value) in values {
        let dotted = dotted.filter(|d| !d.is_empty()).map(|d| format!("{{{d}}}"));
        for form in [Some(format!("{{{normalized}}}")), dotted]
            .into_iter()
            .flatten()
        {
            let path = JsonPath::parse(&form)
                .unwrap_or_else(|e| panic!("the path of a value does not parse: {e}"));
            assert_eq!(path.first(&json), Ok(value), "{form} in {body}");
        }
    }
}

/// The HTTP statuses [`prometheus_response`] picks from.
const STATUSES: [u16; 8] = [200, 204, 400, 422, 500, 503, 301, 404];

/// Prometheus HTTP API answers: status, content type and body → a result or a typed error.
///
/// Input: one byte choosing the HTTP status (low 3 bits) and whether the answer is JSON
/// (bit 3 clear), then the body. A decoded answer must survive the snapshot file's round
/// trip (record, replay) unchanged.
pub fn prometheus_response(data: &[u8]) {
    let Some((&head, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(head & 7)];
    let is_json = head & 8 == 0;
    let Ok(answer) = decode("http://prometheus.fuzz", status, is_json, body) else {
        return;
    };
    let shown = answer.value.display();
    let _ = answer.value.argo_result();
    let recorded = serde_json::to_string(&answer.value).expect("a decoded answer serialises");
    let replayed: QueryValue = serde_json::from_str(&recorded)
        .unwrap_or_else(|e| panic!("a recorded answer does not replay: {e}: {recorded}"));
    assert_eq!(replayed.display(), shown, "replay differs: {recorded}");
}
