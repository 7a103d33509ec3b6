//! Range selectors (`[2m]`, subquery ranges) that do not fit how often the query is looked
//! at: shorter than the step or the measurement interval, samples in between are never seen
//! (a 30 s error burst between two 1 m measurements of `rate(...[30s])` passes unnoticed);
//! longer than a Judge's step, neighbouring points overlap and a rank test over them is far
//! too confident.

use std::time::Duration;

use super::{ArgoMetric, JudgeQuery};
use crate::lint::{human, ranges, Finding, Severity};
use crate::template::argo::parse_duration;

/// `window-shorter-than-step` (the `rangeQuery` step) and `window-shorter-than-interval`
/// (the measurement interval), per range of the metric's query, in the query's order.
pub(in crate::lint) fn argo(m: &ArgoMetric) -> Vec<Finding> {
    let (Some(p), Some(Ok(expr))) = (&m.metric.provider.prometheus, &m.query) else {
        return Vec::new();
    };
    let line = m.at("provider/prometheus/query");
    let interval = m
        .metric
        .interval
        .as_deref()
        .and_then(|d| parse_duration(d).ok());
    let step = p
        .range_query
        .as_ref()
        .and_then(|r| parse_duration(&r.step).ok());
    let mut out = Vec::new();
    for r in ranges(expr) {
        if let Some(s) = step.filter(|s| r < *s) {
            out.push(m.finding(
                line,
                Severity::Warning,
                "window-shorter-than-step",
                format!(
                    "range [{}] is shorter than the rangeQuery step {}: samples between steps \
                     are never looked at",
                    human(r),
                    human(s)
                ),
                Some(format!("use a range of at least [{}]", human(s))),
            ));
        }
        if let Some(iv) = interval.filter(|iv| r < *iv) {
            out.push(m.finding(
                line,
                Severity::Warning,
                "window-shorter-than-interval",
                format!(
                    "range [{}] is shorter than the interval {}: what happens between \
                     measurements is never looked at",
                    human(r),
                    human(iv)
                ),
                Some(format!(
                    "use a range of at least [{}] (the interval)",
                    human(iv)
                )),
            ));
        }
    }
    out
}

/// The ranges of a Judge metric's query (SLO queries are not per-step points); none when it
/// does not parse.
fn metric_ranges(q: &JudgeQuery) -> Vec<Duration> {
    match &q.expr {
        Ok(expr) if q.pointer.starts_with("/metrics") => ranges(expr),
        _ => Vec::new(),
    }
}

/// `window-shorter-than-step`: a Judge metric's range shorter than the spec's step.
pub(in crate::lint) fn judge_shorter_than_step(q: &JudgeQuery) -> Vec<Finding> {
    let step = q.spec.step;
    metric_ranges(q)
        .into_iter()
        .filter(|r| *r < step)
        .map(|r| {
            q.finding(
                Severity::Warning,
                "window-shorter-than-step",
                format!(
                    "{}: range [{}] is shorter than the spec's step {}: samples between steps \
                     are never looked at",
                    q.what,
                    human(r),
                    human(step)
                ),
                Some("use [{{step}}], the spec's step".into()),
            )
        })
        .collect()
}

/// `window-longer-than-step`: a `query` (series) metric's range longer than the spec's step,
/// so that neighbouring points overlap. Counter, histogram and share metrics judge requests,
/// not points, and are exempt.
pub(in crate::lint) fn judge_longer_than_step(q: &JudgeQuery) -> Vec<Finding> {
    let step = q.spec.step;
    if !q.pointer.ends_with("/query") {
        return Vec::new();
    }
    metric_ranges(q)
        .into_iter()
        .filter(|r| *r > step)
        .map(|r| {
            q.finding(
                Severity::Warning,
                "window-longer-than-step",
                format!(
                    "{}: range [{}] is longer than the spec's step {}: neighbouring points \
                     overlap, so the judge keeps only every {}th point (a rank test over \
                     overlapping points is far too confident)",
                    q.what,
                    human(r),
                    human(step),
                    (r.as_secs_f64() / step.as_secs_f64()).ceil()
                ),
                Some(
                    "use [{{step}}], or a histogram/counters metric that judges requests \
                     instead of per-step points"
                        .into(),
                ),
            )
        })
        .collect()
}
