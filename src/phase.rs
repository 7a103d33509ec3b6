//! Argo's analysis phases and their order from best to worst.

use serde::Serialize;

/// Phase of a measurement, a metric or a whole run (Argo's `AnalysisPhase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Phase {
    /// Not started.
    Pending,
    /// Measurements still to take.
    Running,
    /// Passed.
    Successful,
    /// Could not decide (conditions neither true nor false, or inconclusiveLimit exceeded).
    Inconclusive,
    /// Could not measure (consecutiveErrorLimit exceeded, provider failing).
    Error,
    /// Failed (failureLimit exceeded).
    Failed,
}

impl Phase {
    /// Argo's `analysisStatusOrder`: Successful < Running < Pending < Inconclusive < Error < Failed.
    fn rank(self) -> u8 {
        match self {
            Phase::Successful => 0,
            Phase::Running => 1,
            Phase::Pending => 2,
            Phase::Inconclusive => 3,
            Phase::Error => 4,
            Phase::Failed => 5,
        }
    }

    /// The worse of two phases.
    pub fn worst(self, other: Phase) -> Phase {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Whether the phase is final.
    pub fn completed(self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }

    /// Argo's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Successful => "Successful",
            Phase::Inconclusive => "Inconclusive",
            Phase::Error => "Error",
            Phase::Failed => "Failed",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Phase::*;

    #[test]
    fn order_is_argos() {
        assert_eq!(Successful.worst(Inconclusive), Inconclusive);
        assert_eq!(Error.worst(Inconclusive), Error);
        assert_eq!(Error.worst(Failed), Failed);
        assert_eq!(Failed.worst(Successful), Failed);
    }
}
