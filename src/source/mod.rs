//! Metric sources.
