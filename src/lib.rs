//! canary-engine: statistical canary analysis and progressive delivery.
//!
//! The library holds everything; the `canary` binary only parses the command line and
//! dispatches. Pure numerics live in [`stats`], the verdict logic in [`judge`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod judge;
pub mod stats;
