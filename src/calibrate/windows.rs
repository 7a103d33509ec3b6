//! The history a calibration judges, fetched once for the whole span, and the A/A windows
//! cut from it: which steps each side takes, lined up, with a regression of a known size
//! injected into the canary side when asked.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{CalibrateError, Mode, Span};
use crate::judge::classify::MetricData;
use crate::judge::config::Direction;
use crate::judge::histogram::HistogramData;
use crate::judge::share::ShareData;
use crate::judging::steps;
use crate::judging::{intervals, points};
use crate::source::QueryValue;
use crate::source::{self, PromQuery, Range, Sources};
use crate::stats::counts::Counts;
use crate::stats::histogram::{scaled, StepBuckets};
use crate::stats::sequential::Interval;
use crate::template::judge_spec::{JudgeMetric, JudgeSpec, MetricSource, Rendered};

/// Whether the metric judges steps since the analysis's start (the anytime-valid kinds) or a
/// sliding window.
pub(super) fn anchored(m: &JudgeMetric) -> bool {
    !matches!(m.source, MetricSource::Series(_))
}

/// A metric's history: series values, or counts, per side; for the kinds built from raw
/// counters (`counters`, `histogram`, `share`), each step's increases, as the judge takes them.
pub(super) struct Fetched {
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

/// One query as a range query over the whole span, on the spec's step.
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

/// Every metric's history over the whole span, each query fetched once (in adjacent mode the
/// canary side is the baseline's own history). A failed query fails the calibration: no
/// false-alarm rate can be claimed from part of the data.
pub(super) async fn fetch_all(
    spec: &JudgeSpec,
    rendered: &Rendered,
    mode: Mode,
    sources: &Sources,
    span: &Span,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<Fetched>, CalibrateError> {
    let (start, last, step) = (span.start, span.last, span.step);
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
        let canary = match mode {
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
    Ok(fetched)
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
pub(super) fn data_at(
    m: &JudgeMetric,
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
pub(super) struct Windows {
    pub(super) canary: (f64, f64),
    pub(super) baseline: (f64, f64),
    pub(super) shift: f64,
}

impl Windows {
    /// The canary's steps in `(after, upto]`; in adjacent mode the baseline is the same
    /// variant's steps just before, as long, moved up to line up.
    pub(super) fn new(mode: Mode, after: f64, upto: f64) -> Windows {
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

/// Data of one A/A comparison: each side's steps as `win` places them, with the canary made
/// worse by `inject = (factor, from)` after `from`.
pub(super) fn data_in(
    m: &JudgeMetric,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worse_means_the_bad_direction() {
        assert_eq!(worsen(Direction::Increase, 10.0, 1.5), 15.0);
        assert_eq!(worsen(Direction::Decrease, 15.0, 1.5), 10.0);
    }
}
