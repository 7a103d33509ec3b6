//! From query answers to what each metric kind judges: sliding-window samples (thinned to
//! non-overlapping points), per-step counts, and per-step increases of raw counters and
//! histogram buckets, cut at the analysis's start.

use std::collections::BTreeMap;

use super::{intervals, points, CountsPoints, JudgeError, MetricOutcome};
use crate::judge::classify::{classify, MetricData};
use crate::judge::histogram::HistogramData;
use crate::judge::share::ShareData;
use crate::source::{QueryValue, Series};
use crate::stats::counts::Counts;
use crate::stats::histogram::{per_bucket, StepBuckets};
use crate::stats::sequential::Interval;
use crate::template::judge_spec::{JudgeMetric, MetricSource};

/// Step → value, keyed by unix seconds.
pub(crate) type Steps = BTreeMap<i64, f64>;

/// Step → per-bucket requests.
type BucketSteps = BTreeMap<i64, Vec<f64>>;

/// One metric's data as fetched, before the cut at the analysis's start.
pub(crate) enum Fetched {
    /// Sliding-window samples; `stride` keeps every `stride`-th point from the end.
    Series {
        canary: Vec<(f64, f64)>,
        baseline: Vec<(f64, f64)>,
        stride: usize,
        range_note: Option<String>,
    },
    /// Per-step bad and total events (canary bad, canary total, baseline bad, total).
    Counts(CountsPoints),
    /// Per-step increases of counters, per variant: (bad, total).
    Counters {
        canary: (Steps, Steps),
        baseline: (Steps, Steps),
    },
    /// Per-step per-bucket increases over one bucket layout.
    Histogram {
        bounds: Vec<f64>,
        canary: BTreeMap<i64, Vec<f64>>,
        baseline: BTreeMap<i64, Vec<f64>>,
        slower_than: Option<f64>,
    },
    /// Per-step requests of each variant and the expected share.
    Share {
        canary: Steps,
        baseline: Steps,
        expected: Expected,
    },
}

/// The share the canary should get.
#[derive(Debug, Clone)]
pub(crate) enum Expected {
    /// Its weight, in (0, 1].
    Weight(f64),
    /// Its share of the ready pods at each step: (canary, baseline) ready pods.
    ReadyPods { canary: Steps, baseline: Steps },
}

impl Expected {
    /// The expected share at step `t` (NaN when no variant has a ready pod).
    pub(crate) fn at(&self, t: i64) -> f64 {
        match self {
            Expected::Weight(w) => *w,
            Expected::ReadyPods { canary, baseline } => {
                let (c, b) = (
                    canary.get(&t).copied().unwrap_or(0.0),
                    baseline.get(&t).copied().unwrap_or(0.0),
                );
                if c + b > 0.0 {
                    c / (c + b)
                } else {
                    f64::NAN
                }
            }
        }
    }
}

/// A gauge's value at each step (summed over its series).
fn gauge_steps(v: Option<&&QueryValue>) -> Steps {
    let mut out = Steps::new();
    for s in series_of(v) {
        for &(t, x) in &s.samples {
            if x.is_finite() {
                *out.entry(t.round() as i64).or_insert(0.0) += x;
            }
        }
    }
    out
}

fn series_of<'a>(v: Option<&&'a QueryValue>) -> &'a [Series] {
    match v {
        Some(QueryValue::Matrix(s)) | Some(QueryValue::Vector(s)) => s,
        _ => &[],
    }
}

/// Per-step increases of every counter series, grouped by `group(labels)` and summed within
/// a group. A drop between two samples is a counter reset: the increase is the new value, as
/// Prometheus' `increase` counts it. Each series' first sample is its base, never an
/// increase; no extrapolation, so the steps partition time exactly.
fn increases<K: Ord>(
    series: &[Series],
    group: impl Fn(&BTreeMap<String, String>) -> Option<K>,
) -> BTreeMap<K, Steps> {
    let mut out: BTreeMap<K, Steps> = BTreeMap::new();
    for s in series {
        let Some(key) = group(&s.labels) else {
            continue;
        };
        let entry = out.entry(key).or_default();
        let mut prev: Option<f64> = None;
        for &(t, v) in &s.samples {
            if !v.is_finite() {
                continue;
            }
            if let Some(p) = prev {
                let inc = if v >= p { v - p } else { v };
                *entry.entry(t.round() as i64).or_insert(0.0) += inc;
            }
            prev = Some(v);
        }
    }
    out
}

fn counter_steps(v: Option<&&QueryValue>) -> Steps {
    increases(series_of(v), |_| Some(()))
        .remove(&())
        .unwrap_or_default()
}

fn parse_le(s: &str) -> Option<f64> {
    crate::source::value_parse_float(s).filter(|v| !v.is_nan())
}

/// Per-step per-bucket increases of one variant's bucket counters: `(bounds, steps)`.
fn bucket_steps(
    metric: &str,
    v: Option<&&QueryValue>,
) -> Result<(Vec<f64>, BucketSteps), JudgeError> {
    let series = series_of(v);
    if let Some(s) = series.iter().find(|s| !s.labels.contains_key("le")) {
        return Err(JudgeError::Data {
            metric: metric.into(),
            message: format!(
                "histogram.buckets returned a series without an `le` label ({:?}); give the \
                 `..._bucket` counters, aggregated `by (le, …)` if at all",
                s.labels
            ),
        });
    }
    // Keyed by the bound's bits so +Inf and every float order correctly.
    let by_le = increases(series, |l| {
        l.get("le").and_then(|s| parse_le(s)).map(ordered)
    });
    let bounds: Vec<f64> = by_le
        .keys()
        .map(|k| f64::from_bits(unordered(*k)))
        .collect();
    let mut steps: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for (j, per_step) in by_le.values().enumerate() {
        for (&t, &inc) in per_step {
            steps.entry(t).or_insert_with(|| vec![0.0; bounds.len()])[j] = inc;
        }
    }
    // Cumulative `le` counts → per bucket, never negative.
    for counts in steps.values_mut() {
        *counts = per_bucket(counts);
    }
    Ok((bounds, steps))
}

/// Per-step increases of each native bucket (keyed by its upper bound's order) of one
/// variant's native histogram series, summed over the series. A sample whose count is below
/// the previous one is a counter reset: the increase is the new histogram, as Prometheus'
/// `increase` counts it. A bucket missing from the previous sample had no observations.
fn native_steps(
    metric: &str,
    v: Option<&&QueryValue>,
) -> Result<BTreeMap<i64, BTreeMap<u64, f64>>, JudgeError> {
    let series = series_of(v);
    if let Some(s) = series
        .iter()
        .find(|s| s.histograms.is_empty() && !s.samples.is_empty())
    {
        return Err(JudgeError::Data {
            metric: metric.into(),
            message: format!(
                "histogram.native returned plain samples, not a native histogram ({:?}); is                  the series a classic histogram (use histogram.buckets) or is Prometheus                  missing --enable-feature=native-histograms?",
                s.labels
            ),
        });
    }
    let mut out: BTreeMap<i64, BTreeMap<u64, f64>> = BTreeMap::new();
    for s in series {
        let mut prev: Option<&crate::source::NativeHistogram> = None;
        for (t, h) in &s.histograms {
            if let Some(p) = prev {
                let step = out.entry(t.round() as i64).or_default();
                let reset = h.count < p.count;
                for b in &h.buckets {
                    let before = if reset {
                        0.0
                    } else {
                        p.buckets
                            .iter()
                            .find(|x| x.upper() == b.upper())
                            .map_or(0.0, |x| x.count())
                    };
                    let inc = (b.count() - before).max(0.0);
                    *step.entry(ordered(b.upper())).or_insert(0.0) += inc;
                }
            }
            prev = Some(h);
        }
    }
    Ok(out)
}

/// Both variants' native histograms on one bucket layout: the union of their bucket bounds
/// (ending in `+Inf`), each step's per-bucket increases, and `slower_than` moved to the first
/// bound at or above it (native bounds are powers of a growth factor, rarely round numbers).
fn native_histogram(
    metric: &str,
    c: Option<&&QueryValue>,
    b: Option<&&QueryValue>,
    slower_than: Option<f64>,
) -> Result<Fetched, JudgeError> {
    let (cs, bs) = (native_steps(metric, c)?, native_steps(metric, b)?);
    let mut keys: Vec<u64> = cs
        .values()
        .chain(bs.values())
        .flat_map(|m| m.keys().copied())
        .collect();
    keys.push(ordered(f64::INFINITY));
    keys.sort_unstable();
    keys.dedup();
    let bounds: Vec<f64> = keys.iter().map(|k| f64::from_bits(unordered(*k))).collect();
    let dense = |m: BTreeMap<i64, BTreeMap<u64, f64>>| -> BTreeMap<i64, Vec<f64>> {
        m.into_iter()
            .map(|(t, per)| {
                let v = keys
                    .iter()
                    .map(|k| per.get(k).copied().unwrap_or(0.0))
                    .collect();
                (t, v)
            })
            .collect()
    };
    let slower_than = slower_than.and_then(|t| bounds.iter().copied().find(|b| *b >= t));
    Ok(Fetched::Histogram {
        bounds,
        canary: dense(cs),
        baseline: dense(bs),
        slower_than: slower_than.filter(|b| b.is_finite()),
    })
}

/// A total order on floats as integers (for map keys).
fn ordered(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

fn unordered(k: u64) -> u64 {
    if k >> 63 == 1 {
        k & !(1 << 63)
    } else {
        !k
    }
}

/// The longest range selector (`[2m]`) of a query, in seconds.
fn longest_range(query: &str) -> Option<f64> {
    let re = regex::Regex::new(r"\[([0-9][0-9smhdwy]*)(?::[^\]]*)?\]").ok()?;
    re.captures_iter(query)
        .filter_map(|c| crate::template::argo::parse_duration(&c[1]).ok())
        .map(|d| d.as_secs_f64())
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
}

/// Fetched data of metric `m` from its canary and baseline answers.
pub(crate) fn fetch(
    m: &JudgeMetric,
    c: &[&QueryValue],
    b: &[&QueryValue],
    expected: &Option<String>,
    step_secs: f64,
) -> Result<Fetched, JudgeError> {
    Ok(match &m.source {
        MetricSource::Series(query) => {
            let (stride, range_note) = match longest_range(query) {
                Some(r) if r > step_secs => {
                    let stride = (r / step_secs).ceil() as usize;
                    (stride, Some(format!("[{}s]", r)))
                }
                _ => (1, None),
            };
            Fetched::Series {
                canary: points(c.first().copied()),
                baseline: points(b.first().copied()),
                stride,
                range_note,
            }
        }
        MetricSource::Counts { .. } => Fetched::Counts(CountsPoints {
            canary_bad: points(c.first().copied()),
            canary_total: points(c.get(1).copied()),
            baseline_bad: points(b.first().copied()),
            baseline_total: points(b.get(1).copied()),
        }),
        MetricSource::Counters { .. } => Fetched::Counters {
            canary: (counter_steps(c.first()), counter_steps(c.get(1))),
            baseline: (counter_steps(b.first()), counter_steps(b.get(1))),
        },
        MetricSource::Histogram {
            slower_than,
            native: true,
            ..
        } => native_histogram(&m.name, c.first(), b.first(), *slower_than)?,
        MetricSource::Histogram { slower_than, .. } => {
            let (cb, cs) = bucket_steps(&m.name, c.first())?;
            let (bb, bs) = bucket_steps(&m.name, b.first())?;
            let bounds = match (cb.is_empty(), bb.is_empty()) {
                (true, _) => bb,
                (_, true) => cb,
                _ if cb == bb => cb,
                _ => {
                    return Err(JudgeError::Data {
                        metric: m.name.clone(),
                        message: format!(
                            "canary and baseline histograms have different buckets (canary le \
                             {cb:?}, baseline le {bb:?}); both variants must export the same \
                             bucket layout"
                        ),
                    })
                }
            };
            if !bounds.is_empty() && bounds.last() != Some(&f64::INFINITY) {
                return Err(JudgeError::Data {
                    metric: m.name.clone(),
                    message: format!("histogram has no le=\"+Inf\" bucket (le {bounds:?})"),
                });
            }
            if let Some(t) = slower_than {
                if !bounds.is_empty() && !bounds.contains(t) {
                    return Err(JudgeError::Data {
                        metric: m.name.clone(),
                        message: format!(
                            "histogram.slower_than = {t} is not a bucket bound (le {bounds:?})"
                        ),
                    });
                }
            }
            Fetched::Histogram {
                bounds,
                canary: cs,
                baseline: bs,
                slower_than: *slower_than,
            }
        }
        MetricSource::Share { ready_pods, .. } => {
            let expected = if ready_pods.is_some() {
                Expected::ReadyPods {
                    canary: gauge_steps(c.get(1)),
                    baseline: gauge_steps(b.get(1)),
                }
            } else {
                let text = expected.clone().unwrap_or_default();
                match text.trim().trim_end_matches('%').parse::<f64>() {
                    Ok(p) if p > 0.0 && p <= 100.0 => Expected::Weight(p / 100.0),
                    _ => {
                        return Err(JudgeError::Data {
                            metric: m.name.clone(),
                            message: format!(
                                "share.expected rendered to {text:?}: give the canary's weight \
                                 in percent, in (0, 100]"
                            ),
                        })
                    }
                }
            };
            Fetched::Share {
                canary: counter_steps(c.first()),
                baseline: counter_steps(b.first()),
                expected,
            }
        }
    })
}

/// The steps either variant has data for, ending after `anchor`.
fn steps_after<V>(
    canary: &BTreeMap<i64, V>,
    baseline: &BTreeMap<i64, V>,
    anchor: i64,
) -> std::collections::BTreeSet<i64> {
    canary
        .keys()
        .chain(baseline.keys())
        .copied()
        .filter(|t| *t > anchor)
        .collect()
}

impl Fetched {
    /// The first step (unix seconds) in which the canary had requests.
    pub(super) fn first_canary_traffic(&self) -> Option<i64> {
        let first = |s: &Steps| s.iter().find(|(_, v)| **v > 0.0).map(|(t, _)| *t);
        match self {
            Fetched::Series { .. } => None,
            Fetched::Counts(c) => c
                .canary_total
                .iter()
                .find(|(_, v)| v.is_finite() && *v > 0.0)
                .map(|(t, _)| t.round() as i64),
            Fetched::Counters { canary, .. } => first(&canary.1),
            Fetched::Share { canary, .. } => first(canary),
            Fetched::Histogram { canary, .. } => canary
                .iter()
                .find(|(_, v)| v.iter().sum::<f64>() > 0.0)
                .map(|(t, _)| *t),
        }
    }

    /// Judges the metric on the steps ending after `anchor` (unix seconds).
    pub(super) fn judge(self, m: &JudgeMetric, anchor: i64) -> MetricOutcome {
        let after = |t: &i64| *t > anchor;
        let outcome = |data: MetricData| MetricOutcome {
            name: m.name.clone(),
            group: m.group.clone(),
            judgement: classify(&m.config, &data),
            canary_points: Vec::new(),
            baseline_points: Vec::new(),
            counts_points: None,
        };
        match self {
            Fetched::Series {
                canary,
                baseline,
                stride,
                range_note,
            } => {
                let thin = |p: &[(f64, f64)]| -> Vec<f64> {
                    let n = p.len();
                    p.iter()
                        .enumerate()
                        .filter(|(i, _)| (n - 1 - i).is_multiple_of(stride))
                        .map(|(_, v)| v.1)
                        .collect()
                };
                let data = MetricData {
                    canary: Some(thin(&canary)),
                    baseline: Some(thin(&baseline)),
                    ..MetricData::default()
                };
                let mut o = outcome(data);
                if let Some(note) = range_note {
                    o.judgement.reasons.push(format!(
                        "judged every {stride}th point ({} canary of {}): the query's {note} \
                         range spans {stride} steps, so neighbouring points overlap and are not \
                         independent evidence",
                        canary.len().div_ceil(stride),
                        canary.len()
                    ));
                }
                o.canary_points = canary;
                o.baseline_points = baseline;
                o
            }
            Fetched::Counts(c) => {
                let cut = |p: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
                    p.into_iter()
                        .filter(|(t, _)| after(&(t.round() as i64)))
                        .collect()
                };
                let c = CountsPoints {
                    canary_bad: cut(c.canary_bad),
                    canary_total: cut(c.canary_total),
                    baseline_bad: cut(c.baseline_bad),
                    baseline_total: cut(c.baseline_total),
                };
                let iv = intervals(
                    &c.canary_bad,
                    &c.canary_total,
                    &c.baseline_bad,
                    &c.baseline_total,
                );
                let mut o = outcome(MetricData {
                    intervals: Some(iv),
                    ..MetricData::default()
                });
                o.counts_points = Some(Box::new(c));
                o
            }
            Fetched::Counters { canary, baseline } => {
                let times: Vec<i64> = canary
                    .1
                    .keys()
                    .chain(baseline.1.keys())
                    .copied()
                    .filter(after)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let get = |s: &Steps, t: &i64| s.get(t).copied().unwrap_or(0.0);
                let iv: Vec<Interval> = times
                    .iter()
                    .map(|t| Interval {
                        canary: Counts {
                            bad: get(&canary.0, t).min(get(&canary.1, t)),
                            total: get(&canary.1, t),
                        },
                        baseline: Counts {
                            bad: get(&baseline.0, t).min(get(&baseline.1, t)),
                            total: get(&baseline.1, t),
                        },
                    })
                    .collect();
                let pts = |s: &Steps| -> Vec<(f64, f64)> {
                    times.iter().map(|t| (*t as f64, get(s, t))).collect()
                };
                let cp = CountsPoints {
                    canary_bad: pts(&canary.0),
                    canary_total: pts(&canary.1),
                    baseline_bad: pts(&baseline.0),
                    baseline_total: pts(&baseline.1),
                };
                let mut o = outcome(MetricData {
                    intervals: Some(iv),
                    ..MetricData::default()
                });
                o.counts_points = Some(Box::new(cp));
                o
            }
            Fetched::Histogram {
                bounds,
                canary,
                baseline,
                slower_than,
            } => {
                let times = steps_after(&canary, &baseline, anchor);
                let zero = vec![0.0; bounds.len()];
                let steps: Vec<StepBuckets> = times
                    .iter()
                    .map(|t| StepBuckets {
                        canary: canary.get(t).unwrap_or(&zero).clone(),
                        baseline: baseline.get(t).unwrap_or(&zero).clone(),
                    })
                    .collect();
                let p50 = |side: &BTreeMap<i64, Vec<f64>>| -> Vec<(f64, f64)> {
                    times
                        .iter()
                        .filter_map(|t| {
                            let q = crate::stats::histogram::quantile(&bounds, side.get(t)?, 0.5);
                            q.is_finite().then_some((*t as f64, q))
                        })
                        .collect()
                };
                let (cp, bp) = (p50(&canary), p50(&baseline));
                let mut o = outcome(MetricData {
                    histogram: Some(HistogramData {
                        bounds,
                        steps,
                        slower_than,
                    }),
                    ..MetricData::default()
                });
                o.canary_points = cp;
                o.baseline_points = bp;
                o
            }
            Fetched::Share {
                canary,
                baseline,
                expected,
            } => {
                let times = steps_after(&canary, &baseline, anchor);
                let get = |s: &Steps, t: &i64| s.get(t).copied().unwrap_or(0.0);
                let data = ShareData::at_steps(
                    times.iter().map(|t| get(&canary, t)).collect(),
                    times.iter().map(|t| get(&baseline, t)).collect(),
                    times.iter().map(|t| expected.at(*t)).collect(),
                );
                let mut o = outcome(MetricData {
                    share: Some(data),
                    ..MetricData::default()
                });
                o.canary_points = times
                    .iter()
                    .filter_map(|t| {
                        let (c, b) = (get(&canary, t), get(&baseline, t));
                        (c + b > 0.0).then(|| (*t as f64, c / (c + b)))
                    })
                    .collect();
                o
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(le: Option<&str>, samples: &[(f64, f64)]) -> Series {
        let mut labels = BTreeMap::new();
        if let Some(le) = le {
            labels.insert("le".to_string(), le.to_string());
        }
        Series::of(labels, samples.to_vec())
    }

    /// Two variants' native histograms as Prometheus' HTTP API returns them, through the
    /// answer decoder: different sparse layouts merge into one, a reset counts the new
    /// histogram, `slower_than` moves to the next bound.
    #[test]
    fn native_histograms_become_steps_on_one_layout() {
        let body = |buckets: &str| {
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[
                {{"metric":{{"pod":"a"}},"histograms":[{buckets}]}}]}}}}"#
            )
        };
        let canary = body(
            r#"[0,{"count":"3","sum":"30","buckets":[[0,"8","16","2"],[0,"16","32","1"]]}],
               [30,{"count":"7","sum":"90","buckets":[[0,"8","16","3"],[0,"16","32","3"],[0,"512","1024","1"]]}],
               [60,{"count":"2","sum":"20","buckets":[[0,"8","16","2"]]}]"#,
        );
        let baseline = body(
            r#"[0,{"count":"0","sum":"0","buckets":[]}],
               [30,{"count":"4","sum":"40","buckets":[[0,"4","8","1"],[0,"8","16","3"]]}]"#,
        );
        let decode = |b: &str| {
            crate::source::prometheus::decode("p", 200, true, b.as_bytes())
                .unwrap()
                .value
        };
        let (c, b) = (decode(&canary), decode(&baseline));
        let Fetched::Histogram {
            bounds,
            canary,
            baseline,
            slower_than,
        } = native_histogram("latency", Some(&&c), Some(&&b), Some(500.0)).unwrap()
        else {
            panic!("not a histogram");
        };
        assert_eq!(bounds, vec![8.0, 16.0, 32.0, 1024.0, f64::INFINITY]);
        assert_eq!(canary[&30], vec![0.0, 1.0, 2.0, 1.0, 0.0]);
        // The count fell: a reset, so the new histogram is the increase.
        assert_eq!(canary[&60], vec![0.0, 2.0, 0.0, 0.0, 0.0]);
        assert_eq!(baseline[&30], vec![1.0, 3.0, 0.0, 0.0, 0.0]);
        assert_eq!(slower_than, Some(1024.0));

        let plain = QueryValue::Matrix(vec![series(None, &[(0.0, 1.0)])]);
        let e = native_steps("latency", Some(&&plain)).unwrap_err();
        assert!(e.to_string().contains("not a native histogram"), "{e}");
    }

    #[test]
    fn counter_reset_counts_the_new_value_never_a_negative() {
        let s = [series(
            None,
            &[(0.0, 10.0), (30.0, 15.0), (60.0, 3.0), (90.0, 7.0)],
        )];
        let inc = increases(&s, |_| Some(())).remove(&()).unwrap();
        assert_eq!(
            inc.into_iter().collect::<Vec<_>>(),
            vec![(30, 5.0), (60, 3.0), (90, 4.0)]
        );
    }

    #[test]
    fn buckets_sum_across_series_and_order_by_le() {
        let v = QueryValue::Matrix(vec![
            series(Some("+Inf"), &[(0.0, 0.0), (30.0, 10.0)]),
            series(Some("100"), &[(0.0, 0.0), (30.0, 8.0)]),
            series(Some("100"), &[(0.0, 5.0), (30.0, 6.0)]),
            series(Some("5"), &[(0.0, 0.0), (30.0, 2.0)]),
        ]);
        let (bounds, steps) = bucket_steps("m", Some(&&v)).unwrap();
        assert_eq!(bounds, vec![5.0, 100.0, f64::INFINITY]);
        assert_eq!(steps[&30], vec![2.0, 7.0, 1.0]);
    }

    #[test]
    fn a_selector_without_le_is_an_error_naming_the_metric() {
        let v = QueryValue::Matrix(vec![series(None, &[(0.0, 1.0)])]);
        let e = bucket_steps("latency", Some(&&v)).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "metric latency: histogram.buckets returned a series without an `le` label"
            ),
            "{e}"
        );
    }

    #[test]
    fn range_longer_than_step_is_found() {
        assert_eq!(longest_range("rate(x[2m]) + rate(y[30s])"), Some(120.0));
        assert_eq!(longest_range("sum(x)"), None);
    }
}
