//! Argo's measurement semantics: interval, count, limits → metric and run phases.

mod phase;

pub use phase::Phase;
