//! What every test of a metric comes to: a classification with its reasons, and the
//! anytime-valid evidence behind it. The sample, count, histogram and share judges each
//! return these; [`classify`](super::classify) combines them.

use serde::Serialize;

/// The outcome for one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// No meaningful difference in the bad direction.
    Pass,
    /// The canary is significantly and materially higher.
    High,
    /// The canary is significantly and materially lower.
    Low,
    /// Not enough data to judge. Never a pass.
    Nodata,
    /// The data could not be obtained (set by the caller for failed queries).
    Error,
}

impl Classification {
    /// Lower-case name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Pass => "pass",
            Classification::High => "high",
            Classification::Low => "low",
            Classification::Nodata => "nodata",
            Classification::Error => "error",
        }
    }
}

/// One test's outcome: its classification, whether its effect alone is past the critical
/// threshold, and why.
pub(crate) struct Part {
    pub(crate) classification: Classification,
    pub(crate) critical_effect: bool,
    pub(crate) reasons: Vec<String>,
}

/// An anytime-valid test's evidence over every look since the analysis started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Which test: `errors`, `latency shift`, `slower than 500`, `traffic share`.
    pub test: String,
    /// Always-valid p-value so far (it only falls as looks go on).
    pub p_value: f64,
    /// The e-value so far, `1 / p_value`: how many times likelier the data are under the
    /// alternatives than under "no regression".
    pub e_value: f64,
    /// The e-value that decides: `1 / alpha`.
    pub threshold: f64,
    /// This test's share of the analysis's false-alarm budget.
    pub alpha: f64,
    /// How many times the evidence must still grow to decide (1 once decided).
    pub needed: f64,
    /// The regression the second, mirror test rules out ("error ratio ≥ 1.2"): once its
    /// e-value reaches the same threshold, the canary is shown to be better than that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_out: Option<String>,
    /// The mirror test's e-value so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clear_e_value: Option<f64>,
    /// `decided` (the test rejected "no difference": with the effect past its threshold, the
    /// metric fails), `cleared` (the mirror test rejected: a regression as large as the
    /// tolerated one is ruled out — an early pass, even when a smaller difference is
    /// significant) or `not_yet`.
    pub state: &'static str,
}

impl Evidence {
    /// Evidence of a test from its always-valid p-value and its budget.
    pub fn new(test: impl Into<String>, p_value: f64, alpha: f64) -> Evidence {
        let e = e_value_of(p_value);
        let threshold = 1.0 / alpha;
        let decided = p_value < alpha;
        Evidence {
            test: test.into(),
            p_value,
            e_value: e,
            threshold,
            alpha,
            needed: if decided { 1.0 } else { threshold / e },
            rules_out: None,
            clear_e_value: None,
            state: if decided { "decided" } else { "not_yet" },
        }
    }

    /// Adds the mirror test that rules `regression` out, from its always-valid p-value.
    pub fn clearing(mut self, regression: impl Into<String>, p_value: f64) -> Evidence {
        let e = e_value_of(p_value);
        self.rules_out = Some(regression.into());
        self.clear_e_value = Some(e);
        // Cleared also when the regression test rejected "no difference": a canary shown to
        // be worse by *less* than the tolerated effect passes, and that pass is decided.
        if p_value < self.alpha {
            self.state = "cleared";
            self.needed = 1.0;
        }
        self
    }

    /// The regression this test looks for is ruled out.
    pub fn is_cleared(&self) -> bool {
        self.state == "cleared"
    }
}

/// `1 / p`, finite even when the p-value underflows to 0 (JSON has no infinity).
fn e_value_of(p_value: f64) -> f64 {
    1.0 / p_value.max(f64::MIN_POSITIVE)
}
