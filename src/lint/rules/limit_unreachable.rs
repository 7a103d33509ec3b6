//! `limit-unreachable`: a `failureLimit`, `inconclusiveLimit` or `consecutiveErrorLimit` at
//! or above `count`. Argo fails an analysis when the limit is *exceeded*, which takes
//! `limit + 1` measurements: with only `count` taken, the limit never trips and failures go
//! unpunished.

use super::ArgoMetric;
use crate::lint::{Finding, Severity};

/// Each limit, in that order, that `count` measurements can never exceed.
pub(in crate::lint) fn argo(m: &ArgoMetric) -> Vec<Finding> {
    let metric = m.metric;
    let Some(count) = metric.count.filter(|c| *c > 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (field, limit) in [
        ("failureLimit", metric.failure_limit),
        ("inconclusiveLimit", metric.inconclusive_limit),
        ("consecutiveErrorLimit", metric.consecutive_error_limit),
    ] {
        if let Some(l) = limit.filter(|l| *l >= count) {
            out.push(m.finding(
                m.at(field).or(m.at("count")),
                Severity::Warning,
                "limit-unreachable",
                format!(
                    "{field} {l} with count {count}: exceeding it takes {} measurements, more \
                     than are taken — this limit never trips",
                    l + 1
                ),
                Some(format!(
                    "lower {field} below {count}, or raise count above {l}"
                )),
            ));
        }
    }
    out
}
