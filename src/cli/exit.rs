//! One exit-code story for every command: [`Exit`] names each code the process can end with,
//! and the conversions from each module's outcome or error decide which one it is, here and
//! nowhere else. `docs/exit-codes.md` is the table per command; `tests/exit_codes.rs` runs its
//! examples and checks it against [`Exit::ALL`].

use crate::analysis::Phase;
use crate::audit::AuditError;
use crate::calibrate::CalibrateError;
use crate::judging::JudgeError;
use crate::promote::plan::PlanError;
use crate::promote::Outcome;
use crate::store::StoreError;

/// How a command ends. The codes follow Argo's reading of an analysis (0 Successful, 1 Failed,
/// 2 Inconclusive, 3 Error) and BSD's `sysexits.h` for the two that are the caller's or the
/// machine's fault (64, 74).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: done, and the answer is yes (Successful, promoted, lint clean, target met).
    Success,
    /// 1: done, and the answer is no (Failed, rolled back, lint errors, target missed, a
    /// broken ledger chain).
    Failed,
    /// 2: no answer yet (Inconclusive, a promotion paused for a person).
    Inconclusive,
    /// 3: the engine could not do its job for a reason outside the input: Prometheus, the
    /// cluster, the database or the policy engine unreachable, no async runtime.
    Infrastructure,
    /// 4: `promote --policy`: the deploy policy denied the promotion; no weight was changed.
    PolicyDenied,
    /// 64 (`EX_USAGE`): the flags, a template or the input are wrong.
    Usage,
    /// 74 (`EX_IOERR`): the result could not be written to standard output.
    Io,
}

impl Exit {
    /// Every exit code, in order.
    pub const ALL: [Exit; 7] = [
        Exit::Success,
        Exit::Failed,
        Exit::Inconclusive,
        Exit::Infrastructure,
        Exit::PolicyDenied,
        Exit::Usage,
        Exit::Io,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Inconclusive => 2,
            Exit::Infrastructure => 3,
            Exit::PolicyDenied => 4,
            Exit::Usage => 64,
            Exit::Io => 74,
        }
    }

    /// `Success` when `ok`, else `Failed`: a yes-or-no answer (lint, calibrate, `--verify`).
    pub fn yes_or_no(ok: bool) -> Exit {
        if ok {
            Exit::Success
        } else {
            Exit::Failed
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

/// `canary analyze`: a run's final phase, as Argo reads it. A run stopped before it finished
/// (Pending, Running) has no answer yet.
impl From<Phase> for Exit {
    fn from(p: Phase) -> Self {
        match p {
            Phase::Successful => Exit::Success,
            Phase::Failed => Exit::Failed,
            Phase::Inconclusive | Phase::Pending | Phase::Running => Exit::Inconclusive,
            Phase::Error => Exit::Infrastructure,
        }
    }
}

/// `canary promote`: how the promotion ended.
impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Promoted => Exit::Success,
            Outcome::RolledBack => Exit::Failed,
            Outcome::Paused => Exit::Inconclusive,
            Outcome::Error => Exit::Infrastructure,
        }
    }
}

/// A database that cannot be used: down or failing is infrastructure; migrated by a newer
/// canary-engine is the operator's to fix (a usage error).
impl From<&StoreError> for Exit {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::NewerSchema { .. } => Exit::Usage,
            _ => Exit::Infrastructure,
        }
    }
}

/// A ledger that cannot be opened or written: the database's own failures as for the result
/// store; a bad file or target is a usage error.
impl From<&AuditError> for Exit {
    fn from(e: &AuditError) -> Self {
        match e {
            AuditError::Database { source, .. } => Exit::from(source),
            AuditError::File { .. } | AuditError::Target(_) => Exit::Usage,
        }
    }
}

/// A judgement that could not be made: a failed query is infrastructure, bad args or data the
/// caller's.
impl From<&JudgeError> for Exit {
    fn from(e: &JudgeError) -> Self {
        match e {
            JudgeError::Source(_) => Exit::Infrastructure,
            _ => Exit::Usage,
        }
    }
}

/// A calibration that could not run: bad args are the caller's, anything else (a failed
/// query, unusable history) infrastructure.
impl From<&CalibrateError> for Exit {
    fn from(e: &CalibrateError) -> Self {
        match e {
            CalibrateError::Args(_) => Exit::Usage,
            _ => Exit::Infrastructure,
        }
    }
}

/// A Rollout manifest or its templates that make no plan: the caller's input.
impl From<&PlanError> for Exit {
    fn from(_: &PlanError) -> Self {
        Exit::Usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_in_order() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 64, 74]);
    }

    #[test]
    fn an_analysis_and_a_promotion_read_alike() {
        assert_eq!(Exit::from(Phase::Successful), Exit::from(Outcome::Promoted));
        assert_eq!(Exit::from(Phase::Failed), Exit::from(Outcome::RolledBack));
        assert_eq!(Exit::from(Phase::Inconclusive), Exit::from(Outcome::Paused));
        assert_eq!(Exit::from(Phase::Error), Exit::from(Outcome::Error));
        assert_eq!(Exit::from(Phase::Running), Exit::Inconclusive);
    }

    #[test]
    fn a_newer_schema_is_usage_anything_else_from_the_database_infrastructure() {
        let newer = StoreError::NewerSchema { found: 9, known: 1 };
        assert_eq!(Exit::from(&newer), Exit::Usage);
        assert_eq!(
            Exit::from(&StoreError::Unavailable("down".into())),
            Exit::Infrastructure
        );
        assert_eq!(
            Exit::from(&AuditError::Target("ftp://x".into())),
            Exit::Usage
        );
    }

    /// As docs/exit-codes.md has it: a query that failed is infrastructure (3), data or a
    /// ledger file that cannot be used is the caller's (64) for a judgement and a ledger, and
    /// history that cannot be judged is infrastructure for a calibration.
    #[test]
    fn each_modules_error_reads_as_the_exit_code_table_says() {
        let query = || crate::source::Error::NotRecorded("up".into());
        assert_eq!(
            Exit::from(&JudgeError::Source(query())),
            Exit::Infrastructure
        );
        assert_eq!(
            Exit::from(&JudgeError::Since("tomorrow".into())),
            Exit::Usage
        );
        assert_eq!(
            Exit::from(&CalibrateError::Source(query())),
            Exit::Infrastructure
        );
        assert_eq!(
            Exit::from(&CalibrateError::Data("no +Inf bucket".into())),
            Exit::Infrastructure
        );
        let file = AuditError::File {
            path: "audit.jsonl".into(),
            message: "permission denied".into(),
        };
        assert_eq!(Exit::from(&file), Exit::Usage);
        let down = AuditError::Database {
            url: "postgres://db/ledger".into(),
            source: StoreError::Unavailable("refused".into()),
        };
        assert_eq!(Exit::from(&down), Exit::Infrastructure);
        let newer = AuditError::Database {
            url: "postgres://db/ledger".into(),
            source: StoreError::NewerSchema { found: 9, known: 1 },
        };
        assert_eq!(Exit::from(&newer), Exit::Usage);
    }
}
