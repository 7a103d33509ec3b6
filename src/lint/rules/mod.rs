//! One file per lint rule (or per family of rules that read the same thing). Each rule looks
//! at one Argo metric, one Judge query or one template's args and returns its findings;
//! [`super::lint_text`] calls them in a fixed order, so findings come out in the same order
//! run after run.

pub(super) mod arg_unused;
pub(super) mod empty_result;
pub(super) mod limit_unreachable;
pub(super) mod nan;
pub(super) mod promql;
pub(super) mod windows;

use promql_parser::parser::Expr;

use super::{Finding, Severity};
use crate::template::argo::Metric;
use crate::template::judge_spec::JudgeSpec;
use crate::template::yaml::Document;

/// One metric of an AnalysisTemplate (args already substituted), and where its fields are in
/// the file.
pub(super) struct ArgoMetric<'a> {
    /// The file, as findings name it.
    pub file: &'a str,
    /// The template's document, for line numbers.
    pub doc: &'a Document,
    /// Position in `spec.metrics`.
    pub index: usize,
    /// The metric the rule checks, as parsed.
    pub metric: &'a Metric,
    /// Its Prometheus query parsed, when it has one.
    pub query: Option<Result<Expr, String>>,
}

impl ArgoMetric<'_> {
    /// The line of `field` of this metric (`successCondition`, `provider/prometheus/query`).
    pub fn at(&self, field: &str) -> Option<usize> {
        self.doc
            .line_of(&format!("/spec/metrics/{}/{field}", self.index))
    }

    /// A finding about this metric: the message is prefixed with its name.
    pub fn finding(
        &self,
        line: Option<usize>,
        severity: Severity,
        rule: &'static str,
        message: String,
        fix: Option<String>,
    ) -> Finding {
        Finding {
            file: self.file.into(),
            line,
            severity,
            rule,
            message: format!("metric {:?}: {message}", self.metric.name),
            fix,
        }
    }
}

/// One rendered query of a Judge spec (a metric's or an SLO's), parsed.
pub(super) struct JudgeQuery<'a> {
    /// The file, as findings name it.
    pub file: &'a str,
    /// The spec the query belongs to.
    pub spec: &'a JudgeSpec,
    /// JSON pointer of the query's field (`/metrics/0/query`, `/slos/1`).
    pub pointer: &'a str,
    /// Its line in the file.
    pub line: Option<usize>,
    /// How findings name it: `Judge "j" metrics[0] "p99"`.
    pub what: String,
    /// The query parsed, or the parser's message.
    pub expr: Result<Expr, String>,
}

impl JudgeQuery<'_> {
    /// A finding about this query.
    pub fn finding(
        &self,
        severity: Severity,
        rule: &'static str,
        message: String,
        fix: Option<String>,
    ) -> Finding {
        Finding {
            file: self.file.into(),
            line: self.line,
            severity,
            rule,
            message,
            fix,
        }
    }
}
