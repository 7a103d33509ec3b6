//! How an outcome reads at a glance, whatever vocabulary it comes from: a judge's verdict, a
//! metric's classification, an SLO's outcome, an Argo phase, how a promotion ended, a
//! backtest moment. Pages colour it; terminal strips draw it as one character.
//!
//! Each vocabulary keeps its own type and spelling (`pass`, `Successful`, `rolled_back`);
//! this module only says which of them look alike, so a new variant is a compile error here
//! rather than a grey badge nobody notices.

use plotters::style::RGBColor;

use super::charts::colour;
use crate::analysis::Phase;
use crate::judge::{Classification, Verdict};
use crate::slo::SloOutcome;

/// The reading every vocabulary maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Passed or promoted: green, `✓`.
    Pass,
    /// A verdict a person should look at before promoting: amber, `~`.
    Marginal,
    /// Not decided yet: an analysis still running, a promotion paused for a person. Amber on
    /// a page; in a terminal strip a `·` that never hides a pass beside it.
    Underway,
    /// Not started (Argo's `Pending`): grey, `·`.
    Pending,
    /// Not enough data to decide: purple, `?`.
    Inconclusive,
    /// Could not measure (a query, the template or the infrastructure failed): grey, `!`.
    Error,
    /// Failed or rolled back, or a metric classified high or low: red, `✗`.
    Fail,
}

impl Tone {
    /// Badge, band and marker colour on a page.
    pub fn colour(self) -> RGBColor {
        match self {
            Tone::Pass => colour::PASS,
            Tone::Marginal | Tone::Underway => colour::MARGINAL,
            Tone::Fail => colour::FAIL,
            Tone::Inconclusive => colour::INCONCLUSIVE,
            Tone::Error | Tone::Pending => colour::ERROR,
        }
    }

    /// The character a terminal strip draws.
    pub fn symbol(self) -> char {
        match self {
            Tone::Pass => '✓',
            Tone::Marginal => '~',
            Tone::Fail => '✗',
            Tone::Inconclusive => '?',
            Tone::Error => '!',
            Tone::Underway | Tone::Pending => '·',
        }
    }

    /// Which one a strip keeps when several share a character: a failure shows through an
    /// error, an error through no data, no data through a marginal verdict.
    pub fn severity(self) -> u8 {
        match self {
            Tone::Pass | Tone::Underway | Tone::Pending => 0,
            Tone::Marginal => 1,
            Tone::Inconclusive => 2,
            Tone::Error => 3,
            Tone::Fail => 4,
        }
    }
}

/// An outcome that reports can show: its name as printed and serialized, and its tone.
pub trait Toned {
    /// The name, spelled as in JSON output (`pass`, `Successful`, `rolled_back`).
    fn label(&self) -> &'static str;
    /// How it reads at a glance.
    fn tone(&self) -> Tone;
}

impl Toned for Verdict {
    fn label(&self) -> &'static str {
        self.as_str()
    }
    fn tone(&self) -> Tone {
        match self {
            Verdict::Pass => Tone::Pass,
            Verdict::Marginal => Tone::Marginal,
            Verdict::Fail => Tone::Fail,
            Verdict::Inconclusive => Tone::Inconclusive,
        }
    }
}

impl Toned for Classification {
    fn label(&self) -> &'static str {
        self.as_str()
    }
    fn tone(&self) -> Tone {
        match self {
            Classification::Pass => Tone::Pass,
            Classification::High | Classification::Low => Tone::Fail,
            Classification::Nodata => Tone::Inconclusive,
            Classification::Error => Tone::Error,
        }
    }
}

impl Toned for SloOutcome {
    fn label(&self) -> &'static str {
        self.as_str()
    }
    fn tone(&self) -> Tone {
        match self {
            SloOutcome::Pass => Tone::Pass,
            SloOutcome::Fail => Tone::Fail,
            SloOutcome::Inconclusive => Tone::Inconclusive,
        }
    }
}

impl Toned for Phase {
    fn label(&self) -> &'static str {
        self.as_str()
    }
    fn tone(&self) -> Tone {
        match self {
            Phase::Pending => Tone::Pending,
            Phase::Running => Tone::Underway,
            Phase::Successful => Tone::Pass,
            Phase::Inconclusive => Tone::Inconclusive,
            Phase::Error => Tone::Error,
            Phase::Failed => Tone::Fail,
        }
    }
}

impl Toned for crate::promote::Outcome {
    fn label(&self) -> &'static str {
        self.as_str()
    }
    fn tone(&self) -> Tone {
        use crate::promote::Outcome;
        match self {
            Outcome::Promoted => Tone::Pass,
            Outcome::RolledBack => Tone::Fail,
            Outcome::Paused => Tone::Underway,
            Outcome::Error => Tone::Error,
        }
    }
}

impl Toned for crate::backtest::Outcome {
    fn label(&self) -> &'static str {
        self.as_str()
    }
    fn tone(&self) -> Tone {
        match self {
            crate::backtest::Outcome::Verdict(v) => v.tone(),
            crate::backtest::Outcome::Phase(p) => p.tone(),
            crate::backtest::Outcome::Error => Tone::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_reading_in_every_vocabulary() {
        assert_eq!(Verdict::Pass.tone(), Phase::Successful.tone());
        assert_eq!(Verdict::Fail.tone(), Classification::High.tone());
        assert_eq!(
            SloOutcome::Fail.tone(),
            crate::promote::Outcome::RolledBack.tone()
        );
        assert_eq!(Classification::Nodata.tone(), Phase::Inconclusive.tone());
        assert_eq!(Classification::Error.tone(), Phase::Error.tone());
    }

    #[test]
    fn a_running_analysis_is_amber_on_a_page_but_never_hides_a_pass_in_a_strip() {
        let running = Phase::Running.tone();
        assert_eq!(running.colour(), Verdict::Marginal.tone().colour());
        assert_eq!(running.symbol(), '·');
        assert_eq!(running.severity(), Tone::Pass.severity());
    }
}
