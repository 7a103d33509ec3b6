//! Judging latency from histogram buckets at request level: the stratified rank test for a
//! shift, a count test for requests slower than a fixed bound for the tail, quantile ratios
//! and the stratified CLES for the effect (STATISTICS.md §5).

use serde::Serialize;

use super::config::{EffectMeasure, MetricConfig};
use super::counts::{count_part, CountResult};
use super::part::{Classification, Evidence, Part};
use super::words::{pct, readable};
use crate::stats::counts::Counts;
use crate::stats::histogram::{
    cles_of_ratio, pooled, quantile, slow_counts, step_u, stratified_clear, stratified_test,
};
use crate::stats::histogram::{StepBuckets, Stratified};
use crate::stats::sequential::Interval;

/// One histogram metric's data: the bucket layout and each step's per-bucket requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramData {
    /// Upper bounds (`le`) in ascending order; the last is `+Inf`.
    pub bounds: Vec<f64>,
    /// Per step, oldest first: per-bucket (not cumulative) requests of each variant.
    pub steps: Vec<StepBuckets>,
    /// Requests slower than this bound are counted for the tail test (must be a bound).
    pub slower_than: Option<f64>,
}

/// A quantile of both variants and their ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QuantileRatio {
    /// The quantile (0.5, 0.9, 0.99).
    pub quantile: f64,
    /// The canary's, interpolated as `histogram_quantile` does (null without requests).
    pub canary: Option<f64>,
    /// The baseline's.
    pub baseline: Option<f64>,
    /// Canary / baseline (null when undefined).
    pub ratio: Option<f64>,
}

/// What the histogram test found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramResult {
    /// The stratified rank test over the steps since the analysis started.
    pub test: Stratified,
    /// The false-alarm budget of the shift test over every look.
    pub alpha: f64,
    /// Evidence needed to reject: the e-value threshold `1/alpha`.
    pub e_value_threshold: f64,
    /// p50, p90, p99 of the pooled requests of each variant.
    pub quantiles: Vec<QuantileRatio>,
    /// Requests slower than `slower_than`, canary vs baseline (when set).
    pub slow: Option<CountResult>,
    /// The bound the slow-request test counts above.
    pub slower_than: Option<f64>,
    /// The test's own conclusion on the shift.
    pub classification: Classification,
}

const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

fn opt(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The mixture's tuning: the variance of about four steps of the first step's traffic, so
/// the boundary is tightest a few looks in. It depends only on the first step's margins and
/// tied groups, which the test conditions on, so the sequence stays valid.
fn mixture_scale(steps: &[StepBuckets]) -> f64 {
    steps
        .iter()
        .map(step_u)
        .find(|s| s.var > 0.0)
        .map_or(1.0, |s| 4.0 * s.var)
}

/// More than half of the requests in one bucket (see `tests/fixtures/cles_margin.py`).
fn coarse(pooled: &[f64]) -> bool {
    let total: f64 = pooled.iter().map(|c| c.max(0.0)).sum();
    total <= 0.0 || pooled.iter().any(|c| *c > 0.5 * total)
}

/// Judges a histogram metric.
pub(crate) fn judge_histogram(
    cfg: &MetricConfig,
    data: &HistogramData,
    tests: &mut Vec<Evidence>,
) -> (Part, HistogramResult) {
    let tail_enabled = cfg.tail.enabled && data.slower_than.is_some();
    let alpha = if tail_enabled {
        cfg.budget() / 2.0
    } else {
        cfg.budget()
    };
    let test = stratified_test(&data.steps, mixture_scale(&data.steps), alpha);
    let (pc, pb) = (pooled(&data.steps, true), pooled(&data.steps, false));
    let quantiles: Vec<QuantileRatio> = QUANTILES
        .iter()
        .map(|&q| {
            let (c, b) = (
                quantile(&data.bounds, &pc, q),
                quantile(&data.bounds, &pb, q),
            );
            QuantileRatio {
                quantile: q,
                canary: opt(c),
                baseline: opt(b),
                ratio: opt(c / b),
            }
        })
        .collect();
    let p50 = quantiles[0].ratio.unwrap_or(f64::NAN);
    let (effect, measure, allowed_up, allowed_down) = match cfg.effect.measure {
        EffectMeasure::Cles => (
            test.cles,
            "stratified CLES",
            cfg.effect.allowed_increase(),
            cfg.effect.allowed_decrease(),
        ),
        EffectMeasure::MeanRatio => (
            p50,
            "p50 ratio",
            cfg.effect.allowed_increase(),
            cfg.effect.allowed_decrease(),
        ),
    };
    let mut reasons = Vec::new();
    let requests = format!(
        "{} canary and {} baseline requests in {} steps with both",
        readable(test.canary_requests),
        readable(test.baseline_requests),
        test.informative_steps
    );
    let qs = quantiles
        .iter()
        .map(|q| {
            format!(
                "p{} {} vs {}",
                readable(q.quantile * 100.0),
                q.canary.map_or("n/a".into(), readable),
                q.baseline.map_or("n/a".into(), readable)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let evidence = format!(
        "z = {}, e-value {} of the {} needed (anytime-valid p = {}, budget α = {})",
        readable(test.z),
        readable(test.log_e_value.exp()),
        readable(1.0 / alpha),
        readable(if cfg.direction.flags_increase() {
            test.p_value
        } else {
            test.p_value_down
        }),
        readable(alpha)
    );
    let mut classification = Classification::Pass;
    let mut critical_effect = false;
    if test.canary_requests < cfg.min_events || test.baseline_requests < cfg.min_events {
        reasons.push(format!(
            "not enough requests: {requests}; each side needs min_requests = {} — nodata, \
             never a pass",
            readable(cfg.min_events)
        ));
        classification = Classification::Nodata;
    } else {
        let up = cfg.direction.flags_increase() && test.crossed_up.is_some();
        let down = cfg.direction.flags_decrease() && test.crossed_down.is_some();
        let passes = |increase: bool, critical: bool| {
            if effect.is_nan() {
                return true;
            }
            match (increase, critical) {
                (true, false) => effect >= allowed_up,
                (true, true) => effect >= cfg.effect.critical_increase(),
                (false, false) => effect <= allowed_down,
                (false, true) => effect <= cfg.effect.critical_decrease(),
            }
        };
        if up || down {
            let word = if up { "slower" } else { "faster" };
            if passes(up, false) {
                classification = if up {
                    Classification::High
                } else {
                    Classification::Low
                };
                critical_effect = passes(up, true);
                reasons.push(format!(
                    "canary is {word} request by request: {evidence}; {measure} {} (allowed \
                     {}); {qs}; {requests}",
                    readable(effect),
                    readable(if up { allowed_up } else { allowed_down }),
                ));
            } else {
                reasons.push(format!(
                    "canary is significantly {word} but by less than allowed: {measure} {} \
                     (allowed {}); {evidence}; {qs}",
                    readable(effect),
                    readable(if up { allowed_up } else { allowed_down }),
                ));
            }
        } else {
            reasons.push(format!(
                "no significant latency shift yet: {evidence}; {qs}; {requests}"
            ));
        }
    }
    let hist_classification = classification;
    let mut slow = None;
    let mut slow_reason = None;
    if let (true, Some(t)) = (tail_enabled, data.slower_than) {
        let from = data.bounds.iter().position(|b| *b == t);
        if let Some(from) = from {
            let intervals: Vec<Interval> = data
                .steps
                .iter()
                .map(|s| {
                    let (cs, ct, bs, bt) = slow_counts(s, from);
                    Interval {
                        canary: Counts { bad: cs, total: ct },
                        baseline: Counts { bad: bs, total: bt },
                    }
                })
                .collect();
            let tail_cfg = MetricConfig {
                alpha: Some(alpha),
                ..cfg.clone()
            };
            let what = format!("more canary requests are slower than {}", readable(t));
            let (part, result) =
                count_part(&tail_cfg, &intervals, &what, cfg.tail.allowed_increase);
            if classification == Classification::Pass
                && part.classification == Classification::High
                && cfg.direction.flags_increase()
            {
                classification = Classification::High;
                critical_effect = part.critical_effect;
                reasons.push(format!(
                    "a tail regression the median does not show: {}",
                    part.reasons.join("; ")
                ));
            } else {
                slow_reason = Some(format!("tail: {}", part.reasons.join("; ")));
            }
            tests.push(
                Evidence::new(
                    format!("slower than {}", readable(t)),
                    result.sequential_p_value,
                    alpha,
                )
                .clearing(
                    format!(
                        "{}× as many requests slower than {}",
                        readable(result.tolerated_ratio),
                        readable(t)
                    ),
                    result.cleared_p_value,
                ),
            );
            slow = Some(result);
        }
    }
    if let (Some(r), Classification::Pass) = (slow_reason, classification) {
        reasons.push(r);
    }
    if let Some(q) = quantiles.get(2).and_then(|q| q.ratio) {
        if classification == Classification::Pass && q >= cfg.tail.allowed_increase {
            reasons.push(format!(
                "note: p99 ratio {} ({}) — set slower_than to test the tail",
                readable(q),
                pct(q)
            ));
        }
    }
    let shift = Evidence::new(
        "latency shift",
        if cfg.direction.flags_increase() {
            test.p_value
        } else {
            test.p_value_down
        },
        alpha,
    );
    // The mirror test rules out "slower by the tolerated effect"; only for a metric that
    // looks for slower canaries alone (a two-sided one never passes early).
    let shift = if cfg.direction.flags_increase() && !cfg.direction.flags_decrease() {
        let (tolerated, what) = match cfg.effect.measure {
            EffectMeasure::Cles => (allowed_up, format!("stratified CLES ≥ {}", readable(allowed_up))),
            // Half the tolerated slow-down, in CLES: bucket counts cannot tell a ×1.1 shift
            // from a ×1.08 one, so the mirror test aims below the margin rather than at it
            // (its false-clear rate at the margin is measured in tests/realistic_traffic.rs).
            // Buckets so coarse that one holds over half the baseline's requests cannot show a
            // 10 % slow-down at all: nothing is ruled out on them.
            EffectMeasure::MeanRatio if coarse(&pb) => (
                f64::NAN,
                format!(
                    "every request {}× slower (buckets too coarse for these latencies to rule                      it out)",
                    readable(allowed_up)
                ),
            ),
            EffectMeasure::MeanRatio => (
                cles_of_ratio(&data.bounds, &pb, 1.0 + (allowed_up - 1.0) / 2.0),
                format!("every request {}× slower", readable(allowed_up)),
            ),
        };
        shift.clearing(
            what,
            stratified_clear(&data.steps, tolerated, mixture_scale(&data.steps)),
        )
    } else {
        shift
    };
    tests.insert(0, shift);
    let result = HistogramResult {
        e_value_threshold: 1.0 / alpha,
        test,
        alpha,
        quantiles,
        slow,
        slower_than: data.slower_than,
        classification: hist_classification,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::classify::classify;
    use crate::judge::MetricData;

    fn data(canary: Vec<f64>, baseline: Vec<f64>, steps: usize) -> MetricData {
        MetricData {
            histogram: Some(HistogramData {
                bounds: vec![10.0, 50.0, 100.0, 500.0, f64::INFINITY],
                steps: vec![StepBuckets { canary, baseline }; steps],
                slower_than: Some(100.0),
            }),
            ..MetricData::default()
        }
    }

    fn cfg() -> MetricConfig {
        MetricConfig {
            direction: crate::judge::Direction::Increase,
            alpha: Some(0.01),
            ..MetricConfig::default()
        }
    }

    #[test]
    fn same_distribution_passes() {
        let j = classify(
            &cfg(),
            &data(
                vec![2.0, 5.0, 2.0, 1.0, 0.0],
                vec![20.0, 50.0, 20.0, 10.0, 0.0],
                20,
            ),
        );
        assert_eq!(j.classification, Classification::Pass, "{:?}", j.reasons);
        let h = j.histogram.unwrap();
        assert_eq!(h.quantiles[0].ratio, Some(1.0));
        assert!((h.test.cles - 0.5).abs() < 1e-12);
    }

    #[test]
    fn slower_canary_is_high() {
        let j = classify(
            &cfg(),
            &data(
                vec![0.0, 2.0, 5.0, 3.0, 0.0],
                vec![20.0, 50.0, 20.0, 10.0, 0.0],
                20,
            ),
        );
        assert_eq!(j.classification, Classification::High, "{:?}", j.reasons);
        assert!(j.reasons[0].contains("slower request by request"));
    }

    #[test]
    fn tail_only_is_caught_by_the_slow_count() {
        // Same median, but 10 % of canary requests are past 100 against 1 % of baseline's:
        // the shift is significant but its p50 ratio (1.0) is under the allowed 1.2.
        let mut cfg = cfg();
        cfg.effect.allowed_increase = Some(1.2);
        let j = classify(
            &cfg,
            &data(
                vec![30.0, 50.0, 10.0, 10.0, 0.0],
                vec![300.0, 590.0, 100.0, 10.0, 0.0],
                20,
            ),
        );
        assert_eq!(j.classification, Classification::High, "{:?}", j.reasons);
        assert!(j.reasons.iter().any(|r| r.contains("tail regression")));
    }

    #[test]
    fn few_requests_are_nodata() {
        let j = classify(
            &cfg(),
            &data(
                vec![0.0, 1.0, 0.0, 0.0, 0.0],
                vec![1.0, 1.0, 0.0, 0.0, 0.0],
                20,
            ),
        );
        assert_eq!(j.classification, Classification::Nodata);
    }
}
