//! Per-metric classification: `pass | high | low | nodata | error`, with the numbers that
//! decided it.
//!
//! Kayenta's rules (STATISTICS.md §2) and three fixes for its known gaps: a minimum sample
//! size (kayenta#633), a tail/spread check (kayenta#780) and reasons in words (#521).

use super::config::{CountTest, EffectMeasure, MetricConfig};
use super::counts::{count_part, CountResult};
use super::histogram::{HistogramData, HistogramResult};
use super::part::Part;
pub use super::part::{Classification, Evidence};
use super::share::{ShareData, ShareResult};
use super::words::{pct, readable};
use crate::stats::effect::{cles, mean_ratio, quantile_ratio};
use crate::stats::ks::ks_test;
use crate::stats::preprocess::{clean, Cleaned};
use crate::stats::sample::{mean, quantile_sorted};
use crate::stats::sequential::Interval;
use crate::stats::{mann_whitney, MannWhitney};
use serde::Serialize;

/// The data of one metric: time-series samples, counts, or both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricData {
    /// Canary values, one per query step (NaN allowed: handled by the `nan` strategy).
    pub canary: Option<Vec<f64>>,
    /// Baseline values.
    pub baseline: Option<Vec<f64>>,
    /// Bad/total counts per interval, in time order (one interval for plain totals).
    pub intervals: Option<Vec<Interval>>,
    /// Per-step request counts per latency bucket (histogram metrics).
    pub histogram: Option<HistogramData>,
    /// Per-step requests of each variant and the share the canary should get.
    pub share: Option<ShareData>,
}

/// Effect sizes of the sample comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EffectSizes {
    /// `mean(canary) / mean(baseline)`; null when a mean is 0.
    pub mean_ratio: Option<f64>,
    /// `P(canary > baseline) + ½·P(equal)`.
    pub cles: f64,
}

/// The tail/spread check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TailCheck {
    /// Two-sample Kolmogorov-Smirnov statistic D.
    pub ks_statistic: f64,
    /// Its asymptotic p-value.
    pub ks_p_value: f64,
    /// The upper quantile compared.
    pub quantile: f64,
    /// Canary / baseline at that quantile; null when undefined (baseline 0, signs differ).
    pub upper_ratio: Option<f64>,
    /// Canary / baseline at `1 − quantile`.
    pub lower_ratio: Option<f64>,
    /// What the check concluded on its own.
    pub classification: Classification,
}

/// Per-variant summary of the cleaned sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleSummary {
    /// Values judged (after NaN and outlier handling).
    pub n: usize,
    /// NaN values removed.
    pub nan_removed: usize,
    /// NaN values replaced by 0.
    pub nan_replaced: usize,
    /// Points dropped by the `outliers` strategy before judging.
    pub outliers_removed: usize,
    /// Mean (null when empty).
    pub mean: Option<f64>,
    /// Median (null when empty).
    pub median: Option<f64>,
    /// 90th percentile, R-7 (null when empty).
    pub p90: Option<f64>,
}

/// Summaries of both cleaned samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Samples {
    /// The canary's.
    pub canary: SampleSummary,
    /// The baseline's.
    pub baseline: SampleSummary,
}

/// The judgement of one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricJudgement {
    /// The outcome.
    pub classification: Classification,
    /// This result fails the whole judgement (a critical metric failed or had no data).
    pub critical: bool,
    /// Why, in words, with the deciding numbers.
    pub reasons: Vec<String>,
    /// Rank-sum test and Hodges-Lehmann interval (whenever both samples are non-empty).
    pub mann_whitney: Option<MannWhitney>,
    /// Effect sizes (whenever both samples are non-empty).
    pub effect_size: Option<EffectSizes>,
    /// Tail/spread check (when enabled and there are enough points).
    pub tail: Option<TailCheck>,
    /// Count tests (when counts were given).
    pub counts: Option<CountResult>,
    /// Cleaned sample summaries.
    pub samples: Option<Samples>,
    /// Request-level latency from histogram buckets (histogram metrics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub histogram: Option<HistogramResult>,
    /// The canary's share of requests against the share it should have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareResult>,
    /// Each anytime-valid test's evidence so far against its share of the budget: "not yet"
    /// versus "no".
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// A pass that is already decided: every anytime-valid test of the metric has ruled out
    /// the regression it looks for (false only for a metric without such tests, or one still
    /// gathering evidence).
    pub cleared: bool,
}

fn summary(c: &Cleaned) -> SampleSummary {
    let v = &c.values;
    let opt = |x: f64| (!v.is_empty()).then_some(x);
    SampleSummary {
        n: v.len(),
        nan_removed: c.nan_removed,
        nan_replaced: c.nan_replaced,
        outliers_removed: c.outliers_removed,
        mean: opt(mean(v)),
        median: opt(quantile_sorted(v, 0.5)),
        p90: opt(quantile_sorted(v, 0.9)),
    }
}

pub(crate) fn effect_passes(
    cfg: &MetricConfig,
    effect: f64,
    increase: bool,
    critical: bool,
) -> bool {
    if effect.is_nan() {
        return true; // Kayenta: an undefined effect size does not veto the test.
    }
    let e = &cfg.effect;
    match (increase, critical) {
        (true, false) => effect >= e.allowed_increase(),
        (true, true) => effect >= e.critical_increase(),
        (false, false) => effect <= e.allowed_decrease(),
        (false, true) => effect <= e.critical_decrease(),
    }
}

fn judge_samples(
    cfg: &MetricConfig,
    canary: &[f64],
    baseline: &[f64],
    out: &mut MetricJudgement,
) -> Part {
    let c = clean(canary, cfg.nan, cfg.outliers);
    let b = clean(baseline, cfg.nan, cfg.outliers);
    out.samples = Some(Samples {
        canary: summary(&c),
        baseline: summary(&b),
    });
    let (x, y) = (&c.values, &b.values);
    let mut reasons = Vec::new();
    let nodata = |reasons: Vec<String>| Part {
        classification: Classification::Nodata,
        critical_effect: false,
        reasons,
    };
    if x.is_empty() || y.is_empty() {
        for (name, s, raw) in [("canary", &c, canary), ("baseline", &b, baseline)] {
            if s.values.is_empty() {
                reasons.push(format!(
                    "no data: the {name} has no values left to judge ({} received, {} NaN removed)",
                    raw.len(),
                    s.nan_removed
                ));
            }
        }
        return nodata(reasons);
    }
    // ±Inf (a histogram quantile above the highest bucket, a ratio over a zero rate) has no
    // shift to estimate — Inf − Inf is NaN — so the metric is not judged, and never passes.
    for (name, v) in [("canary", x), ("baseline", y)] {
        let infinite = v.iter().filter(|v| v.is_infinite()).count();
        if infinite > 0 {
            reasons.push(format!(
                "no data: the {name} has {infinite} infinite values (±Inf: a histogram \
                 quantile above the highest bucket, or a ratio over a zero rate)"
            ));
        }
    }
    if !reasons.is_empty() {
        return nodata(reasons);
    }

    let mw = mann_whitney(x, y, cfg.confidence);
    let ratio = mean_ratio(x, y);
    let cl = cles(mw.u, x.len(), y.len());
    out.mann_whitney = Some(mw.clone());
    out.effect_size = Some(EffectSizes {
        mean_ratio: (!ratio.is_nan()).then_some(ratio),
        cles: cl,
    });
    let effect = match cfg.effect.measure {
        EffectMeasure::MeanRatio => ratio,
        EffectMeasure::Cles => cl,
    };

    if x.len() < cfg.min_samples || y.len() < cfg.min_samples {
        reasons.push(format!(
            "not enough data: {} canary and {} baseline points, fewer than min_samples = {}; \
             a verdict on so few points is noise, so this is nodata, never a pass",
            x.len(),
            y.len(),
            cfg.min_samples
        ));
        return nodata(reasons);
    }

    if x == y {
        reasons.push(format!(
            "canary and baseline are identical ({} points each)",
            x.len()
        ));
        return pass(reasons);
    }
    if x[0] == x[x.len() - 1] && y[0] == y[y.len() - 1] {
        if x[0] == y[0] {
            reasons.push(format!("every value on both sides is {}", readable(x[0])));
            return pass(reasons);
        }
        return constant_sides(cfg, x[0], y[0], effect);
    }

    let (lo, hi) = match (mw.ci_lower, mw.ci_upper) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => {
            reasons.push("no confidence interval could be computed (all values tied)".into());
            return nodata(reasons);
        }
    };
    let band = cfg.tolerance * mw.estimate.abs();
    let conf = readable(cfg.confidence * 100.0);
    let shift = format!(
        "shift canary − baseline {} ({conf}% CI [{}, {}]), tolerance ±{}",
        readable(mw.estimate),
        readable(lo),
        readable(hi),
        readable(band)
    );
    let measure = match cfg.effect.measure {
        EffectMeasure::MeanRatio => "mean ratio",
        EffectMeasure::Cles => "CLES",
    };
    let mut part = if cfg.direction.flags_increase() && lo > band {
        if effect_passes(cfg, effect, true, false) {
            reasons.push(format!(
                "canary is higher: {shift}; {measure} {} (allowed {})",
                readable(effect),
                readable(cfg.effect.allowed_increase())
            ));
            Part {
                classification: Classification::High,
                critical_effect: effect_passes(cfg, effect, true, true),
                reasons,
            }
        } else {
            reasons.push(format!(
                "canary is significantly higher but by less than allowed: {shift}; {measure} {} < allowed {}",
                readable(effect),
                readable(cfg.effect.allowed_increase())
            ));
            pass(reasons)
        }
    } else if cfg.direction.flags_decrease() && hi < -band {
        if effect_passes(cfg, effect, false, false) {
            reasons.push(format!(
                "canary is lower: {shift}; {measure} {} (allowed {})",
                readable(effect),
                readable(cfg.effect.allowed_decrease())
            ));
            Part {
                classification: Classification::Low,
                critical_effect: effect_passes(cfg, effect, false, true),
                reasons,
            }
        } else {
            reasons.push(format!(
                "canary is significantly lower but by less than allowed: {shift}; {measure} {} > allowed {}",
                readable(effect),
                readable(cfg.effect.allowed_decrease())
            ));
            pass(reasons)
        }
    } else {
        let why = if (lo > band && !cfg.direction.flags_increase())
            || (hi < -band && !cfg.direction.flags_decrease())
        {
            "a change in the harmless direction"
        } else {
            "no significant difference beyond the tolerance"
        };
        reasons.push(format!("{why}: {shift}"));
        pass(reasons)
    };

    if cfg.tail.enabled {
        let tail = tail_check(cfg, x, y);
        out.tail = Some(tail);
        if part.classification == Classification::Pass
            && tail.classification != Classification::Pass
        {
            let (side, ratio, q) = if tail.classification == Classification::High {
                ("upper", tail.upper_ratio, cfg.tail.quantile)
            } else {
                ("lower", tail.lower_ratio, 1.0 - cfg.tail.quantile)
            };
            part.classification = tail.classification;
            part.reasons.push(format!(
                "but the distributions differ in shape: KS D = {} (p = {}), canary/baseline at \
                 the {side} quantile p{} = {} ({}) — a tail or spread regression the median \
                 does not show",
                readable(tail.ks_statistic),
                readable(tail.ks_p_value),
                readable(q * 100.0),
                ratio.map_or("n/a".into(), readable),
                ratio.map_or("n/a".into(), pct),
            ));
        }
    }
    part
}

fn pass(reasons: Vec<String>) -> Part {
    Part {
        classification: Classification::Pass,
        critical_effect: false,
        reasons,
    }
}

/// Each side constant but different: no noise to test against, so the ratio decides.
fn constant_sides(cfg: &MetricConfig, c: f64, b: f64, effect: f64) -> Part {
    let what = format!(
        "canary is constant at {}, baseline at {}",
        readable(c),
        readable(b)
    );
    let up = c > b;
    let flagged = if up {
        cfg.direction.flags_increase()
    } else {
        cfg.direction.flags_decrease()
    };
    if flagged && effect_passes(cfg, effect, up, false) {
        Part {
            classification: if up {
                Classification::High
            } else {
                Classification::Low
            },
            critical_effect: effect_passes(cfg, effect, up, true),
            reasons: vec![format!(
                "{what}: a certain {} (effect {})",
                if up { "increase" } else { "decrease" },
                readable(effect)
            )],
        }
    } else {
        pass(vec![format!(
            "{what}: not a regression for direction {:?} and the allowed effect",
            cfg.direction
        )])
    }
}

fn tail_check(cfg: &MetricConfig, x: &[f64], y: &[f64]) -> TailCheck {
    let ks = ks_test(x, y);
    let q = cfg.tail.quantile;
    let upper = quantile_ratio(x, y, q);
    let lower = quantile_ratio(x, y, 1.0 - q);
    let differs = ks.p_value < 1.0 - cfg.confidence;
    let classification =
        if differs && cfg.direction.flags_increase() && upper >= cfg.tail.allowed_increase {
            Classification::High
        } else if differs && cfg.direction.flags_decrease() && lower <= cfg.tail.allowed_decrease {
            Classification::Low
        } else {
            Classification::Pass
        };
    TailCheck {
        ks_statistic: ks.statistic,
        ks_p_value: ks.p_value,
        quantile: q,
        upper_ratio: (!upper.is_nan()).then_some(upper),
        lower_ratio: (!lower.is_nan()).then_some(lower),
        classification,
    }
}

fn judge_counts(cfg: &MetricConfig, intervals: &[Interval], out: &mut MetricJudgement) -> Part {
    let (part, result) = count_part(cfg, intervals, "canary fails more often", cfg.effect_gate());
    if cfg.count_test == CountTest::Sequential {
        out.evidence.push(
            Evidence::new("errors", result.sequential_p_value, cfg.budget()).clearing(
                format!("error ratio ≥ {}×", readable(result.tolerated_ratio)),
                result.cleared_p_value,
            ),
        );
    }
    out.counts = Some(result);
    part
}

/// Judges one metric. The configuration must have passed [`MetricConfig::validate`].
pub fn classify(cfg: &MetricConfig, data: &MetricData) -> MetricJudgement {
    let mut out = MetricJudgement {
        classification: Classification::Nodata,
        critical: false,
        reasons: Vec::new(),
        mann_whitney: None,
        effect_size: None,
        tail: None,
        counts: None,
        samples: None,
        histogram: None,
        share: None,
        evidence: Vec::new(),
        cleared: false,
    };
    let mut parts = Vec::new();
    if let Some(h) = &data.histogram {
        let (part, result) = super::histogram::judge_histogram(cfg, h, &mut out.evidence);
        out.histogram = Some(result);
        parts.push(part);
    }
    if let Some(sh) = &data.share {
        let (part, result) = super::share::judge_share(cfg, sh, &mut out.evidence);
        out.share = Some(result);
        parts.push(part);
    }
    if data.canary.is_some() || data.baseline.is_some() {
        let empty = Vec::new();
        let c = data.canary.as_ref().unwrap_or(&empty);
        let b = data.baseline.as_ref().unwrap_or(&empty);
        parts.push(judge_samples(cfg, c, b, &mut out));
    }
    if let Some(iv) = &data.intervals {
        parts.push(judge_counts(cfg, iv, &mut out));
    }
    if parts.is_empty() {
        out.reasons
            .push("no data: no samples, counts or histogram were given".into());
    }
    // Worst first: a regression anywhere wins, then missing data, then pass.
    let regression = parts
        .iter()
        .find(|p| matches!(p.classification, Classification::High | Classification::Low));
    out.classification = if let Some(r) = regression {
        r.classification
    } else if parts.is_empty()
        || parts
            .iter()
            .any(|p| p.classification != Classification::Pass)
    {
        Classification::Nodata
    } else {
        Classification::Pass
    };
    let critical_effect = parts.iter().any(|p| {
        p.critical_effect && matches!(p.classification, Classification::High | Classification::Low)
    });
    out.critical = cfg.critical
        && match out.classification {
            Classification::High | Classification::Low => critical_effect,
            Classification::Nodata | Classification::Error => true,
            Classification::Pass => false,
        };
    for p in parts {
        out.reasons.extend(p.reasons);
    }
    // Per-step series are not anytime-valid: a metric judged on them never passes early.
    out.cleared = out.classification == Classification::Pass
        && data.canary.is_none()
        && data.baseline.is_none()
        && !out.evidence.is_empty()
        && out.evidence.iter().all(Evidence::is_cleared);
    if out.cleared {
        let ruled_out: Vec<&str> = out
            .evidence
            .iter()
            .filter_map(|e| e.rules_out.as_deref())
            .collect();
        out.reasons.push(format!(
            "decided: every anytime-valid test has ruled its regression out ({})",
            ruled_out.join(", ")
        ));
    }
    if out.critical {
        out.reasons.push(format!(
            "this is a critical metric: a {} here fails the whole judgement",
            out.classification.as_str()
        ));
    } else if out.classification == Classification::Nodata && cfg.must_have_data {
        out.reasons
            .push("must_have_data is set: missing data counts as a failure in the score".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ±Inf in either sample, in any mix, is not judged: no hang in the rank test (Inf − Inf
    /// is NaN), never a pass.
    #[test]
    fn infinite_values_are_not_judged_and_never_pass() {
        let finite: Vec<f64> = (0..20).map(|i| 100.0 + f64::from(i)).collect();
        let inf = |v: f64| -> Vec<f64> { (0..20).map(|_| v).collect() };
        for (canary, baseline) in [
            (inf(f64::INFINITY), finite.clone()),
            (finite.clone(), inf(f64::INFINITY)),
            (inf(f64::INFINITY), inf(f64::INFINITY)),
            (inf(f64::NEG_INFINITY), inf(f64::INFINITY)),
            (
                [finite[..19].to_vec(), vec![f64::INFINITY]].concat(),
                finite.clone(),
            ),
        ] {
            let data = MetricData {
                canary: Some(canary),
                baseline: Some(baseline),
                intervals: None,
                histogram: None,
                share: None,
            };
            let j = classify(&MetricConfig::default(), &data);
            assert_eq!(j.classification, Classification::Nodata, "{:?}", j.reasons);
            assert!(
                j.reasons.iter().any(|r| r.contains("infinite")),
                "{:?}",
                j.reasons
            );
        }
    }
}
