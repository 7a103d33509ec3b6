//! What the conditions make of no data. A ratio over no requests is NaN in Prometheus (0/0):
//! `nan-passes` when NaN makes the measurement Successful (missing data promotes the canary),
//! `nan-inconclusive` when it is quietly Inconclusive and nothing says so (the rollout pauses
//! for a person with no hint why).

use super::ArgoMetric;
use crate::analysis::Phase;
use crate::lint::{Finding, Severity};

/// The conditions evaluated on a NaN result, shaped as the conditions read it (a list when
/// they index `result[0]`). Only Prometheus metrics: other providers do not produce NaN for
/// no data.
pub(in crate::lint) fn argo(m: &ArgoMetric) -> Vec<Finding> {
    let metric = m.metric;
    let conditions = [
        metric.success_condition.as_str(),
        metric.failure_condition.as_str(),
    ];
    let explicit = conditions.iter().any(|c| c.contains("isNaN"));
    let list = conditions.iter().any(|c| c.contains("result[0]"));
    let nan = if list {
        expr::Value::Array(vec![expr::Value::Float(f64::NAN)])
    } else {
        expr::Value::Float(f64::NAN)
    };
    let line = m.at("successCondition").or(m.at("failureCondition"));
    let nan_phase = match metric.provider.prometheus {
        Some(_) => {
            crate::condition::evaluate(&nan, &metric.success_condition, &metric.failure_condition)
                .ok()
        }
        None => None,
    };
    match nan_phase {
        Some(Phase::Successful) => vec![m.finding(
            line,
            Severity::Error,
            "nan-passes",
            "a NaN result (no requests: 0/0) makes the measurement Successful — missing data \
             passes"
                .into(),
            Some(
                "exclude NaN from success: `!isNaN(result[0]) && …`, and decide what no data \
                 means (Inconclusive is the safe choice)"
                    .into(),
            ),
        )],
        Some(Phase::Inconclusive) if !explicit => vec![m.finding(
            line,
            Severity::Warning,
            "nan-inconclusive",
            "on a NaN result (no requests: 0/0) both conditions are false: the measurement is \
             Inconclusive, which pauses the rollout for a person"
                .into(),
            Some(
                "say what no data means with isNaN() in the conditions, and set \
                 inconclusiveLimit to how many quiet measurements you tolerate"
                    .into(),
            ),
        )],
        _ => Vec::new(),
    }
}
