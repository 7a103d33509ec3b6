//! Argo's `successCondition` / `failureCondition`: expressions in the expr language.
//!
//! Evaluated with the `expr-lang` crate and the helpers Argo puts in the environment
//! (`utils/evaluate/evaluate.go`): `result`, `asInt`, `asFloat`, `isNaN`, `isInf`, `isNil`,
//! `default`; `len`, `all`, `any` and the rest of expr's builtins come with the language.
//! Argo's quirks are kept on purpose, because templates are written against them:
//! `isNil(x)` and `default(x, d)` look at the whole measurement result, whatever `x` is.

mod jsonpath;
mod limits;

pub use jsonpath::{JsonPath, JsonPathError, MAX_PATH_NESTING};
pub use limits::MAX_NESTING;

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use expr::{Context, Environment, Program, Value};

use crate::phase::Phase;

/// An expression that failed to compile or to evaluate, or did not give a boolean.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConditionError(pub String);

/// Compile an expression (syntax check only; names are resolved when it runs).
///
/// Compiled programs are cached by their text: a template's conditions are compiled when it is
/// validated and reused by every measurement (parsing costs tens of microseconds, more than
/// evaluating).
pub fn compile(expression: &str) -> Result<Program, ConditionError> {
    limits::check(expression)?;
    static CACHE: OnceLock<Mutex<HashMap<String, Program>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(p) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(expression)
    {
        return Ok(p.clone());
    }
    let program = guarded(|| expr::compile(expression))?
        .map_err(|e| ConditionError(one_line(&e.to_string())))?;
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= 4096 {
        map.clear();
    }
    map.insert(expression.to_string(), program.clone());
    Ok(program)
}

/// Evaluate one condition against a measurement result.
pub fn eval_condition(expression: &str, result: &Value) -> Result<bool, ConditionError> {
    let program = compile(expression)?;
    let mut ctx = Context::default();
    ctx.insert("result", result.clone());
    match guarded(|| environment().run(&program, &ctx))? {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(ConditionError(format!(
            "expected bool, but got {}",
            type_name(&other)
        ))),
        Err(e) => Err(ConditionError(one_line(&e.to_string()))),
    }
}

/// Argo's `EvaluateResult`: both conditions, failure wins, neither true → Inconclusive.
/// An expression that fails to evaluate or is not boolean gives `Err` (an Error measurement).
pub fn evaluate(result: &Value, success: &str, failure: &str) -> Result<Phase, ConditionError> {
    let explain = |which: &str, expression: &str, e: ConditionError| {
        if is_nil_or_empty(result) {
            ConditionError(format!(
                "could not evaluate {which} \"{expression}\": metric result is nil or empty: \
                 no data returned from the metric provider"
            ))
        } else {
            ConditionError(format!("could not evaluate {which} \"{expression}\": {e}"))
        }
    };
    let mut ok = false;
    let mut failed = false;
    if !success.is_empty() {
        ok =
            eval_condition(success, result).map_err(|e| explain("successCondition", success, e))?;
    }
    if !failure.is_empty() {
        failed =
            eval_condition(failure, result).map_err(|e| explain("failureCondition", failure, e))?;
    }
    match (success.is_empty(), failure.is_empty()) {
        (true, true) => return Ok(Phase::Successful),
        (false, true) => failed = !ok,
        (true, false) => ok = !failed,
        (false, false) => {}
    }
    Ok(if failed {
        Phase::Failed
    } else if !ok {
        Phase::Inconclusive
    } else {
        Phase::Successful
    })
}

/// Evaluate a `rangeQuery.start`/`end` expression such as `now() - duration("10m")`.
pub fn eval_time(expression: &str) -> Result<chrono::DateTime<chrono::Utc>, ConditionError> {
    let program = compile(expression)?;
    match guarded(|| environment().run(&program, &Context::default()))? {
        Ok(Value::DateTime(t)) => Ok(t.to_utc()),
        Ok(other) => Err(ConditionError(format!(
            "expected time.Time, but got {}",
            type_name(&other)
        ))),
        Err(e) => Err(ConditionError(one_line(&e.to_string()))),
    }
}

/// Run a call into the expr-lang crate, turning a panic into an error: its parser reaches an
/// `unreachable!` on some texts (`{"a": x}`, a map literal holding a name, found by the
/// `condition` fuzz target), and a condition written in a template must never take the
/// process down.
fn guarded<T>(call: impl FnOnce() -> T) -> Result<T, ConditionError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("no message");
        ConditionError(format!(
            "unsupported expression (the expression engine failed: {})",
            one_line(message)
        ))
    })
}

/// The functions Argo puts in a condition's environment, built once.
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(build_environment)
}

/// Argo's `isNil` and `default` ignore their argument and look at the measurement's result.
fn whole_result(ctx: &dyn expr::ContextProvider) -> Value {
    ctx.get("result").cloned().unwrap_or(Value::Nil)
}

fn build_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.add_function("asInt", |c| {
        let v = one_arg(&c.args, "asInt")?;
        Ok(Value::Integer(match v {
            Value::Integer(i) => *i,
            Value::Float(f) => go_int64(*f),
            Value::String(s) => s.trim().parse::<i64>().map_err(|e| {
                expr::Error::ExprError(format!("strconv.ParseInt: parsing {s:?}: {e}"))
            })?,
            other => {
                return Err(expr::Error::ExprError(format!(
                    "asInt() not supported on {} {other}",
                    type_name(other)
                )))
            }
        }))
    });
    env.add_function("asFloat", |c| {
        let v = one_arg(&c.args, "asFloat")?;
        Ok(Value::Float(match v {
            Value::Integer(i) => *i as f64,
            Value::Float(f) => *f,
            Value::String(s) => parse_go_float(s).ok_or_else(|| {
                expr::Error::ExprError(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
            })?,
            other => {
                return Err(expr::Error::ExprError(format!(
                    "asFloat() not supported on {} {other}",
                    type_name(other)
                )))
            }
        }))
    });
    env.add_function("isNaN", |c| {
        Ok(Value::Bool(float_arg(&c.args, "isNaN")?.is_nan()))
    });
    env.add_function("isInf", |c| {
        Ok(Value::Bool(float_arg(&c.args, "isInf")?.is_infinite()))
    });
    env.add_function("isNil", |c| {
        one_arg(&c.args, "isNil")?;
        Ok(Value::Bool(matches!(whole_result(c.ctx), Value::Nil)))
    });
    env.add_function("default", |c| {
        if c.args.len() != 2 {
            return Err(expr::Error::ExprError(format!(
                "default() takes 2 arguments, got {}",
                c.args.len()
            )));
        }
        let result = whole_result(c.ctx);
        Ok(if matches!(result, Value::Nil) {
            c.args[1].clone()
        } else {
            result
        })
    });
    env
}

fn one_arg<'a>(args: &'a [Value], name: &str) -> expr::Result<&'a Value> {
    match args {
        [v] => Ok(v),
        _ => Err(expr::Error::ExprError(format!(
            "{name}() takes 1 argument, got {}",
            args.len()
        ))),
    }
}

/// Go's `int64(f)` on amd64: NaN, ±Inf and values outside int64 become the minimum.
fn go_int64(f: f64) -> i64 {
    if f.is_finite() && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        f as i64
    } else {
        i64::MIN
    }
}

/// Argo's `isNaN` and `isInf` are Go functions of a float64: an integer argument (from
/// `asInt` or `len`) is an error there, and so here.
fn float_arg(args: &[Value], name: &str) -> expr::Result<f64> {
    match one_arg(args, name)? {
        Value::Float(f) => Ok(*f),
        Value::Integer(_) => Err(expr::Error::ExprError(
            "interface conversion: interface {} is int, not float64".into(),
        )),
        other => Err(expr::Error::ExprError(format!(
            "cannot use {} as argument (type float64) to call {name}",
            type_name(other)
        ))),
    }
}

/// Go's `strconv.ParseFloat` accepts `NaN`, `Inf`, `+Inf`, `-Inf`, `infinity` in any case.
fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Nil => true,
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Integer(_) => "int",
        Value::Float(_) => "float64",
        Value::Bool(_) => "bool",
        Value::Nil => "nil",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Map(_) | Value::KeyedMap(_) => "map[string]interface {}",
        Value::DateTime(_) => "time.Time",
        Value::Duration(_) => "time.Duration",
        _ => "value",
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A JSON document (a web provider's answer) as an expr value, the way Go's `encoding/json`
/// decodes into `any`: every number is a float64.
pub fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// A list of Prometheus sample values as an expr value (`[]float64` in Argo).
pub fn from_floats(values: &[f64]) -> Value {
    Value::Array(values.iter().copied().map(Value::Float).collect())
}

#[cfg(test)]
mod tests;
