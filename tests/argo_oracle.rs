//! Argo Rollouts' own code as the oracle for what `canary analyze` shares with it: the phase
//! of a measurement from `successCondition` / `failureCondition` (`evaluate.EvaluateResult`)
//! and the value a web metric's `jsonPath` extracts (the web provider's `Run`).
//!
//! The corpora are generated here from a small grammar with a fixed seed (change `SEED` to
//! explore; every disagreement is printed), run through `tests/argo-rollouts` (Go, Argo
//! v1.9.1) and through our code, and must agree case by case. Deliberate differences are
//! listed in `DIFFERENCES` with their reason (docs/how-it-is-checked.md, "Where we differ from Argo").
//! `ORACLE_DUMP=1` prints every case Argo answers with Error, with its message.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use canary_engine::condition::{self, JsonPath};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

const SEED: u64 = 20261203;

/// The Go oracle's answers to `cases`, one per line, or `None` (announced) without Go.
fn oracle(command: &str, cases: &[Value]) -> Option<Vec<Value>> {
    let bin = common::kube_server::go_harness("argo-rollouts")?;
    let mut child = Command::new(bin)
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input: String = cases.iter().map(|c| format!("{c}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "the oracle failed");
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), cases.len());
    Some(answers)
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// A float as the oracle's encoding: a number, or "NaN" / "+Inf" / "-Inf".
fn enc(f: f64) -> Value {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        json!(f)
    }
}

fn float(rng: &mut StdRng) -> f64 {
    *pick(
        rng,
        &[
            0.0,
            1.0,
            0.5,
            0.99,
            0.1,
            -1.0,
            2.0,
            1e9,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ],
    )
}

/// A measurement result: what the Prometheus provider gives (float64, []float64), what a
/// web provider's jsonPath gives (any decoded JSON), or nil.
fn result(rng: &mut StdRng) -> Value {
    match rng.random_range(0..10) {
        0 => json!({"nil": true}),
        1..=3 => json!({"float": enc(float(rng))}),
        4..=6 => {
            let n = rng.random_range(0..4);
            json!({"floats": (0..n).map(|_| enc(float(rng))).collect::<Vec<_>>()})
        }
        _ => {
            let scalar = |rng: &mut StdRng| -> Value {
                pick(
                    rng,
                    &[
                        json!(0.5),
                        json!(1),
                        json!("pass"),
                        json!("fail"),
                        json!("0.75"),
                        json!("3"),
                        json!(true),
                        json!(null),
                        json!(""),
                    ],
                )
                .clone()
            };
            let v = match rng.random_range(0..3) {
                0 => scalar(rng),
                1 => Value::Array((0..rng.random_range(0..3)).map(|_| scalar(rng)).collect()),
                _ => json!({"score": scalar(rng), "verdict": scalar(rng)}),
            };
            json!({ "json": v })
        }
    }
}

/// Accessors that fit a result of this shape (what a template author would write for it).
fn accessors(result: &Value) -> &'static [&'static str] {
    if result.get("float").is_some() {
        &[
            "result",
            "asFloat(result)",
            "asInt(result)",
            "default(result, 0.5)",
        ]
    } else if result.get("floats").is_some() {
        &[
            "result[0]",
            "result[1]",
            "len(result)",
            "asFloat(result[0])",
            "default(result, 1)",
        ]
    } else if let Some(v) = result.get("json") {
        match v {
            Value::Object(_) => &[
                "result.score",
                "result.verdict",
                "asFloat(result.score)",
                "len(result)",
            ],
            Value::Array(_) => &["result[0]", "len(result)", "asFloat(result[0])"],
            _ => &[
                "result",
                "asFloat(result)",
                "asInt(result)",
                "default(result, 0)",
            ],
        }
    } else {
        &[
            "result",
            "default(result, 0.5)",
            "default(result, \"none\")",
        ]
    }
}

/// A condition from a small grammar over `result` and Argo's helpers, mostly with accessors
/// that fit the result's shape, sometimes not; now and then truncated (a parse error) or not
/// boolean.
fn condition(rng: &mut StdRng, result: &Value, depth: u32) -> String {
    let fits = accessors(result);
    let value = |rng: &mut StdRng| -> String {
        if rng.random_range(0..5) == 0 {
            pick(
                rng,
                &[
                    "result",
                    "result[0]",
                    "result.score",
                    "asInt(result)",
                    "len(result)",
                ],
            )
            .to_string()
        } else {
            pick(rng, fits).to_string()
        }
    };
    let constant = |rng: &mut StdRng| -> String {
        if rng.random_range(0..6) == 0 {
            pick(rng, &["\"pass\"", "\"fail\"", "nil", "\"3\""]).to_string()
        } else {
            pick(rng, &["0", "0.5", "1", "0.95", "-1", "2.5"]).to_string()
        }
    };
    let atom = |rng: &mut StdRng| -> String {
        match rng.random_range(0..10) {
            0..=4 => format!(
                "{} {} {}",
                value(rng),
                pick(rng, &["<", "<=", ">", ">=", "==", "!="]),
                constant(rng)
            ),
            5 => format!("isNaN({})", value(rng)),
            6 => format!("isInf({})", value(rng)),
            7 => pick(
                rng,
                &["isNil(result)", "isNil(result[0])", "!isNil(result)"],
            )
            .to_string(),
            8 => format!(
                "{}(result, {{# {} {}}})",
                pick(rng, &["all", "any", "none"]),
                pick(rng, &["<", ">", "=="]),
                constant(rng)
            ),
            _ => format!(
                "len(result) {} {}",
                pick(rng, &["==", ">"]),
                pick(rng, &["0", "1"])
            ),
        }
    };
    let e = if depth > 0 && rng.random_range(0..3) == 0 {
        format!(
            "{} {} {}",
            condition(rng, result, depth - 1),
            pick(rng, &["&&", "||", "and", "or"]),
            condition(rng, result, depth - 1)
        )
    } else {
        atom(rng)
    };
    match rng.random_range(0..30) {
        0 => e[..e.len() / 2].to_string(),
        1 => value(rng),
        2 => format!("!({e})"),
        _ => e,
    }
}

/// Our reading of a case's result, as `canary analyze` builds it for each provider.
fn ours(result: &Value) -> expr::Value {
    let f = |v: &Value| match v {
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "+Inf" => f64::INFINITY,
        Value::String(s) if s == "-Inf" => f64::NEG_INFINITY,
        other => other.as_f64().unwrap(),
    };
    if let Some(x) = result.get("float") {
        expr::Value::Float(f(x))
    } else if let Some(xs) = result.get("floats") {
        condition::from_floats(&xs.as_array().unwrap().iter().map(f).collect::<Vec<_>>())
    } else if let Some(v) = result.get("json") {
        condition::from_json(v)
    } else {
        expr::Value::Nil
    }
}

/// Where we answer differently, recognised by Argo's message, with the reason (docs/how-it-is-checked.md,
/// "Where we differ from Argo"). Only cases where Argo says Error qualify.
const DIFFERENCES: &[(&str, &str)] = &[
    // Go's expr compiles a condition against the Go type of `result` and rejects an
    // ill-typed expression even in a branch that would not run; the expr-lang crate checks
    // types as it evaluates.
    ("mismatched types", "static type check"),
    ("takes only array", "static type check"),
    ("is undefined", "static type check"),
    ("cannot use", "static type check"),
    ("invalid argument for len", "static type check"),
    ("can only be selected using", "static type check"),
    ("invalid operation", "static type check"),
    // Indexing past the end of a list is an error in Go's expr and nil in the expr-lang crate.
    ("index out of range", "index past the end"),
];

#[test]
fn conditions_agree_with_argos_evaluate_result() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let cases: Vec<Value> = (0..1000)
        .map(|_| {
            let result = result(&mut rng);
            let success = match rng.random_range(0..6) {
                0 => String::new(),
                _ => condition(&mut rng, &result, 1),
            };
            let failure = match rng.random_range(0..4) {
                0 => String::new(),
                _ => condition(&mut rng, &result, 1),
            };
            json!({"result": result, "success": success, "failure": failure})
        })
        .collect();
    let Some(argo) = oracle("conditions", &cases) else {
        return;
    };
    let mut disagreements = vec![];
    let mut phases = std::collections::BTreeMap::<String, usize>::new();
    let mut excused_count = 0;
    for (case, theirs) in cases.iter().zip(&argo) {
        let (s, f) = (
            case["success"].as_str().unwrap(),
            case["failure"].as_str().unwrap(),
        );
        let mine = match condition::evaluate(&ours(&case["result"]), s, f) {
            Ok(p) => p.to_string(),
            Err(_) => "Error".to_string(),
        };
        let want = theirs["phase"].as_str().unwrap();
        if std::env::var("ORACLE_DUMP").is_ok() && want == "Error" {
            eprintln!("ERR {s} | {f} | {} | {}", case["result"], theirs["message"]);
        }
        *phases.entry(want.to_string()).or_default() += 1;
        let message = theirs["message"].as_str().unwrap_or_default();
        let excused = want == "Error" && DIFFERENCES.iter().any(|(m, _)| message.contains(m));
        excused_count += usize::from(excused && mine != want);
        if mine != want && !excused {
            disagreements.push(format!(
                "{case}\n    Argo: {want} {}\n    ours: {mine}",
                theirs["message"]
            ));
        }
    }
    eprintln!(
        "{} cases; Argo's phases: {phases:?}; {excused_count} documented differences",
        cases.len()
    );
    // The corpus reaches every phase.
    for p in ["Successful", "Failed", "Inconclusive", "Error"] {
        assert!(phases.get(p).copied().unwrap_or(0) >= 20, "{p}: {phases:?}");
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree with Argo:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}

#[test]
fn json_path_agrees_with_argos_web_provider() {
    let mut rng = StdRng::seed_from_u64(SEED);
    let leaf = |rng: &mut StdRng| -> Value {
        pick(
            rng,
            &[
                json!(0.97),
                json!(3),
                json!("pass"),
                json!(true),
                json!(null),
                json!(1e21),
                json!(-0.0),
                json!("a \"quoted\" é"),
            ],
        )
        .clone()
    };
    let mut bodies = vec![];
    for _ in 0..12 {
        let items: Vec<Value> = (0..rng.random_range(0..4))
            .map(|i| json!({"name": format!("m{i}"), "value": leaf(&mut rng), "ok": i % 2 == 0}))
            .collect();
        bodies.push(json!({
            "verdict": leaf(&mut rng),
            "data": {"value": leaf(&mut rng), "items": items, "empty": []},
            "list": (0..rng.random_range(0..4)).map(|_| leaf(&mut rng)).collect::<Vec<_>>(),
        }));
    }
    bodies.push(json!([1, 2, 3]));
    bodies.push(json!(0.5));
    let paths = [
        "",
        "{$}",
        "{$.verdict}",
        "{.verdict}",
        "{$.data.value}",
        "{.data.value}",
        "{$.data.items[0].value}",
        "{$.data.items[1].name}",
        "{$.data.items[*].value}",
        "{$.data.items[?(@.ok == true)].value}",
        "{$.data.items[?(@.name == \"m1\")].value}",
        "{$.list[0]}",
        "{$.list[-1]}",
        "{$.list[0:2]}",
        "{$.data.empty[0]}",
        "{$.data.missing}",
        "{$.data['value']}",
        "{$[0]}",
        "{$.data}",
        "{$.data.items}",
        "{..value}",
        "{$.verdict",
    ];
    let mut cases = vec![];
    for body in &bodies {
        for path in paths {
            cases.push(json!({"body": body.to_string(), "path": path}));
        }
    }
    let Some(argo) = oracle("jsonpath", &cases) else {
        return;
    };
    let mut disagreements = vec![];
    for (case, theirs) in cases.iter().zip(&argo) {
        let body: Value = serde_json::from_str(case["body"].as_str().unwrap()).unwrap();
        let path = case["path"].as_str().unwrap();
        let mine = JsonPath::parse(path).and_then(|p| p.first(&body).cloned());
        let agree = match (theirs["phase"].as_str().unwrap(), &mine) {
            ("Successful", Ok(v)) => {
                serde_json::from_str::<Value>(theirs["value"].as_str().unwrap())
                    .ok()
                    .as_ref()
                    == Some(v)
            }
            ("Error", Err(_)) => true,
            // client-go errors when a slice's end is past the array; RFC 9535 (ours)
            // clamps it. docs/how-it-is-checked.md, "Where we differ from Argo".
            ("Error", Ok(_)) => {
                path.contains(':')
                    && theirs["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("array index out of bounds"))
            }
            _ => false,
        };
        if !agree {
            disagreements.push(format!(
                "{path} on {}\n    Argo: {theirs}\n    ours: {mine:?}",
                case["body"]
            ));
        }
    }
    eprintln!("{} jsonPath cases", cases.len());
    assert!(
        disagreements.is_empty(),
        "{} of {} jsonPath cases disagree with Argo:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
}
