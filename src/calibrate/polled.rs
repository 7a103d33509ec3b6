//! Analyses replayed the way Argo polls a Judge (`--polls`): the same history, judged at each
//! look of each analysis with every anchored metric's steps since the analysis's start. What
//! a team feels is per analysis (a healthy rollout aborted), not per window.

use serde::Serialize;

use super::windows::{anchored, data_at, data_in, Fetched, Windows};
use super::{quantile, upper95, Mode, Plan, Polls};
use crate::judge::classify::classify;
use crate::judge::score::{score, Scored, Verdict};
use crate::template::judge_spec::JudgeSpec;

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

/// Analyses started every `plan.every` from `first` whose last look is at or before `last`,
/// replayed as A/A (false alarms), then with each metric in turn made worse by each injected
/// factor from the analysis's start (detection).
pub(super) fn replay(
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
