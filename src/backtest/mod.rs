//! Replaying an analysis over history: at each past moment, run it as it would have run then.
//!
//! A Judge spec is judged at each moment (its window ending there). An Argo analysis is run
//! as a whole AnalysisRun starting at each moment, on a virtual clock: every measurement is
//! taken at the time Argo would have taken it (`interval`, `count`, `initialDelay`, limits),
//! with no real waiting. Queries are answered by [`History`]: each distinct query is fetched
//! once as a range query over the whole backtest and sliced from memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::analysis::{self, Phase, RunOptions, RunReport};
use crate::judge::{Classification, Verdict};
use crate::judging::{self, JudgeOptions, Judgement};
use crate::source::history::{align_down, History, HistoryStats};
use crate::source::Sources;
use crate::template::{JudgeProvider, ResolvedMetric};

/// What is replayed.
#[derive(Debug, Clone)]
pub enum Subject {
    /// One Judge spec with its args.
    Judge(JudgeProvider),
    /// Argo metrics (AnalysisTemplates, possibly with Judge specs among them).
    Analysis(Vec<ResolvedMetric>),
}

impl Subject {
    /// A lone Judge spec is replayed as a judge (verdicts and statistics at each moment);
    /// anything else as an Argo analysis.
    pub fn of(metrics: Vec<ResolvedMetric>) -> Subject {
        if let [only] = metrics.as_slice() {
            if let Some(j) = &only.judge {
                return Subject::Judge(j.clone());
            }
        }
        Subject::Analysis(metrics)
    }

    /// Name for the report.
    pub fn name(&self) -> String {
        match self {
            Subject::Judge(j) => j.spec.name.clone(),
            Subject::Analysis(m) => {
                let mut names: Vec<&str> = m.iter().map(|m| m.template.as_str()).collect();
                names.dedup();
                names.join(", ")
            }
        }
    }
}

/// A Judge spec as Argo polls it: an AnalysisRun of one metric that judges every
/// `interval`, `count` times (the first poll one interval in, as with Argo's `initialDelay`
/// set to the interval), failing past `failure_limit` failed polls. A replayed run starting
/// at a moment anchors the Judge's sequences there, so every poll extends the same steps.
pub fn polled_judge(
    j: JudgeProvider,
    count: u32,
    interval: std::time::Duration,
    failure_limit: u32,
) -> ResolvedMetric {
    let spec = (*j.spec).clone();
    let mut m = crate::template::judge_metric(spec, j.args, Some(interval));
    let every = format!("{}s", interval.as_secs().max(1));
    m.metric.count = Some(i64::from(count.max(1)));
    m.metric.initial_delay = Some(every);
    m.metric.failure_limit = Some(i64::from(failure_limit));
    m
}

/// When to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// First moment (rounded down to the query grid).
    pub from: DateTime<Utc>,
    /// Last moment.
    pub to: DateTime<Utc>,
    /// Time between moments.
    pub every: Duration,
    /// Longest virtual run of an Argo analysis (one with `interval` and no `count` runs until
    /// this, then ends as terminated).
    pub limit: Duration,
}

/// What a moment came to: the judge's verdict, or the AnalysisRun's phase.
///
/// Serialized as its [`as_str`](Outcome::as_str) name (`pass`, `Failed`, `error`), and
/// ordered by that name, so the summary lists outcomes alphabetically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A judge backtest: `pass | marginal | fail | inconclusive`.
    Verdict(Verdict),
    /// An Argo analysis backtest: the run's phase (`Successful`, `Failed`, `Error`, …).
    Phase(Phase),
    /// A judge moment that could not be judged at all (a query or the spec failed):
    /// `error`, lower case unlike Argo's `Error` phase.
    Error,
}

impl Outcome {
    /// The name as printed and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Verdict(v) => v.as_str(),
            Outcome::Phase(p) => p.as_str(),
            Outcome::Error => "error",
        }
    }

    /// Whether the analysis passed at this moment (a judge's `pass`, Argo's `Successful`).
    pub fn passed(self) -> bool {
        matches!(
            self,
            Outcome::Verdict(Verdict::Pass) | Outcome::Phase(Phase::Successful)
        )
    }

    /// Whether it failed: what a rollout would have rolled back on.
    pub fn failed(self) -> bool {
        matches!(
            self,
            Outcome::Verdict(Verdict::Fail) | Outcome::Phase(Phase::Failed)
        )
    }

    /// Whether no verdict could be made (a query or the template failed).
    pub fn errored(self) -> bool {
        matches!(self, Outcome::Error | Outcome::Phase(Phase::Error))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Ord for Outcome {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Outcome {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The outcome at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// The moment (RFC 3339).
    pub at: String,
    /// Unix seconds.
    pub t: i64,
    /// What the moment came to.
    pub outcome: Outcome,
    /// The deciding numbers, in one line.
    pub why: String,
    /// Judge score (0–100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The judgement (judge), without the raw points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judgement: Option<Judgement>,
    /// The AnalysisRun (analysis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunReport>,
}

impl Point {
    /// Whether the analysis failed at this moment (what a rollout would have rolled back on).
    pub fn failed(&self) -> bool {
        self.outcome.failed()
    }

    /// Whether no verdict could be made (a query or the template failed).
    pub fn errored(&self) -> bool {
        self.outcome.errored()
    }
}

/// A metric's data over the whole backtest, for the charts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MetricSeries {
    /// Canary `(unix seconds, value)`, merged from every window.
    pub canary: Vec<(f64, f64)>,
    /// Baseline `(unix seconds, value)`, merged the same way.
    pub baseline: Vec<(f64, f64)>,
}

/// A whole backtest.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// `judge` or `analysis`.
    pub kind: String,
    /// Judge or template names.
    pub name: String,
    /// First moment (RFC 3339).
    pub from: String,
    /// Last moment (RFC 3339).
    pub to: String,
    /// Seconds between moments.
    pub every_seconds: u64,
    /// Args as given.
    pub args: BTreeMap<String, String>,
    /// Every moment, in time order.
    pub points: Vec<Point>,
    /// Moments per outcome.
    pub summary: BTreeMap<Outcome, usize>,
    /// How the queries were answered.
    pub queries: HistoryStats,
    /// Per metric (judge backtests): canary and baseline over the whole range.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub series: BTreeMap<String, MetricSeries>,
}

/// Per metric, canary and baseline points by millisecond, merged across windows.
type Merged = BTreeMap<String, (BTreeMap<i64, f64>, BTreeMap<i64, f64>)>;

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The instant-query grid and the longest range-query window the subject needs.
fn grid_of(subject: &Subject, every: Duration) -> (Duration, Duration) {
    let mut g = every.as_secs().max(1);
    let mut lookback = Duration::ZERO;
    let judge = |spec: &crate::template::judge_spec::JudgeSpec, g: &mut u64, l: &mut Duration| {
        *g = gcd(*g, spec.step.as_secs().max(1));
        *l = (*l).max(spec.window + spec.step);
        // Anchored metrics look back for the analysis's start, one step further.
        if spec.metrics.iter().any(|m| m.source.is_sequential()) {
            *l = (*l).max(spec.lookback + spec.step * 2);
        }
    };
    match subject {
        Subject::Judge(j) => judge(&j.spec, &mut g, &mut lookback),
        Subject::Analysis(metrics) => {
            for resolved in metrics {
                let m = &resolved.metric;
                for d in [m.interval(), m.initial_delay()].into_iter().flatten() {
                    if d.as_secs() > 0 {
                        g = gcd(g, d.as_secs());
                    }
                }
                if let Some(j) = &resolved.judge {
                    judge(&j.spec, &mut g, &mut lookback);
                }
                if let Some(p) = &m.provider.prometheus {
                    if let Ok(q) = analysis::measure::prometheus_query(p, None) {
                        if let Some(r) = q.range {
                            g = gcd(g, r.step.as_secs().max(1));
                            let window = (r.end - r.start).to_std().unwrap_or_default();
                            lookback = lookback.max(window + r.step);
                        }
                    }
                }
            }
        }
    }
    (Duration::from_secs(g), lookback)
}

/// The moments a plan evaluates.
pub fn moments(plan: &Plan, grid: Duration) -> Vec<DateTime<Utc>> {
    let first = align_down(plan.from, grid);
    let every = chrono::Duration::from_std(plan.every.max(Duration::from_secs(1)))
        .unwrap_or(chrono::Duration::seconds(60));
    let mut out = Vec::new();
    let mut t = first;
    while t <= plan.to {
        out.push(t);
        t += every;
    }
    out
}

/// Run the backtest. `on_point` sees each moment as it is done (progress).
pub async fn run(
    subject: &Subject,
    args: &BTreeMap<String, String>,
    plan: Plan,
    sources: &Sources,
    on_point: &mut dyn FnMut(&Point, usize, usize),
) -> Backtest {
    let (grid, lookback) = grid_of(subject, plan.every);
    let run_length = match subject {
        Subject::Judge(_) => Duration::ZERO,
        Subject::Analysis(_) => plan.limit,
    };
    let last = plan.to + chrono::Duration::from_std(run_length).unwrap_or_default();
    let history = Arc::new(History::new(grid, plan.from, last, lookback));
    let sources = sources.clone().with_history(history.clone());
    let times = moments(&plan, grid);
    let total = times.len();
    let mut points = Vec::with_capacity(total);
    let mut series: Merged = BTreeMap::new();
    for (i, t) in times.into_iter().enumerate() {
        let point = match subject {
            Subject::Judge(j) => {
                let outcome =
                    judging::run(&j.spec, &j.args, &sources, t, JudgeOptions::default()).await;
                judge_point(t, outcome, &mut series)
            }
            Subject::Analysis(metrics) => {
                let options = RunOptions {
                    once: false,
                    at: Some(t),
                    limit: Some(plan.limit),
                    // Judge metrics of a run that starts at `t` judge the steps from `t`.
                    since: Some(t),
                };
                let report = analysis::run(
                    metrics,
                    &sources,
                    options,
                    std::future::pending::<()>(),
                    &mut |_| {},
                )
                .await;
                analysis_point(t, report)
            }
        };
        on_point(&point, i + 1, total);
        points.push(point);
    }
    let mut summary = BTreeMap::new();
    for p in &points {
        *summary.entry(p.outcome).or_insert(0) += 1;
    }
    let key = |(t, v): (&i64, &f64)| (*t as f64 / 1000.0, *v);
    Backtest {
        kind: match subject {
            Subject::Judge(_) => "judge",
            Subject::Analysis(_) => "analysis",
        }
        .into(),
        name: subject.name(),
        from: points.first().map(|p| p.at.clone()).unwrap_or_default(),
        to: points.last().map(|p| p.at.clone()).unwrap_or_default(),
        every_seconds: plan.every.as_secs(),
        args: args.clone(),
        points,
        summary,
        queries: history.stats(),
        series: series
            .into_iter()
            .map(|(name, (c, b))| {
                let s = MetricSeries {
                    canary: c.iter().map(key).collect(),
                    baseline: b.iter().map(key).collect(),
                };
                (name, s)
            })
            .collect(),
    }
}

fn judge_point(
    t: DateTime<Utc>,
    outcome: Result<Judgement, judging::JudgeError>,
    series: &mut Merged,
) -> Point {
    match outcome {
        Err(e) => Point {
            at: t.to_rfc3339(),
            t: t.timestamp(),
            outcome: Outcome::Error,
            why: e.to_string(),
            score: None,
            judgement: None,
            run: None,
        },
        Ok(mut j) => {
            for m in &mut j.metrics {
                let (c, b) = series.entry(m.name.clone()).or_default();
                let ms = |t: f64| (t * 1000.0).round() as i64;
                let (cp, bp) = m.chart_points();
                c.extend(cp.iter().map(|&(t, v)| (ms(t), v)));
                b.extend(bp.iter().map(|&(t, v)| (ms(t), v)));
                // Kept once, in the backtest's series, not in every moment's judgement.
                m.canary_points = Vec::new();
                m.baseline_points = Vec::new();
                m.counts_points = None;
            }
            Point {
                at: t.to_rfc3339(),
                t: t.timestamp(),
                outcome: Outcome::Verdict(j.verdict),
                why: deciding(&j),
                score: Some(j.score),
                judgement: Some(j),
                run: None,
            }
        }
    }
}

/// The reasons that decided a judgement: the failing or inconclusive ones first.
fn deciding(j: &Judgement) -> String {
    let bad: Vec<String> =
        j.metrics
            .iter()
            .filter(|m| m.judgement.classification != Classification::Pass)
            .flat_map(|m| {
                m.judgement.reasons.iter().map(move |r| {
                    format!("{} {}: {r}", m.name, m.judgement.classification.as_str())
                })
            })
            .chain(
                j.slos
                    .iter()
                    .filter(|s| s.outcome != crate::slo::SloOutcome::Pass)
                    .flat_map(|s| s.reasons.iter().cloned()),
            )
            .collect();
    if bad.is_empty() {
        j.reasons.join("; ")
    } else {
        bad.join("; ")
    }
}

fn analysis_point(t: DateTime<Utc>, report: RunReport) -> Point {
    let outcome = Outcome::Phase(report.phase);
    let why = if report.message.is_empty() {
        report
            .metrics
            .iter()
            .map(|m| {
                let last = m.last().map(|x| x.value.as_str()).unwrap_or("none");
                format!("{} = {last}", m.name)
            })
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        report.message.clone()
    };
    Point {
        at: t.to_rfc3339(),
        t: t.timestamp(),
        outcome,
        why,
        score: None,
        judgement: None,
        run: Some(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_start_on_the_grid_and_cover_the_range() {
        let from = DateTime::from_timestamp(1_000_007, 0).unwrap();
        let plan = Plan {
            from,
            to: from + chrono::Duration::minutes(10),
            every: Duration::from_secs(300),
            limit: Duration::from_secs(600),
        };
        let m = moments(&plan, Duration::from_secs(60));
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].timestamp() % 60, 0);
        assert!(m[0] <= from && m[2] <= plan.to);
    }

    #[test]
    fn gcd_of_durations() {
        assert_eq!(gcd(300, 45), 15);
        assert_eq!(gcd(60, 0), 60);
    }
}
