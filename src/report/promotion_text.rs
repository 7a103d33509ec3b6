//! A promotion as text: the live status line a terminal shows, one line per event for
//! people, and the Markdown step summary for CI.

use std::time::{Duration, Instant};

use crate::promote::{Event, Outcome, Report};

/// What the live status line shows.
#[derive(Debug, Clone)]
pub struct Status {
    steps: usize,
    index: Option<usize>,
    step: String,
    weight: u32,
    started: Instant,
    expected: Option<f64>,
    verdict: String,
    /// The promotion ended: the line stops.
    pub done: bool,
}

impl Status {
    /// Before the first of `steps` steps.
    pub fn new(steps: usize) -> Self {
        Status {
            steps,
            index: None,
            step: String::new(),
            weight: 0,
            started: Instant::now(),
            expected: None,
            verdict: "-".into(),
            done: false,
        }
    }

    /// Take an event into account.
    pub fn update(&mut self, e: &Event) {
        match e {
            Event::Step {
                index,
                step,
                weight,
                expected_seconds,
            } => {
                self.index = Some(*index);
                self.step = step.clone();
                self.weight = *weight;
                self.started = Instant::now();
                self.expected = *expected_seconds;
            }
            Event::Analysis {
                phase, background, ..
            } => {
                self.verdict = if *background {
                    format!("background {phase}")
                } else {
                    phase.to_string()
                }
            }
            Event::Promoted { .. } | Event::RolledBack { .. } | Event::Paused { .. } => {
                self.done = true
            }
            Event::Started { .. } => {}
        }
    }

    /// The status line, e.g. `step 4/9 pause 5m · canary 50 % · 3m 12s left · last verdict
    /// Successful`.
    pub fn line(&self) -> String {
        let Some(i) = self.index else {
            return "starting…".into();
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let time = match self.expected {
            Some(t) => {
                let left = (t - elapsed).max(0.0).round() as u64;
                format!(
                    "{} left",
                    humantime::format_duration(Duration::from_secs(left))
                )
            }
            None => format!(
                "{} so far",
                humantime::format_duration(Duration::from_secs(elapsed as u64))
            ),
        };
        let step = if i >= self.steps {
            self.step.clone()
        } else {
            format!("step {}/{} {}", i + 1, self.steps, self.step)
        };
        format!(
            "{step} · canary {} % · {time} · last verdict {}",
            self.weight, self.verdict
        )
    }
}

/// One line for a person.
pub fn human(e: &Event) -> String {
    let t = chrono::Local::now().format("%H:%M:%S");
    match e {
        Event::Started {
            id,
            resumed_at_step,
        } => match resumed_at_step {
            Some(s) => format!("{t}  resuming {id} at step {s}"),
            None => format!("{t}  starting {id}"),
        },
        Event::Step {
            index,
            step,
            weight,
            ..
        } => format!("{t}  step {index}: {step} (canary {weight} %)"),
        Event::Analysis {
            index,
            background: false,
            phase,
            message,
        } => format!("{t}  step {index}: analysis {phase} {message}"),
        Event::Analysis {
            index,
            background: true,
            phase,
            message,
        } => format!("{t}  step {index}: background analysis {phase} {message}"),
        Event::Promoted { weight } => format!("{t}  promoted: canary at {weight} %"),
        Event::RolledBack { reason } => format!("{t}  ROLLED BACK: {reason}"),
        Event::Paused { reason } => format!("{t}  paused: {reason}"),
    }
}

/// The Markdown summary for a CI step summary.
pub fn markdown(r: &Report) -> String {
    let icon = match r.outcome {
        Outcome::Promoted => "✅",
        Outcome::RolledBack => "↩️",
        Outcome::Paused => "⏸️",
        Outcome::Error => "❌",
    };
    let mut out = format!(
        "### {icon} canary promote `{}`: {:?}\n\n{}\n\nFinal canary weight: **{} %**\n\n| step | what | result |\n|---|---|---|\n",
        r.id, r.outcome, r.reason, r.final_weight
    );
    for e in &r.events {
        match e {
            Event::Step {
                index,
                step,
                weight,
                ..
            } => out.push_str(&format!("| {index} | {step} | canary {weight} % |\n")),
            Event::Analysis {
                index,
                background,
                phase,
                message,
            } => out.push_str(&format!(
                "| {index} | {} | {phase} {} |\n",
                if *background {
                    "background analysis"
                } else {
                    "analysis"
                },
                message.replace('|', "\\|")
            )),
            _ => {}
        }
    }
    if let Some(share) = r.judge_budget_share {
        out.push_str(&format!(
            "\nEach analysis spent 1/{} of its Judge spec's false-alarm budget, so the whole \
             promotion stays within it.\n",
            (1.0 / share).round()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_shows_step_weight_time_left_and_verdict() {
        let mut s = Status::new(9);
        assert_eq!(s.line(), "starting…");
        s.update(&Event::Step {
            index: 1,
            step: "pause 5m".into(),
            weight: 10,
            expected_seconds: Some(300.0),
        });
        s.update(&Event::Analysis {
            index: 0,
            background: true,
            phase: crate::analysis::Phase::Successful,
            message: String::new(),
        });
        assert_eq!(
            s.line(),
            "step 2/9 pause 5m · canary 10 % · 5m left · last verdict background Successful"
        );
        s.update(&Event::Step {
            index: 2,
            step: "analysis".into(),
            weight: 10,
            expected_seconds: None,
        });
        assert!(
            s.line()
                .ends_with("0s so far · last verdict background Successful"),
            "{}",
            s.line()
        );
        assert!(!s.done);
        s.update(&Event::Promoted { weight: 100 });
        assert!(s.done);
    }
}
