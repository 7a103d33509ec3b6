//! Cases from Argo Rollouts' documentation ("Handling Metric Results", docs/features/analysis.md)
//! and from `utils/evaluate/evaluate_test.go`, with the phase Argo documents for each.

use super::*;
use serde_json::json;

fn floats(v: &[f64]) -> Value {
    from_floats(v)
}

enum Want {
    Phase(Phase),
    Error,
}

fn check(result: Value, success: &str, failure: &str, want: Want, case: &str) {
    let got = evaluate(&result, success, failure);
    match (want, got) {
        (Want::Phase(p), Ok(g)) => assert_eq!(g, p, "{case}"),
        (Want::Error, Err(_)) => {}
        (Want::Phase(p), Err(e)) => panic!("{case}: wanted {p:?}, got error {e}"),
        (Want::Error, Ok(g)) => panic!("{case}: wanted an error, got {g:?}"),
    }
}

#[test]
fn argo_documentation_table() {
    use Phase::*;
    use Want::Error as Err_;
    let nan = Value::Float(f64::NAN);
    let inf = Value::Float(f64::INFINITY);
    let cases: Vec<(&str, Value, &str, &str, Want)> = vec![
        // NaN and Infinity.
        (
            "NaN successful",
            nan.clone(),
            "isNaN(result) || result >= 0.95",
            "",
            Want::Phase(Successful),
        ),
        (
            "NaN inconclusive",
            nan.clone(),
            "result >= 0.95",
            "result < 0.95",
            Want::Phase(Inconclusive),
        ),
        (
            "NaN failed",
            nan.clone(),
            "result >= 0.95",
            "",
            Want::Phase(Failed),
        ),
        (
            "+Inf successful",
            inf.clone(),
            "result >= 0.95",
            "",
            Want::Phase(Successful),
        ),
        (
            "+Inf failed",
            inf.clone(),
            "",
            "isInf(result)",
            Want::Phase(Failed),
        ),
        // Empty array (Prometheus returned no series).
        (
            "empty ok",
            floats(&[]),
            "len(result) == 0 || result[0] >= 0.95",
            "",
            Want::Phase(Successful),
        ),
        (
            "empty fails",
            floats(&[]),
            "len(result) > 0 && result[0] >= 0.95",
            "",
            Want::Phase(Failed),
        ),
        (
            "empty unguarded",
            floats(&[]),
            "result[0] >= 0.95",
            "",
            Err_,
        ),
        // Nil (Datadog-style) results and default().
        (
            "nil default",
            Value::Nil,
            "default(result, 0) < 0.05",
            "",
            Want::Phase(Successful),
        ),
        (
            "nil default high",
            Value::Nil,
            "default(result, 1) < 0.05",
            "",
            Want::Phase(Failed),
        ),
        (
            "value default",
            Value::Float(0.5),
            "default(result, 0) < 0.05",
            "",
            Want::Phase(Failed),
        ),
        ("nil compared", Value::Nil, "result < 0.05", "", Err_),
        (
            "isNil",
            Value::Nil,
            "",
            "isNil(result)",
            Want::Phase(Failed),
        ),
        (
            "not nil",
            Value::Float(1.0),
            "",
            "isNil(result)",
            Want::Phase(Successful),
        ),
        // Vectors with all/any.
        (
            "all below",
            floats(&[1.0, 2.0, 4.0]),
            "all(result, {# < 5})",
            "",
            Want::Phase(Successful),
        ),
        (
            "one above",
            floats(&[1.0, 7.0]),
            "all(result, {# < 5})",
            "",
            Want::Phase(Failed),
        ),
        (
            "any above",
            floats(&[1.0, 7.0]),
            "",
            "any(result, {# > 5})",
            Want::Phase(Failed),
        ),
        (
            "all of empty",
            floats(&[]),
            "all(result, {# < 5})",
            "",
            Want::Phase(Successful),
        ),
        (
            "result[0]",
            floats(&[0.99]),
            "result[0] >= 0.95",
            "result[0] < 0.9",
            Want::Phase(Successful),
        ),
        (
            "in",
            floats(&[1.0, 2.0, 3.0]),
            "2 in result",
            "",
            Want::Phase(Successful),
        ),
        // evaluate_test.go.
        (
            "success",
            Value::Bool(true),
            "true",
            "false",
            Want::Phase(Successful),
        ),
        (
            "failure wins",
            Value::Bool(true),
            "true",
            "true",
            Want::Phase(Failed),
        ),
        (
            "neither",
            Value::Bool(true),
            "false",
            "false",
            Want::Phase(Inconclusive),
        ),
        (
            "no success cond",
            Value::Bool(true),
            "",
            "false",
            Want::Phase(Successful),
        ),
        (
            "no failure cond",
            Value::Bool(true),
            "false",
            "",
            Want::Phase(Failed),
        ),
        (
            "no conditions",
            Value::Bool(true),
            "",
            "",
            Want::Phase(Successful),
        ),
        (
            "bad ref success",
            Value::Bool(true),
            "a == true",
            "true",
            Err_,
        ),
        (
            "bad ref failure",
            Value::Bool(true),
            "true",
            "a == true",
            Err_,
        ),
        ("not bool", Value::Bool(true), "1", "", Err_),
        (
            "scalar",
            Value::Float(5.0),
            "result > 1",
            "",
            Want::Phase(Successful),
        ),
        (
            "asInt string",
            Value::String("1".into()),
            "asInt(result) == 1",
            "",
            Want::Phase(Successful),
        ),
        (
            "asInt bad",
            Value::String("1.1".into()),
            "asInt(result) == 1",
            "",
            Err_,
        ),
        (
            "asFloat",
            Value::String("1.1".into()),
            "asFloat(result) >= 1.1",
            "",
            Want::Phase(Successful),
        ),
        (
            "asFloat bad",
            Value::String("NotANum".into()),
            "asFloat(result) == 1.1",
            "",
            Err_,
        ),
        (
            "asFloat NaN",
            Value::String("NaN".into()),
            "isNaN(asFloat(result))",
            "",
            Want::Phase(Successful),
        ),
        ("isNaN on list", floats(&[1.0]), "isNaN(result)", "", Err_),
    ];
    for (case, result, s, f, want) in cases {
        check(result, s, f, want, case);
    }
}

#[test]
fn web_json_is_decoded_as_go_does() {
    let body = json!({"service_apdex": {"values": {"values": [2, 3.5]}}, "ok": true, "n": 1});
    let v = from_json(&body);
    assert!(eval_condition("all(result.service_apdex.values.values, {# > 1})", &v).unwrap());
    assert!(eval_condition("result.ok == true && result.n == 1", &v).unwrap());
    assert!(eval_condition("asInt(result.n) == 1", &v).unwrap());
}

#[test]
fn errors_explain_empty_results() {
    let e = evaluate(&floats(&[]), "result[0] > 1", "").unwrap_err();
    assert!(e.0.contains("metric result is nil or empty"), "{e}");
    let e = evaluate(&Value::Float(1.0), "1", "").unwrap_err();
    assert!(e.0.contains("expected bool, but got int"), "{e}");
}

#[test]
fn range_query_times() {
    let end = eval_time("now()").unwrap();
    let start = eval_time(r#"now() - duration("10m")"#).unwrap();
    let span = end - start;
    assert!((span.num_seconds() - 600).abs() <= 1, "{span}");
    assert!(eval_time("1 + 1").is_err());
}
