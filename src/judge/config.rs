//! How one metric is judged: direction, confidence, effect thresholds, data guards.
//! Every field has a default, so `{}` is a valid configuration.

use crate::stats::preprocess::{NanStrategy, Outliers};
use serde::{Deserialize, Serialize};

/// Which change of the metric is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only an increase is bad (latency, error ratio).
    Increase,
    /// Only a decrease is bad (throughput, success ratio).
    Decrease,
    /// Any change is bad (Kayenta's default).
    #[default]
    Either,
}

impl Direction {
    /// Whether an increase of the canary counts against it.
    pub fn flags_increase(self) -> bool {
        matches!(self, Direction::Increase | Direction::Either)
    }
    /// Whether a decrease of the canary counts against it.
    pub fn flags_decrease(self) -> bool {
        matches!(self, Direction::Decrease | Direction::Either)
    }
}

/// The effect-size measure that gates a statistically significant difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectMeasure {
    /// `mean(canary) / mean(baseline)`; 1.0 is no effect.
    #[default]
    MeanRatio,
    /// Common-language effect size `P(canary > baseline)`; 0.5 is no effect.
    Cles,
}

impl EffectMeasure {
    /// The value meaning "no effect".
    pub fn neutral(self) -> f64 {
        match self {
            EffectMeasure::MeanRatio => 1.0,
            EffectMeasure::Cles => 0.5,
        }
    }
}

/// Effect-size thresholds. A significant increase is `high` only if the effect is at least
/// `allowed_increase`; it is *critical* (fails a critical metric's judgement outright) if it
/// is at least `critical_increase`. Unset thresholds mean "no effect" for the measure (1.0
/// for `mean_ratio`, 0.5 for `cles`), as in Kayenta.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EffectConfig {
    /// The effect-size measure.
    pub measure: EffectMeasure,
    /// Smallest effect that makes a significant increase a `high` (e.g. 1.1 = +10 %).
    pub allowed_increase: Option<f64>,
    /// Largest effect that makes a significant decrease a `low` (e.g. 0.9 = −10 %).
    pub allowed_decrease: Option<f64>,
    /// Effect from which a `high` of a critical metric fails the whole judgement.
    pub critical_increase: Option<f64>,
    /// Effect from which a `low` of a critical metric fails the whole judgement.
    pub critical_decrease: Option<f64>,
}

impl EffectConfig {
    /// `allowed_increase` or the measure's neutral value.
    pub fn allowed_increase(&self) -> f64 {
        self.allowed_increase.unwrap_or(self.measure.neutral())
    }
    /// `allowed_decrease` or the measure's neutral value.
    pub fn allowed_decrease(&self) -> f64 {
        self.allowed_decrease.unwrap_or(self.measure.neutral())
    }
    /// `critical_increase` or the measure's neutral value.
    pub fn critical_increase(&self) -> f64 {
        self.critical_increase.unwrap_or(self.measure.neutral())
    }
    /// `critical_decrease` or the measure's neutral value.
    pub fn critical_decrease(&self) -> f64 {
        self.critical_decrease.unwrap_or(self.measure.neutral())
    }
}

/// The shape check that catches a worse tail or spread with an unchanged median
/// (kayenta#780): a two-sample Kolmogorov-Smirnov test plus an upper-quantile ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailConfig {
    /// Run the check (default true).
    pub enabled: bool,
    /// The quantile compared (default 0.9). For a decrease, `1 − quantile` is used.
    pub quantile: f64,
    /// Flag `high` when the distributions differ (KS) and canary/baseline at the quantile is
    /// at least this (default 1.2).
    pub allowed_increase: f64,
    /// Flag `low` when they differ and the lower-quantile ratio is at most this (default 0.8).
    pub allowed_decrease: f64,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            quantile: 0.9,
            allowed_increase: 1.2,
            allowed_decrease: 0.8,
        }
    }
}

/// Which test decides a count metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountTest {
    /// Anytime-valid mixture test: safe when the same canary is judged again every interval
    /// (how Argo polls). The default.
    #[default]
    Sequential,
    /// Exact conditional binomial test: more power, valid for a single look only.
    Exact,
}

/// The full per-metric configuration. Defaults follow Kayenta where Kayenta has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricConfig {
    /// Which change is a regression (default `either`).
    pub direction: Direction,
    /// Two-sided confidence level of the interval (default 0.98).
    pub confidence: f64,
    /// Tolerance band as a fraction of |estimate| (default 0.25).
    pub tolerance: f64,
    /// NaN handling (default `remove`).
    pub nan: NanStrategy,
    /// Outlier handling (default keep).
    pub outliers: Outliers,
    /// Effect-size gate.
    pub effect: EffectConfig,
    /// A critical metric's failure (or missing data) fails the whole judgement.
    pub critical: bool,
    /// Missing data counts as a failure in the group score (Kayenta's `nodata_fail`).
    pub must_have_data: bool,
    /// Fewer points than this on either side → `nodata`, never a pass (default 20).
    pub min_samples: usize,
    /// The tail/spread check.
    pub tail: TailConfig,
    /// Metrics built from requests (counts, counters, histograms, traffic share): fewer
    /// requests than this on either side since the analysis started → `nodata`, never a
    /// pass (default 100). `min_requests` is the same setting.
    #[serde(alias = "min_requests")]
    pub min_events: f64,
    /// Count metrics: which test decides (default `sequential`).
    pub count_test: CountTest,
    /// False-alarm budget of this metric's anytime-valid tests over every look of one
    /// analysis (default `1 − confidence`; a Judge spec's `budget` sets it per metric).
    /// Histogram metrics split it between the shift test and the slow-request test.
    pub alpha: Option<f64>,
    /// Count tests: the range of bad-event rate ratios `[from, to]` the anytime-valid test
    /// mixes over (default `[1.05, 20]`). Narrow it around the ratios that matter — e.g.
    /// `[1.2, 4]` — for more power against them, at the cost of power outside.
    pub sequential_ratios: Option<[f64; 2]>,
}

impl Default for MetricConfig {
    fn default() -> Self {
        Self {
            direction: Direction::Either,
            confidence: 0.98,
            tolerance: 0.25,
            nan: NanStrategy::Remove,
            outliers: Outliers::Keep,
            effect: EffectConfig::default(),
            critical: false,
            must_have_data: false,
            min_samples: 20,
            tail: TailConfig::default(),
            min_events: 100.0,
            count_test: CountTest::Sequential,
            alpha: None,
            sequential_ratios: None,
        }
    }
}

/// A configuration value out of range: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `effect.allowed_increase`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn check(ok: bool, field: &str, message: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            field: field.to_string(),
            message: message.to_string(),
        })
    }
}

impl MetricConfig {
    /// The rate ratio a significant increase of bad events must reach to count.
    pub fn effect_gate(&self) -> f64 {
        match self.effect.measure {
            EffectMeasure::MeanRatio => self.effect.allowed_increase(),
            EffectMeasure::Cles => 1.0,
        }
    }

    /// The anytime-valid count test's mixture over rate ratios.
    pub fn mixture(&self) -> crate::stats::sequential::Mixture {
        match self.sequential_ratios {
            Some([from, to]) => crate::stats::sequential::Mixture::geometric(from, to, 32),
            None => crate::stats::sequential::Mixture::default(),
        }
    }

    /// The false-alarm budget of the sequential tests: `alpha`, else `1 − confidence`.
    pub fn budget(&self) -> f64 {
        self.alpha.unwrap_or(1.0 - self.confidence)
    }

    /// Checks ranges serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = self.confidence;
        check(
            c > 0.0 && c < 1.0,
            "confidence",
            "must be strictly between 0 and 1",
        )?;
        check(
            self.tolerance.is_finite() && self.tolerance >= 0.0,
            "tolerance",
            "must be a finite number ≥ 0",
        )?;
        check(self.min_samples >= 1, "min_samples", "must be at least 1")?;
        check(
            self.min_events.is_finite() && self.min_events >= 0.0,
            "min_events",
            "must be a finite number ≥ 0",
        )?;
        if let Some(a) = self.alpha {
            check(
                a > 0.0 && a < 1.0,
                "alpha",
                "must be strictly between 0 and 1",
            )?;
        }
        if let Some([from, to]) = self.sequential_ratios {
            check(
                from.is_finite() && from > 1.0 && to.is_finite() && to >= from,
                "sequential_ratios",
                "must be [from, to] with 1 < from ≤ to",
            )?;
        }
        if let Outliers::Remove { factor } = self.outliers {
            check(
                factor.is_finite() && factor >= 0.0,
                "outliers.factor",
                "must be a finite number ≥ 0",
            )?;
        }
        let e = &self.effect;
        for (name, v) in [
            ("effect.allowed_increase", e.allowed_increase),
            ("effect.allowed_decrease", e.allowed_decrease),
            ("effect.critical_increase", e.critical_increase),
            ("effect.critical_decrease", e.critical_decrease),
        ] {
            if let Some(v) = v {
                check(
                    v.is_finite() && v >= 0.0,
                    name,
                    "must be a finite number ≥ 0",
                )?;
                if e.measure == EffectMeasure::Cles {
                    check(
                        v <= 1.0,
                        name,
                        "a CLES threshold is a probability in [0, 1]",
                    )?;
                }
            }
        }
        let t = &self.tail;
        check(
            t.quantile > 0.0 && t.quantile < 1.0,
            "tail.quantile",
            "must be strictly between 0 and 1",
        )?;
        check(
            t.allowed_increase.is_finite() && t.allowed_increase >= 1.0,
            "tail.allowed_increase",
            "must be a finite ratio ≥ 1",
        )?;
        check(
            t.allowed_decrease > 0.0 && t.allowed_decrease <= 1.0,
            "tail.allowed_decrease",
            "must be a ratio in (0, 1]",
        )?;
        Ok(())
    }
}
