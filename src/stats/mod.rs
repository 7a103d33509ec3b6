//! Pure numerics for canary analysis: rank tests, Hodges-Lehmann intervals, effect sizes,
//! preprocessing, count tests and anytime-valid sequential tests.
//!
//! Nothing here does I/O or knows about Prometheus: functions take numbers and return
//! numbers, so they can be checked against R and scipy and benchmarked in isolation.
//! Exact definitions live in `shared/design/STATISTICS.md`.

pub mod counts;
pub mod effect;
pub mod histogram;
pub mod ks;
pub mod mann_whitney;
pub mod normal;
pub mod pairwise;
pub mod preprocess;
pub mod sample;
pub mod sequential;

pub use mann_whitney::{mann_whitney, MannWhitney};
