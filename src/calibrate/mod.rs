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

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::judge::classify::{classify, Classification, MetricData};
use crate::judge::config::{Direction, EffectMeasure, MetricConfig};
use crate::judge::histogram::HistogramData;
use crate::judge::score::{score, Scored, Verdict};
use crate::judge::share::ShareData;
use crate::judging::steps;
use crate::judging::{intervals, points};
use crate::source::history::{align_down, History, HistoryStats};
use crate::source::QueryValue;
use crate::source::{self, PromQuery, Range, Sources};
use crate::stats::counts::Counts;
use crate::stats::histogram::{scaled, StepBuckets};
use crate::stats::sequential::Interval;
use crate::template::args::ArgError;
use crate::template::judge_spec::{JudgeSpec, MetricSource};

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

/// How a Judge spec fares when analyses are polled as Argo polls them: the per-analysis
/// false-alarm rate (what a team feels: a healthy rollout aborted) and, with regressions
/// injected into one metric from each analysis's start, how often and how fast they fail.
#[derive(Debug, Clone, Serialize)]
pub struct PolledCalibration {
    /// Looks per analysis.
    pub count: u32,
    /// Seconds between looks.
    pub interval_seconds: u64,
    /// Failed looks tolerated.
    pub failure_limit: u32,
    /// Analyses replayed (starts `every` apart whose last look is in the range).
    pub analyses: usize,
    /// Analyses none of whose looks was pass or fail (not enough data): not counted.
    pub inconclusive: usize,
    /// A/A analyses that failed: false alarms.
    pub failed: usize,
    /// `failed / (analyses − inconclusive)`.
    pub false_alarm_rate: f64,
    /// One-sided 95 % upper bound of that rate (Clopper-Pearson).
    pub false_alarm_rate_upper95: f64,
    /// The rate is at or under the target.
    pub meets_target: bool,
    /// Looks taken, and looks whose verdict was fail.
    pub looks: usize,
    /// Looks whose verdict was fail.
    pub failed_looks: usize,
    /// Per metric and injected factor.
    pub detection: Vec<PolledDetection>,
}

/// Regressions injected into one metric from the analysis's start.
#[derive(Debug, Clone, Serialize)]
pub struct PolledDetection {
    /// The metric made worse.
    pub metric: String,
    /// The factor (1.25 = 25 % worse).
    pub factor: f64,
    /// Analyses replayed with it.
    pub analyses: usize,
    /// Analyses that failed.
    pub caught: usize,
    /// `caught / analyses`.
    pub rate: f64,
    /// Median time from the analysis's start to the failing look (caught ones).
    pub median_seconds: Option<f64>,
}

/// Whether the metric judges steps since the analysis's start (the anytime-valid kinds) or a
/// sliding window.
fn anchored(m: &crate::template::judge_spec::JudgeMetric) -> bool {
    !matches!(m.source, MetricSource::Series(_))
}

/// One analysis from `start`: the look that failed it (1-based), or `None`; and whether any
/// look had a verdict other than inconclusive. `inject` makes metric `i` worse.
fn polled_analysis(
    spec: &JudgeSpec,
    fetched: &[Fetched],
    plan: &Plan,
    polls: &Polls,
    start: f64,
    inject: Option<(usize, f64)>,
    looks: &mut (usize, usize),
) -> (Option<u32>, bool) {
    let w = spec.window.as_secs_f64();
    let interval = polls.interval.as_secs_f64();
    let len = interval * f64::from(polls.count);
    let (mut failed, mut decided) = (0u32, false);
    for k in 1..=polls.count {
        let end = start + interval * f64::from(k);
        let scored: Vec<Scored> = spec
            .metrics
            .iter()
            .zip(fetched)
            .enumerate()
            .map(|(i, (m, f))| {
                let injected = inject.filter(|(mi, _)| *mi == i).map(|(_, f)| (f, start));
                let data = if anchored(m) {
                    let mut win = Windows::new(plan.mode, start, end);
                    if plan.mode == Mode::Adjacent {
                        // The same pods, one whole analysis earlier.
                        win.baseline = (start - len, end - len);
                        win.shift = len;
                    }
                    data_in(m, f, win, injected)
                } else {
                    data_at(m, f, plan.mode, end, w, injected)
                };
                let j = classify(&m.config, &data);
                Scored {
                    name: m.name.clone(),
                    group: m.group.clone(),
                    classification: j.classification,
                    critical: j.critical,
                    must_have_data: m.config.must_have_data,
                }
            })
            .collect();
        let v = if scored.is_empty() {
            Verdict::Pass
        } else {
            score(&spec.scoring, &scored).verdict
        };
        looks.0 += 1;
        match v {
            Verdict::Fail => {
                looks.1 += 1;
                decided = true;
                failed += 1;
                if failed > polls.failure_limit {
                    return (Some(k), true);
                }
            }
            Verdict::Pass => decided = true,
            Verdict::Marginal | Verdict::Inconclusive => {}
        }
    }
    (None, decided)
}

fn polled(
    spec: &JudgeSpec,
    fetched: &[Fetched],
    plan: &Plan,
    polls: &Polls,
    first: f64,
    last: f64,
) -> PolledCalibration {
    let interval = polls.interval.as_secs_f64();
    let len = interval * f64::from(polls.count);
    let every = plan.every.as_secs_f64().max(1.0);
    let mut starts = Vec::new();
    let mut t = first;
    while t + len <= last {
        starts.push(t);
        t += every;
    }
    let mut looks = (0, 0);
    let (mut failed, mut inconclusive) = (0, 0);
    for &s in &starts {
        match polled_analysis(spec, fetched, plan, polls, s, None, &mut looks) {
            (Some(_), _) => failed += 1,
            (None, false) => inconclusive += 1,
            (None, true) => {}
        }
    }
    let judged = starts.len() - inconclusive;
    let rate = if judged == 0 {
        f64::NAN
    } else {
        failed as f64 / judged as f64
    };
    let mut detection = Vec::new();
    for (i, m) in spec.metrics.iter().enumerate() {
        for &factor in &plan.inject {
            let mut times = Vec::new();
            for &s in &starts {
                let mut ignored = (0, 0);
                if let (Some(k), _) = polled_analysis(
                    spec,
                    fetched,
                    plan,
                    polls,
                    s,
                    Some((i, factor)),
                    &mut ignored,
                ) {
                    times.push(interval * f64::from(k));
                }
            }
            times.sort_by(f64::total_cmp);
            detection.push(PolledDetection {
                metric: m.name.clone(),
                factor,
                analyses: starts.len(),
                caught: times.len(),
                rate: if starts.is_empty() {
                    f64::NAN
                } else {
                    times.len() as f64 / starts.len() as f64
                },
                median_seconds: quantile(&times, 0.5),
            });
        }
    }
    PolledCalibration {
        count: polls.count,
        interval_seconds: polls.interval.as_secs(),
        failure_limit: polls.failure_limit,
        analyses: starts.len(),
        inconclusive,
        failed,
        false_alarm_rate: rate,
        false_alarm_rate_upper95: upper95(failed, judged),
        meets_target: rate.is_finite() && rate <= plan.target,
        looks: looks.0,
        failed_looks: looks.1,
        detection,
    }
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
    pub verdicts: Vec<(i64, String)>,
    /// Per metric.
    pub metrics: Vec<MetricCalibration>,
    /// Analyses polled as Argo polls them (with `--polls`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub polled: Option<PolledCalibration>,
    /// How the queries were answered.
    pub queries: HistoryStats,
}

/// A metric's history: series values, or counts, per side; for the kinds built from raw
/// counters (`counters`, `histogram`, `share`), each step's increases, as the judge takes them.
struct Fetched {
    canary: Vec<Vec<(f64, f64)>>,
    baseline: Vec<Vec<(f64, f64)>>,
    steps: Option<Steps>,
}

/// Per-step data of the raw-counter kinds, canary and baseline (the same variant in adjacent
/// mode).
struct Steps {
    canary: steps::Fetched,
    baseline: steps::Fetched,
}

/// Steps (unix seconds) of `m` in `(after, upto]`, moved by `shift`.
fn cut<V: Clone>(m: &BTreeMap<i64, V>, after: f64, upto: f64, shift: i64) -> BTreeMap<i64, V> {
    m.iter()
        .filter(|(t, _)| (**t as f64) > after && (**t as f64) <= upto)
        .map(|(t, v)| (t + shift, v.clone()))
        .collect()
}

/// The raw-counter kinds' data for canary steps in `(c_after, c_upto]` and baseline steps in
/// `(b_after, b_upto]` moved by `shift`, with the canary made worse by `inject` after its
/// start: bad events multiplied, every request slower (re-bucketed), or a smaller share.
#[allow(clippy::too_many_arguments)]
fn step_data(
    s: &Steps,
    direction: Direction,
    (c_after, c_upto): (f64, f64),
    (b_after, b_upto): (f64, f64),
    shift: i64,
    inject: Option<(f64, f64)>,
) -> MetricData {
    let worse = |t: i64| match inject {
        Some((factor, from)) if t as f64 > from => Some(factor),
        _ => None,
    };
    match (&s.canary, &s.baseline) {
        (steps::Fetched::Counters { canary, .. }, steps::Fetched::Counters { baseline, .. }) => {
            let (cb, ct) = (
                cut(&canary.0, c_after, c_upto, 0),
                cut(&canary.1, c_after, c_upto, 0),
            );
            let (bb, bt) = (
                cut(&baseline.0, b_after, b_upto, shift),
                cut(&baseline.1, b_after, b_upto, shift),
            );
            let iv = ct
                .iter()
                .filter_map(|(t, total)| {
                    let b_total = bt.get(t)?;
                    let bad = cb.get(t).copied().unwrap_or(0.0) * worse(*t).unwrap_or(1.0);
                    Some(Interval {
                        canary: Counts {
                            bad: bad.min(*total),
                            total: *total,
                        },
                        baseline: Counts {
                            bad: bb.get(t).copied().unwrap_or(0.0).min(*b_total),
                            total: *b_total,
                        },
                    })
                })
                .collect();
            MetricData {
                intervals: Some(iv),
                ..MetricData::default()
            }
        }
        (
            steps::Fetched::Histogram {
                bounds,
                canary,
                slower_than,
                ..
            },
            steps::Fetched::Histogram { baseline, .. },
        ) => {
            let c = cut(canary, c_after, c_upto, 0);
            let b = cut(baseline, b_after, b_upto, shift);
            let steps = c
                .iter()
                .filter_map(|(t, counts)| {
                    let baseline = b.get(t)?.clone();
                    let canary = match worse(*t) {
                        Some(f) => worsen_buckets(direction, bounds, counts, f),
                        None => counts.clone(),
                    };
                    Some(StepBuckets { canary, baseline })
                })
                .collect();
            MetricData {
                histogram: Some(HistogramData {
                    bounds: bounds.clone(),
                    steps,
                    slower_than: *slower_than,
                }),
                ..MetricData::default()
            }
        }
        (
            steps::Fetched::Share {
                canary, expected, ..
            },
            steps::Fetched::Share {
                baseline,
                expected: expected_b,
                ..
            },
        ) => {
            let c = cut(canary, c_after, c_upto, 0);
            let b = cut(baseline, b_after, b_upto, shift);
            // Ready pods: the canary side's pods against the baseline side's, lined up.
            let expected = match (expected, expected_b) {
                (
                    steps::Expected::ReadyPods { canary: cp, .. },
                    steps::Expected::ReadyPods { baseline: bp, .. },
                ) => steps::Expected::ReadyPods {
                    canary: cut(cp, c_after, c_upto, 0),
                    baseline: cut(bp, b_after, b_upto, shift),
                },
                (e, _) => e.clone(),
            };
            let ((cv, bv), ev): ((Vec<f64>, Vec<f64>), Vec<f64>) = c
                .iter()
                .filter_map(|(t, n)| {
                    let m = *b.get(t)?;
                    let n = match worse(*t) {
                        Some(f) => worsen(direction, *n, f),
                        None => *n,
                    };
                    Some(((n, m), expected.at(*t)))
                })
                .unzip();
            MetricData {
                share: Some(ShareData::at_steps(cv, bv, ev)),
                ..MetricData::default()
            }
        }
        _ => MetricData::default(),
    }
}

/// A canary step's buckets made worse: every request `factor` times slower (faster for a
/// metric where lower is worse).
fn worsen_buckets(direction: Direction, bounds: &[f64], counts: &[f64], factor: f64) -> Vec<f64> {
    let ratio = match direction {
        Direction::Decrease => 1.0 / factor,
        _ => factor,
    };
    scaled(bounds, counts, ratio).unwrap_or_else(|| counts.to_vec())
}

async fn fetch(
    sources: &Sources,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) -> Result<QueryValue, source::Error> {
    let mut q = PromQuery::instant(query.to_string());
    q.timeout = Duration::from_secs(120);
    q.range = Some(Range { start, end, step });
    Ok(sources.prometheus(&q).await?.value)
}

fn window(points: &[(f64, f64)], after: f64, upto: f64) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|p| p.0 > after && p.0 <= upto)
        .collect()
}

/// Where a bad change shows: values multiplied (or divided, for decrease-is-bad).
fn worsen(direction: Direction, v: f64, factor: f64) -> f64 {
    match direction {
        Direction::Decrease => v / factor,
        _ => v * factor,
    }
}

/// Data of one A/A window ending at `end` (unix seconds), with the canary made worse by
/// `inject = (factor, from)` after `from`.
fn data_at(
    m: &crate::template::judge_spec::JudgeMetric,
    f: &Fetched,
    mode: Mode,
    end: f64,
    w: f64,
    inject: Option<(f64, f64)>,
) -> MetricData {
    data_in(m, f, Windows::new(mode, end - w, end), inject)
}

/// Which steps each side of an A/A comparison takes: the canary's `(after, upto]`, the
/// baseline's, and how far the baseline's steps move to line up with the canary's.
#[derive(Debug, Clone, Copy)]
struct Windows {
    canary: (f64, f64),
    baseline: (f64, f64),
    shift: f64,
}

impl Windows {
    /// The canary's steps in `(after, upto]`; in adjacent mode the baseline is the same
    /// variant's steps just before, as long, moved up to line up.
    fn new(mode: Mode, after: f64, upto: f64) -> Windows {
        let len = upto - after;
        match mode {
            Mode::Adjacent => Windows {
                canary: (after, upto),
                baseline: (after - len, after),
                shift: len,
            },
            Mode::Args => Windows {
                canary: (after, upto),
                baseline: (after, upto),
                shift: 0.0,
            },
        }
    }
}

fn data_in(
    m: &crate::template::judge_spec::JudgeMetric,
    f: &Fetched,
    win: Windows,
    inject: Option<(f64, f64)>,
) -> MetricData {
    let ((c_after, end), (b_after, b_upto)) = (win.canary, win.baseline);
    let canary: Vec<Vec<(f64, f64)>> = f.canary.iter().map(|s| window(s, c_after, end)).collect();
    let baseline: Vec<Vec<(f64, f64)>> = f
        .baseline
        .iter()
        .map(|s| window(s, b_after, b_upto))
        .collect();
    match &m.source {
        MetricSource::Series(_) => {
            let c = canary[0]
                .iter()
                .map(|&(t, v)| match inject {
                    Some((factor, from)) if t > from => worsen(m.config.direction, v, factor),
                    _ => v,
                })
                .collect();
            MetricData {
                canary: Some(c),
                baseline: Some(baseline[0].iter().map(|p| p.1).collect()),
                intervals: None,
                ..MetricData::default()
            }
        }
        MetricSource::Counts { .. } => {
            // Intervals pair steps by time: in adjacent mode, line the earlier window up
            // with the later one.
            let shift = win.shift;
            let moved = |s: &[(f64, f64)]| -> Vec<(f64, f64)> {
                s.iter().map(|&(t, v)| (t + shift, v)).collect()
            };
            let (bb, bt) = (moved(&baseline[0]), moved(&baseline[1]));
            let bad: Vec<(f64, f64)> = canary[0]
                .iter()
                .map(|&(t, v)| match inject {
                    Some((factor, from)) if t > from => (t, v * factor),
                    _ => (t, v),
                })
                .collect();
            let iv = intervals(&bad, &canary[1], &bb, &bt);
            MetricData {
                canary: None,
                baseline: None,
                intervals: Some(iv),
                ..MetricData::default()
            }
        }
        MetricSource::Counters { .. }
        | MetricSource::Histogram { .. }
        | MetricSource::Share { .. } => match &f.steps {
            Some(st) => step_data(
                st,
                m.config.direction,
                (c_after, end),
                (b_after, b_upto),
                win.shift as i64,
                inject,
            ),
            None => MetricData::default(),
        },
    }
}

fn alarm(c: Classification) -> bool {
    matches!(c, Classification::High | Classification::Low)
}

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

fn current_effect(cfg: &MetricConfig) -> f64 {
    if cfg.direction == Direction::Decrease {
        cfg.effect.allowed_decrease()
    } else {
        cfg.effect.allowed_increase()
    }
}

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

const CONFIDENCES: [f64; 8] = [0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 0.9999];

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

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied()
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
    let step = spec.step.max(Duration::from_secs(1));
    let w = spec.window.as_secs_f64();
    // Adjacent windows reach one window back; adjacent polled analyses one analysis back.
    let analysis = plan.polls.map_or(Duration::ZERO, |p| p.interval * p.count);
    let lookback = 2 * spec.window.max(analysis) + 2 * step;
    let history = Arc::new(History::new(step, plan.from, plan.to, lookback));
    let sources = sources.clone().with_history(history.clone());
    let first = align_down(plan.from, step);
    let last = align_down(plan.to, step);
    let start = align_down(
        first - chrono::Duration::from_std(lookback).unwrap_or_default(),
        step,
    );

    // Each query once, for the whole span.
    let mut fetched = Vec::new();
    for (i, (canary_q, baseline_q)) in rendered.metrics.iter().enumerate() {
        on_progress(
            &format!("fetching {}", spec.metrics[i].name),
            i,
            spec.metrics.len(),
        );
        let side = |qs: &Vec<String>| {
            let qs = qs.clone();
            let sources = sources.clone();
            async move {
                let mut out = Vec::new();
                for q in &qs {
                    out.push(fetch(&sources, q, start, last, step).await?);
                }
                Ok::<_, source::Error>(out)
            }
        };
        let baseline = side(baseline_q).await?;
        let canary = match plan.mode {
            Mode::Adjacent => baseline.clone(),
            Mode::Args => side(canary_q).await?,
        };
        let m = &spec.metrics[i];
        let steps = if m.source.is_counter() {
            let expected = rendered.expected_share.get(i).cloned().flatten();
            let of = |v: &Vec<QueryValue>| {
                let refs: Vec<&QueryValue> = v.iter().collect();
                steps::fetch(m, &refs, &refs, &expected, step.as_secs_f64())
            };
            let data = |e: crate::judging::JudgeError| CalibrateError::Data(e.to_string());
            Some(Steps {
                canary: of(&canary).map_err(data)?,
                baseline: of(&baseline).map_err(data)?,
            })
        } else {
            None
        };
        let flat = |v: Vec<QueryValue>| v.iter().map(|q| points(Some(q))).collect();
        fetched.push(Fetched {
            canary: flat(canary),
            baseline: flat(baseline),
            steps,
        });
    }

    let every = plan.every.as_secs().max(1) as i64;
    let mut moments = Vec::new();
    let mut t = first.timestamp();
    while t <= last.timestamp() {
        moments.push(t as f64);
        t += every;
    }

    let mut metrics = Vec::new();
    let mut per_moment: Vec<Vec<Classification>> = vec![Vec::new(); moments.len()];
    for (mi, (m, f)) in spec.metrics.iter().zip(&fetched).enumerate() {
        on_progress(&format!("judging {}", m.name), mi, spec.metrics.len());
        let data: Vec<MetricData> = moments
            .iter()
            .map(|&end| data_at(m, f, plan.mode, end, w, None))
            .collect();
        let judged: Vec<_> = data.iter().map(|d| classify(&m.config, d)).collect();
        for (i, j) in judged.iter().enumerate() {
            per_moment[i].push(j.classification);
        }
        let with_data: Vec<usize> = (0..judged.len())
            .filter(|&i| judged[i].classification != Classification::Nodata)
            .collect();
        let n = with_data.len();
        let rate_of = |cfg: &MetricConfig| -> f64 {
            if n == 0 {
                return f64::NAN;
            }
            let alarms = with_data
                .iter()
                .filter(|&&i| alarm(classify(cfg, &data[i]).classification))
                .count();
            alarms as f64 / n as f64
        };
        let false_alarms = with_data
            .iter()
            .filter(|&&i| alarm(judged[i].classification))
            .count();
        let rate = if n == 0 {
            f64::NAN
        } else {
            false_alarms as f64 / n as f64
        };
        let effect_curve: Vec<CurvePoint> = effect_grid(&m.config)
            .into_iter()
            .map(|v| CurvePoint {
                value: v,
                rate: rate_of(&with_effect(&m.config, v)),
            })
            .collect();
        let mut confidences: Vec<f64> = CONFIDENCES.to_vec();
        confidences.push(m.config.confidence);
        confidences.sort_by(f64::total_cmp);
        confidences.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        let confidence_curve: Vec<CurvePoint> = confidences
            .into_iter()
            .map(|c| {
                let mut cfg = m.config.clone();
                cfg.confidence = c;
                CurvePoint {
                    value: c,
                    rate: rate_of(&cfg),
                }
            })
            .collect();
        let meets = |p: &&CurvePoint| p.rate.is_finite() && p.rate <= plan.target;
        let recommended_effect = effect_curve.iter().find(meets).map(|p| p.value);
        let recommended_confidence = confidence_curve.iter().find(meets).map(|p| p.value);

        // Injected regressions.
        let mut detection = Vec::new();
        let starts: Vec<f64> = {
            let fits: Vec<f64> = moments
                .iter()
                .copied()
                .filter(|&t| t + w <= last.timestamp() as f64)
                .collect();
            let keep = fits.len().min(40);
            (0..keep).map(|i| fits[i * fits.len() / keep]).collect()
        };
        let steps = (w / step.as_secs_f64()).round().max(1.0) as usize;
        for &factor in &plan.inject {
            let caught = with_data
                .iter()
                .filter(|&&i| {
                    let d = data_at(m, f, plan.mode, moments[i], w, Some((factor, f64::MIN)));
                    alarm(classify(&m.config, &d).classification)
                })
                .count();
            let mut times = Vec::new();
            for &t0 in &starts {
                for k in 1..=steps {
                    let end = t0 + (k as f64) * step.as_secs_f64();
                    let d = data_at(m, f, plan.mode, end, w, Some((factor, t0)));
                    if alarm(classify(&m.config, &d).classification) {
                        times.push(end - t0);
                        break;
                    }
                }
            }
            times.sort_by(f64::total_cmp);
            detection.push(Detection {
                factor,
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
            });
        }
        let ratio = judged
            .iter()
            .zip(&moments)
            .filter_map(|(j, t)| {
                let s = j.samples.as_ref()?;
                let (c, b) = (s.canary.mean?, s.baseline.mean?);
                (b != 0.0).then_some((*t, c / b))
            })
            .collect();
        metrics.push(MetricCalibration {
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
            ratio,
        });
    }

    let polled = plan.polls.as_ref().map(|p| {
        on_progress("replaying polled analyses", 0, 1);
        polled(
            spec,
            &fetched,
            plan,
            p,
            first.timestamp() as f64,
            last.timestamp() as f64,
        )
    });

    // The overall A/A verdict per moment, scored as a judgement would be.
    let mut verdicts = Vec::new();
    let (mut fail, mut marginal, mut inconclusive) = (0, 0, 0);
    for (t, classes) in moments.iter().zip(&per_moment) {
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
            Verdict::Fail => fail += 1,
            Verdict::Marginal => marginal += 1,
            Verdict::Inconclusive => inconclusive += 1,
            Verdict::Pass => {}
        }
        let name = v.as_str().to_string();
        verdicts.push((*t as i64, name));
    }
    let judged = moments.len() - inconclusive;
    let rate = if judged == 0 {
        f64::NAN
    } else {
        fail as f64 / judged as f64
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
        fail,
        marginal,
        inconclusive,
        false_alarm_rate: rate,
        false_alarm_rate_upper95: upper95(fail, judged),
        meets_target: rate.is_finite() && rate <= plan.target,
        windows_needed: windows_needed(plan.target),
        verdicts,
        metrics,
        polled,
        queries: history.stats(),
    })
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

    #[test]
    fn worse_means_the_bad_direction() {
        assert_eq!(worsen(Direction::Increase, 10.0, 1.5), 15.0);
        assert_eq!(worsen(Direction::Decrease, 15.0, 1.5), 10.0);
    }
}
