//! `empty-result`: a condition that reads `result[0]` without checking there is one. A query
//! that returns no series (no traffic yet, a typo in a label) then makes the measurement an
//! Error, and enough Errors abort the analysis.

use super::ArgoMetric;
use crate::lint::{Finding, Severity};

/// `successCondition`, then `failureCondition`, when it indexes the result unguarded
/// (neither `len(result)` nor `default(` appears in it).
pub(in crate::lint) fn argo(m: &ArgoMetric) -> Vec<Finding> {
    let mut out = Vec::new();
    for (field, c) in [
        ("successCondition", m.metric.success_condition.as_str()),
        ("failureCondition", m.metric.failure_condition.as_str()),
    ] {
        let indexes = c.contains("result[0]");
        let guarded = c.contains("len(result)") || c.contains("default(");
        if indexes && !guarded {
            out.push(m.finding(
                m.at(field),
                Severity::Warning,
                "empty-result",
                format!(
                    "{field} reads result[0] with no empty-result guard: when the query \
                     returns no series (no traffic yet, a typo in a label) the measurement is \
                     an Error, and enough of them abort the analysis"
                ),
                Some(format!("guard it: len(result) > 0 && {c}")),
            ));
        }
    }
    out
}
