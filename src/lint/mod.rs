//! `canary lint`: find what is wrong with AnalysisTemplates and Judge specs before a rollout
//! does — the errors `analyze` and `serve` would refuse (schema, Argo's rules, conditions that
//! do not compile, PromQL that does not parse) and the footguns they would happily run:
//!
//! - `result[0]` with no empty-result guard (no traffic → an Error measurement);
//! - conditions under which no data (NaN) passes, or is quietly Inconclusive;
//! - a `failureLimit`/`inconclusiveLimit` that `count` measurements can never exceed;
//! - range selectors shorter than the query step or the measurement interval (samples
//!   nobody looks at);
//! - args declared but never used.

mod rules;

use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::parser::Expr;
use serde::Serialize;
use serde_json::Value;

use crate::template::yaml::{self, Document};
use crate::template::{self, dotted, judge_spec, TemplateError};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Warning,
    /// The template is wrong: `analyze`/`serve` refuse it, or it would pass on no data.
    Error,
}

/// One problem, where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The template or Judge file the finding is in.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Error (the template will not work) or warning (it works, but not as meant).
    pub severity: Severity,
    /// Rule id (`schema`, `promql`, `empty-result`, `nan-passes`, …).
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
    /// A suggested fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: {}", self.rule, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {fix}")?;
        }
        Ok(())
    }
}

/// Value given to args that have no default, so queries can be rendered and parsed. A
/// duration, since args in range selectors (`[{{args.window}}]`) are the common case that
/// must parse; in a label value any text does.
const PLACEHOLDER: &str = "5m";

/// The YAML files under `paths` (directories are searched recursively), sorted.
pub fn files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                for e in std::fs::read_dir(&dir)? {
                    let path = e?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                        out.push(path);
                    }
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Lint one file.
pub fn lint_file(path: &Path) -> Vec<Finding> {
    let label = path.display().to_string();
    match yaml::read_file(path) {
        Ok(text) => lint_text(&label, &text),
        Err(e) => vec![Finding {
            file: label,
            line: None,
            severity: Severity::Error,
            rule: "io",
            message: format!("cannot read: {e}"),
            fix: None,
        }],
    }
}

fn from_template_error(e: TemplateError, rule: &'static str) -> Finding {
    let mut message = e.message.clone();
    if let Some(m) = &e.metric {
        message = format!("metric {m:?}: {message}");
    }
    if let Some(f) = &e.field {
        message = format!("{f}: {message}");
    }
    Finding {
        file: e.file,
        line: e.line,
        severity: Severity::Error,
        rule,
        message,
        fix: None,
    }
}

/// Lint the documents of one YAML text.
pub fn lint_text(file: &str, text: &str) -> Vec<Finding> {
    let docs = match yaml::load_documents(text) {
        Ok(d) => d,
        Err(e) => {
            return vec![from_template_error(
                template::syntax_error(file, &e),
                "yaml",
            )]
        }
    };
    let kind_of = |d: &Document| {
        d.value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let kinds: Vec<String> = docs.iter().map(kind_of).collect();
    let mut out = Vec::new();
    if kinds.iter().any(|k| k == "Judge") {
        out.extend(lint_judges(file, text, &docs));
    }
    if kinds
        .iter()
        .any(|k| k == "AnalysisTemplate" || k == "ClusterAnalysisTemplate")
    {
        out.extend(lint_argo(file, &docs));
    }
    if out.is_empty()
        && !kinds.iter().any(|k| {
            matches!(
                k.as_str(),
                "Judge" | "AnalysisTemplate" | "ClusterAnalysisTemplate"
            )
        })
    {
        out.push(Finding {
            file: file.into(),
            line: None,
            severity: Severity::Warning,
            rule: "not-a-template",
            message: "no AnalysisTemplate, ClusterAnalysisTemplate or Judge document: nothing \
                      checked"
                .into(),
            fix: None,
        });
    }
    out.sort_by_key(|f| (f.line, f.severity));
    out
}

/// Parse PromQL; Err with the parser's message.
pub fn parse_promql(query: &str) -> Result<Expr, String> {
    promql_parser::parser::parse(query.trim())
}

/// The range selectors and subquery ranges of a query.
fn ranges(expr: &Expr) -> Vec<Duration> {
    struct Collect(Vec<Duration>);
    impl promql_parser::util::ExprVisitor for Collect {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            match e {
                Expr::MatrixSelector(m) => self.0.push(m.range),
                Expr::Subquery(s) => self.0.push(s.range),
                _ => {}
            }
            Ok(true)
        }
    }
    let mut c = Collect(Vec::new());
    let _ = promql_parser::util::walk_expr(&mut c, expr);
    c.0
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn lint_argo(file: &str, docs: &[Document]) -> Vec<Finding> {
    // Only the Argo documents are parsed as templates (a file may hold Judges too); each
    // keeps its lines in the file, so findings point into it.
    let argo: Vec<Document> = docs
        .iter()
        .filter(|d| {
            matches!(
                d.value.get("kind").and_then(Value::as_str),
                Some("AnalysisTemplate" | "ClusterAnalysisTemplate")
            )
        })
        .cloned()
        .collect();
    let templates = match template::parse_documents(file, argo) {
        Ok(t) => t,
        Err(errors) => {
            return errors
                .into_iter()
                .map(|e| from_template_error(e, "schema"))
                .collect()
        }
    };
    let mut out = Vec::new();
    for t in &templates {
        // Args without a value get a placeholder, so the metrics render and validate.
        let given = t
            .args
            .iter()
            .filter(|a| a.value.is_none())
            .map(|a| (a.name.clone(), PLACEHOLDER.to_string()))
            .collect();
        let metrics = match template::resolve(std::slice::from_ref(t), &given) {
            Ok(m) => m,
            Err(errors) => {
                out.extend(errors.into_iter().map(|e| from_template_error(e, "argo")));
                continue;
            }
        };
        out.extend(rules::arg_unused::argo(file, t));
        for (index, m) in metrics.iter().enumerate() {
            let metric = &m.metric;
            let m = rules::ArgoMetric {
                file,
                doc: t.doc(),
                index,
                metric,
                query: metric
                    .provider
                    .prometheus
                    .as_ref()
                    .map(|p| parse_promql(&p.query)),
            };
            out.extend(rules::promql::argo(&m));
            out.extend(rules::windows::argo(&m));
            out.extend(rules::empty_result::argo(&m));
            out.extend(rules::nan::argo(&m));
            out.extend(rules::limit_unreachable::argo(&m));
        }
    }
    out
}

fn lint_judges(file: &str, text: &str, docs: &[Document]) -> Vec<Finding> {
    let specs = match judge_spec::judges_in(file, text) {
        Ok(s) => s,
        Err(errors) => {
            return errors
                .into_iter()
                .map(|e| from_template_error(e, "judge"))
                .collect()
        }
    };
    let mut out = Vec::new();
    for spec in specs {
        let doc = docs.iter().find(|d| {
            d.value.get("kind").and_then(Value::as_str) == Some("Judge")
                && d.value.get("name").and_then(Value::as_str) == Some(spec.name.as_str())
        });
        let line = |pointer: &str| doc.and_then(|d| d.line_of(pointer));
        let given = spec
            .args
            .iter()
            .filter(|(_, default)| default.is_none())
            .map(|(n, _)| (n.clone(), PLACEHOLDER.to_string()))
            .collect();
        let rendered = match spec.resolve_args(&given).and_then(|v| spec.render(&v)) {
            Ok(r) => r,
            Err(e) => {
                out.push(Finding {
                    file: file.into(),
                    line: line(""),
                    severity: Severity::Error,
                    rule: "judge",
                    message: format!("Judge {:?}: {e}", spec.name),
                    fix: None,
                });
                continue;
            }
        };
        out.extend(rules::arg_unused::judge(file, &spec, doc));
        for (pointer, q) in judge_queries(&spec, &rendered) {
            let metric = doc
                .and_then(|d| d.value.pointer(&format!("{}/name", parent(&pointer))))
                .and_then(Value::as_str)
                .unwrap_or("");
            let q = rules::JudgeQuery {
                file,
                spec: &spec,
                pointer: &pointer,
                line: line(&pointer),
                what: format!(
                    "Judge {:?} {} {metric:?}",
                    spec.name,
                    dotted(parent(&pointer))
                ),
                expr: parse_promql(&q),
            };
            out.extend(rules::promql::judge(&q));
            out.extend(rules::windows::judge_shorter_than_step(&q));
            out.extend(rules::windows::judge_longer_than_step(&q));
        }
    }
    out
}

/// Every rendered query of a Judge spec with the JSON pointer of the field it came from: the
/// canary side of each metric (the baseline's differs only in its selector), then each SLO
/// rule's two queries.
fn judge_queries(
    spec: &judge_spec::JudgeSpec,
    rendered: &judge_spec::Rendered,
) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for (i, (canary, _)) in rendered.metrics.iter().enumerate() {
        let field = match &spec.metrics[i].source {
            judge_spec::MetricSource::Series(_) => "query",
            judge_spec::MetricSource::Counts { .. } => "counts",
            judge_spec::MetricSource::Counters { .. } => "counters",
            judge_spec::MetricSource::Histogram { .. } => "histogram",
            judge_spec::MetricSource::Share { .. } => "share",
        };
        for q in canary {
            queries.push((format!("/metrics/{i}/{field}"), q.clone()));
        }
    }
    for (i, rules) in rendered.slos.iter().enumerate() {
        for ((le, lt), _) in rules {
            queries.push((format!("/slos/{i}"), le.clone()));
            queries.push((format!("/slos/{i}"), lt.clone()));
        }
    }
    queries
}

fn parent(pointer: &str) -> &str {
    let mut parts = pointer.rsplitn(2, '/');
    let last = parts.next().unwrap_or("");
    let rest = parts.next().unwrap_or("");
    if last.chars().all(|c| c.is_ascii_digit()) {
        pointer
    } else {
        rest
    }
}

#[cfg(test)]
mod tests;
