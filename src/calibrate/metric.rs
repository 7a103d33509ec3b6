//! One metric's calibration: its false-alarm rate over the A/A windows, the same windows
//! re-judged at other effect thresholds and confidences, and regressions of known sizes
//! injected into its canary side.

use super::windows::{data_at, Fetched};
use super::{quantile, upper95, CurvePoint, Detection, MetricCalibration, Plan, Span};
use crate::judge::classify::{classify, Classification, MetricData, MetricJudgement};
use crate::judge::config::{Direction, EffectMeasure, MetricConfig};
use crate::template::judge_spec::JudgeMetric;

/// A metric classified high or low: in an A/A test, a false alarm.
fn alarm(c: Classification) -> bool {
    matches!(c, Classification::High | Classification::Low)
}

/// Effect thresholds to try, from the strictest to the most lenient, the configured one
/// among them.
fn effect_grid(cfg: &MetricConfig) -> Vec<f64> {
    let decrease_only = cfg.direction == Direction::Decrease;
    let mut grid: Vec<f64> = match (cfg.effect.measure, decrease_only) {
        (EffectMeasure::MeanRatio, false) => {
            vec![
                1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0,
            ]
        }
        (EffectMeasure::MeanRatio, true) => {
            vec![1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5, 0.4, 0.33]
        }
        (EffectMeasure::Cles, false) => vec![0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95],
        (EffectMeasure::Cles, true) => vec![0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05],
    };
    grid.push(current_effect(cfg));
    // Least strict last: ascending for increase, descending for decrease.
    grid.sort_by(|a, b| {
        if decrease_only {
            b.total_cmp(a)
        } else {
            a.total_cmp(b)
        }
    });
    grid.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    grid
}

/// The configured effect threshold on the bad side (the allowed decrease where only a
/// decrease is bad).
fn current_effect(cfg: &MetricConfig) -> f64 {
    if cfg.direction == Direction::Decrease {
        cfg.effect.allowed_decrease()
    } else {
        cfg.effect.allowed_increase()
    }
}

/// `cfg` with effect threshold `v`; for a metric where either direction is bad, the mirror
/// image on the other side.
fn with_effect(cfg: &MetricConfig, v: f64) -> MetricConfig {
    let mut c = cfg.clone();
    match c.direction {
        Direction::Decrease => c.effect.allowed_decrease = Some(v),
        Direction::Increase => c.effect.allowed_increase = Some(v),
        Direction::Either => {
            c.effect.allowed_increase = Some(v);
            c.effect.allowed_decrease = Some(match c.effect.measure {
                EffectMeasure::MeanRatio => 1.0 / v,
                EffectMeasure::Cles => 1.0 - v,
            });
        }
    }
    c
}

/// Confidences to try besides the configured one.
const CONFIDENCES: [f64; 8] = [0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999];

/// Calibrate metric `m` on the A/A windows ending at each of `moments`; also its
/// classification at each moment, for the overall verdicts.
pub(super) fn calibrate(
    m: &JudgeMetric,
    f: &Fetched,
    plan: &Plan,
    moments: &[f64],
    span: &Span,
) -> (MetricCalibration, Vec<Classification>) {
    let data: Vec<MetricData> = moments
        .iter()
        .map(|&end| data_at(m, f, plan.mode, end, span.window, None))
        .collect();
    let judged: Vec<MetricJudgement> = data.iter().map(|d| classify(&m.config, d)).collect();
    let with_data: Vec<usize> = (0..judged.len())
        .filter(|&i| judged[i].classification != Classification::Nodata)
        .collect();
    let n = with_data.len();
    let false_alarms = with_data
        .iter()
        .filter(|&&i| alarm(judged[i].classification))
        .count();
    let rate = if n == 0 {
        f64::NAN
    } else {
        false_alarms as f64 / n as f64
    };
    let aa = AaWindows {
        data: &data,
        with_data: &with_data,
    };
    let effect_curve = effect_curve(&m.config, &aa);
    let confidence_curve = confidence_curve(&m.config, &aa);
    let meets = |p: &&CurvePoint| p.rate.is_finite() && p.rate <= plan.target;
    let recommended_effect = effect_curve.iter().find(meets).map(|p| p.value);
    let recommended_confidence = confidence_curve.iter().find(meets).map(|p| p.value);
    let starts = regression_starts(moments, span);
    let detection = plan
        .inject
        .iter()
        .map(|&factor| {
            let regression = Regression {
                metric: m,
                fetched: f,
                plan,
                span,
                factor,
            };
            regression.detection(moments, &with_data, &starts)
        })
        .collect();
    let calibration = MetricCalibration {
        name: m.name.clone(),
        group: m.group.clone(),
        direction: m.config.direction,
        windows: n,
        nodata: judged.len() - n,
        false_alarms,
        false_alarm_rate: rate,
        false_alarm_rate_upper95: upper95(false_alarms, n),
        meets_target: rate.is_finite() && rate <= plan.target,
        effect: current_effect(&m.config),
        effect_curve,
        recommended_effect,
        confidence: m.config.confidence,
        confidence_curve,
        recommended_confidence,
        detection,
        ratio: ratio(&judged, moments),
    };
    let classes = judged.iter().map(|j| j.classification).collect();
    (calibration, classes)
}

/// The A/A windows of one metric, and which of them had enough data to judge.
struct AaWindows<'a> {
    data: &'a [MetricData],
    with_data: &'a [usize],
}

impl AaWindows<'_> {
    /// The share of windows with data that `cfg` would alarm on (NaN without any).
    fn false_alarm_rate(&self, cfg: &MetricConfig) -> f64 {
        let n = self.with_data.len();
        if n == 0 {
            return f64::NAN;
        }
        let alarms = self
            .with_data
            .iter()
            .filter(|&&i| alarm(classify(cfg, &self.data[i]).classification))
            .count();
        alarms as f64 / n as f64
    }
}

/// The false-alarm rate at each effect threshold of [`effect_grid`] (configured confidence).
fn effect_curve(cfg: &MetricConfig, aa: &AaWindows) -> Vec<CurvePoint> {
    effect_grid(cfg)
        .into_iter()
        .map(|v| CurvePoint {
            value: v,
            rate: aa.false_alarm_rate(&with_effect(cfg, v)),
        })
        .collect()
}

/// The false-alarm rate at each of [`CONFIDENCES`] and the configured confidence, ascending
/// (configured effect threshold).
fn confidence_curve(cfg: &MetricConfig, aa: &AaWindows) -> Vec<CurvePoint> {
    let mut confidences: Vec<f64> = CONFIDENCES.to_vec();
    confidences.push(cfg.confidence);
    confidences.sort_by(f64::total_cmp);
    confidences.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
    confidences
        .into_iter()
        .map(|c| {
            let mut cfg = cfg.clone();
            cfg.confidence = c;
            CurvePoint {
                value: c,
                rate: aa.false_alarm_rate(&cfg),
            }
        })
        .collect()
}

/// Up to 40 moments, spread over the range, at which an injected regression starts: those
/// with a whole window of history after them.
fn regression_starts(moments: &[f64], span: &Span) -> Vec<f64> {
    let last = span.last.timestamp() as f64;
    let fits: Vec<f64> = moments
        .iter()
        .copied()
        .filter(|&t| t + span.window <= last)
        .collect();
    let keep = fits.len().min(40);
    (0..keep).map(|i| fits[i * fits.len() / keep]).collect()
}

/// A regression of one size injected into one metric's canary side.
struct Regression<'a> {
    metric: &'a JudgeMetric,
    fetched: &'a Fetched,
    plan: &'a Plan,
    span: &'a Span,
    factor: f64,
}

impl Regression<'_> {
    /// Whether the A/A window ending at `end` alarms with the regression under way since
    /// `from`.
    fn alarms(&self, end: f64, from: f64) -> bool {
        let m = self.metric;
        let d = data_at(
            m,
            self.fetched,
            self.plan.mode,
            end,
            self.span.window,
            Some((self.factor, from)),
        );
        alarm(classify(&m.config, &d).classification)
    }

    /// How often the metric catches it once whole windows are regressed (over the windows
    /// with data), and, started at each of `starts`, how soon: the first step whose window
    /// alarms, looking one window ahead at most.
    fn detection(&self, moments: &[f64], with_data: &[usize], starts: &[f64]) -> Detection {
        let n = with_data.len();
        let caught = with_data
            .iter()
            .filter(|&&i| self.alarms(moments[i], f64::MIN))
            .count();
        let step = self.span.step.as_secs_f64();
        let steps = (self.span.window / step).round().max(1.0) as usize;
        let mut times = Vec::new();
        for &t0 in starts {
            for k in 1..=steps {
                let end = t0 + (k as f64) * step;
                if self.alarms(end, t0) {
                    times.push(end - t0);
                    break;
                }
            }
        }
        times.sort_by(f64::total_cmp);
        Detection {
            factor: self.factor,
            rate: if n == 0 {
                f64::NAN
            } else {
                caught as f64 / n as f64
            },
            starts: starts.len(),
            caught_within_window: if starts.is_empty() {
                f64::NAN
            } else {
                times.len() as f64 / starts.len() as f64
            },
            median_seconds: quantile(&times, 0.5),
            p90_seconds: quantile(&times, 0.9),
        }
    }
}

/// Canary mean ÷ baseline mean in each A/A window where both are known (sample metrics).
fn ratio(judged: &[MetricJudgement], moments: &[f64]) -> Vec<(f64, f64)> {
    judged
        .iter()
        .zip(moments)
        .filter_map(|(j, t)| {
            let s = j.samples.as_ref()?;
            let (c, b) = (s.canary.mean?, s.baseline.mean?);
            (b != 0.0).then_some((*t, c / b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_grids_run_from_strict_to_lenient_and_hold_the_current_value() {
        let mut cfg = MetricConfig {
            direction: Direction::Increase,
            ..Default::default()
        };
        cfg.effect.allowed_increase = Some(1.33);
        let g = effect_grid(&cfg);
        assert_eq!(g.first(), Some(&1.0));
        assert!(g.contains(&1.33) && g.windows(2).all(|w| w[0] < w[1]));
        cfg.direction = Direction::Decrease;
        cfg.effect.allowed_decrease = Some(0.8);
        let g = effect_grid(&cfg);
        assert!(g.windows(2).all(|w| w[0] > w[1]), "{g:?}");
    }

    #[test]
    fn either_direction_sweeps_both_sides() {
        let c = with_effect(&MetricConfig::default(), 1.25);
        assert_eq!(c.effect.allowed_increase, Some(1.25));
        assert_eq!(c.effect.allowed_decrease, Some(0.8));
    }
}
