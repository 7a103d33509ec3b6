//! `promql`: a query that does not parse. `analyze` would only find out at the first
//! measurement (an Error), `serve` at the first request.

use super::{ArgoMetric, JudgeQuery};
use crate::lint::{Finding, Severity};

/// The metric's Prometheus query, when it does not parse.
pub(in crate::lint) fn argo(m: &ArgoMetric) -> Vec<Finding> {
    match &m.query {
        Some(Err(e)) => vec![m.finding(
            m.at("provider/prometheus/query"),
            Severity::Error,
            "promql",
            format!("the query does not parse: {}", e.trim()),
            None,
        )],
        _ => Vec::new(),
    }
}

/// The Judge query, when it does not parse.
pub(in crate::lint) fn judge(q: &JudgeQuery) -> Vec<Finding> {
    match &q.expr {
        Err(e) => vec![q.finding(
            Severity::Error,
            "promql",
            format!("{}: the query does not parse: {}", q.what, e.trim()),
            None,
        )],
        Ok(_) => Vec::new(),
    }
}
