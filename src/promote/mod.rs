//! Progressive delivery: shift traffic step by step, analyze at each step, roll back on a bad
//! verdict — and survive a crash in between.
//!
//! Progress lives on the VirtualService itself ([`progress`]), written in the same update
//! as each weight change and again when a step's analysis has passed. Rerunning the same
//! command reads it and resumes: a step whose weight was set but whose analysis was not
//! recorded as passed is analyzed again — an analysis is never skipped. A promotion that
//! ended (promoted or rolled back) is reported, not redone.
//!
//! The decisions are [`machine::decide`], pure; [`Promotion::run`] does the I/O they ask for.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::analysis::{self, Phase, RunOptions, RunReport};
use crate::source::Sources;
use crate::template::ResolvedMetric;
use crate::traffic::apply::{Applier, ApplyError};
use crate::traffic::{desired, Target, TrafficError};

pub mod machine;
pub mod plan;
pub mod progress;
pub mod rollout;

use machine::{Action, Last, Resume, Stopped};
use progress::{now, with_progress};
pub use progress::{progress_of, Progress, PromotionPhase, ANNOTATION};

/// One step, as Argo Rollouts' `canary.steps`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this percentage of traffic to the canary.
    SetWeight(u32),
    /// Wait this long; `None` (Argo's `pause: {}`) stops the promotion as paused (exit 2)
    /// until the same command is run again, which continues after the pause.
    Pause(Option<Duration>),
    /// Run the analysis at this index of [`Promotion::analyses`]; it must be Successful to go
    /// on.
    Analysis(usize),
}

/// An analysis that runs across the whole promotion (Argo's `canary.analysis`): from the
/// step `starting_step` on, and through the post-promotion watch. Failed or Error rolls
/// back at once, whatever step is running.
#[derive(Debug, Clone)]
pub struct Background {
    /// Its metrics (give them an `interval`; a metric that ends Successful just stops).
    pub metrics: Vec<ResolvedMetric>,
    /// Step index it starts at (0: with the first step).
    pub starting_step: usize,
}

/// What to do when an analysis is Inconclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInconclusive {
    /// Stop where we are (exit 2), for a human to decide.
    Pause,
    /// Roll back to 0 %.
    Rollback,
}

/// How a promotion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All steps passed: canary at the last weight.
    Promoted,
    /// Rolled back to 0 %.
    RolledBack,
    /// Stopped for a human (inconclusive analysis, or a signal with `--on-signal pause`).
    Paused,
    /// Infrastructure failure (after attempting rollback).
    Error,
}

impl Outcome {
    /// The name as serialized (`promoted`, `rolled_back`, `paused`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled_back",
            Outcome::Paused => "paused",
            Outcome::Error => "error",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened, for live output, reports and the audit ledger.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    /// A promotion started (or resumed).
    #[serde(rename = "deployment.created")]
    Started {
        /// Promotion id.
        id: String,
        /// Resumed from a recorded step.
        resumed_at_step: Option<usize>,
    },
    /// A step began.
    #[serde(rename = "deployment.step")]
    Step {
        /// Step index.
        index: usize,
        /// What it does.
        step: String,
        /// Canary weight after it.
        weight: u32,
        /// How long the step should take, when known (pauses; analyses with a `count`).
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_seconds: Option<f64>,
    },
    /// An analysis ended.
    #[serde(rename = "analysis.completed")]
    Analysis {
        /// Step index (for the background analysis: the step running when it ended).
        index: usize,
        /// The background analysis, not a step's.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        background: bool,
        /// Argo phase.
        phase: Phase,
        /// Why.
        message: String,
    },
    /// Done.
    #[serde(rename = "deployment.promoted")]
    Promoted {
        /// Final weight.
        weight: u32,
    },
    /// Traffic went back to the stable version.
    #[serde(rename = "deployment.rolled_back")]
    RolledBack {
        /// Why.
        reason: String,
    },
    /// Stopped at the current weight for a person (exit 2).
    #[serde(rename = "deployment.paused")]
    Paused {
        /// Why.
        reason: String,
    },
}

/// A promotion's configuration.
pub struct Promotion {
    /// The promotion's id (derive it from the command's inputs so a rerun resumes).
    pub id: String,
    /// What to do, in order, as Argo Rollouts' `canary.steps`.
    pub steps: Vec<Step>,
    /// Which routes and destinations.
    pub target: Target,
    /// Analyses the `Analysis` steps run, by index (AnalysisTemplate metrics and Judges).
    pub analyses: Vec<Vec<ResolvedMetric>>,
    /// The analysis running across the whole promotion, if any.
    pub background: Option<Background>,
    /// After the last step, keep the background analysis running this long before declaring
    /// the promotion done (a failure in it still rolls back).
    pub watch: Duration,
    /// Where measurements come from.
    pub sources: Sources,
    /// Talks to the VirtualService.
    pub applier: Applier,
    /// On an Inconclusive analysis.
    pub on_inconclusive: OnInconclusive,
    /// Take one measurement per metric at each analysis (quick runs and demos).
    pub analysis_once: bool,
    /// Set by whatever records the events (the audit ledger) when it cannot: the promotion
    /// then stops before its next weight change.
    pub recording: RecordingFailure,
}

/// The first failure to record a promotion's events, shared between the recorder and the
/// promotion: a promotion whose decisions cannot be recorded must not go on changing traffic.
#[derive(Debug, Clone, Default)]
pub struct RecordingFailure(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl RecordingFailure {
    /// Record a failure (the first one is kept).
    pub fn fail(&self, why: String) {
        let mut f = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(why);
    }

    /// The first failure, if any.
    pub fn failed(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The result of a promotion.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Promotion id.
    pub id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why.
    pub reason: String,
    /// Canary weight at the end.
    pub final_weight: u32,
    /// Every event.
    pub events: Vec<Event>,
    /// When each event happened (RFC 3339), in the same order.
    pub event_times: Vec<String>,
    /// Every analysis run.
    pub analyses: Vec<RunReport>,
    /// The share of each Judge spec's false-alarm budget every analysis spent (1 / the
    /// number of analyses with a Judge); absent without Judges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge_budget_share: Option<f64>,
}

/// `metrics` with each Judge's anytime-valid budget multiplied by `share`.
pub fn with_budget_share(metrics: &[ResolvedMetric], share: f64) -> Vec<ResolvedMetric> {
    metrics
        .iter()
        .map(|m| {
            let mut m = m.clone();
            if let Some(j) = &mut m.judge {
                j.spec = std::sync::Arc::new(j.spec.with_budget_share(share));
            }
            m
        })
        .collect()
}

/// The Judge arg that carries the canary's traffic weight in percent (the shipped spec's
/// traffic-share metric reads it): `canary promote` sets it to each step's weight.
pub const WEIGHT_ARG: &str = "canary_weight";

/// A step's analysis: each Judge's budget share, and its `canary_weight` arg (when the spec
/// declares one) set to the weight the step gave the canary.
fn for_step(metrics: &[ResolvedMetric], share: f64, weight: u32) -> Vec<ResolvedMetric> {
    let mut out = with_budget_share(metrics, share);
    for m in &mut out {
        if let Some(j) = &mut m.judge {
            if j.spec.args.iter().any(|(name, _)| name == WEIGHT_ARG) {
                j.args.insert(WEIGHT_ARG.to_string(), weight.to_string());
            }
        }
    }
    out
}

/// See [`Promotion::judge_budget_share`].
pub fn budget_share(
    steps: &[Step],
    analyses: &[Vec<ResolvedMetric>],
    background: Option<&Background>,
) -> f64 {
    let judged = steps
        .iter()
        .filter(|s| match s {
            Step::Analysis(a) => analyses.get(*a).is_some_and(|m| has_judge(m)),
            _ => false,
        })
        .count();
    let background = background.is_some_and(|b| has_judge(&b.metrics));
    1.0 / (judged + usize::from(background)).max(1) as f64
}

fn has_judge(metrics: &[ResolvedMetric]) -> bool {
    metrics.iter().any(|m| m.judge.is_some())
}

impl Promotion {
    /// The share of each Judge's false-alarm budget one of this promotion's analyses may
    /// spend: 1 over the number of analyses that judge with a Judge spec (every `Analysis`
    /// step with one, and the background analysis). Each analysis is its own anytime-valid
    /// sequence, anchored when its weight was set, so a healthy canary is rolled back by
    /// mistake at any step with probability at most the spec's `budget.alpha` in all.
    pub fn judge_budget_share(&self) -> f64 {
        budget_share(&self.steps, &self.analyses, self.background.as_ref())
    }

    fn judges_share(&self) -> Option<f64> {
        let any = self.analyses.iter().any(|m| has_judge(m))
            || self
                .background
                .as_ref()
                .is_some_and(|b| has_judge(&b.metrics));
        any.then(|| self.judge_budget_share())
    }

    /// Write weights and progress in one update.
    async fn record(&self, weight: Option<u32>, p: &Progress) -> Result<(), ApplyError> {
        let target = self.target.clone();
        let p = p.clone();
        self.applier
            .update(move |vs: &Value| -> Result<Option<Value>, TrafficError> {
                let (mut out, _) = match weight {
                    Some(w) => desired(vs, &target, w)?,
                    None => (vs.clone(), false),
                };
                out = with_progress(out, &p);
                Ok((out != *vs).then_some(out))
            })
            .await
            .map(|_| ())
    }

    /// Roll back to 0 % (retried by the applier until it sticks or its deadline passes).
    async fn rollback(&self, p: &mut Progress) -> Outcome {
        p.rolled_back();
        match self.record(Some(0), p).await {
            Ok(()) => Outcome::RolledBack,
            Err(e) => {
                tracing::error!(error = %e, "rollback failed");
                Outcome::Error
            }
        }
    }

    fn rules(&self) -> machine::Rules {
        machine::Rules {
            on_inconclusive: self.on_inconclusive,
            pause_on_signal: false,
            watch: if self.background.is_some() {
                self.watch
            } else {
                Duration::ZERO
            },
            analysis_has_metrics: self.analyses.iter().map(|m| !m.is_empty()).collect(),
            recording_failed: None,
        }
    }

    /// Run (or resume) the promotion until it ends or `interrupt` resolves (then roll back,
    /// or pause when `pause_on_interrupt`).
    #[tracing::instrument(name = "promote", skip_all, fields(promotion = %self.id))]
    pub async fn run<F>(
        &self,
        interrupt: F,
        pause_on_interrupt: bool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Report
    where
        F: Future<Output = ()>,
    {
        let mut run = Run {
            promotion: self,
            events: Vec::new(),
            event_times: Vec::new(),
            analyses: Vec::new(),
            on_event,
        };
        let current = match self.applier.get().await {
            Ok(v) => v,
            Err(e) => return run.finish(Outcome::Error, e.to_string(), 0),
        };
        let recorded = progress_of(&current).filter(|p| p.id == self.id);
        let (first, resumed) = match machine::resume(recorded.as_ref()) {
            Resume::AlreadyPromoted => {
                let reason = "already promoted by an earlier run".to_string();
                let weight = recorded.map_or(0, |r| r.weight);
                return run.finish(Outcome::Promoted, reason, weight);
            }
            Resume::AlreadyRolledBack => {
                let reason =
                    "already rolled back by an earlier run; start a new promotion to try again"
                        .to_string();
                let weight = recorded.map_or(0, |r| r.weight);
                return run.finish(Outcome::RolledBack, reason, weight);
            }
            Resume::From { step, resumed } => (step, resumed),
        };
        let mut p = recorded.unwrap_or_else(|| Progress::fresh(&self.id));
        p.phase = PromotionPhase::Progressing;
        run.emit(Event::Started {
            id: self.id.clone(),
            resumed_at_step: resumed.then_some(first),
        });

        // What can stop the promotion between its own decisions: a signal, or the background
        // analysis going bad. One future, polled wherever the promotion waits.
        let (step_tx, step_rx) = tokio::sync::watch::channel(first);
        let finished_background = std::cell::RefCell::new(Vec::new());
        let stop = async {
            tokio::select! {
                _ = interrupt => None,
                r = self.background_verdict(step_rx, &finished_background) => Some(Box::new(r)),
            }
        };
        tokio::pin!(stop);
        let mut rules = self.rules();
        rules.pause_on_signal = pause_on_interrupt;
        // A rerun with fewer steps under the same id resumes past the last: the watch and
        // the promotion then count from the last step, as the steps are now.
        let mut index = first.min(self.steps.len());
        let mut last = Last::Start;
        loop {
            if last == Last::Start {
                if let Some(step) = self.steps.get(index) {
                    step_tx.send_replace(index);
                    let expected = match step {
                        Step::Analysis(a) => self
                            .analyses
                            .get(*a)
                            .and_then(|m| expected_duration(m, self.analysis_once)),
                        _ => None,
                    };
                    let (step, weight, expected_seconds) =
                        machine::describe(step, p.weight, expected);
                    run.emit(Event::Step {
                        index,
                        step,
                        weight,
                        expected_seconds,
                    });
                }
            }
            // Read after the step's event: writing that event to the ledger may be what
            // failed, and then this step's weight must not change.
            rules.recording_failed = self.recording.failed();
            last = match machine::decide(&p, &self.steps, index, &last, &rules) {
                Action::Next => {
                    index += 1;
                    Last::Start
                }
                Action::SetWeight(w) => {
                    p.weight_set(index, w);
                    match self.record(Some(w), &p).await {
                        Ok(()) => Last::WeightSet,
                        Err(e) => Last::WeightNotSet {
                            traffic: matches!(e, ApplyError::Traffic(_)),
                            error: e.to_string(),
                        },
                    }
                }
                Action::Wait(d) => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => Last::Waited,
                        c = &mut stop => run.stopped(c, index, &mut p.verdicts),
                    }
                }
                Action::Watch(d) => {
                    step_tx.send_replace(index);
                    run.emit(Event::Step {
                        index,
                        step: format!("watch {}", humantime::format_duration(d)),
                        weight: p.weight,
                        expected_seconds: Some(d.as_secs_f64()),
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(d) => Last::Waited,
                        c = &mut stop => run.stopped(c, index, &mut p.verdicts),
                    }
                }
                Action::Analyze(a) => {
                    let cause = std::cell::Cell::new(None);
                    let report = {
                        let stop = async { cause.set(Some((&mut stop).await)) };
                        self.analyze(a, &p, stop).await
                    };
                    match cause.take() {
                        Some(c) => {
                            run.analyses.push(report);
                            run.stopped(c, index, &mut p.verdicts)
                        }
                        None => run.analyzed(report, index, &mut p.verdicts),
                    }
                }
                Action::RecordPass => {
                    p.passed(index);
                    match self.record(None, &p).await {
                        Ok(()) => Last::PassRecorded,
                        Err(e) => Last::PassNotRecorded(e.to_string()),
                    }
                }
                Action::Promote => {
                    run.analyses.append(&mut finished_background.borrow_mut());
                    p.enter(PromotionPhase::Promoted);
                    match self.record(None, &p).await {
                        Ok(()) => {
                            let weight = p.weight;
                            run.emit(Event::Promoted { weight });
                            let reason = format!("every step passed; canary at {weight} %");
                            return run.finish(Outcome::Promoted, reason, weight);
                        }
                        Err(e) => Last::PromotionNotRecorded(e.to_string()),
                    }
                }
                Action::Pause {
                    reason,
                    at_step,
                    must_record,
                } => {
                    if at_step {
                        p.step = index;
                    }
                    p.enter(PromotionPhase::Paused);
                    match self.record(None, &p).await {
                        Err(e) if must_record => Last::PauseNotRecorded(e.to_string()),
                        _ => {
                            run.emit(Event::Paused {
                                reason: reason.clone(),
                            });
                            return run.finish(Outcome::Paused, reason, p.weight);
                        }
                    }
                }
                Action::Rollback { reason, outcome } => {
                    let outcome = match self.rollback(&mut p).await {
                        Outcome::RolledBack => outcome,
                        _ => Outcome::Error,
                    };
                    run.emit(Event::RolledBack {
                        reason: reason.clone(),
                    });
                    return run.finish(outcome, reason, p.weight);
                }
                Action::End { outcome, reason } => return run.finish(outcome, reason, p.weight),
            };
        }
    }

    /// Run analysis `a` from when the current weight was set, at that weight, until it ends
    /// or `stop` resolves.
    async fn analyze(&self, a: usize, p: &Progress, stop: impl Future<Output = ()>) -> RunReport {
        let since = p
            .weight_set_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc));
        let options = RunOptions {
            once: self.analysis_once,
            since,
            ..RunOptions::default()
        };
        let metrics = self.analyses.get(a).map_or(&[][..], Vec::as_slice);
        let metrics = for_step(metrics, self.judge_budget_share(), p.weight);
        analysis::run(&metrics, &self.sources, options, stop, &mut |_| {}).await
    }

    /// Resolves with the background analysis' report when it ends in anything but
    /// Successful; never resolves otherwise (no background analysis, or one that ended
    /// Successful, kept in `finished`).
    async fn background_verdict(
        &self,
        mut step: tokio::sync::watch::Receiver<usize>,
        finished: &std::cell::RefCell<Vec<RunReport>>,
    ) -> RunReport {
        let Some(b) = self.background.as_ref().filter(|b| !b.metrics.is_empty()) else {
            return std::future::pending().await;
        };
        if step.wait_for(|s| *s >= b.starting_step).await.is_err() {
            return std::future::pending().await;
        }
        let options = RunOptions::default();
        let metrics = with_budget_share(&b.metrics, self.judge_budget_share());
        let report = analysis::run(
            &metrics,
            &self.sources,
            options,
            std::future::pending(),
            &mut |_| {},
        )
        .await;
        if report.phase == Phase::Successful {
            finished.borrow_mut().push(report);
            return std::future::pending().await;
        }
        report
    }

    /// Roll back now (`--abort`).
    pub async fn abort(&self) -> Report {
        let current = self.applier.get().await.ok();
        let mut p = current
            .as_ref()
            .and_then(progress_of)
            .unwrap_or_else(|| Progress::fresh(&self.id));
        let outcome = self.rollback(&mut p).await;
        let reason = "aborted by --abort".to_string();
        Report {
            id: self.id.clone(),
            outcome,
            reason: reason.clone(),
            final_weight: 0,
            events: vec![Event::RolledBack { reason }],
            event_times: vec![now()],
            analyses: Vec::new(),
            judge_budget_share: None,
        }
    }
}

/// One run's accumulated events and analyses.
struct Run<'a> {
    promotion: &'a Promotion,
    events: Vec<Event>,
    event_times: Vec<String>,
    analyses: Vec<RunReport>,
    on_event: &'a mut dyn FnMut(&Event),
}

impl Run<'_> {
    fn emit(&mut self, e: Event) {
        (self.on_event)(&e);
        self.events.push(e);
        self.event_times
            .push(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }

    fn finish(self, outcome: Outcome, reason: String, final_weight: u32) -> Report {
        Report {
            id: self.promotion.id.clone(),
            outcome,
            reason,
            final_weight,
            events: self.events,
            event_times: self.event_times,
            analyses: self.analyses,
            judge_budget_share: self.promotion.judges_share(),
        }
    }

    /// The step's analysis ended: its report, an event, a verdict.
    fn analyzed(&mut self, report: RunReport, index: usize, verdicts: &mut Vec<String>) -> Last {
        let (phase, message) = (report.phase, report.message.clone());
        self.analyses.push(report);
        self.emit(Event::Analysis {
            index,
            background: false,
            phase,
            message: message.clone(),
        });
        verdicts.push(phase.to_string());
        Last::Analyzed { phase, message }
    }

    /// What stopped step `index` from outside: a signal (`None`), or the background
    /// analysis ending — then its report, an event, a verdict.
    fn stopped(
        &mut self,
        background: Option<Box<RunReport>>,
        index: usize,
        verdicts: &mut Vec<String>,
    ) -> Last {
        let Some(report) = background else {
            return Last::Stopped(Stopped::Signal);
        };
        let (phase, message) = (report.phase, report.message.clone());
        self.analyses.push(*report);
        self.emit(Event::Analysis {
            index,
            background: true,
            phase,
            message: message.clone(),
        });
        verdicts.push(format!("background {phase}"));
        Last::Stopped(Stopped::Background { phase, message })
    }
}

/// How long an analysis should take, when every metric has a `count` (or `once`).
fn expected_duration(metrics: &[ResolvedMetric], once: bool) -> Option<f64> {
    if once {
        return None;
    }
    let mut longest: f64 = 0.0;
    for m in metrics {
        let delay = m
            .metric
            .initial_delay
            .as_deref()
            .and_then(|d| crate::template::argo::parse_duration(d).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        let interval = m
            .metric
            .interval
            .as_deref()
            .and_then(|d| crate::template::argo::parse_duration(d).ok())
            .map(|d| d.as_secs_f64());
        let count = m.metric.count.unwrap_or(0);
        let t = match (interval, count) {
            (None, _) => 0.0,
            (Some(_), c) if c <= 0 => return None,
            (Some(i), c) => i * (c - 1) as f64,
        };
        longest = longest.max(delay + t);
    }
    Some(longest)
}

/// The default steps for weights: setWeight, pause (if any), analysis 0 — per weight.
pub fn default_steps(weights: &[u32], pause: Duration, analysis: bool) -> Vec<Step> {
    let mut out = Vec::new();
    for w in weights {
        out.push(Step::SetWeight(*w));
        if !pause.is_zero() {
            out.push(Step::Pause(Some(pause)));
        }
        if analysis {
            out.push(Step::Analysis(0));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::judge_spec;

    fn judge() -> Vec<ResolvedMetric> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/analysis-templates/judge-istio-golden-signals.yaml"
        );
        let text = std::fs::read_to_string(path).expect("shipped spec");
        let spec = judge_spec::parse_str(path, &text)
            .expect("valid spec")
            .remove(0);
        vec![crate::template::judge_metric(
            spec,
            Default::default(),
            None,
        )]
    }

    #[test]
    fn each_judged_analysis_gets_its_share_of_the_budget() {
        let steps = default_steps(&[10, 50, 100], Duration::ZERO, true);
        let analyses = vec![judge()];
        assert_eq!(budget_share(&steps, &analyses, None), 1.0 / 3.0);
        let background = Background {
            metrics: judge(),
            starting_step: 0,
        };
        assert_eq!(budget_share(&steps, &analyses, Some(&background)), 0.25);
        // Analyses without a Judge spend nothing of a Judge's budget.
        assert_eq!(budget_share(&steps, &[Vec::new()], None), 1.0);

        let scaled = with_budget_share(&analyses[0], 1.0 / 3.0);
        let (before, after) = (
            analyses[0][0].judge.as_ref().unwrap(),
            scaled[0].judge.as_ref().unwrap(),
        );
        for (b, a) in before.spec.metrics.iter().zip(&after.spec.metrics) {
            let (b, a) = (b.config.budget(), a.config.budget());
            assert!((a - b / 3.0).abs() < 1e-15, "{a} vs {b}");
        }
        let total: f64 = after.spec.metrics.iter().map(|m| m.config.budget()).sum();
        assert!((total - 0.01 / 3.0).abs() < 1e-12, "{total}");
    }
}
