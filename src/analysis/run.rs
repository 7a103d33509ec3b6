//! The measurement loop of one analysis run, as Argo's controller reconciles an AnalysisRun.
//!
//! At each wake-up: take every measurement that is due (concurrently), update the counters,
//! assess each metric and the run. A metric is due when its `initialDelay` has passed (first
//! measurement), its `interval` has passed since the last one, or 10 s after an Error. The run
//! ends when every metric is complete, or — because a deciding metric went Failed, Error or
//! Inconclusive — it is terminating: no new measurements, unfinished metrics end Successful,
//! and the run takes the worst phase. Dry-run metrics are measured and reported but never
//! decide or terminate the run.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use serde::Serialize;
use tokio::time::Instant;

use super::measure::measure;
use super::result::{assess, exceeded_limit, Measurement, MetricResult};
use super::Phase;
use crate::source::Sources;
use crate::template::ResolvedMetric;

/// Argo's `DefaultErrorRetryInterval`.
pub const ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// One measurement per metric, ignoring `interval`, `count` and `initialDelay`; the metric
    /// takes that measurement's phase.
    pub once: bool,
    /// Backtest: run on a virtual clock starting at this past moment. Measurements are taken
    /// as they would have been then, with no real waiting; `terminate` is not consulted.
    pub at: Option<DateTime<Utc>>,
    /// Backtest: end the run (as Argo's terminate) once the virtual clock has run this long;
    /// an analysis with an `interval` and no `count` would otherwise never end.
    pub limit: Option<Duration>,
    /// Start of the analysis for Judge metrics (their anytime-valid sequences begin here):
    /// `canary promote` passes the moment the step's weight was set.
    pub since: Option<DateTime<Utc>>,
}

/// Real time, or a backtest's virtual time that jumps to the next measurement.
struct Clock {
    base: Instant,
    at: Option<DateTime<Utc>>,
    offset: Duration,
}

impl Clock {
    fn now(&self) -> Instant {
        match self.at {
            Some(_) => self.base + self.offset,
            None => Instant::now(),
        }
    }

    /// The wall-clock time a measurement is taken at (`None`: now).
    fn wall(&self) -> Option<DateTime<Utc>> {
        self.at
            .map(|t| t + chrono::Duration::from_std(self.offset).unwrap_or_default())
    }

    fn stamp(&self) -> String {
        self.wall().unwrap_or_else(Utc::now).to_rfc3339()
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Final phase.
    pub phase: Phase,
    /// Why (Argo's message: `Metric "x" assessed Failed due to failed (1) > failureLimit (0)`).
    pub message: String,
    /// Every metric with its measurements.
    pub metrics: Vec<MetricResult>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
}

/// Something that happened during the run, for live output.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A measurement finished.
    Measured {
        /// Its measurements so far, the latest last, and its phase.
        metric: &'a MetricResult,
        /// The new measurement (also the metric's last).
        measurement: &'a Measurement,
    },
    /// Nothing is due until `until`.
    Waiting {
        /// Seconds until the next measurement.
        seconds: f64,
    },
}

struct State {
    spec: ResolvedMetric,
    result: MetricResult,
    last_finished: Option<Instant>,
}

/// Run the analysis until it completes or `terminate` resolves (Ctrl-C: the run ends with what
/// it has, as Argo's `terminate`).
pub async fn run<F>(
    metrics: &[ResolvedMetric],
    sources: &Sources,
    options: RunOptions,
    terminate: F,
    on_event: &mut dyn FnMut(Event<'_>),
) -> RunReport
where
    F: Future<Output = ()>,
{
    let mut clock = Clock {
        base: Instant::now(),
        at: options.at,
        offset: Duration::ZERO,
    };
    let started_at = clock.stamp();
    let start = clock.now();
    let mut states: Vec<State> = metrics
        .iter()
        .map(|m| State {
            result: MetricResult::new(&m.metric.name, m.dry_run),
            spec: m.clone(),
            last_finished: None,
        })
        .collect();
    tokio::pin!(terminate);
    let mut terminated = false;

    loop {
        let terminating = terminated || is_terminating(&states);
        let now = clock.now();
        let due: Vec<usize> = if terminating {
            Vec::new()
        } else {
            (0..states.len())
                .filter(|&i| next_due(&states[i], start, options).is_some_and(|t| t <= now))
                .collect()
        };
        if !due.is_empty() {
            // Due measurements run concurrently, as Argo runs them in parallel goroutines.
            let taken = join_all(
                due.iter()
                    .map(|&i| measure(&states[i].spec, sources, clock.wall(), options.since)),
            )
            .await;
            let finished = clock.now();
            for (i, m) in due.into_iter().zip(taken) {
                let st = &mut states[i];
                st.result.message = m.message.clone();
                st.result.record(m);
                st.last_finished = Some(finished);
                if let Some(last) = st.result.last() {
                    on_event(Event::Measured {
                        metric: &st.result,
                        measurement: last,
                    });
                }
            }
        }
        let terminating = terminated || is_terminating(&states);
        for st in states.iter_mut() {
            st.result.phase = if options.once {
                match st.result.last() {
                    Some(m) => m.phase,
                    None if terminating => Phase::Successful,
                    None => Phase::Pending,
                }
            } else {
                assess(&st.spec.metric, &st.result, terminating)
            };
        }
        if let Some((phase, message)) = run_phase(&states, terminating) {
            return RunReport {
                phase,
                message,
                metrics: states.into_iter().map(|s| s.result).collect(),
                started_at,
                finished_at: clock.stamp(),
            };
        }
        if is_terminating(&states) {
            // A metric was just decided badly: end the run now, without waiting.
            continue;
        }
        let next = states
            .iter()
            .filter(|s| !s.result.phase.completed())
            .filter_map(|s| next_due(s, start, options))
            .min();
        let Some(next) = next else {
            // Nothing left to measure and nothing complete: treat as terminating.
            terminated = true;
            continue;
        };
        if options.at.is_some() {
            let offset = next.saturating_duration_since(clock.base);
            if options.limit.is_some_and(|l| offset > l) {
                terminated = true;
            } else {
                clock.offset = clock.offset.max(offset);
            }
            continue;
        }
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            on_event(Event::Waiting {
                seconds: wait.as_secs_f64(),
            });
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = &mut terminate, if !terminated => { terminated = true; }
        }
    }
}

/// When the metric's next measurement is due, or `None` if it takes no more.
fn next_due(st: &State, start: Instant, options: RunOptions) -> Option<Instant> {
    if st.result.phase.completed() {
        return None;
    }
    let m = &st.spec.metric;
    let Some(last) = st.last_finished else {
        let delay = if options.once {
            Duration::ZERO
        } else {
            m.initial_delay().unwrap_or_default()
        };
        return Some(start + delay);
    };
    if options.once {
        return None;
    }
    let last_was_error = st.result.last().is_some_and(|l| l.phase == Phase::Error);
    if !last_was_error {
        if let Some(count) = m.effective_count() {
            if st.result.count >= count {
                return None;
            }
        }
    }
    let interval = if last_was_error {
        ERROR_RETRY_INTERVAL
    } else {
        m.interval()?
    };
    Some(last + interval)
}

fn is_terminating(states: &[State]) -> bool {
    states.iter().any(|s| {
        !s.result.dry_run
            && matches!(
                s.result.phase,
                Phase::Failed | Phase::Error | Phase::Inconclusive
            )
    })
}

/// The run's phase once every metric is complete: the worst non-dry-run phase.
fn run_phase(states: &[State], terminating: bool) -> Option<(Phase, String)> {
    let mut worst: Option<Phase> = None;
    let mut message = String::new();
    let mut all_complete = true;
    for st in states {
        let phase = st.result.phase;
        if !phase.completed() {
            all_complete = false;
            continue;
        }
        if st.result.dry_run {
            worst.get_or_insert(Phase::Successful);
            continue;
        }
        if worst.is_none_or(|w| w.worst(phase) != w) {
            worst = Some(phase);
            message = explain(st, phase);
        }
    }
    if !all_complete && !terminating {
        return None;
    }
    let worst = worst.unwrap_or(Phase::Successful);
    Some((worst, message))
}

fn explain(st: &State, phase: Phase) -> String {
    let name = &st.result.name;
    let last_message = st
        .result
        .last()
        .map(|m| m.message.as_str())
        .unwrap_or_default();
    let mut msg = match exceeded_limit(&st.spec.metric, &st.result) {
        Some((_, why)) => format!("Metric \"{name}\" assessed {phase} due to {why}"),
        None => match st.result.last() {
            Some(m) => format!(
                "Metric \"{name}\" assessed {phase} ({} measurement(s), last value {})",
                st.result.measurements.len(),
                if m.value.is_empty() { "none" } else { &m.value }
            ),
            None => format!("Metric \"{name}\" assessed {phase} (no measurement taken)"),
        },
    };
    if !last_message.is_empty() && phase != Phase::Successful {
        msg.push_str(&format!(": \"Error Message: {last_message}\""));
    }
    msg
}
