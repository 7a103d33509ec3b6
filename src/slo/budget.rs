//! An SLO's error budget as a deploy policy reads it (OPA's `input`): how much of the period's
//! budget is left, how fast each window burns, and whether each multiwindow rule trips.

use serde::Serialize;

use super::{label, SloOutcome, SloResult, WindowCounts};
use crate::template::judge_spec::Slo;

/// The fastest burn-rate factor still called a fast burn (the SRE Workbook's page-worthy
/// 1h/5m rule is 14.4×; its 6h/30m rule, 6×, is too).
pub const FAST_BURN: f64 = 6.0;

/// One SLO's budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    /// The SLO's name.
    pub name: String,
    /// Objective as a ratio (0.999).
    pub objective: f64,
    /// The period the budget is defined over, e.g. `30d`.
    pub period: String,
    /// Bad events over the period.
    pub bad: f64,
    /// All events over the period.
    pub total: f64,
    /// Share of the period's budget spent (1 = all of it; null without events).
    pub consumed: Option<f64>,
    /// Share left (may be negative: overspent; null without events).
    pub remaining: Option<f64>,
    /// Nothing left.
    pub exhausted: bool,
    /// Every multiwindow rule.
    pub rules: Vec<Rule>,
    /// A rule with factor ≥ [`FAST_BURN`] trips.
    pub fast_burn: bool,
    /// The burn-rate gate's outcome (`pass`, `fail`, `inconclusive`).
    pub outcome: SloOutcome,
}

/// One multiwindow rule as a policy reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// Long window, e.g. `1h`.
    pub long: String,
    /// Short window, e.g. `5m`.
    pub short: String,
    /// Factor both must exceed.
    pub factor: f64,
    /// Burn rate over the long window (null without events).
    pub long_burn_rate: Option<f64>,
    /// Burn rate over the short window.
    pub short_burn_rate: Option<f64>,
    /// Both windows above the factor.
    pub trips: bool,
    /// Hours until the budget is gone at the long window's rate.
    pub hours_to_exhaustion: Option<f64>,
}

/// The budget of `slo` from its counts over the whole period and its burn-rate evaluation.
pub fn budget(slo: &Slo, period: WindowCounts, evaluated: &SloResult) -> Budget {
    let allowed = 1.0 - slo.objective;
    let consumed = (period.total > 0.0 && allowed > 0.0)
        .then(|| (period.bad.max(0.0) / period.total) / allowed);
    let rules: Vec<Rule> = evaluated
        .rules
        .iter()
        .map(|r| Rule {
            long: r.long.window.clone(),
            short: r.short.window.clone(),
            factor: r.factor,
            long_burn_rate: r.long.burn_rate,
            short_burn_rate: r.short.burn_rate,
            trips: r.outcome == SloOutcome::Fail,
            hours_to_exhaustion: r.hours_to_exhaustion,
        })
        .collect();
    Budget {
        name: slo.name.clone(),
        // 99.9 / 100 is 0.9990000000000001 in binary: a policy compares against 0.999.
        objective: (slo.objective * 1e12).round() / 1e12,
        period: label(slo.period),
        bad: period.bad,
        total: period.total,
        consumed,
        remaining: consumed.map(|c| 1.0 - c),
        exhausted: consumed.is_some_and(|c| c >= 1.0),
        fast_burn: rules.iter().any(|r| r.trips && r.factor >= FAST_BURN),
        rules,
        outcome: evaluated.outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::evaluate;
    use crate::template::judge_spec::{BurnWindow, SloScope};
    use std::time::Duration;

    fn slo() -> Slo {
        Slo {
            name: "availability".into(),
            objective: 0.999,
            error_query: String::new(),
            total_query: String::new(),
            scope: SloScope::Service,
            windows: vec![BurnWindow {
                long: Duration::from_secs(3600),
                short: Duration::from_secs(300),
                burn_rate: 14.4,
            }],
            min_events: 100.0,
            min_bad_events: 10.0,
            period: Duration::from_secs(30 * 86400),
        }
    }

    #[test]
    fn a_quarter_spent_leaves_three_quarters() {
        let s = slo();
        let quiet = WindowCounts {
            bad: 1.0,
            total: 10_000.0,
        };
        let r = evaluate(&s, &[(quiet, quiet)]);
        let b = budget(
            &s,
            WindowCounts {
                bad: 250.0,
                total: 1_000_000.0,
            },
            &r,
        );
        assert!((b.consumed.unwrap() - 0.25).abs() < 1e-9);
        assert!((b.remaining.unwrap() - 0.75).abs() < 1e-9);
        assert!(!b.exhausted && !b.fast_burn);
        assert_eq!(b.period, "30d");
        assert!(!b.rules[0].trips);
    }

    #[test]
    fn an_overspent_budget_and_a_fast_burn() {
        let s = slo();
        let burning = WindowCounts {
            bad: 300.0,
            total: 10_000.0,
        };
        let r = evaluate(&s, &[(burning, burning)]);
        let b = budget(
            &s,
            WindowCounts {
                bad: 2_000.0,
                total: 1_000_000.0,
            },
            &r,
        );
        assert!(b.exhausted, "{b:?}");
        assert!(b.remaining.unwrap() < 0.0);
        assert!(b.fast_burn && b.rules[0].trips, "{b:?}");
    }

    #[test]
    fn no_traffic_is_no_number_never_a_full_budget() {
        let s = slo();
        let none = WindowCounts {
            bad: 0.0,
            total: 0.0,
        };
        let r = evaluate(&s, &[(none, none)]);
        let b = budget(&s, none, &r);
        assert_eq!((b.consumed, b.remaining, b.exhausted), (None, None, false));
    }
}
