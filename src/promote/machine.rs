//! The promotion's decisions, apart from its I/O: given the recorded progress, the step
//! being run and what its last action came to, what to do next.
//!
//! [`Promotion::run`](super::Promotion::run) is a small loop around [`decide`]: it does
//! what the returned [`Action`] says (write weights, sleep, run an analysis), reports the
//! result as the next [`Last`], and stops when the action ends the promotion. Every rule
//! about rollback, pause and resume lives here, where the unit tests can reach all of them.

use std::time::Duration;

use super::progress::{Progress, PromotionPhase};
use super::{OnInconclusive, Outcome, Step};
use crate::analysis::Phase;

/// Where a run starts, from the progress an earlier run recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// An earlier run promoted: report it, change nothing.
    AlreadyPromoted,
    /// An earlier run rolled back: report it, change nothing (a new promotion needs a new id).
    AlreadyRolledBack,
    /// Run from this step index; `resumed` when an earlier run recorded progress.
    From { step: usize, resumed: bool },
}

/// Where to start. The recorded step's weight is live, and an analysis is recorded only
/// once it has passed: resume right after the later of the two, so every analysis after the
/// last passed one runs again and none is skipped.
pub fn resume(recorded: Option<&Progress>) -> Resume {
    match recorded {
        None => Resume::From {
            step: 0,
            resumed: false,
        },
        Some(r) => match r.phase {
            PromotionPhase::Promoted => Resume::AlreadyPromoted,
            PromotionPhase::RolledBack => Resume::AlreadyRolledBack,
            PromotionPhase::Progressing | PromotionPhase::Paused => Resume::From {
                step: (r.step as i64).max(r.analyzed_through) as usize + 1,
                resumed: true,
            },
        },
    }
}

/// What stopped a step from outside it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stopped {
    /// SIGINT or SIGTERM.
    Signal,
    /// The background analysis ended, in this phase (never Successful: a background
    /// analysis that passes just stops measuring).
    Background { phase: Phase, message: String },
}

/// What the last action came to, as the executor saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Last {
    /// Nothing yet: the step is starting.
    Start,
    /// The weight and progress were written.
    WeightSet,
    /// They were not; `traffic` when the VirtualService itself refused the weights (no
    /// such route, weights that cannot be set), not the API server failing.
    WeightNotSet { error: String, traffic: bool },
    /// A timed pause (or the post-promotion watch) ran its course.
    Waited,
    /// The step's analysis ended.
    Analyzed { phase: Phase, message: String },
    /// The passed analysis was recorded.
    PassRecorded,
    /// It could not be.
    PassNotRecorded(String),
    /// An indefinite pause could not be recorded.
    PauseNotRecorded(String),
    /// Every step passed but the end could not be recorded.
    PromotionNotRecorded(String),
    /// A signal or the background analysis stopped the step.
    Stopped(Stopped),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set the canary's weight and record the step, in one update.
    SetWeight(u32),
    /// Sleep this long, unless stopped.
    Wait(Duration),
    /// Run the analysis at this index of the promotion's analyses, unless stopped.
    Analyze(usize),
    /// Record that this step's analysis passed.
    RecordPass,
    /// Go on to the next step.
    Next,
    /// Keep the background analysis judging at full weight this long (the watch after the
    /// last step).
    Watch(Duration),
    /// Record the promotion as promoted, and end.
    Promote,
    /// Record the pause, and end Paused. `at_step`: the pause is this step (an indefinite
    /// `pause: {}`), so a rerun continues after it. `must_record`: a pause that cannot be
    /// recorded is an error (otherwise a failed write is only logged: traffic is already
    /// where the pause leaves it).
    Pause {
        reason: String,
        at_step: bool,
        must_record: bool,
    },
    /// Roll back to 0 %, then end with `outcome` (Error whenever the rollback itself fails).
    Rollback { reason: String, outcome: Outcome },
    /// End now with traffic left as it is.
    End { outcome: Outcome, reason: String },
}

/// What the promotion's configuration says about the decisions.
#[derive(Debug, Clone)]
pub struct Rules {
    /// On an Inconclusive analysis.
    pub on_inconclusive: OnInconclusive,
    /// A signal pauses instead of rolling back (`--on-signal pause`).
    pub pause_on_signal: bool,
    /// The watch after the last step (zero: none; only with a background analysis).
    pub watch: Duration,
    /// Which analyses have metrics (an `Analysis` step without any is skipped).
    pub analysis_has_metrics: Vec<bool>,
    /// Why the audit ledger cannot record this promotion, if it cannot: no weight may
    /// change until it can.
    pub recording_failed: Option<String>,
}

/// The next action at step `index` of `steps` (`index == steps.len()`: after the last
/// step), given what the last action came to.
pub fn decide(
    progress: &Progress,
    steps: &[Step],
    index: usize,
    last: &Last,
    rules: &Rules,
) -> Action {
    if let Last::Stopped(stopped) = last {
        return on_stopped(stopped, rules);
    }
    match steps.get(index) {
        Some(step) => in_step(step, index, last, rules),
        None => after_last_step(progress, last, rules),
    }
}

fn in_step(step: &Step, index: usize, last: &Last, rules: &Rules) -> Action {
    match (step, last) {
        (Step::SetWeight(w), Last::Start) => match &rules.recording_failed {
            Some(why) => Action::End {
                outcome: Outcome::Error,
                reason: format!(
                    "stopped before setting weight {w}: the audit ledger cannot record this \
                     promotion ({why}); traffic is left as it was — rerun the same command \
                     to resume once the ledger is back"
                ),
            },
            None => Action::SetWeight(*w),
        },
        (Step::SetWeight(_), Last::WeightSet) => Action::Next,
        (Step::SetWeight(w), Last::WeightNotSet { error, traffic }) => Action::Rollback {
            reason: format!("could not set weight {w}: {error}"),
            outcome: if *traffic {
                Outcome::RolledBack
            } else {
                Outcome::Error
            },
        },
        (Step::Pause(None), Last::Start) => Action::Pause {
            reason: format!(
                "paused at step {index} until resumed: run the same command again to continue"
            ),
            at_step: true,
            must_record: true,
        },
        (Step::Pause(None), Last::PauseNotRecorded(e)) => Action::End {
            outcome: Outcome::Error,
            reason: format!("could not record the pause: {e}"),
        },
        (Step::Pause(Some(d)), Last::Start) => Action::Wait(*d),
        (Step::Pause(Some(_)), Last::Waited) => Action::Next,
        (Step::Analysis(a), Last::Start) => {
            if rules.analysis_has_metrics.get(*a).copied().unwrap_or(false) {
                Action::Analyze(*a)
            } else {
                Action::Next
            }
        }
        (Step::Analysis(_), Last::Analyzed { phase, message }) => match phase {
            Phase::Successful => Action::RecordPass,
            Phase::Inconclusive if rules.on_inconclusive == OnInconclusive::Pause => {
                Action::Pause {
                    reason: format!("analysis Inconclusive at step {index}: {message}"),
                    at_step: false,
                    must_record: false,
                }
            }
            _ => Action::Rollback {
                reason: format!("analysis {phase} at step {index}: {message}"),
                outcome: Outcome::RolledBack,
            },
        },
        (Step::Analysis(_), Last::PassRecorded) => Action::Next,
        (Step::Analysis(_), Last::PassNotRecorded(e)) => Action::Rollback {
            reason: format!("could not record progress: {e}"),
            outcome: Outcome::Error,
        },
        (step, last) => impossible(&format!("{last:?} at step {index} ({step:?})")),
    }
}

fn after_last_step(progress: &Progress, last: &Last, rules: &Rules) -> Action {
    match last {
        Last::Start if !rules.watch.is_zero() => Action::Watch(rules.watch),
        Last::Start | Last::Waited => Action::Promote,
        Last::PromotionNotRecorded(e) => Action::End {
            outcome: Outcome::Error,
            reason: format!("promoted, but could not record it: {e}"),
        },
        last => impossible(&format!(
            "{last:?} after the last step (weight {} %)",
            progress.weight
        )),
    }
}

fn on_stopped(stopped: &Stopped, rules: &Rules) -> Action {
    match stopped {
        Stopped::Signal if rules.pause_on_signal => Action::Pause {
            reason: "interrupted: left paused at the current weight".into(),
            at_step: false,
            must_record: false,
        },
        Stopped::Signal => Action::Rollback {
            reason: "interrupted: rolled back".into(),
            outcome: Outcome::RolledBack,
        },
        Stopped::Background { phase, message }
            if *phase == Phase::Inconclusive && rules.on_inconclusive == OnInconclusive::Pause =>
        {
            Action::Pause {
                reason: format!("background analysis Inconclusive: {message}"),
                at_step: false,
                must_record: false,
            }
        }
        Stopped::Background { phase, message } => Action::Rollback {
            reason: format!("background analysis {phase}: {message}"),
            outcome: Outcome::RolledBack,
        },
    }
}

/// A result the executor cannot produce for this step: a bug, ended as an error with
/// traffic left as it is (the rerun resumes from the recorded progress).
fn impossible(what: &str) -> Action {
    Action::End {
        outcome: Outcome::Error,
        reason: format!("internal error: unexpected {what}; rerun the same command to resume"),
    }
}

/// The step as the live output and the reports name it: what it does, the canary weight
/// after it, and how long it should take when known (`analysis_seconds` for an analysis).
pub fn describe(
    step: &Step,
    weight: u32,
    analysis_seconds: Option<f64>,
) -> (String, u32, Option<f64>) {
    match step {
        Step::SetWeight(w) => (format!("setWeight {w}"), *w, None),
        Step::Pause(Some(d)) => (
            format!("pause {}", humantime::format_duration(*d)),
            weight,
            Some(d.as_secs_f64()),
        ),
        Step::Pause(None) => ("pause (until resumed)".to_string(), weight, None),
        Step::Analysis(_) => ("analysis".to_string(), weight, analysis_seconds),
    }
}

#[cfg(test)]
mod tests;
