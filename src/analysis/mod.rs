//! Argo's measurement semantics: interval, count, limits → metric and run phases.

pub mod measure;
pub mod result;
pub mod run;

pub use crate::phase::Phase;
pub use result::{Measurement, MetricResult};
pub use run::{run, Event, RunOptions, RunReport};
