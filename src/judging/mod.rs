//! Running a Judge spec: render its queries, fetch them, judge each metric, check the SLOs,
//! score, and combine into one verdict with its reasons.
//!
//! The window is aligned to the step (its end is the last whole step before now), so the
//! same judgement asked by many rollouts at once issues identical queries — which the
//! source's coalescing cache answers once.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;

pub mod budget;
mod fetch;
pub mod merge;
pub(crate) mod steps;

use crate::judge::classify::MetricJudgement;
use crate::judge::score::{score, Scored, Verdict};
use crate::slo::{self, SloOutcome, SloResult, WindowCounts};
use crate::source::{self, PromQuery, QueryValue, Range, Sources};
use crate::stats::counts::Counts;
use crate::stats::sequential::Interval;
use crate::template::args::ArgError;
use crate::template::judge_spec::JudgeSpec;

/// Why a judgement could not be made (as opposed to a verdict of `inconclusive`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum JudgeError {
    /// The request's args do not fit the spec.
    #[error("{0}")]
    Args(#[from] ArgError),
    /// A query failed: the judgement is an error, never a pass.
    #[error("query failed: {0}")]
    Source(#[from] source::Error),
    /// The request's `since` cannot start an analysis.
    #[error("since: {0}")]
    Since(String),
    /// The data does not fit the metric (e.g. canary and baseline histograms with different
    /// buckets): a configuration problem, never a pass.
    #[error("metric {metric}: {message}")]
    Data {
        /// Name of the metric whose data does not fit.
        metric: String,
        /// What is wrong.
        message: String,
    },
}

/// Where the analysis's sequence of steps starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorSource {
    /// The caller's `since`.
    Since,
    /// The canary's first step with traffic, found in the data.
    FirstTraffic,
    /// The canary had traffic at the very start of the look-back: the analysis may be
    /// older than the look-back, and is judged from the look-back's start.
    LookbackLimit,
    /// No canary traffic in the whole look-back.
    NoTraffic,
}

/// The start of the step sequence the anytime-valid metrics judge.
#[derive(Debug, Clone, Serialize)]
pub struct Anchor {
    /// The start (RFC 3339): steps ending after it are judged.
    pub start: String,
    /// Where it came from.
    pub source: AnchorSource,
    /// Steps judged since the start.
    pub steps: usize,
}

/// What an analysis polling this judge should do now: the verdict, plus whether a pass is
/// already final. Argo reads it with `jsonPath: "{$.decision}"` (see
/// `analysis-templates/canary-engine-judge.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Promote: every anytime-valid test has ruled its regression out (an early pass), or the
    /// analysis has run for `decide_after` and the verdict is pass (or no `decide_after`
    /// was asked for and the verdict is pass).
    Pass,
    /// Roll back: the verdict is fail.
    Fail,
    /// No regression so far, but not ruled out yet and `decide_after` has not passed: poll
    /// again.
    Wait,
    /// The verdict is marginal or inconclusive.
    Inconclusive,
}

/// The decision, and why in words.
fn decide(
    verdict: Verdict,
    metrics: &[MetricOutcome],
    anchor: Option<&Anchor>,
    end: DateTime<Utc>,
    decide_after: Option<Duration>,
) -> (Decision, String) {
    match verdict {
        Verdict::Fail => return (Decision::Fail, "the verdict is fail".into()),
        Verdict::Marginal | Verdict::Inconclusive => {
            return (
                Decision::Inconclusive,
                format!("the verdict is {}", verdict.as_str()),
            )
        }
        Verdict::Pass => {}
    }
    if !metrics.is_empty() && metrics.iter().all(|m| m.judgement.cleared) {
        return (
            Decision::Pass,
            "decided early: every metric's anytime-valid tests have ruled out the regression              they look for"
                .into(),
        );
    }
    let (Some(after), Some(a)) = (decide_after, anchor) else {
        return (Decision::Pass, "the verdict is pass".into());
    };
    let start = DateTime::parse_from_rfc3339(&a.start)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(end);
    let elapsed = (end - start).to_std().unwrap_or_default();
    let open: Vec<&str> = metrics
        .iter()
        .filter(|m| !m.judgement.cleared)
        .map(|m| m.name.as_str())
        .collect();
    if elapsed >= after {
        (
            Decision::Pass,
            format!(
                "the verdict is pass after {} of analysis (decide_after {})",
                humantime::format_duration(elapsed),
                humantime::format_duration(after)
            ),
        )
    } else {
        (
            Decision::Wait,
            format!(
                "pass so far, not decided yet ({} not ruled out) after {} of the {} to                  decide_after: poll again",
                open.join(", "),
                humantime::format_duration(elapsed),
                humantime::format_duration(after)
            ),
        )
    }
}

/// One metric's result, with the data it was judged on.
#[derive(Debug, Clone, Serialize)]
pub struct MetricOutcome {
    /// Metric name.
    pub name: String,
    /// Scoring group.
    pub group: String,
    /// The judgement (classification, reasons, statistics).
    #[serde(flatten)]
    pub judgement: MetricJudgement,
    /// Canary points `(unix seconds, value)` (series metrics).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub canary_points: Vec<(f64, f64)>,
    /// Baseline points `(unix seconds, value)` (series metrics).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub baseline_points: Vec<(f64, f64)>,
    /// Counts metrics: the fetched bad and total points, kept (moved, not copied) for charts.
    /// Not in the API's JSON — `serve` answers every judgement with this struct, and the
    /// charts need no extra bytes in each answer — and turned into ratios only when a chart
    /// asks, so a judgement does no work for a report nobody opens.
    #[serde(skip)]
    pub counts_points: Option<Box<CountsPoints>>,
}

/// `(unix seconds, value)` pairs.
pub type Points = Vec<(f64, f64)>;

/// The four fetched series of a counts metric.
#[derive(Debug, Clone, Default)]
pub struct CountsPoints {
    /// Canary bad events per step.
    pub canary_bad: Vec<(f64, f64)>,
    /// Canary total events per step.
    pub canary_total: Vec<(f64, f64)>,
    /// Baseline bad events per step.
    pub baseline_bad: Vec<(f64, f64)>,
    /// Baseline total events per step.
    pub baseline_total: Vec<(f64, f64)>,
}

impl MetricOutcome {
    /// What a chart of this metric draws, `(canary, baseline)`: the series, or the per-step
    /// bad/total of a counts metric.
    pub fn chart_points(&self) -> (Points, Points) {
        match &self.counts_points {
            Some(c) if self.canary_points.is_empty() => (
                ratios(&c.canary_bad, &c.canary_total),
                ratios(&c.baseline_bad, &c.baseline_total),
            ),
            _ => (self.canary_points.clone(), self.baseline_points.clone()),
        }
    }
}

/// A whole judgement.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// Judge spec name.
    pub judge: String,
    /// `pass | marginal | fail | inconclusive`.
    pub verdict: Verdict,
    /// `pass | fail | wait | inconclusive`: what a polling analysis should do now.
    pub decision: Decision,
    /// Why that decision.
    pub decision_reason: String,
    /// 0–100 from the metrics' group scores.
    pub score: f64,
    /// Why, with numbers: the scorer's, then each SLO's.
    pub reasons: Vec<String>,
    /// Every metric.
    pub metrics: Vec<MetricOutcome>,
    /// Every SLO.
    pub slos: Vec<SloResult>,
    /// Start of the judged window (RFC 3339).
    pub window_start: String,
    /// End of the judged window (RFC 3339).
    pub window_end: String,
    /// Start of the anytime-valid metrics' sequence (absent when the spec has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Anchor>,
    /// Args as resolved.
    pub args: BTreeMap<String, String>,
}

/// Options of a judgement.
#[derive(Debug, Clone, Copy)]
pub struct JudgeOptions {
    /// Per-query timeout.
    pub query_timeout: Duration,
    /// Start of the analysis, when the caller knows it (Argo's analysis start, the moment
    /// `canary promote` set the step's weight); else it is found in the data.
    pub since: Option<DateTime<Utc>>,
    /// How long after the start an undecided pass becomes a final `pass` decision (until
    /// then it is `wait`); `None`: a pass verdict is always a `pass` decision.
    pub decide_after: Option<Duration>,
}

impl Default for JudgeOptions {
    fn default() -> Self {
        JudgeOptions {
            query_timeout: Duration::from_secs(8),
            since: None,
            decide_after: None,
        }
    }
}

fn floor_to(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

/// The start the sequential metrics are queried from: `since` rounded up to the step, or the
/// start of the look-back.
fn sequence_start(
    spec: &JudgeSpec,
    now: DateTime<Utc>,
    end: DateTime<Utc>,
    since: Option<DateTime<Utc>>,
) -> Result<DateTime<Utc>, JudgeError> {
    let step = spec.step.as_secs().max(1) as i64;
    let lookback = chrono::Duration::from_std(spec.lookback).unwrap_or_default();
    match since {
        Some(s) if s > now => Err(JudgeError::Since(format!(
            "{} is in the future (now is {})",
            s.to_rfc3339(),
            now.to_rfc3339()
        ))),
        Some(s) if s < end - lookback => Err(JudgeError::Since(format!(
            "{} is older than the look-back of judge {} ({}); an analysis can be judged \
             from at most that far back",
            s.to_rfc3339(),
            spec.name,
            humantime::format_duration(spec.lookback)
        ))),
        // The first whole step at or after `since`: a step that began before it holds
        // traffic from before the analysis (the canary's share, in particular, is below the
        // weight it was just given).
        Some(s) => {
            let t = s.timestamp() + i64::from(s.timestamp_subsec_nanos() > 0);
            let up = floor_to(t + step - 1, step);
            Ok(DateTime::from_timestamp(up, 0).unwrap_or(s))
        }
        None => Ok(end - lookback),
    }
}

/// The window a judgement at `now` looks at: `[end − window, end]`, `end` floored to the step.
pub fn window(spec: &JudgeSpec, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let step = spec.step.as_secs().max(1) as i64;
    let end_s = now.timestamp() - now.timestamp().rem_euclid(step);
    let end = DateTime::from_timestamp(end_s, 0).unwrap_or(now);
    let start = end - chrono::Duration::from_std(spec.window).unwrap_or_default();
    (start, end)
}

/// Run `spec` with `args` against `sources`, as of `now`.
#[tracing::instrument(name = "judge", skip_all, fields(judge = %spec.name))]
pub async fn run(
    spec: &JudgeSpec,
    args: &BTreeMap<String, String>,
    sources: &Sources,
    now: DateTime<Utc>,
    options: JudgeOptions,
) -> Result<Judgement, JudgeError> {
    let values = spec.resolve_args(args)?;
    let rendered = spec.render(&values)?;
    let (start, end) = window(spec, now);
    let range = |q: &str| {
        let mut p = PromQuery::instant(q.to_string());
        p.timeout = options.query_timeout;
        p.range = Some(Range {
            start,
            end,
            step: spec.step,
        });
        p
    };
    let instant = |q: &str| {
        let mut p = PromQuery::instant(q.to_string());
        p.timeout = options.query_timeout;
        p.time = Some(end);
        p
    };

    let seq_start = sequence_start(spec, now, end, options.since)?;
    let step_s = spec.step.as_secs().max(1) as i64;
    // Counters need the sample one step before the first judged step.
    let seq_range = |q: &str| {
        let mut p = range(q);
        p.range = Some(Range {
            start: seq_start - chrono::Duration::seconds(step_s),
            end,
            step: spec.step,
        });
        p
    };

    // Every query of the judgement, fetched concurrently: each metric query once for both
    // variants, each SLO's windows as one query, where PromQL allows (see `fetch`).
    let mut metric_pairs = Vec::new();
    for (m, (canary, baseline)) in spec.metrics.iter().zip(&rendered.metrics) {
        let build = |q: &String| {
            if m.source.is_sequential() {
                seq_range(q)
            } else {
                range(q)
            }
        };
        let pairs: Vec<(PromQuery, PromQuery)> = canary
            .iter()
            .zip(baseline)
            .map(|(c, b)| (build(c), build(b)))
            .collect();
        metric_pairs.push(pairs);
    }
    let slo_parts: Vec<Vec<PromQuery>> = rendered
        .slos
        .iter()
        .map(|rules| {
            rules
                .iter()
                .flat_map(|((le, lt), (se, st))| [le, lt, se, st])
                .map(|q| instant(q))
                .collect()
        })
        .collect();
    let (metric_values, slo_values) = futures_util::future::join(
        join_all(
            metric_pairs
                .iter()
                .map(|pairs| join_all(pairs.iter().map(|(c, b)| fetch::pair(sources, c, b)))),
        ),
        join_all(slo_parts.iter().map(|parts| fetch::tagged(sources, parts))),
    )
    .await;
    // In the order the queries were rendered: per metric the canary's, then the baseline's;
    // then per SLO window (error, total) over the long and the short window.
    let mut values_of: Vec<QueryValue> = Vec::new();
    for pairs in metric_values {
        let pairs = pairs.into_iter().collect::<Result<Vec<_>, _>>()?;
        let (c, b): (Vec<QueryValue>, Vec<QueryValue>) = pairs.into_iter().unzip();
        values_of.extend(c);
        values_of.extend(b);
    }
    let first_slo_query = values_of.len();
    for parts in slo_values {
        values_of.extend(parts?);
    }

    let mut next = values_of.iter();
    let mut fetched = Vec::new();
    for (i, m) in spec.metrics.iter().enumerate() {
        let n = rendered.metrics[i].0.len();
        let c: Vec<&QueryValue> = (0..n).filter_map(|_| next.next()).collect();
        let b: Vec<&QueryValue> = (0..n).filter_map(|_| next.next()).collect();
        fetched.push(steps::fetch(
            m,
            &c,
            &b,
            &rendered.expected_share[i],
            step_s as f64,
        )?);
    }
    debug_assert_eq!(values_of.len() - next.len(), first_slo_query);

    // The sequence starts at `since`, or just before the canary's first step with traffic.
    let anchor = spec
        .metrics
        .iter()
        .any(|m| m.source.is_sequential())
        .then(|| {
            let first_step = seq_start.timestamp() + step_s;
            let (start, source) = if options.since.is_some() {
                (seq_start.timestamp(), AnchorSource::Since)
            } else {
                match fetched
                    .iter()
                    .filter_map(|f| f.first_canary_traffic())
                    .min()
                {
                    Some(t) if t <= first_step => (t - step_s, AnchorSource::LookbackLimit),
                    Some(t) => (t - step_s, AnchorSource::FirstTraffic),
                    None => (end.timestamp(), AnchorSource::NoTraffic),
                }
            };
            (start, source)
        });
    let anchor_start = anchor.map(|a| a.0);

    let mut metrics = Vec::new();
    for (m, f) in spec.metrics.iter().zip(fetched) {
        metrics.push(f.judge(m, anchor_start.unwrap_or(i64::MIN)));
    }
    let anchor = anchor.map(|(start, source)| Anchor {
        start: DateTime::from_timestamp(start, 0)
            .unwrap_or(end)
            .to_rfc3339(),
        source,
        steps: ((end.timestamp() - start) / step_s).max(0) as usize,
    });

    let mut slos = Vec::new();
    for s in &spec.slos {
        let mut counts = Vec::new();
        for _ in &s.windows {
            let mut w = || {
                let bad = scalar(next.next());
                let total = scalar(next.next());
                // No error series at all means no errors, when there was traffic.
                let bad = if bad.is_nan() && total.is_finite() {
                    0.0
                } else {
                    bad
                };
                WindowCounts { bad, total }
            };
            let long = w();
            let short = w();
            counts.push((long, short));
        }
        slos.push(slo::evaluate(s, &counts));
    }

    let scored: Vec<Scored> = spec
        .metrics
        .iter()
        .zip(&metrics)
        .map(|(m, o)| Scored {
            name: m.name.clone(),
            group: m.group.clone(),
            classification: o.judgement.classification,
            critical: o.judgement.critical,
            must_have_data: m.config.must_have_data,
        })
        .collect();
    let (mut verdict, score_value, mut reasons) = if scored.is_empty() {
        (Verdict::Pass, 100.0, Vec::new())
    } else {
        let s = score(&spec.scoring, &scored);
        (s.verdict, s.score, s.reasons)
    };
    if let Some(a) = &anchor {
        reasons.push(anchor_reason(spec, a));
    }
    for s in &slos {
        reasons.extend(s.reasons.iter().cloned());
        verdict = match (verdict, s.outcome) {
            (_, SloOutcome::Fail) | (Verdict::Fail, _) => Verdict::Fail,
            (_, SloOutcome::Inconclusive) => Verdict::Inconclusive,
            (v, SloOutcome::Pass) => v,
        };
    }
    let (decision, decision_reason) = decide(
        verdict,
        &metrics,
        anchor.as_ref(),
        end,
        options.decide_after,
    );
    Ok(Judgement {
        judge: spec.name.clone(),
        verdict,
        decision,
        decision_reason,
        score: score_value,
        reasons,
        metrics,
        slos,
        window_start: start.to_rfc3339(),
        window_end: end.to_rfc3339(),
        anchor,
        args: values,
    })
}

fn anchor_reason(spec: &JudgeSpec, a: &Anchor) -> String {
    let steps = format!(
        "{} steps of {}",
        a.steps,
        humantime::format_duration(spec.step)
    );
    match a.source {
        AnchorSource::Since => format!("analysis judged from since = {}: {steps}", a.start),
        AnchorSource::FirstTraffic => format!(
            "analysis judged from the canary's first traffic at {}: {steps}",
            a.start
        ),
        AnchorSource::LookbackLimit => format!(
            "the canary had traffic throughout the look-back ({}): judged from {} ({steps}); \
             pass `since` to judge a longer analysis as one sequence",
            humantime::format_duration(spec.lookback),
            a.start
        ),
        AnchorSource::NoTraffic => format!(
            "no canary traffic in the look-back ({}): nothing to judge yet",
            humantime::format_duration(spec.lookback)
        ),
    }
}

/// All `(time, value)` points of a result, series after series.
pub(crate) fn points(v: Option<&QueryValue>) -> Vec<(f64, f64)> {
    match v {
        Some(QueryValue::Scalar { time, value }) => vec![(*time, *value)],
        Some(QueryValue::Vector(s)) | Some(QueryValue::Matrix(s)) => {
            s.iter().flat_map(|s| s.samples.iter().copied()).collect()
        }
        None => Vec::new(),
    }
}

/// Per-step `bad / total` (steps with no traffic left out), for charts.
fn ratios(bad: &[(f64, f64)], total: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let key = |t: f64| (t * 1000.0).round() as i64;
    let bad: BTreeMap<i64, f64> = bad.iter().map(|(t, v)| (key(*t), *v)).collect();
    total
        .iter()
        .filter(|(_, n)| n.is_finite() && *n > 0.0)
        .map(|(t, n)| (*t, bad.get(&key(*t)).copied().unwrap_or(0.0).min(*n) / n))
        .collect()
}

/// The single number of an instant query (NaN when it returned nothing).
fn scalar(v: Option<&QueryValue>) -> f64 {
    points(v).first().map(|p| p.1).unwrap_or(f64::NAN)
}

/// Per-step counts of both variants, on the steps where both have a total. A missing bad
/// series at a step means no bad events (error counters often do not exist until the first
/// error).
pub(crate) fn intervals(
    canary_bad: &[(f64, f64)],
    canary_total: &[(f64, f64)],
    baseline_bad: &[(f64, f64)],
    baseline_total: &[(f64, f64)],
) -> Vec<Interval> {
    let key = |t: f64| (t * 1000.0).round() as i64;
    let index = |pts: &[(f64, f64)]| -> BTreeMap<i64, f64> {
        let mut m = BTreeMap::new();
        for (t, v) in pts {
            if v.is_finite() {
                *m.entry(key(*t)).or_insert(0.0) += v;
            }
        }
        m
    };
    let (cb, ct, bb, bt) = (
        index(canary_bad),
        index(canary_total),
        index(baseline_bad),
        index(baseline_total),
    );
    ct.iter()
        .filter_map(|(t, c_total)| {
            let b_total = bt.get(t)?;
            Some(Interval {
                canary: Counts {
                    bad: cb.get(t).copied().unwrap_or(0.0).min(*c_total),
                    total: *c_total,
                },
                baseline: Counts {
                    bad: bb.get(t).copied().unwrap_or(0.0).min(*b_total),
                    total: *b_total,
                },
            })
        })
        .collect()
}
