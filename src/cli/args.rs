//! Flag groups and argument parsing more than one command shares.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use super::prometheus_args::PrometheusArgs;
use super::CliError;
use crate::source::Sources;
use crate::template;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Measurements as they happen, then a per-metric table and the run's phase.
    Table,
    /// The whole run as one JSON document at the end.
    Json,
}

/// Where measurements come from, and whether to record them (analyze, backtest, calibrate).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Where measurements come from: `prometheus` (live, the default) or
    /// `snapshot:FILE` (replay a file written by --record; no Prometheus needed).
    #[arg(
        long,
        env = "CANARY_SOURCE",
        default_value = "prometheus",
        value_name = "SOURCE"
    )]
    pub source: String,
    /// Write every query and its answer to FILE (JSON lines) for replay with
    /// --source snapshot:FILE (a backtest or calibration with the same --from, --to and
    /// --every).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

impl SourceArgs {
    /// The sources these flags describe.
    pub fn sources(&self, prometheus: &PrometheusArgs) -> Result<Sources, CliError> {
        sources(&self.source, self.record.as_ref(), prometheus)
    }
}

/// Parse `NAME=VALUE` pairs.
pub fn parse_args(pairs: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CliError::usage(format!("--arg {p:?} is not NAME=VALUE")))?;
        if out.insert(k.trim().to_string(), v.to_string()).is_some() {
            return Err(CliError::usage(format!("--arg {k} is given twice")));
        }
    }
    Ok(out)
}

/// Load AnalysisTemplate files and Judge specs, resolve their args and validate every metric;
/// every problem of every file is reported (exit 64), not only the first. `judge_every`: see
/// [`template::load_analysis`].
pub fn load_metrics(
    paths: &[PathBuf],
    given: &BTreeMap<String, String>,
    judge_every: Option<std::time::Duration>,
) -> Result<Vec<template::ResolvedMetric>, CliError> {
    template::load_analysis(paths, given, judge_every)
        .map_err(|errors| CliError::usage(template::errors_text(&errors)))
}

/// Build the sources `--source` and `--record` describe.
pub fn sources(
    source: &str,
    record: Option<&PathBuf>,
    prometheus: &PrometheusArgs,
) -> Result<Sources, CliError> {
    let s = if let Some(file) = source.strip_prefix("snapshot:") {
        Sources::replay(file.as_ref()).map_err(|e| CliError::usage(e.to_string()))?
    } else if source == "prometheus" {
        Sources::live(prometheus.config()?).map_err(|e| CliError::usage(e.to_string()))?
    } else {
        return Err(CliError::usage(format!(
            "--source {source:?}: expected `prometheus` or `snapshot:FILE`"
        )));
    };
    match record {
        None => Ok(s),
        Some(path) => s
            .record_to(path)
            .map_err(|e| CliError::usage(format!("cannot write snapshot {}: {e}", path.display()))),
    }
}

/// The past range a backtest or calibration looks at.
#[derive(Debug, Args)]
pub struct TimeRange {
    /// First moment: RFC 3339 (2026-11-20T08:00:00Z) or a duration ago (24h, 7d).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// Last moment (same forms as --from); default now.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

impl TimeRange {
    /// `(from, to)`; an error when `from` is after `to`.
    pub fn resolve(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), CliError> {
        let now = Utc::now();
        let from = parse_time("--from", &self.from, now)?;
        let to = match &self.to {
            Some(t) => parse_time("--to", t, now)?,
            None => now,
        };
        if from > to {
            return Err(CliError::usage(format!(
                "--from {} is after --to {}",
                from.to_rfc3339(),
                to.to_rfc3339()
            )));
        }
        Ok((from, to))
    }
}

/// A moment given as an RFC 3339 time or as a duration before `now`.
pub fn parse_time(flag: &str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    humantime::parse_duration(text)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .map(|d| now - d)
        .ok_or_else(|| {
            CliError::usage(format!(
                "{flag} {text:?}: expected an RFC 3339 time or a duration such as 2h"
            ))
        })
}
