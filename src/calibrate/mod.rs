//! A/A calibration: how often would this Judge spec cry wolf, and how fast does it catch a
//! real regression?
//!
//! The baseline is judged against itself over many windows of history — by default the same
//! pods in two adjacent windows (canary = the latest window, baseline = the one before it);
//! with [`Mode::Args`], the variants as the args select them (e.g. two stable pods). No
//! difference is real, so every alarm is a false alarm. For each metric the report gives the
//! false-alarm rate, and re-judges the same windows with other effect thresholds and other
//! confidences to find the least strict settings that bring the rate under a target.
//!
//! Then regressions of known sizes are injected into the same history (canary values
//! multiplied by the factor, or divided for a metric where a decrease is bad; bad events
//! multiplied for counts): how often each metric catches them once a whole window is
//! regressed, and, for a regression that starts at a moment, how long until the first alarm.
//!
//! SLO burn-rate gates do not compare canary to baseline and are not part of A/A.

mod metric;
mod polled;
mod windows;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::judge::classify::Classification;
use crate::judge::config::Direction;
use crate::judge::score::{score, Scored, Verdict};
use crate::source::history::{align_down, History, HistoryStats};
use crate::source::{self, Sources};
use crate::template::args::ArgError;
use crate::template::judge_spec::JudgeSpec;

pub use polled::{PolledCalibration, PolledDetection};

/// Where the two sides of an A/A comparison come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The baseline's latest window against its window just before.
    Adjacent,
    /// Canary and baseline as the args select them, same window (two stable pod sets).
    Args,
}

/// What to calibrate.
#[derive(Debug, Clone)]
pub struct Plan {
    /// First moment.
    pub from: DateTime<Utc>,
    /// Last moment.
    pub to: DateTime<Utc>,
    /// Time between moments.
    pub every: Duration,
    /// A/A sides.
    pub mode: Mode,
    /// Acceptable false-alarm rate (0.01 = 1 %).
    pub target: f64,
    /// Injected regression factors (1.25 = 25 % worse).
    pub inject: Vec<f64>,
    /// Also replay analyses the way Argo polls them.
    pub polls: Option<Polls>,
}

/// Analyses polled as Argo polls a Judge: `count` looks, one every `interval`, the first one
/// interval in, all anchored at the analysis's start; more than `failure_limit` failed looks
/// fail the analysis.
#[derive(Debug, Clone, Copy)]
pub struct Polls {
    /// Looks per analysis (Argo `count`).
    pub count: u32,
    /// Time between looks (Argo `interval`).
    pub interval: Duration,
    /// Failed looks tolerated (Argo `failureLimit`).
    pub failure_limit: u32,
}

/// Why calibration could not run.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// Bad args.
    #[error("{0}")]
    Args(#[from] ArgError),
    /// A query failed: no rate can be claimed.
    #[error("query failed: {0}")]
    Source(#[from] source::Error),
    /// The data cannot be judged (a histogram without `+Inf`, mismatched buckets).
    #[error("{0}")]
    Data(String),
}

/// A threshold and the false-alarm rate it gives on the A/A windows.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    /// The threshold.
    pub value: f64,
    /// False alarms / windows with data.
    pub rate: f64,
}

/// Injected regressions of one size.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    /// The factor (1.25 = 25 % worse).
    pub factor: f64,
    /// Fraction of fully regressed windows (with data) that alarm.
    pub rate: f64,
    /// Regressions started at sampled moments.
    pub starts: usize,
    /// Fraction of those caught within one window.
    pub caught_within_window: f64,
    /// Median time from the start of the regression to the first alarm (caught ones).
    pub median_seconds: Option<f64>,
    /// 90th percentile of that time.
    pub p90_seconds: Option<f64>,
}

/// One metric's calibration.
#[derive(Debug, Clone, Serialize)]
pub struct MetricCalibration {
    /// Metric name.
    pub name: String,
    /// Scoring group.
    pub group: String,
    /// Which change is bad.
    pub direction: Direction,
    /// Windows with enough data to judge.
    pub windows: usize,
    /// Windows without (nodata).
    pub nodata: usize,
    /// A/A windows classified high or low.
    pub false_alarms: usize,
    /// `false_alarms / windows`.
    pub false_alarm_rate: f64,
    /// One-sided 95 % upper bound of the rate (Clopper-Pearson): with few windows, a rate
    /// of 0 proves little.
    pub false_alarm_rate_upper95: f64,
    /// The rate is at or under the target.
    pub meets_target: bool,
    /// The configured effect threshold (allowed increase, or decrease where only a decrease
    /// is bad).
    pub effect: f64,
    /// False-alarm rate at other effect thresholds (configured confidence).
    pub effect_curve: Vec<CurvePoint>,
    /// The most sensitive effect threshold whose false-alarm rate meets the target (none: no
    /// candidate does).
    pub recommended_effect: Option<f64>,
    /// The configured confidence.
    pub confidence: f64,
    /// False-alarm rate at other confidences (configured effect).
    pub confidence_curve: Vec<CurvePoint>,
    /// The lowest (most sensitive) confidence whose false-alarm rate meets the target.
    pub recommended_confidence: Option<f64>,
    /// Injected regressions.
    pub detection: Vec<Detection>,
    /// A/A statistic per moment `(unix seconds, canary mean / baseline mean)`, for charts.
    pub ratio: Vec<(f64, f64)>,
}

/// The whole calibration.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Judge spec.
    pub judge: String,
    /// A/A sides.
    pub mode: Mode,
    /// First moment (RFC 3339).
    pub from: String,
    /// Last moment (RFC 3339).
    pub to: String,
    /// Seconds between moments.
    pub every_seconds: u64,
    /// The target false-alarm rate.
    pub target: f64,
    /// Moments judged.
    pub moments: usize,
    /// Moments whose A/A verdict is `fail`.
    pub fail: usize,
    /// … `marginal`.
    pub marginal: usize,
    /// … `inconclusive`.
    pub inconclusive: usize,
    /// `fail / (moments − inconclusive)`: how often a healthy release would be rolled back.
    pub false_alarm_rate: f64,
    /// One-sided 95 % upper bound of that rate (Clopper-Pearson).
    pub false_alarm_rate_upper95: f64,
    /// The overall rate is at or under the target.
    pub meets_target: bool,
    /// Judged windows needed before a rate of zero shows (95 %) that the rate is under the
    /// target: a smaller A/A cannot tell.
    pub windows_needed: usize,
    /// Verdict per moment `(unix seconds, verdict)`.
    pub verdicts: Vec<(i64, Verdict)>,
    /// Per metric.
    pub metrics: Vec<MetricCalibration>,
    /// Analyses polled as Argo polls them (with `--polls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polled: Option<PolledCalibration>,
    /// How the queries were answered.
    pub queries: HistoryStats,
}

/// One-sided 95 % Clopper-Pearson upper bound of a rate of `x` in `n` (NaN without windows).
pub fn upper95(x: usize, n: usize) -> f64 {
    use statrs::distribution::{Beta, ContinuousCDF};
    if n == 0 {
        return f64::NAN;
    }
    if x >= n {
        return 1.0;
    }
    Beta::new(x as f64 + 1.0, (n - x) as f64)
        .map(|b| b.inverse_cdf(0.95))
        .unwrap_or(f64::NAN)
}

/// Windows with no alarm needed for the 95 % upper bound to reach `target`:
/// `1 − 0.05^(1/n) ≤ target`.
pub fn windows_needed(target: f64) -> usize {
    if target <= 0.0 {
        return usize::MAX;
    }
    (0.05f64.ln() / (1.0 - target).ln()).ceil() as usize
}

/// The `q` quantile of `sorted` (nearest rank); `None` when empty.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied()
}

/// The stretch of history a calibration reads, on the spec's step.
struct Span {
    /// The query grid: the spec's step (at least 1 s).
    step: Duration,
    /// The spec's window, in seconds: each A/A side is this long.
    window: f64,
    /// The first moment judged.
    first: DateTime<Utc>,
    /// The last moment judged.
    last: DateTime<Utc>,
    /// Where the fetched history starts: adjacent windows reach one window back before the
    /// first moment, adjacent polled analyses one whole analysis back.
    start: DateTime<Utc>,
    /// How far before `plan.from` the history reaches.
    lookback: Duration,
}

impl Span {
    fn of(spec: &JudgeSpec, plan: &Plan) -> Span {
        let step = spec.step.max(Duration::from_secs(1));
        let analysis = plan.polls.map_or(Duration::ZERO, |p| p.interval * p.count);
        let lookback = 2 * spec.window.max(analysis) + 2 * step;
        let first = align_down(plan.from, step);
        let last = align_down(plan.to, step);
        let start = align_down(
            first - chrono::Duration::from_std(lookback).unwrap_or_default(),
            step,
        );
        Span {
            step,
            window: spec.window.as_secs_f64(),
            first,
            last,
            start,
            lookback,
        }
    }

    /// The end of each A/A window judged (unix seconds): from the first moment to the last,
    /// `every` seconds apart.
    fn moments(&self, every: i64) -> Vec<f64> {
        let mut moments = Vec::new();
        let mut t = self.first.timestamp();
        while t <= self.last.timestamp() {
            moments.push(t as f64);
            t += every;
        }
        moments
    }
}

/// Run the calibration.
pub async fn run(
    spec: &JudgeSpec,
    args: &BTreeMap<String, String>,
    plan: &Plan,
    sources: &Sources,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Calibration, CalibrateError> {
    let values = spec.resolve_args(args)?;
    let rendered = spec.render(&values)?;
    let span = Span::of(spec, plan);
    let history = Arc::new(History::new(span.step, plan.from, plan.to, span.lookback));
    let sources = sources.clone().with_history(history.clone());
    let fetched =
        windows::fetch_all(spec, &rendered, plan.mode, &sources, &span, on_progress).await?;

    let every = plan.every.as_secs().max(1) as i64;
    let moments = span.moments(every);
    let mut metrics = Vec::new();
    let mut per_moment: Vec<Vec<Classification>> = vec![Vec::new(); moments.len()];
    for (mi, (m, f)) in spec.metrics.iter().zip(&fetched).enumerate() {
        on_progress(&format!("judging {}", m.name), mi, spec.metrics.len());
        let (calibration, classes) = metric::calibrate(m, f, plan, &moments, &span);
        for (i, c) in classes.into_iter().enumerate() {
            per_moment[i].push(c);
        }
        metrics.push(calibration);
    }

    let polled = plan.polls.as_ref().map(|p| {
        on_progress("replaying polled analyses", 0, 1);
        polled::replay(
            spec,
            &fetched,
            plan,
            p,
            span.first.timestamp() as f64,
            span.last.timestamp() as f64,
        )
    });

    let v = Verdicts::score(spec, &moments, &per_moment);
    let judged = moments.len() - v.inconclusive;
    let rate = if judged == 0 {
        f64::NAN
    } else {
        v.fail as f64 / judged as f64
    };
    let stamp = |t: f64| {
        DateTime::from_timestamp(t as i64, 0)
            .map(|d| d.to_rfc3339())
            .unwrap_or_default()
    };
    Ok(Calibration {
        judge: spec.name.clone(),
        mode: plan.mode,
        from: moments.first().map(|t| stamp(*t)).unwrap_or_default(),
        to: moments.last().map(|t| stamp(*t)).unwrap_or_default(),
        every_seconds: every as u64,
        target: plan.target,
        moments: moments.len(),
        fail: v.fail,
        marginal: v.marginal,
        inconclusive: v.inconclusive,
        false_alarm_rate: rate,
        false_alarm_rate_upper95: upper95(v.fail, judged),
        meets_target: rate.is_finite() && rate <= plan.target,
        windows_needed: windows_needed(plan.target),
        verdicts: v.per_moment,
        metrics,
        polled,
        queries: history.stats(),
    })
}

/// The overall A/A verdict of every moment, and how many of each kind.
struct Verdicts {
    per_moment: Vec<(i64, Verdict)>,
    fail: usize,
    marginal: usize,
    inconclusive: usize,
}

impl Verdicts {
    /// Each moment's metric classifications scored as a judgement would score them (a spec
    /// without metrics passes).
    fn score(spec: &JudgeSpec, moments: &[f64], per_moment: &[Vec<Classification>]) -> Verdicts {
        let mut out = Verdicts {
            per_moment: Vec::new(),
            fail: 0,
            marginal: 0,
            inconclusive: 0,
        };
        for (t, classes) in moments.iter().zip(per_moment) {
            let scored: Vec<Scored> = spec
                .metrics
                .iter()
                .zip(classes)
                .map(|(m, c)| Scored {
                    name: m.name.clone(),
                    group: m.group.clone(),
                    classification: *c,
                    critical: m.config.critical,
                    must_have_data: m.config.must_have_data,
                })
                .collect();
            let v = if scored.is_empty() {
                Verdict::Pass
            } else {
                score(&spec.scoring, &scored).verdict
            };
            match v {
                Verdict::Fail => out.fail += 1,
                Verdict::Marginal => out.marginal += 1,
                Verdict::Inconclusive => out.inconclusive += 1,
                Verdict::Pass => {}
            }
            out.per_moment.push((*t as i64, v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds_match_clopper_pearson() {
        // With no alarm the bound has a closed form: 1 − 0.05^(1/n).
        let closed = 1.0 - 0.05f64.powf(1.0 / 300.0);
        assert!(
            (upper95(0, 300) - closed).abs() < 1e-9,
            "{}",
            upper95(0, 300)
        );
        // Its definition: at the bound, seeing x or fewer alarms has probability 5 %.
        use statrs::distribution::{Binomial, DiscreteCDF};
        let u = upper95(2, 50);
        let p = Binomial::new(u, 50).unwrap().cdf(2);
        assert!((p - 0.05).abs() < 1e-6, "P(X ≤ 2 | n=50, p={u}) = {p}");
        assert_eq!(upper95(5, 5), 1.0);
        assert_eq!(windows_needed(0.01), 299);
    }
}
