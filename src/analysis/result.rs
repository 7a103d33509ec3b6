//! Per-metric bookkeeping and Argo's rules turning counters into a metric phase.
//!
//! Mirrors `assessMetricStatus` and `assessMetricFailureInconclusiveOrError` of Argo's
//! `analysis/analysis.go`: limits are checked before counts, Error measurements never count
//! toward `count`, and a metric whose run is terminating ends with what it has.

use serde::Serialize;

use super::Phase;
use crate::template::argo::Metric;

/// One measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Phase of this measurement.
    pub phase: Phase,
    /// The value as Argo prints it (`0.99`, `[0.99,NaN]`, a JSON value).
    pub value: String,
    /// Error or explanation, empty when there is none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// RFC 3339 start time.
    pub started_at: String,
    /// RFC 3339 finish time.
    pub finished_at: String,
    /// Prometheus warnings, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Counters and measurements of one metric (Argo's `MetricResult`).
#[derive(Debug, Clone, Serialize)]
pub struct MetricResult {
    /// Metric name.
    pub name: String,
    /// Current phase.
    pub phase: Phase,
    /// Whether the metric is dry-run (reported, not deciding).
    pub dry_run: bool,
    /// Message of the last measurement.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Completed non-Error measurements.
    pub count: i64,
    /// Successful measurements.
    pub successful: i64,
    /// Failed measurements.
    pub failed: i64,
    /// Inconclusive measurements.
    pub inconclusive: i64,
    /// Error measurements.
    pub error: i64,
    /// Error measurements in a row.
    pub consecutive_error: i64,
    /// Successful measurements in a row.
    pub consecutive_success: i64,
    /// Every measurement, oldest first.
    pub measurements: Vec<Measurement>,
}

impl MetricResult {
    /// A metric not yet measured.
    pub fn new(name: &str, dry_run: bool) -> Self {
        MetricResult {
            name: name.to_string(),
            phase: Phase::Pending,
            dry_run,
            message: String::new(),
            count: 0,
            successful: 0,
            failed: 0,
            inconclusive: 0,
            error: 0,
            consecutive_error: 0,
            consecutive_success: 0,
            measurements: Vec::new(),
        }
    }

    /// Add a finished measurement to the counters.
    pub fn record(&mut self, m: Measurement) {
        match m.phase {
            Phase::Successful => {
                self.successful += 1;
                self.count += 1;
                self.consecutive_error = 0;
                self.consecutive_success += 1;
            }
            Phase::Failed => {
                self.failed += 1;
                self.count += 1;
                self.consecutive_error = 0;
                self.consecutive_success = 0;
            }
            Phase::Inconclusive => {
                self.inconclusive += 1;
                self.count += 1;
                self.consecutive_error = 0;
                self.consecutive_success = 0;
            }
            Phase::Error => {
                self.error += 1;
                self.consecutive_error += 1;
                self.consecutive_success = 0;
            }
            Phase::Pending | Phase::Running => {}
        }
        self.measurements.push(m);
    }

    /// The last measurement, if any.
    pub fn last(&self) -> Option<&Measurement> {
        self.measurements.last()
    }
}

/// A limit that was exceeded, with Argo's wording (`failed (2) > failureLimit (1)`).
pub fn exceeded_limit(metric: &Metric, r: &MetricResult) -> Option<(Phase, String)> {
    let mut out = None;
    let failure_limit = metric.failure_limit();
    if failure_limit >= 0 && r.failed > failure_limit {
        out = Some((
            Phase::Failed,
            format!("failed ({}) > failureLimit ({failure_limit})", r.failed),
        ));
    }
    let inconclusive_limit = metric.inconclusive_limit();
    if r.inconclusive > inconclusive_limit {
        out = Some((
            Phase::Inconclusive,
            format!(
                "inconclusive ({}) > inconclusiveLimit ({inconclusive_limit})",
                r.inconclusive
            ),
        ));
    }
    let error_limit = metric.consecutive_error_limit();
    if r.consecutive_error > error_limit {
        out = Some((
            Phase::Error,
            format!(
                "consecutiveErrors ({}) > consecutiveErrorLimit ({error_limit})",
                r.consecutive_error
            ),
        ));
    }
    out
}

/// The phase of a metric given its counters (Argo's `assessMetricStatus`).
pub fn assess(metric: &Metric, r: &MetricResult, terminating: bool) -> Phase {
    if r.phase.completed() {
        return r.phase;
    }
    if r.measurements.is_empty() {
        return if terminating {
            Phase::Successful
        } else {
            Phase::Pending
        };
    }
    if let Some((phase, _)) = exceeded_limit(metric, r) {
        return phase;
    }
    let success_limit = metric.consecutive_success_limit();
    if success_limit > 0 && r.consecutive_success >= success_limit {
        return Phase::Successful;
    }
    if let Some(count) = metric.effective_count() {
        if r.count >= count {
            let failure_applicable = metric.failure_limit() >= 0;
            let success_applicable = success_limit > 0;
            return match (failure_applicable, success_applicable) {
                // Neither limit reached: the metric could not prove itself either way.
                (true, true) => Phase::Inconclusive,
                (false, true) => Phase::Failed,
                _ => Phase::Successful,
            };
        }
    }
    if terminating {
        Phase::Successful
    } else {
        Phase::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(json: serde_json::Value) -> Metric {
        serde_json::from_value(json).unwrap()
    }

    fn m(phase: Phase) -> Measurement {
        Measurement {
            phase,
            value: String::new(),
            message: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            warnings: vec![],
        }
    }

    fn run(metric: &Metric, phases: &[Phase]) -> Phase {
        let mut r = MetricResult::new("m", false);
        for p in phases {
            r.record(m(*p));
            r.phase = assess(metric, &r, false);
            if r.phase.completed() {
                break;
            }
        }
        r.phase
    }

    #[test]
    fn limits_and_counts() {
        use Phase::*;
        let five = metric(
            serde_json::json!({"name": "m", "interval": "1m", "count": 5,
            "failureLimit": 1, "provider": {}}),
        );
        assert_eq!(
            run(&five, &[Successful, Failed, Successful, Failed]),
            Failed
        );
        assert_eq!(
            run(
                &five,
                &[Successful, Failed, Successful, Successful, Successful]
            ),
            Successful
        );
        assert_eq!(run(&five, &[Successful, Inconclusive]), Inconclusive);
        // Errors do not count toward count; five in a row exceed the default limit of 4.
        assert_eq!(run(&five, &[Error, Error, Error, Error]), Running);
        assert_eq!(run(&five, &[Error, Error, Error, Error, Error]), Error);
        let csl = metric(
            serde_json::json!({"name": "m", "interval": "1m", "count": 4,
            "failureLimit": 2, "consecutiveSuccessLimit": 2, "provider": {}}),
        );
        assert_eq!(run(&csl, &[Failed, Successful, Successful]), Successful);
        assert_eq!(
            run(&csl, &[Successful, Failed, Successful, Failed]),
            Inconclusive
        );
        let only_csl = metric(
            serde_json::json!({"name": "m", "interval": "1m", "count": 3,
            "failureLimit": -1, "consecutiveSuccessLimit": 2, "provider": {}}),
        );
        assert_eq!(run(&only_csl, &[Successful, Failed, Successful]), Failed);
    }

    #[test]
    fn terminating_ends_running_metrics_as_successful() {
        let endless = metric(serde_json::json!({"name": "m", "interval": "1m", "provider": {}}));
        let mut r = MetricResult::new("m", false);
        r.record(m(Phase::Successful));
        assert_eq!(assess(&endless, &r, false), Phase::Running);
        assert_eq!(assess(&endless, &r, true), Phase::Successful);
    }
}
