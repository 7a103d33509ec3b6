//! Argo's measurement semantics: interval, count, limits → metric and run phases.

pub mod measure;
mod phase;
pub mod result;
pub mod run;

pub use phase::Phase;
pub use result::{Measurement, MetricResult};
pub use run::{run, Event, RunOptions, RunReport};
