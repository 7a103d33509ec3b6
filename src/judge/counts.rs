//! The count tests: bad events over requests, canary against baseline, one exact test for a
//! single look and an anytime-valid one for an analysis that looks again and again.

use serde::Serialize;

use super::config::{CountTest, EffectMeasure, MetricConfig};
use super::part::{Classification, Part};
use super::words::readable;
use crate::stats::counts::{exact_p_value, Counts};
use crate::stats::sequential::{
    sequential_test, sequential_test_against, totals, Interval, Mixture,
};

/// The count comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CountResult {
    /// Exact one-sided conditional binomial p-value (one look).
    pub p_value: f64,
    /// Always-valid p-value of the mixture sequential test.
    pub sequential_p_value: f64,
    /// Which of the two decided.
    pub decided_by: CountTest,
    /// Canary bad/total over all intervals.
    pub canary: Counts,
    /// Baseline bad/total over all intervals.
    pub baseline: Counts,
    /// Canary rate / baseline rate; null when undefined (no bad events anywhere).
    pub rate_ratio: Option<f64>,
    /// Always-valid p-value of the mirror test: "the rate ratio is at least the tolerated
    /// one"; small means that regression is ruled out.
    pub cleared_p_value: f64,
    /// The tolerated rate ratio the mirror test rules out.
    pub tolerated_ratio: f64,
    /// What the count test concluded on its own.
    pub classification: Classification,
}

/// The count tests on `intervals`: `what` names the bad events in reasons, `gate` is the
/// rate ratio a significant increase must reach.
pub(crate) fn count_part(
    cfg: &MetricConfig,
    intervals: &[Interval],
    what: &str,
    gate: f64,
) -> (Part, CountResult) {
    let (canary, baseline) = totals(intervals);
    let exact = exact_p_value(canary, baseline);
    let seq = sequential_test(intervals, &cfg.mixture()).p_value();
    let tolerated = if gate.is_finite() && gate > 0.0 {
        gate
    } else {
        1.0
    };
    let cleared =
        sequential_test_against(intervals, &Mixture::below(tolerated), tolerated).p_value();
    let (cr, br) = (canary.rate(), baseline.rate());
    let rate_ratio = if br > 0.0 {
        cr / br
    } else if cr > 0.0 {
        f64::INFINITY
    } else {
        f64::NAN
    };
    let (p, level) = match cfg.count_test {
        CountTest::Sequential => (seq, cfg.budget()),
        CountTest::Exact => (exact, 1.0 - cfg.confidence),
    };
    let rates = format!(
        "canary {}/{} = {}, baseline {}/{} = {}",
        readable(canary.bad),
        readable(canary.total),
        readable(cr),
        readable(baseline.bad),
        readable(baseline.total),
        readable(br)
    );
    let test = match cfg.count_test {
        CountTest::Sequential => "anytime-valid p",
        CountTest::Exact => "exact p",
    };
    let mut reasons = Vec::new();
    let mut critical_effect = false;
    let classification = if canary.total < cfg.min_events || baseline.total < cfg.min_events {
        reasons.push(format!(
            "not enough requests: {rates}; each side needs min_requests = {} — nodata, never a pass",
            readable(cfg.min_events)
        ));
        Classification::Nodata
    } else if p < level {
        if rate_ratio.is_nan() || rate_ratio >= gate {
            if cfg.effect.measure == EffectMeasure::MeanRatio {
                critical_effect =
                    rate_ratio.is_nan() || rate_ratio >= cfg.effect.critical_increase();
            } else {
                critical_effect = true;
            }
            reasons.push(format!(
                "{what}: {rates}; rate ratio {} ({test} = {}, below {})",
                readable(rate_ratio),
                readable(p),
                readable(level)
            ));
            Classification::High
        } else {
            reasons.push(format!(
                "{what}, significantly but by less than allowed: {rates}; rate ratio {} < \
                 allowed {}",
                readable(rate_ratio),
                readable(gate)
            ));
            Classification::Pass
        }
    } else {
        reasons.push(format!(
            "not significantly worse: {rates} ({test} = {}, needs below {})",
            readable(p),
            readable(level)
        ));
        Classification::Pass
    };
    let result = CountResult {
        p_value: exact,
        sequential_p_value: seq,
        decided_by: cfg.count_test,
        canary,
        baseline,
        rate_ratio: (!rate_ratio.is_nan()).then_some(rate_ratio),
        cleared_p_value: cleared,
        tolerated_ratio: tolerated,
        classification,
    };
    (
        Part {
            classification,
            critical_effect,
            reasons,
        },
        result,
    )
}
