//! Turning statistics into verdicts: per-metric classification (Kayenta's rules plus a
//! minimum sample size, a tail check and count tests) and group scoring into one verdict.
//! Pure: numbers in, verdicts and their reasons out.

pub mod classify;
pub mod config;
pub mod counts;
pub mod histogram;
pub mod part;
pub mod score;
pub mod share;
pub mod words;

pub use classify::{classify, Classification, MetricData, MetricJudgement};
pub use config::{Direction, MetricConfig};
pub use score::{score, ScoringConfig, Verdict};
