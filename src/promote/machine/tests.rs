//! Every step kind × every result its executor can report × every analysis phase × the
//! rules, and every resume point of a whole promotion.

use super::*;

const PHASES: [Phase; 6] = [
    Phase::Pending,
    Phase::Running,
    Phase::Successful,
    Phase::Inconclusive,
    Phase::Error,
    Phase::Failed,
];

fn steps() -> Vec<Step> {
    vec![
        Step::SetWeight(10),
        Step::Pause(Some(Duration::from_secs(30))),
        Step::Analysis(0),
        Step::Pause(None),
        Step::SetWeight(50),
        Step::Analysis(1),
        Step::SetWeight(100),
    ]
}

fn rules(on_inconclusive: OnInconclusive, pause_on_signal: bool) -> Rules {
    Rules {
        on_inconclusive,
        pause_on_signal,
        watch: Duration::ZERO,
        analysis_has_metrics: vec![true, false],
        recording_failed: None,
    }
}

fn all_rules() -> Vec<Rules> {
    let mut out = Vec::new();
    for on in [OnInconclusive::Pause, OnInconclusive::Rollback] {
        for signal in [false, true] {
            for watch in [Duration::ZERO, Duration::from_secs(60)] {
                let mut r = rules(on, signal);
                r.watch = watch;
                out.push(r);
            }
        }
    }
    out
}

/// Every result an executor can report, with every analysis phase.
fn all_lasts() -> Vec<Last> {
    let mut out = vec![
        Last::Start,
        Last::WeightSet,
        Last::WeightNotSet {
            error: "conflict".into(),
            traffic: false,
        },
        Last::WeightNotSet {
            error: "no route".into(),
            traffic: true,
        },
        Last::Waited,
        Last::PassRecorded,
        Last::PassNotRecorded("gone".into()),
        Last::PauseNotRecorded("gone".into()),
        Last::PromotionNotRecorded("gone".into()),
        Last::Stopped(Stopped::Signal),
    ];
    for phase in PHASES {
        out.push(Last::Analyzed {
            phase,
            message: "why".into(),
        });
        out.push(Last::Stopped(Stopped::Background {
            phase,
            message: "why".into(),
        }));
    }
    out
}

/// Whether the executor can report `last` at this step (Start and a stop anywhere; the rest
/// only after the action the step asked for).
fn possible(step: Option<&Step>, last: &Last) -> bool {
    matches!(
        (step, last),
        (_, Last::Start | Last::Stopped(_))
            | (
                Some(Step::SetWeight(_)),
                Last::WeightSet | Last::WeightNotSet { .. }
            )
            | (Some(Step::Pause(Some(_))), Last::Waited)
            | (Some(Step::Pause(None)), Last::PauseNotRecorded(_))
            | (
                Some(Step::Analysis(_)),
                Last::Analyzed { .. } | Last::PassRecorded | Last::PassNotRecorded(_)
            )
            | (None, Last::Waited)
            | (None, Last::PromotionNotRecorded(_))
    )
}

fn internal(a: &Action) -> bool {
    matches!(a, Action::End { outcome: Outcome::Error, reason } if reason.starts_with("internal error"))
}

#[test]
fn every_step_kind_result_and_phase_has_one_defined_action() {
    let steps = steps();
    let progress = Progress::fresh("p");
    let mut checked = 0;
    for rules in all_rules() {
        for index in 0..=steps.len() {
            let step = steps.get(index);
            for last in all_lasts() {
                let action = decide(&progress, &steps, index, &last, &rules);
                checked += 1;
                // What the executor can never report is an error that leaves traffic alone,
                // and only that is.
                assert_eq!(
                    internal(&action),
                    !possible(step, &last),
                    "{step:?} {last:?} → {action:?}"
                );
                if internal(&action) {
                    continue;
                }
                let expected = expected(step, index, &last, &rules);
                assert_eq!(action, expected, "{step:?} {last:?}");
            }
        }
    }
    assert_eq!(
        checked,
        all_rules().len() * (steps.len() + 1) * all_lasts().len()
    );
}

/// The rules, stated once more in the order an operator reads them in docs/promote.md.
fn expected(step: Option<&Step>, index: usize, last: &Last, rules: &Rules) -> Action {
    let pause = |reason: String| Action::Pause {
        reason,
        at_step: false,
        must_record: false,
    };
    let rollback = |reason: String, outcome| Action::Rollback { reason, outcome };
    if let Last::Stopped(s) = last {
        return match s {
            Stopped::Signal if rules.pause_on_signal => {
                pause("interrupted: left paused at the current weight".into())
            }
            Stopped::Signal => rollback("interrupted: rolled back".into(), Outcome::RolledBack),
            Stopped::Background { phase, message } => {
                if *phase == Phase::Inconclusive && rules.on_inconclusive == OnInconclusive::Pause {
                    pause(format!("background analysis Inconclusive: {message}"))
                } else {
                    rollback(
                        format!("background analysis {phase}: {message}"),
                        Outcome::RolledBack,
                    )
                }
            }
        };
    }
    match (step, last) {
        (Some(Step::SetWeight(w)), Last::Start) => Action::SetWeight(*w),
        (Some(Step::Pause(Some(d))), Last::Start) => Action::Wait(*d),
        (Some(Step::Pause(None)), Last::Start) => Action::Pause {
            reason: format!(
                "paused at step {index} until resumed: run the same command again to continue"
            ),
            at_step: true,
            must_record: true,
        },
        (Some(Step::Analysis(a)), Last::Start) if rules.analysis_has_metrics[*a] => {
            Action::Analyze(*a)
        }
        (Some(Step::Analysis(_)), Last::Start) => Action::Next,
        (Some(_), Last::WeightSet | Last::Waited | Last::PassRecorded) => Action::Next,
        (Some(Step::SetWeight(w)), Last::WeightNotSet { error, traffic }) => rollback(
            format!("could not set weight {w}: {error}"),
            if *traffic {
                Outcome::RolledBack
            } else {
                Outcome::Error
            },
        ),
        (Some(_), Last::PauseNotRecorded(e)) => Action::End {
            outcome: Outcome::Error,
            reason: format!("could not record the pause: {e}"),
        },
        (Some(_), Last::Analyzed { phase, message }) => match phase {
            Phase::Successful => Action::RecordPass,
            Phase::Inconclusive if rules.on_inconclusive == OnInconclusive::Pause => {
                pause(format!("analysis Inconclusive at step {index}: {message}"))
            }
            _ => rollback(
                format!("analysis {phase} at step {index}: {message}"),
                Outcome::RolledBack,
            ),
        },
        (Some(_), Last::PassNotRecorded(e)) => {
            rollback(format!("could not record progress: {e}"), Outcome::Error)
        }
        (None, Last::Start) if !rules.watch.is_zero() => Action::Watch(rules.watch),
        (None, Last::Start | Last::Waited) => Action::Promote,
        (None, Last::PromotionNotRecorded(e)) => Action::End {
            outcome: Outcome::Error,
            reason: format!("promoted, but could not record it: {e}"),
        },
        _ => unreachable!("only possible results are expected"),
    }
}

#[test]
fn only_successful_goes_on_and_only_inconclusive_may_pause() {
    let steps = steps();
    let progress = Progress::fresh("p");
    for on in [OnInconclusive::Pause, OnInconclusive::Rollback] {
        for phase in PHASES {
            let last = Last::Analyzed {
                phase,
                message: String::new(),
            };
            let action = decide(&progress, &steps, 2, &last, &rules(on, false));
            let kind = match action {
                Action::RecordPass => "pass",
                Action::Pause { .. } => "pause",
                Action::Rollback { .. } => "rollback",
                ref other => panic!("{phase}: {other:?}"),
            };
            let want = match (phase, on) {
                (Phase::Successful, _) => "pass",
                (Phase::Inconclusive, OnInconclusive::Pause) => "pause",
                // Pending and Running never end an analysis; if one did, it is not a pass.
                _ => "rollback",
            };
            assert_eq!(kind, want, "{phase} with {on:?}");
        }
    }
}

#[test]
fn no_weight_changes_while_the_ledger_cannot_record() {
    let steps = steps();
    let mut r = rules(OnInconclusive::Pause, false);
    r.recording_failed = Some("disk full".into());
    let progress = Progress::fresh("p");
    for (index, step) in steps.iter().enumerate() {
        let action = decide(&progress, &steps, index, &Last::Start, &r);
        match step {
            Step::SetWeight(_) => match action {
                Action::End {
                    outcome: Outcome::Error,
                    reason,
                } => assert!(reason.contains("disk full"), "{reason}"),
                other => panic!("step {index}: {other:?}"),
            },
            // Pauses and analyses change no weight and go on.
            _ => assert!(!matches!(action, Action::SetWeight(_) | Action::End { .. })),
        }
    }
}

#[test]
fn resume_points() {
    assert_eq!(
        resume(None),
        Resume::From {
            step: 0,
            resumed: false
        }
    );
    let at = |phase, step, analyzed_through| {
        let mut p = Progress::fresh("p");
        p.phase = phase;
        p.step = step;
        p.analyzed_through = analyzed_through;
        resume(Some(&p))
    };
    for phase in [PromotionPhase::Progressing, PromotionPhase::Paused] {
        // Weight 10 set at step 0, its analysis not passed: the analysis runs again.
        assert_eq!(
            at(phase, 0, -1),
            Resume::From {
                step: 1,
                resumed: true
            }
        );
        // Analysis at step 2 passed: on to step 3.
        assert_eq!(
            at(phase, 2, 2),
            Resume::From {
                step: 3,
                resumed: true
            }
        );
        // An indefinite pause at step 3 recorded as the step: continue after it.
        assert_eq!(
            at(phase, 3, 2),
            Resume::From {
                step: 4,
                resumed: true
            }
        );
    }
    assert_eq!(at(PromotionPhase::Promoted, 6, 5), Resume::AlreadyPromoted);
    assert_eq!(
        at(PromotionPhase::RolledBack, 0, -1),
        Resume::AlreadyRolledBack
    );
}

/// A whole promotion driven through the machine by a world that always succeeds, crashing
/// after each action in turn and resuming from what was recorded: every crash point ends
/// promoted at 100 %, every analysis step after the last recorded pass runs again, and no
/// analysis is ever skipped.
#[test]
fn a_crash_after_any_action_resumes_without_skipping_an_analysis() {
    let steps = vec![
        Step::SetWeight(10),
        Step::Analysis(0),
        Step::SetWeight(50),
        Step::Pause(Some(Duration::from_secs(1))),
        Step::Analysis(0),
        Step::SetWeight(100),
        Step::Analysis(0),
    ];
    let rules = Rules {
        analysis_has_metrics: vec![true],
        ..rules(OnInconclusive::Pause, false)
    };
    let analysis_steps: Vec<usize> = (0..steps.len())
        .filter(|i| matches!(steps[*i], Step::Analysis(_)))
        .collect();
    let total_actions = drive(&steps, &rules, None, usize::MAX).1;
    assert!(total_actions > steps.len());
    for crash_after in 0..total_actions {
        let (recorded, _, first_run) = drive(&steps, &rules, None, crash_after);
        let (end, _, second_run) = drive(&steps, &rules, recorded.clone(), usize::MAX);
        let end = end.expect("promoted");
        assert_eq!(
            end.phase,
            PromotionPhase::Promoted,
            "crash after {crash_after}"
        );
        assert_eq!(end.weight, 100);
        // Every analysis step passed in one run or the other, and the second run ran every
        // analysis step after the last pass the first run recorded.
        let last_pass = recorded.as_ref().map_or(-1, |p| p.analyzed_through);
        for s in &analysis_steps {
            assert!(
                first_run.contains(s) || second_run.contains(s),
                "step {s} skipped (crash after {crash_after})"
            );
            if (*s as i64) > last_pass {
                assert!(second_run.contains(s), "step {s} not rerun");
            }
        }
    }
}

/// Runs the machine with a world where every write and analysis succeeds, applying to the
/// progress what the executor records, for at most `budget` actions. Returns the recorded
/// progress (`None` before the first write), the actions taken and the analysis steps run.
fn drive(
    steps: &[Step],
    rules: &Rules,
    recorded: Option<Progress>,
    budget: usize,
) -> (Option<Progress>, usize, Vec<usize>) {
    let (mut index, resumed) = match resume(recorded.as_ref()) {
        Resume::From { step, resumed } => (step, resumed),
        other => panic!("{other:?}"),
    };
    let mut p = recorded.clone().unwrap_or_else(|| Progress::fresh("p"));
    p.phase = PromotionPhase::Progressing;
    let mut written = recorded.filter(|_| resumed);
    let mut last = Last::Start;
    let mut analyzed = Vec::new();
    for taken in 0..budget {
        last = match decide(&p, steps, index, &last, rules) {
            Action::Next => {
                index += 1;
                Last::Start
            }
            Action::SetWeight(w) => {
                p.weight_set(index, w);
                written = Some(p.clone());
                Last::WeightSet
            }
            Action::Wait(_) => Last::Waited,
            Action::Analyze(_) => {
                analyzed.push(index);
                Last::Analyzed {
                    phase: Phase::Successful,
                    message: String::new(),
                }
            }
            Action::RecordPass => {
                p.passed(index);
                written = Some(p.clone());
                Last::PassRecorded
            }
            Action::Promote => {
                p.enter(PromotionPhase::Promoted);
                return (Some(p), taken + 1, analyzed);
            }
            other => panic!("a healthy promotion asked for {other:?}"),
        };
    }
    (written, budget, analyzed)
}
