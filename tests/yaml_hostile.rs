//! Hostile YAML: alias bombs ("billion laughs"), deep nesting, huge scalars, duplicate keys and
//! tags outside the core schema. Each is refused by the one loader every command and `canary
//! serve` use (`template::yaml`) with an error that says what was wrong and where, and quickly:
//! the limits are checked on the parser's event stream before anything is built.

use std::time::{Duration, Instant};

use canary_engine::lint;
use canary_engine::template::{self, judge_spec, yaml};

/// A bound for a debug build on a busy two-core CI machine. Without the limits these inputs
/// take minutes, or all the memory there is.
const QUICK: Duration = Duration::from_secs(3);

/// Load `text`, which must be refused quickly; the error.
fn refused(text: &str) -> yaml::SyntaxError {
    let start = Instant::now();
    let result = yaml::load_documents(text);
    let took = start.elapsed();
    let err = match result {
        Ok(docs) => panic!("accepted ({} documents)", docs.len()),
        Err(e) => e,
    };
    assert!(took < QUICK, "refused in {took:?}, not quickly: {err}");
    err
}

/// The classic: nine anchors, each a list of nine aliases of the one before (10^9 strings).
fn billion_laughs() -> String {
    let mut text = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..=9 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
        ));
    }
    text
}

#[test]
fn billion_laughs_is_refused_at_the_alias_past_the_budget() {
    let err = refused(&billion_laughs());
    assert!(err.refused);
    assert_eq!(
        err.message,
        format!(
            "with its aliases expanded, the text has more than {} nodes (a template has hundreds)",
            yaml::MAX_NODES
        )
    );
    // a4 expands to 66 430 nodes: the budget runs out at a5's first alias of it.
    assert_eq!((err.line, err.column), (6, 10), "{err}");
}

#[test]
fn an_alias_bomb_of_long_strings_is_refused() {
    // 11 111 nodes, well under MAX_NODES, but 40 MiB of text once expanded: the scalars
    // pass 4 MiB inside `d`, on line 4.
    let text = format!(
        "a: &a \"{}\"\nb: &b [{}]\nc: &c [{}]\nd: &d [{}]\ne: [{}]\n",
        "x".repeat(4096),
        ["*a"; 10].join(", "),
        ["*b"; 10].join(", "),
        ["*c"; 10].join(", "),
        ["*d"; 10].join(", "),
    );
    let err = refused(&text);
    assert!(err.refused);
    assert_eq!(
        err.message,
        "with its aliases expanded, the text holds more than 4 MiB of scalars"
    );
    assert_eq!(err.line, 4, "{err}");
}

#[test]
fn many_aliases_of_a_medium_list_are_refused() {
    let list: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let aliases = vec!["*l"; 200].join(", ");
    let text = format!("l: &l [{}]\nm: [{aliases}]\n", list.join(", "));
    let err = refused(&text);
    assert!(err.message.contains("more than 100000 nodes"), "{err}");
}

#[test]
fn aliases_within_the_budget_are_expanded() {
    let docs = yaml::load_documents("a: &a [1, 2]\nb: [*a, *a]\n").expect("small aliases load");
    assert_eq!(docs[0].value["b"], serde_json::json!([[1, 2], [1, 2]]));
}

#[test]
fn deep_flow_nesting_is_refused_at_the_first_level_too_deep() {
    let too_deep = format!(
        "nested deeper than {} levels of sequences and mappings",
        yaml::MAX_DEPTH
    );
    let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let err = refused(&text);
    assert!(err.refused);
    assert_eq!(err.message, too_deep);
    assert_eq!((err.line, err.column), (1, yaml::MAX_DEPTH + 1), "{err}");
    // Past 255 levels the scanner stops first, with the same error; mappings, and an
    // unclosed bomb, the same.
    for text in ["[".repeat(100_000), "{a: ".repeat(100_000)] {
        let err = refused(&text);
        assert!(err.refused);
        assert_eq!(err.message, too_deep);
    }
}

#[test]
fn deep_block_nesting_is_refused_with_its_line() {
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&" ".repeat(i));
        text.push_str("a:\n");
    }
    let err = refused(&text);
    assert!(err.message.starts_with("nested deeper than"), "{err}");
    assert_eq!(err.line, yaml::MAX_DEPTH + 1, "{err}");
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let d = yaml::MAX_DEPTH;
    let text = format!("{}{}", "[".repeat(d), "]".repeat(d));
    yaml::load_documents(&text).expect("MAX_DEPTH levels load");
}

#[test]
fn a_text_past_max_bytes_is_refused_before_it_is_parsed() {
    let text = format!("a: \"{}\"\n", "x".repeat(yaml::MAX_BYTES));
    let err = refused(&text);
    assert!(err.refused);
    assert_eq!(
        err.message,
        format!(
            "the text is {} bytes, more than the 4 MiB a template may hold",
            text.len()
        )
    );
    assert_eq!((err.line, err.column), (1, 1));
}

#[test]
fn a_huge_scalar_under_the_limit_loads() {
    let text = format!("a: {}\n", "x".repeat(1 << 20));
    let docs = yaml::load_documents(&text).expect("a 1 MiB scalar is within the limits");
    assert_eq!(docs[0].value["a"].as_str().map(str::len), Some(1 << 20));
}

#[test]
fn a_file_past_max_bytes_is_refused_without_reading_it_all() {
    let dir = std::env::temp_dir().join(format!("canary-yaml-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("big.yaml");
    std::fs::write(&path, vec![b'#'; yaml::MAX_BYTES + 1]).expect("write");
    let err = yaml::read_file(&path).expect_err("a 4 MiB + 1 file is refused");
    assert_eq!(
        err.to_string(),
        "larger than 4 MiB, the most a template file may hold"
    );
    // Through the template loader, the error names the file.
    let errors = template::load_file(&path).expect_err("refused");
    assert!(
        errors[0].to_string().contains("larger than 4 MiB"),
        "{}",
        errors[0]
    );
    std::fs::write(&path, b"a: \xff\n").expect("write");
    let err = yaml::read_file(&path).expect_err("not UTF-8");
    assert!(err.to_string().starts_with("not UTF-8 text"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn long_keys_over_deep_nesting_are_refused() {
    // A 12 KiB text: a list of 500 numbers aliased 150 times (75 000 nodes, within
    // MAX_NODES) under twelve 1000-byte keys. Each node's path (JSON pointer) repeats the keys
    // above it: 900 MB of paths.
    let key = "k".repeat(1000);
    let mut text = String::from("l: &l [");
    text.push_str(&vec!["1"; 500].join(","));
    text.push_str("]\nm:\n");
    for depth in 1..=12 {
        text.push_str(&format!("{}{key}:\n", " ".repeat(depth)));
    }
    text.push_str(&format!(
        "{}[{}]\n",
        " ".repeat(13),
        vec!["*l"; 150].join(",")
    ));
    let err = refused(&text);
    assert!(err.refused);
    assert_eq!(
        err.message,
        "the paths of its fields exceed 16 MiB (long keys over deep nesting)"
    );
}

#[test]
fn duplicate_keys_are_errors_at_the_second_key() {
    for (text, key, line) in [
        ("a: 1\nb: 2\na: 3\n", "a", 3),
        (
            "spec:\n  metrics: []\n  x: 1\n  metrics: []\n",
            "metrics",
            4,
        ),
        ("{a: 1, b: {c: 1,\n c: 2}}\n", "c", 2),
        ("1: one\n\"1\": also one\n", "1", 2),
        ("true: yes\n'true': again\n", "true", 2),
    ] {
        let start = Instant::now();
        let err = yaml::load_documents(text).expect_err(text);
        assert!(start.elapsed() < QUICK);
        assert!(!err.refused);
        assert_eq!(err.message, format!("duplicate key {key:?}"), "{text}");
        assert_eq!(err.line, line, "{text}");
    }
}

#[test]
fn tags_outside_the_core_schema_are_refused() {
    let core =
        "only the core tags !!str, !!int, !!float, !!bool, !!null, !!map, !!seq are accepted";
    for (text, shown, line) in [
        (
            "a: !!python/object:os.system [ls]\n",
            "!!python/object:os.system",
            1,
        ),
        ("a: 1\nb: !custom x\n", "!custom", 2),
        ("a: !!binary aGk=\n", "!!binary", 1),
        ("a: !!set {x, y}\n", "!!set", 1),
        ("a: !!timestamp 2024-01-01\n", "!!timestamp", 1),
        (
            "%TAG !e! tag:example.com,2000:\n---\na: !e!thing x\n",
            "tag:example.com,2000:thing",
            3,
        ),
        ("? !k key\n: v\n", "!k", 1),
    ] {
        let err = refused(text);
        assert!(err.refused, "{text}");
        assert_eq!(
            err.message,
            format!("unsupported YAML tag {shown}: {core}"),
            "{text}"
        );
        assert_eq!(err.line, line, "{text}");
    }
    // The core tags are read as the types they name.
    let docs = yaml::load_documents("a: !!str 10\nb: !!int 3\nc: !!seq [1]\nd: !!null ~\n")
        .expect("core tags");
    assert_eq!(docs[0].value["a"], "10");
    assert_eq!(docs[0].value["b"], 3);
    assert_eq!(docs[0].value["c"], serde_json::json!([1]));
    assert!(docs[0].value["d"].is_null());
}

#[test]
fn every_loader_reports_the_refusal_with_file_and_line() {
    let bomb = billion_laughs();
    let errors = template::parse_str("bomb.yaml", &bomb).expect_err("template loader");
    assert_eq!(
        errors[0].to_string(),
        format!(
            "bomb.yaml:6: YAML refused at column 10: with its aliases expanded, the text has \
             more than {} nodes (a template has hundreds)",
            yaml::MAX_NODES
        )
    );
    let errors = judge_spec::parse_str("bomb.yaml", &bomb).expect_err("judge spec loader");
    assert!(
        errors[0]
            .to_string()
            .starts_with("bomb.yaml:6: YAML refused"),
        "{}",
        errors[0]
    );
    let findings = lint::lint_text("bomb.yaml", &bomb);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].line, Some(6));
    assert!(
        findings[0].message.contains("aliases expanded"),
        "{}",
        findings[0]
    );

    let errors = template::parse_str("dup.yaml", "kind: AnalysisTemplate\nkind: Judge\n")
        .expect_err("duplicate");
    assert_eq!(
        errors[0].to_string(),
        "dup.yaml:2: YAML syntax error at column 1: duplicate key \"kind\""
    );
}

#[test]
fn an_inline_json_spec_nested_too_deep_is_an_error() {
    // `canary serve --allow-inline` takes specs as JSON; serde_json stops at 128 levels, the
    // YAML loader the spec is read with at 64.
    let mut v = serde_json::json!(1);
    for _ in 0..100 {
        v = serde_json::json!({ "a": v });
    }
    let errors = judge_spec::from_json(&v).expect_err("too deep");
    assert!(
        errors[0].message.starts_with("nested deeper than"),
        "{}",
        errors[0]
    );
}
