//! What the fuzz targets found (fuzz/, run by `ci/fuzz.sh`), kept found on stable.
//!
//! Every input a byte-input target crashed or hung on is committed under
//! `tests/fixtures/fuzz/<target>/` and replayed here through the very checks the target runs
//! (`fuzz/src/lib.rs`, included below), together with the committed seed corpora
//! (`fuzz/corpus/<target>/`). Each finding is then asserted directly, with the error it now
//! gives; the structure-aware targets' findings are written inline.

use std::path::Path;
use std::time::{Duration, Instant};

use canary_engine::condition::{self, JsonPath, JsonPathError};
use canary_engine::template::args::{substitute, Syntax};
use canary_engine::template::{self, judge_spec, yaml};

#[allow(dead_code)] // the fuzz targets' panic hook is not used here
#[path = "../fuzz/src/lib.rs"]
mod checks;

/// A debug build on a busy CI machine; the inputs below took seconds to minutes, or crashed.
const QUICK: Duration = Duration::from_secs(2);

/// Run `check` on every committed crash input and seed of `target`; how many there were.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [
        root.join("tests/fixtures/fuzz").join(target),
        root.join("fuzz/corpus").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("read a fuzz input");
            let start = Instant::now();
            check(&data);
            let took = start.elapsed();
            assert!(took < QUICK * 5, "{} took {took:?}", path.display());
            n += 1;
        }
    }
    n
}

fn text(check: fn(&str)) -> impl Fn(&[u8]) {
    move |data| {
        if let Ok(t) = std::str::from_utf8(data) {
            check(t);
        }
    }
}

#[test]
fn every_committed_input_passes_its_target_checks() {
    assert!(replay("template_argo", text(checks::template_argo)) >= 12);
    assert!(replay("judge_spec", text(checks::judge_spec)) >= 10);
    assert!(replay("judge_input", text(checks::judge_input)) >= 5);
    assert!(replay("condition", text(checks::condition)) >= 11);
    assert!(replay("jsonpath", text(checks::jsonpath)) >= 15);
    assert!(replay("prometheus_response", checks::prometheus_response) >= 9);
}

/// Load a YAML text that must fail; the error, found quickly.
fn yaml_error(text: &str) -> yaml::SyntaxError {
    let start = Instant::now();
    let err = yaml::load_documents(text).expect_err("an error");
    assert!(start.elapsed() < QUICK);
    err
}

#[test]
fn template_argo_an_error_at_the_end_of_a_text_points_into_it() {
    // The parser pointed at line 2 of a one-line text without a final line break.
    let errors = template::parse_str("t.yaml", "[[:= !ho").expect_err("a syntax error");
    assert_eq!(
        errors[0].to_string(),
        "t.yaml:1: YAML syntax error at column 9: while parsing a flow sequence, expected ',' \
         or ']'"
    );
}

#[test]
fn template_argo_a_lone_carriage_return_is_a_line_break() {
    // Not a bug: YAML counts `\r` as a line break, as the loader does (the target's line
    // check counted only `\n`). Lines stay the lines an editor shows.
    let err = yaml_error("a: 1\rb: 2\ra: 3\r");
    assert_eq!((err.line, err.message.as_str()), (3, "duplicate key \"a\""));
    let err = yaml_error("a: 1\r\nb: 2\r\na: 3\r\n");
    assert_eq!(err.line, 3);
}

#[test]
fn judge_spec_duplicate_keys_compare_as_json_keys_inside_the_text() {
    // Two empty (null) keys: the second "after" the last line, with the parser's message
    // ("duplicated key in mapping") and no key; now ours, on the last line.
    let errors = judge_spec::parse_str("j.yaml", "?\n\n? \n  \n  ").expect_err("duplicate");
    assert_eq!(
        errors[0].to_string(),
        "j.yaml:5: YAML syntax error at column 3: duplicate key \"null\""
    );
    // `~` and `"~"` are different keys ("null" and "~"); `0x10` and `16` the same.
    yaml::load_documents("~: 1\n\"~\": 2\n").expect("two keys");
    assert_eq!(
        yaml_error("0x10: a\n16: b\n").message,
        "duplicate key \"16\""
    );
}

/// Evaluate a condition against `[1, 2]`; its error, found quickly.
fn condition_error(success: &str) -> String {
    let start = Instant::now();
    let result = condition::from_floats(&[1.0, 2.0]);
    let err = condition::evaluate(&result, success, "").expect_err(success);
    assert!(start.elapsed() < QUICK, "{success}: {:?}", start.elapsed());
    err.0
}

#[test]
fn condition_a_panic_in_the_expression_parser_is_an_error() {
    // expr-lang reaches `unreachable!` on a map literal holding a name: the process died.
    let e = r#"{"score": if79} == nil"#;
    assert_eq!(
        condition_error(e),
        format!(
            "could not evaluate successCondition \"{e}\": unsupported expression (the \
             expression engine failed: internal error: entered unreachable code: Unexpected \
             rule: ident if79)"
        )
    );
}

#[test]
fn condition_nesting_is_bounded() {
    // Nested indexing made the parser backtrack: 119 bytes took over ten seconds.
    let hung = include_str!("fixtures/fuzz/condition/nested-index-backtracking-fe539a72");
    let deep_index = format!("{}0{} > 0", "a[".repeat(15), "]".repeat(15));
    // Found looking at the same code: 10 000 parentheses overflowed the stack.
    let deep_parens = format!("{}1{} == 1", "(".repeat(10_000), ")".repeat(10_000));
    for e in [hung, &deep_index, &deep_parens] {
        assert_eq!(
            condition_error(e),
            format!(
                "could not evaluate successCondition \"{e}\": brackets nested deeper than 8 levels"
            )
        );
    }
}

#[test]
fn condition_constructs_that_build_huge_values_are_refused() {
    // The condition target's memory peaked at 1.6 GB: `len(1..100000000)` alone takes 7 GB,
    // the others double a value per step.
    for (e, what) in [
        ("len(1..100000000) > 0", "a range (`..`)"),
        (
            r#"len(repeat(repeat("x", 100000), 100000)) > 0"#,
            "`repeat`",
        ),
        (r#"let a = "xx"; let b = a + a; len(b) > 0"#, "`let`"),
        (
            r#"len(reduce([1, 1, 1], #acc + #acc, "x")) > 0"#,
            "`reduce`",
        ),
        (
            "len(result | map({[#, #]}) | flatten()) > 0",
            "a pipe (`|`)",
        ),
    ] {
        assert!(
            condition_error(e).ends_with(&format!(
                "{what} is not supported in a condition: it can build a value far larger than \
                 its text"
            )),
            "{e}"
        );
    }
}

fn jsonpath_error(path: &str) -> String {
    let start = Instant::now();
    let err = JsonPath::parse(path).expect_err(path);
    assert!(start.elapsed() < QUICK, "{path}: {:?}", start.elapsed());
    match err {
        JsonPathError::Parse { message, .. } => message,
        other => panic!("{other}"),
    }
}

#[test]
fn jsonpath_nesting_is_bounded() {
    // Nested filters made the parser backtrack: 290 bytes took 55 seconds.
    let nested = format!("{{$.items{}}}", "[?(@.a".repeat(20));
    // Found looking at the same code: 20 000 parentheses overflowed the stack.
    let deep = format!("{{$[?{}@{}]}}", "(".repeat(20_000), ")".repeat(20_000));
    for path in [nested, deep] {
        assert_eq!(
            jsonpath_error(&path),
            "brackets nested deeper than 8 levels"
        );
    }
}

#[test]
fn jsonpath_a_panic_in_the_parser_is_an_error() {
    // serde_json_path reaches `unreachable!("we do not use streaming parsers")` on a
    // literal ending in `\u` (an escape cut short): the process died.
    for path in [r#"ems[?(@.xvv[' {"li$tvalue":\u"#, r"{$['a\u}"] {
        assert_eq!(
            jsonpath_error(path),
            "unterminated or invalid literal",
            "{path}"
        );
    }
}

#[test]
fn args_substitution_a_backslash_in_a_raw_literal_stays_plain_text() {
    // Not a bug: the target's oracle (promql-parser) reads `\ ` inside a backtick literal as
    // an escape, which Prometheus does not; the value cannot end the literal (a backtick in
    // it is refused) and is written as it is.
    let args = [
        ("a0".to_string(), ")".to_string()),
        ("a1".to_string(), r" \ ".to_string()),
    ]
    .into_iter()
    .collect();
    let query = substitute(
        "up{service!~`{{ args.a0 }}{{args.a1}}`}",
        &args,
        Syntax::PromQl,
    )
    .expect("no backtick");
    assert_eq!(query, r"up{service!~`) \ `}");
}
