//! canary-engine: statistical canary analysis and progressive delivery.
//!
//! The library holds everything; the `canary` binary only parses the command line and
//! dispatches. Pure numerics live in [`stats`], the verdict logic in [`judge`], Argo's
//! analysis templates in [`template`] and [`condition`], metric sources in [`source`] and
//! Argo's measurement loop in [`analysis`].
#![forbid(unsafe_code)]

pub mod analysis;
pub mod audit;
pub mod backtest;
pub mod calibrate;
pub mod cli;
pub mod condition;
pub mod judge;
pub mod judging;
pub mod lint;
pub mod phase;
pub mod policy;
pub mod promote;
pub mod report;
pub mod server;
pub mod slo;
pub mod source;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod traffic;
