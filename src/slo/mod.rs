//! Error-budget burn rate: multiwindow, multi-burn-rate rules with volume guards (pure).
//!
//! `burn = error_ratio / (1 − objective)`. A rule trips when its long window (is the burn
//! significant?) AND its short window (is it still happening?) both burn faster than its
//! factor — the SRE Workbook's alerting rule. Missing evidence is never a pass: a window with
//! fewer than `min_events` events is inconclusive, unless at least `min_bad_events` of them
//! failed and the burn exceeds the factor (a hard outage on a quiet service still fails).

pub mod budget;

use std::time::Duration;

use serde::Serialize;

use crate::judge::words::readable;
use crate::template::judge_spec::{Slo, SloScope};

/// Bad and total events observed in one window (NaN when the query returned nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowCounts {
    /// Bad events.
    pub bad: f64,
    /// All events.
    pub total: f64,
}

/// What one window says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    /// Burning faster than the factor.
    Burning,
    /// Enough events, burning slower than the factor.
    Ok,
    /// Too few events to tell.
    Inconclusive,
}

/// One window's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowResult {
    /// Window length, e.g. `1h`.
    pub window: String,
    /// Bad events.
    pub bad: f64,
    /// All events.
    pub total: f64,
    /// bad / total (null without events).
    pub error_ratio: Option<f64>,
    /// error_ratio / (1 − objective) (null without events).
    pub burn_rate: Option<f64>,
    /// Verdict of this window.
    pub state: WindowState,
}

/// Outcome of a rule or an SLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloOutcome {
    /// Within budget.
    Pass,
    /// Burning: roll back.
    Fail,
    /// Not enough traffic to tell: never a pass.
    Inconclusive,
}

impl SloOutcome {
    /// Lower-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            SloOutcome::Pass => "pass",
            SloOutcome::Fail => "fail",
            SloOutcome::Inconclusive => "inconclusive",
        }
    }
}

/// One burn-rate rule's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    /// Factor both windows must exceed.
    pub factor: f64,
    /// Long window.
    pub long: WindowResult,
    /// Short window.
    pub short: WindowResult,
    /// Tripped (fail), clear (pass) or undecided.
    pub outcome: SloOutcome,
    /// Fraction of the period's budget spent per hour at the long window's burn rate.
    pub budget_per_hour: Option<f64>,
    /// Hours until the whole budget is gone at that rate.
    pub hours_to_exhaustion: Option<f64>,
}

/// One SLO's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloResult {
    /// SLO name.
    pub name: String,
    /// Whose traffic was measured.
    pub scope: SloScope,
    /// Objective as a ratio.
    pub objective: f64,
    /// Overall outcome: fail if any rule tripped, else inconclusive if any rule was, else pass.
    pub outcome: SloOutcome,
    /// Every rule.
    pub rules: Vec<RuleResult>,
    /// Why, with numbers.
    pub reasons: Vec<String>,
}

/// Prometheus-style duration label: `5m`, `1h`, `1d12h`, `30d` (whole seconds).
pub fn label(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    out
}

fn window(slo: &Slo, d: Duration, c: WindowCounts, factor: f64) -> WindowResult {
    let has_events = c.total.is_finite() && c.total > 0.0;
    let bad = if c.bad.is_finite() {
        c.bad.max(0.0)
    } else {
        0.0
    };
    let total = if has_events { c.total } else { 0.0 };
    let ratio = has_events.then(|| (bad / total).min(1.0));
    let burn = ratio.map(|r| r / (1.0 - slo.objective));
    let over = burn.is_some_and(|b| b > factor);
    let state = if !has_events {
        WindowState::Inconclusive
    } else if total >= slo.min_events {
        if over {
            WindowState::Burning
        } else {
            WindowState::Ok
        }
    } else if over && bad >= slo.min_bad_events {
        WindowState::Burning
    } else {
        WindowState::Inconclusive
    };
    WindowResult {
        window: label(d),
        bad,
        total,
        error_ratio: ratio,
        burn_rate: burn,
        state,
    }
}

/// Evaluate an SLO from the counts of each rule's (long, short) windows, in `slo.windows` order.
pub fn evaluate(slo: &Slo, counts: &[(WindowCounts, WindowCounts)]) -> SloResult {
    let mut rules = Vec::new();
    let mut reasons = Vec::new();
    for (w, (lc, sc)) in slo.windows.iter().zip(counts) {
        let long = window(slo, w.long, *lc, w.burn_rate);
        let short = window(slo, w.short, *sc, w.burn_rate);
        use WindowState::*;
        let outcome = match (long.state, short.state) {
            (Burning, Burning) => SloOutcome::Fail,
            (Ok, _) | (_, Ok) => SloOutcome::Pass,
            _ => SloOutcome::Inconclusive,
        };
        let period_h = slo.period.as_secs_f64() / 3600.0;
        let budget_per_hour = long.burn_rate.map(|b| b / period_h);
        let hours_to_exhaustion = long.burn_rate.filter(|b| *b > 0.0).map(|b| period_h / b);
        let burn = |r: &WindowResult| r.burn_rate.map(readable).unwrap_or_else(|| "n/a".into());
        match outcome {
            SloOutcome::Fail => reasons.push(format!(
                "{}: burning {}× over {} and {}× over {} (limit {}×, {} of {} and {} of {} requests bad): \
                 at this rate the {} error budget is gone in {} ({}% of it per hour)",
                slo.name,
                burn(&long),
                long.window,
                burn(&short),
                short.window,
                readable(w.burn_rate),
                readable(long.bad),
                readable(long.total),
                readable(short.bad),
                readable(short.total),
                label(slo.period),
                hours_to_exhaustion
                    .map(|h| label(Duration::from_secs_f64((h * 3600.0).min(1e12))))
                    .unwrap_or_else(|| "never".into()),
                budget_per_hour.map(|f| readable(f * 100.0)).unwrap_or_default(),
            )),
            SloOutcome::Inconclusive => reasons.push(format!(
                "{}: too little traffic to judge the {}/{} rule ({} and {} requests; min_events {})",
                slo.name,
                long.window,
                short.window,
                readable(long.total),
                readable(short.total),
                readable(slo.min_events)
            )),
            SloOutcome::Pass => {}
        }
        rules.push(RuleResult {
            factor: w.burn_rate,
            long,
            short,
            outcome,
            budget_per_hour,
            hours_to_exhaustion,
        });
    }
    let outcome = if rules.iter().any(|r| r.outcome == SloOutcome::Fail) {
        SloOutcome::Fail
    } else if rules.is_empty() || rules.iter().any(|r| r.outcome == SloOutcome::Inconclusive) {
        SloOutcome::Inconclusive
    } else {
        SloOutcome::Pass
    };
    if outcome == SloOutcome::Pass {
        let worst = rules
            .iter()
            .filter_map(|r| r.long.burn_rate)
            .fold(0.0_f64, f64::max);
        reasons.push(format!(
            "{}: within budget (highest long-window burn {}×)",
            slo.name,
            readable(worst)
        ));
    }
    SloResult {
        name: slo.name.clone(),
        scope: slo.scope,
        objective: slo.objective,
        outcome,
        rules,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::judge_spec::default_windows;

    fn slo() -> Slo {
        Slo {
            name: "availability".into(),
            objective: 0.999,
            error_query: String::new(),
            total_query: String::new(),
            scope: SloScope::Service,
            windows: default_windows(),
            min_events: 100.0,
            min_bad_events: 10.0,
            period: Duration::from_secs(30 * 86400),
        }
    }

    fn c(bad: f64, total: f64) -> WindowCounts {
        WindowCounts { bad, total }
    }

    #[test]
    fn both_windows_must_burn() {
        let s = slo();
        // 2 % errors = 20× burn in both windows of the first rule → fail.
        let r = evaluate(
            &s,
            &[
                (c(200.0, 10_000.0), c(20.0, 1000.0)),
                (c(10.0, 60_000.0), c(1.0, 5000.0)),
            ],
        );
        assert_eq!(r.outcome, SloOutcome::Fail);
        assert_eq!(r.rules[0].outcome, SloOutcome::Fail);
        assert!((r.rules[0].long.burn_rate.unwrap() - 20.0).abs() < 1e-9);
        // 30 days / 20 = 36 h to exhaustion.
        assert!((r.rules[0].hours_to_exhaustion.unwrap() - 36.0).abs() < 1e-9);
        assert!(
            r.reasons[0].contains("30d error budget is gone in 1d12h"),
            "{}",
            r.reasons[0]
        );
        // Burst over: the short window is clean → no alert.
        let r = evaluate(
            &s,
            &[
                (c(200.0, 10_000.0), c(0.0, 1000.0)),
                (c(10.0, 60_000.0), c(1.0, 5000.0)),
            ],
        );
        assert_eq!(r.outcome, SloOutcome::Pass);
    }

    #[test]
    fn quiet_services_are_inconclusive_but_hard_outages_fail() {
        let s = slo();
        let quiet = [(c(0.0, 40.0), c(0.0, 5.0)), (c(0.0, 200.0), c(0.0, 20.0))];
        let r = evaluate(&s, &quiet);
        // The 6h window has 200 events, below the factor: that rule passes; the 1h rule is
        // inconclusive, so the SLO is inconclusive — never a pass on thin evidence.
        assert_eq!(r.rules[0].outcome, SloOutcome::Inconclusive);
        assert_eq!(r.outcome, SloOutcome::Inconclusive);
        // Every one of 40 requests failing: few events, but 40 bad → fail.
        let outage = [
            (c(40.0, 40.0), c(12.0, 12.0)),
            (c(40.0, 200.0), c(12.0, 20.0)),
        ];
        assert_eq!(evaluate(&s, &outage).outcome, SloOutcome::Fail);
        // No traffic at all: NaN counts → inconclusive.
        let none = [(c(f64::NAN, f64::NAN), c(f64::NAN, f64::NAN)); 2];
        assert_eq!(evaluate(&s, &none).outcome, SloOutcome::Inconclusive);
    }

    #[test]
    fn healthy_passes() {
        let s = slo();
        let ok = [
            (c(5.0, 10_000.0), c(1.0, 1000.0)),
            (c(30.0, 60_000.0), c(3.0, 5000.0)),
        ];
        let r = evaluate(&s, &ok);
        assert_eq!(r.outcome, SloOutcome::Pass);
        assert!(r.reasons[0].contains("within budget"));
    }
}
