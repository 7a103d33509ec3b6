//! `canary judge`: one metric's canary and baseline data in, a classification with its
//! numbers out.
//!
//! Input (JSON; every field but the data optional):
//! `{"canary": [..], "baseline": [..], "canary_counts": {"bad": 12, "total": 10000},
//!   "baseline_counts": {..}, "confidence": 0.95, "direction": "increase", ...}`.
//! `null` inside a sample is a missing point (NaN). Counts may be numbers (totals) or arrays
//! (one entry per interval, oldest first) for the sequential test. A `histogram`
//! (`{"bounds": [.., "+Inf"], "canary": [[cumulative le counts per step]..], "baseline": ..}`)
//! is judged request by request with the stratified rank test.

use super::CliError;
use crate::judge::{classify, MetricConfig, MetricData, MetricJudgement};
use crate::stats::counts::Counts;
use crate::stats::sequential::Interval;
use clap::{Args, ValueEnum};
use serde::Deserialize;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;

/// Arguments of `canary judge`.
#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// JSON file with the metric's data and settings; `-` reads standard input.
    #[arg(long, short, value_name = "FILE", env = "CANARY_JUDGE_INPUT")]
    pub input: PathBuf,
    /// `json` for machines, `table` for people.
    #[arg(long, short, value_enum, default_value_t = Output::Json, env = "CANARY_OUTPUT")]
    pub output: Output,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Pretty JSON on standard output.
    Json,
    /// A table for a terminal.
    Table,
}

/// Counts as totals or as per-interval series.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Series {
    One(f64),
    Many(Vec<f64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountsInput {
    bad: Series,
    total: Series,
}

const DATA_FIELDS: [&str; 5] = [
    "canary",
    "baseline",
    "canary_counts",
    "baseline_counts",
    "histogram",
];

/// A histogram metric: bucket bounds and, per step, each variant's cumulative `le` counts
/// (what `increase(..._bucket[step])` gives), or with `counters: true` the raw counter
/// readings at each step boundary (one more row than steps; resets handled as Prometheus'
/// `increase` does).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistogramInput {
    bounds: Vec<Bound>,
    canary: Vec<Vec<f64>>,
    baseline: Vec<Vec<f64>>,
    #[serde(default)]
    counters: bool,
    #[serde(default)]
    slower_than: Option<f64>,
}

/// A bucket bound: a number, or `"+Inf"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Bound {
    Number(f64),
    Text(String),
}

fn histogram(v: Value) -> Result<crate::judge::histogram::HistogramData, CliError> {
    use crate::stats::histogram::{per_bucket, StepBuckets};
    let h: HistogramInput = from_value(v, "histogram")?;
    let mut bounds = Vec::with_capacity(h.bounds.len());
    for (i, b) in h.bounds.iter().enumerate() {
        let x = match b {
            Bound::Number(x) => *x,
            Bound::Text(t) => match crate::source::value_parse_float(t) {
                Some(x) if !x.is_nan() => x,
                _ => {
                    return Err(field_error(
                        format!("histogram.bounds[{i}]"),
                        format!("{t:?} is not a bound (a number or \"+Inf\")"),
                    ))
                }
            },
        };
        if bounds.last().is_some_and(|p| *p >= x) {
            return Err(field_error(
                format!("histogram.bounds[{i}]"),
                "bounds must be strictly ascending",
            ));
        }
        bounds.push(x);
    }
    if bounds.len() < 2 || bounds.last() != Some(&f64::INFINITY) {
        return Err(field_error(
            "histogram.bounds",
            "give at least two bounds, the last \"+Inf\" (as Prometheus' le labels)",
        ));
    }
    if let Some(t) = h.slower_than {
        if !bounds.contains(&t) {
            return Err(field_error(
                "histogram.slower_than",
                format!("{t} is not one of the bounds"),
            ));
        }
    }
    let steps = |rows: &[Vec<f64>], side: &str| -> Result<Vec<Vec<f64>>, CliError> {
        for (k, row) in rows.iter().enumerate() {
            if row.len() != bounds.len() {
                return Err(field_error(
                    format!("histogram.{side}[{k}]"),
                    format!("{} counts for {} bounds", row.len(), bounds.len()),
                ));
            }
            if let Some(j) = row.iter().position(|c| !c.is_finite() || *c < 0.0) {
                return Err(field_error(
                    format!("histogram.{side}[{k}][{j}]"),
                    if h.counters {
                        "a counter reading must be a finite number ≥ 0".to_string()
                    } else {
                        "a count must be a finite number ≥ 0 (for raw counter readings, where a \
                         reset makes values drop, set counters: true)"
                            .to_string()
                    },
                ));
            }
        }
        if !h.counters {
            return Ok(rows.iter().map(|r| per_bucket(r)).collect());
        }
        if rows.len() < 2 {
            return Err(field_error(
                format!("histogram.{side}"),
                "counters: true needs at least two readings (one more than steps)",
            ));
        }
        // Each bucket's increase between readings; a drop is a reset, counting the new value.
        Ok(rows
            .windows(2)
            .map(|w| {
                let inc: Vec<f64> = w[0]
                    .iter()
                    .zip(&w[1])
                    .map(|(a, b)| if b >= a { b - a } else { *b })
                    .collect();
                per_bucket(&inc)
            })
            .collect())
    };
    let (c, b) = (steps(&h.canary, "canary")?, steps(&h.baseline, "baseline")?);
    if c.len() != b.len() {
        return Err(field_error(
            "histogram.baseline",
            format!("{} steps but canary has {}", b.len(), c.len()),
        ));
    }
    if c.is_empty() {
        return Err(field_error("histogram.canary", "give at least one step"));
    }
    Ok(crate::judge::histogram::HistogramData {
        bounds,
        steps: c
            .into_iter()
            .zip(b)
            .map(|(canary, baseline)| StepBuckets { canary, baseline })
            .collect(),
        slower_than: h.slower_than,
    })
}

fn field_error(path: impl std::fmt::Display, msg: impl std::fmt::Display) -> CliError {
    CliError::usage(format!("{path}: {msg}"))
}

fn from_value<T: serde::de::DeserializeOwned>(v: Value, root: &str) -> Result<T, CliError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let full = match (root.is_empty(), path.as_str()) {
            (true, ".") => "input".to_string(),
            (true, _) => path,
            (false, ".") => root.to_string(),
            (false, p) if p.starts_with('[') => format!("{root}{p}"),
            (false, p) => format!("{root}.{p}"),
        };
        field_error(full, e.into_inner())
    })
}

fn sample(v: Value, name: &str) -> Result<Vec<f64>, CliError> {
    let values: Vec<Option<f64>> = from_value(v, name)?;
    if values.is_empty() {
        return Err(field_error(name, "empty array: give at least one value"));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => Ok(f64::NAN),
            Some(x) if x.is_finite() => Ok(x),
            Some(_) => Err(field_error(format!("{name}[{i}]"), "infinite value")),
        })
        .collect()
}

fn series(s: Series, name: &str) -> Result<Vec<f64>, CliError> {
    let v = match s {
        Series::One(x) => vec![x],
        Series::Many(v) => v,
    };
    if v.is_empty() {
        return Err(field_error(name, "empty array: give at least one interval"));
    }
    for (i, x) in v.iter().enumerate() {
        if !x.is_finite() || *x < 0.0 {
            return Err(field_error(
                format!("{name}[{i}]"),
                "must be a finite count ≥ 0",
            ));
        }
    }
    Ok(v)
}

fn counts(v: Value, name: &str) -> Result<Vec<Counts>, CliError> {
    let c: CountsInput = from_value(v, name)?;
    let bad = series(c.bad, &format!("{name}.bad"))?;
    let total = series(c.total, &format!("{name}.total"))?;
    if bad.len() != total.len() {
        return Err(field_error(
            name,
            format!(
                "bad has {} entries but total has {}",
                bad.len(),
                total.len()
            ),
        ));
    }
    bad.into_iter()
        .zip(total)
        .enumerate()
        .map(|(i, (bad, total))| {
            if bad > total {
                Err(field_error(
                    format!("{name}.bad"),
                    format!("{bad} bad events exceed the {total} total (entry {i})"),
                ))
            } else {
                Ok(Counts { bad, total })
            }
        })
        .collect()
}

/// Parses the input document into data and configuration, naming the field at fault.
pub fn parse_input(text: &str) -> Result<(MetricData, MetricConfig), CliError> {
    // Parse through serde_path_to_error too, so a number out of range (±Inf) is reported
    // with the field it sits in, not only a line and column.
    let doc: Value = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(
        text,
    ))
    .map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        if msg.contains("out of range") {
            field_error(path, format!("{msg} (infinite values are not allowed)"))
        } else if path == "." {
            CliError::usage(format!("input is not valid JSON: {msg}"))
        } else {
            CliError::usage(format!("input is not valid JSON: {msg} (inside {path})"))
        }
    })?;
    let Value::Object(mut obj) = doc else {
        return Err(CliError::usage("input: expected a JSON object"));
    };
    let mut take = |k: &str| obj.remove(k);
    let canary = take("canary");
    let baseline = take("baseline");
    let canary_counts = take("canary_counts");
    let baseline_counts = take("baseline_counts");
    let histogram_input = take("histogram");
    let cfg: MetricConfig = from_value(Value::Object(std::mem::take(&mut obj)), "")?;
    cfg.validate()
        .map_err(|e| field_error(e.field, e.message))?;

    let mut data = MetricData::default();
    match (canary, baseline) {
        (Some(c), Some(b)) => {
            data.canary = Some(sample(c, "canary")?);
            data.baseline = Some(sample(b, "baseline")?);
        }
        (Some(_), None) => return Err(field_error("baseline", "missing (canary was given)")),
        (None, Some(_)) => return Err(field_error("canary", "missing (baseline was given)")),
        (None, None) => {}
    }
    match (canary_counts, baseline_counts) {
        (Some(c), Some(b)) => {
            let c = counts(c, "canary_counts")?;
            let b = counts(b, "baseline_counts")?;
            if c.len() != b.len() {
                return Err(field_error(
                    "baseline_counts",
                    format!("{} intervals but canary_counts has {}", b.len(), c.len()),
                ));
            }
            data.intervals = Some(
                c.into_iter()
                    .zip(b)
                    .map(|(canary, baseline)| Interval { canary, baseline })
                    .collect(),
            );
        }
        (Some(_), None) => {
            return Err(field_error(
                "baseline_counts",
                "missing (canary_counts was given)",
            ))
        }
        (None, Some(_)) => {
            return Err(field_error(
                "canary_counts",
                "missing (baseline_counts was given)",
            ))
        }
        (None, None) => {}
    }
    if let Some(h) = histogram_input {
        data.histogram = Some(histogram(h)?);
    }
    if data.canary.is_none() && data.intervals.is_none() && data.histogram.is_none() {
        return Err(CliError::usage(format!(
            "input: no data — give `canary` and `baseline` samples, `canary_counts` and \
             `baseline_counts`, a `histogram`, or several (fields: {})",
            DATA_FIELDS.join(", ")
        )));
    }
    Ok((data, cfg))
}

fn read_input(path: &PathBuf) -> Result<String, CliError> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
    } else {
        text = std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display())))?;
    }
    Ok(text)
}

/// Runs `canary judge`; returns the exit code (0: judged, whatever the classification).
pub fn run(args: &JudgeArgs) -> Result<super::Exit, CliError> {
    let text = read_input(&args.input)?;
    let (data, cfg) = parse_input(&text)?;
    let judgement = classify(&cfg, &data);
    let rendered = match args.output {
        Output::Json => to_json(&judgement),
        Output::Table => super::judge_table::render(&judgement),
    };
    super::write_stdout(&rendered)?;
    Ok(super::Exit::Success)
}

/// The JSON document `canary judge` prints (contract: classification, reasons, mann_whitney,
/// effect_size, counts — in that order, then the extra detail).
pub fn to_json(j: &MetricJudgement) -> String {
    serde_json::to_string_pretty(j).unwrap_or_default()
}
