//! Progressive delivery: shift traffic step by step, analyze at each step, roll back on a bad
//! verdict — and survive a crash in between.
//!
//! Progress lives on the VirtualService itself, in the annotation
//! `canary-engine.io/promotion`, written in the same update as each weight change (so the
//! recorded step and the live weights can never disagree) and again when a step's analysis
//! has passed. Rerunning the same command reads it and resumes: a step whose weight was set
//! but whose analysis was not recorded as passed is analyzed again — an analysis is never
//! skipped. A promotion that ended (promoted or rolled back) is reported, not redone.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analysis::{self, Phase, RunOptions, RunReport};
use crate::source::Sources;
use crate::template::ResolvedMetric;
use crate::traffic::apply::{Applier, ApplyError};
use crate::traffic::{desired, Target, TrafficError};

/// The annotation holding the promotion's progress.
pub const ANNOTATION: &str = "canary-engine.io/promotion";

/// One step, as Argo Rollouts' `canary.steps`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this percentage of traffic to the canary.
    SetWeight(u32),
    /// Wait.
    Pause(Duration),
    /// Run the promotion's analysis; it must be Successful to go on.
    Analysis,
}

/// What to do when an analysis is Inconclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInconclusive {
    /// Stop where we are (exit 2), for a human to decide.
    Pause,
    /// Roll back.
    Rollback,
}

/// Progress recorded on the VirtualService.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Identifies the promotion (same command → same id).
    pub id: String,
    /// `progressing`, `paused`, `promoted` or `rolled_back`.
    pub phase: String,
    /// Index of the last step started.
    pub step: usize,
    /// Steps whose analysis passed, up to and including this index (`-1`: none).
    pub analyzed_through: i64,
    /// Canary weight set.
    pub weight: u32,
    /// When the promotion started (RFC 3339).
    pub started_at: String,
    /// Last update (RFC 3339).
    pub updated_at: String,
    /// Phase of each analysis so far, oldest first.
    pub verdicts: Vec<String>,
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
    /// The contract's exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Promoted => 0,
            Outcome::RolledBack => 1,
            Outcome::Paused => 2,
            Outcome::Error => 3,
        }
    }
}

/// Something that happened, for live output, reports and the audit ledger.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event")]
pub enum Event {
    /// A promotion started (or resumed).
    #[serde(rename = "deployment.started")]
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
    },
    /// An analysis ended.
    #[serde(rename = "analysis.completed")]
    Analysis {
        /// Step index.
        index: usize,
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
    /// Rolled back.
    #[serde(rename = "deployment.rolled_back")]
    RolledBack {
        /// Why.
        reason: String,
    },
    /// Paused.
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
    /// Steps.
    pub steps: Vec<Step>,
    /// Which routes and destinations.
    pub target: Target,
    /// Analysis metrics (from AnalysisTemplates), run at each `Analysis` step.
    pub analysis: Vec<ResolvedMetric>,
    /// Where measurements come from.
    pub sources: Sources,
    /// Talks to the VirtualService.
    pub applier: Applier,
    /// On an Inconclusive analysis.
    pub on_inconclusive: OnInconclusive,
    /// Take one measurement per metric at each analysis (quick runs and demos).
    pub analysis_once: bool,
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
    /// Every analysis run.
    pub analyses: Vec<RunReport>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339()
}

/// Read the recorded progress, if any.
pub fn progress_of(vs: &Value) -> Option<Progress> {
    vs.pointer("/metadata/annotations")
        .and_then(|a| a.get(ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
}

fn with_progress(mut vs: Value, p: &Progress) -> Value {
    let text = serde_json::to_string(p).unwrap_or_default();
    if !vs["metadata"].is_object() {
        vs["metadata"] = Value::Object(Default::default());
    }
    if !vs["metadata"]["annotations"].is_object() {
        vs["metadata"]["annotations"] = Value::Object(Default::default());
    }
    vs["metadata"]["annotations"][ANNOTATION] = Value::String(text);
    vs
}

impl Promotion {
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
        p.phase = "rolled_back".into();
        p.weight = 0;
        p.updated_at = now();
        match self.record(Some(0), p).await {
            Ok(()) => Outcome::RolledBack,
            Err(e) => {
                tracing::error!(error = %e, "rollback failed");
                Outcome::Error
            }
        }
    }

    fn fresh(&self) -> Progress {
        Progress {
            id: self.id.clone(),
            phase: "progressing".into(),
            step: 0,
            analyzed_through: -1,
            weight: 0,
            started_at: now(),
            updated_at: now(),
            verdicts: Vec::new(),
        }
    }

    /// Run (or resume) the promotion until it ends or `interrupt` resolves (then roll back,
    /// or pause when `pause_on_interrupt`).
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
            analyses: Vec::new(),
            on_event,
        };
        tokio::pin!(interrupt);
        let current = match self.applier.get().await {
            Ok(v) => v,
            Err(e) => return run.finish(Outcome::Error, e.to_string(), 0),
        };
        let recorded = progress_of(&current).filter(|p| p.id == self.id);
        if let Some(r) = &recorded {
            match r.phase.as_str() {
                "promoted" => {
                    let reason = "already promoted by an earlier run".to_string();
                    return run.finish(Outcome::Promoted, reason, r.weight);
                }
                "rolled_back" => {
                    let reason =
                        "already rolled back by an earlier run; start a new promotion to try again"
                            .to_string();
                    return run.finish(Outcome::RolledBack, reason, r.weight);
                }
                _ => {}
            }
        }
        let mut p = recorded.clone().unwrap_or_else(|| self.fresh());
        // The recorded step's weight is live, and an analysis is recorded only once passed:
        // resume right after the later of the two, so every analysis after it runs again.
        let first = match &recorded {
            Some(r) => (r.step as i64).max(r.analyzed_through) as usize + 1,
            None => 0,
        };
        p.phase = "progressing".into();
        run.emit(Event::Started {
            id: self.id.clone(),
            resumed_at_step: recorded.as_ref().map(|_| first),
        });

        for i in first..self.steps.len() {
            let step = &self.steps[i];
            let (describe, weight_after) = match step {
                Step::SetWeight(w) => (format!("setWeight {w}"), *w),
                Step::Pause(d) => (
                    format!("pause {}", humantime::format_duration(*d)),
                    p.weight,
                ),
                Step::Analysis => ("analysis".to_string(), p.weight),
            };
            run.emit(Event::Step {
                index: i,
                step: describe,
                weight: weight_after,
            });
            match step {
                Step::SetWeight(w) => {
                    p.step = i;
                    p.weight = *w;
                    p.updated_at = now();
                    if let Err(e) = self.record(Some(*w), &p).await {
                        let reason = format!("could not set weight {w}: {e}");
                        let outcome = match (self.rollback(&mut p).await, &e) {
                            (Outcome::RolledBack, ApplyError::Traffic(_)) => Outcome::RolledBack,
                            _ => Outcome::Error,
                        };
                        run.emit(Event::RolledBack {
                            reason: reason.clone(),
                        });
                        return run.finish(outcome, reason, p.weight);
                    }
                }
                Step::Pause(d) => {
                    let interrupted = tokio::select! {
                        _ = tokio::time::sleep(*d) => false,
                        _ = &mut interrupt => true,
                    };
                    if interrupted {
                        return run.interrupted(&mut p, pause_on_interrupt).await;
                    }
                }
                Step::Analysis => {
                    if self.analysis.is_empty() {
                        continue;
                    }
                    let options = RunOptions {
                        once: self.analysis_once,
                    };
                    let stopped = std::cell::Cell::new(false);
                    let report = {
                        let stop = async {
                            (&mut interrupt).await;
                            stopped.set(true);
                        };
                        analysis::run(&self.analysis, &self.sources, options, stop, &mut |_| {})
                            .await
                    };
                    let phase = report.phase;
                    let message = report.message.clone();
                    run.analyses.push(report);
                    if stopped.get() {
                        return run.interrupted(&mut p, pause_on_interrupt).await;
                    }
                    run.emit(Event::Analysis {
                        index: i,
                        phase,
                        message: message.clone(),
                    });
                    p.verdicts.push(phase.to_string());
                    match phase {
                        Phase::Successful => {
                            p.step = i;
                            p.analyzed_through = i as i64;
                            p.updated_at = now();
                            if let Err(e) = self.record(None, &p).await {
                                let reason = format!("could not record progress: {e}");
                                self.rollback(&mut p).await;
                                run.emit(Event::RolledBack {
                                    reason: reason.clone(),
                                });
                                return run.finish(Outcome::Error, reason, p.weight);
                            }
                        }
                        Phase::Inconclusive if self.on_inconclusive == OnInconclusive::Pause => {
                            p.phase = "paused".into();
                            p.updated_at = now();
                            let reason = format!("analysis Inconclusive at step {i}: {message}");
                            let _ = self.record(None, &p).await;
                            run.emit(Event::Paused {
                                reason: reason.clone(),
                            });
                            return run.finish(Outcome::Paused, reason, p.weight);
                        }
                        _ => {
                            let reason = format!("analysis {phase} at step {i}: {message}");
                            let outcome = self.rollback(&mut p).await;
                            run.emit(Event::RolledBack {
                                reason: reason.clone(),
                            });
                            return run.finish(outcome, reason, p.weight);
                        }
                    }
                }
            }
        }
        p.phase = "promoted".into();
        p.updated_at = now();
        let weight = p.weight;
        if let Err(e) = self.record(None, &p).await {
            let reason = format!("promoted, but could not record it: {e}");
            return run.finish(Outcome::Error, reason, weight);
        }
        run.emit(Event::Promoted { weight });
        run.finish(
            Outcome::Promoted,
            format!("every step passed; canary at {weight} %"),
            weight,
        )
    }

    /// Roll back now (`--abort`).
    pub async fn abort(&self) -> Report {
        let current = self.applier.get().await.ok();
        let mut p = current
            .as_ref()
            .and_then(progress_of)
            .unwrap_or_else(|| self.fresh());
        let outcome = self.rollback(&mut p).await;
        let reason = "aborted by --abort".to_string();
        Report {
            id: self.id.clone(),
            outcome,
            reason: reason.clone(),
            final_weight: 0,
            events: vec![Event::RolledBack { reason }],
            analyses: Vec::new(),
        }
    }
}

/// One run's accumulated events and analyses.
struct Run<'a> {
    promotion: &'a Promotion,
    events: Vec<Event>,
    analyses: Vec<RunReport>,
    on_event: &'a mut dyn FnMut(&Event),
}

impl Run<'_> {
    fn emit(&mut self, e: Event) {
        (self.on_event)(&e);
        self.events.push(e);
    }

    fn finish(self, outcome: Outcome, reason: String, final_weight: u32) -> Report {
        Report {
            id: self.promotion.id.clone(),
            outcome,
            reason,
            final_weight,
            events: self.events,
            analyses: self.analyses,
        }
    }

    async fn interrupted(mut self, p: &mut Progress, pause: bool) -> Report {
        if pause {
            p.phase = "paused".into();
            p.updated_at = now();
            let _ = self.promotion.record(None, p).await;
            let reason = "interrupted: left paused at the current weight".to_string();
            self.emit(Event::Paused {
                reason: reason.clone(),
            });
            let w = p.weight;
            self.finish(Outcome::Paused, reason, w)
        } else {
            let reason = "interrupted: rolled back".to_string();
            let outcome = self.promotion.rollback(p).await;
            self.emit(Event::RolledBack {
                reason: reason.clone(),
            });
            self.finish(outcome, reason, 0)
        }
    }
}

/// The default steps for weights: setWeight, pause (if any), analysis — per weight.
pub fn default_steps(weights: &[u32], pause: Duration, analysis: bool) -> Vec<Step> {
    let mut out = Vec::new();
    for w in weights {
        out.push(Step::SetWeight(*w));
        if !pause.is_zero() {
            out.push(Step::Pause(pause));
        }
        if analysis {
            out.push(Step::Analysis);
        }
    }
    out
}
