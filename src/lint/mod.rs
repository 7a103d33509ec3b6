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

use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::parser::Expr;
use serde::Serialize;
use serde_json::Value;

use crate::analysis::Phase;
use crate::template::argo::parse_duration;
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
    /// File.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Severity.
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
    let mut templates = Vec::new();
    let mut errors = Vec::new();
    match template::parse_documents(file, argo) {
        Ok(mut t) => templates.append(&mut t),
        Err(mut e) => errors.append(&mut e),
    }
    if !errors.is_empty() {
        return errors
            .into_iter()
            .map(|e| from_template_error(e, "schema"))
            .collect();
    }
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
        let doc = t.doc();
        // Args declared but never used.
        let raw_metrics = doc
            .value
            .pointer("/spec/metrics")
            .map(Value::to_string)
            .unwrap_or_default();
        for (i, a) in t.args.iter().enumerate() {
            let used = regex::Regex::new(&format!(
                r"\{{\{{\s*args\.{}\s*\}}\}}",
                regex::escape(&a.name)
            ))
            .is_ok_and(|r| r.is_match(&raw_metrics));
            if !used {
                out.push(Finding {
                    file: file.into(),
                    line: doc.line_of(&format!("/spec/args/{i}")),
                    severity: Severity::Warning,
                    rule: "arg-unused",
                    message: format!("arg {:?} is declared but no metric uses it", a.name),
                    fix: Some(format!(
                        "remove it, or use it as {{{{args.{}}}}} in a query",
                        a.name
                    )),
                });
            }
        }
        for (i, m) in metrics.iter().enumerate() {
            let base = format!("/spec/metrics/{i}");
            let at = |field: &str| doc.line_of(&format!("{base}/{field}"));
            let metric = &m.metric;
            let name = &metric.name;
            let finding = |line, severity, rule, message: String, fix: Option<String>| Finding {
                file: file.into(),
                line,
                severity,
                rule,
                message: format!("metric {name:?}: {message}"),
                fix,
            };
            // PromQL.
            let interval = metric
                .interval
                .as_deref()
                .and_then(|d| parse_duration(d).ok());
            if let Some(p) = &metric.provider.prometheus {
                let line = at("provider/prometheus/query");
                match parse_promql(&p.query) {
                    Err(e) => out.push(finding(
                        line,
                        Severity::Error,
                        "promql",
                        format!("the query does not parse: {}", e.trim()),
                        None,
                    )),
                    Ok(expr) => {
                        let step = p
                            .range_query
                            .as_ref()
                            .and_then(|r| parse_duration(&r.step).ok());
                        for r in ranges(&expr) {
                            if let Some(s) = step.filter(|s| r < *s) {
                                out.push(finding(
                                    line,
                                    Severity::Warning,
                                    "window-shorter-than-step",
                                    format!(
                                        "range [{}] is shorter than the rangeQuery step {}: \
                                         samples between steps are never looked at",
                                        human(r),
                                        human(s)
                                    ),
                                    Some(format!("use a range of at least [{}]", human(s))),
                                ));
                            }
                            if let Some(iv) = interval.filter(|iv| r < *iv) {
                                out.push(finding(
                                    line,
                                    Severity::Warning,
                                    "window-shorter-than-interval",
                                    format!(
                                        "range [{}] is shorter than the interval {}: what \
                                         happens between measurements is never looked at",
                                        human(r),
                                        human(iv)
                                    ),
                                    Some(format!(
                                        "use a range of at least [{}] (the interval)",
                                        human(iv)
                                    )),
                                ));
                            }
                        }
                    }
                }
            }
            let conditions = [
                ("successCondition", metric.success_condition.as_str()),
                ("failureCondition", metric.failure_condition.as_str()),
            ];
            // result[0] without a guard.
            for (field, c) in conditions {
                let indexes = c.contains("result[0]");
                let guarded = c.contains("len(result)") || c.contains("default(");
                if indexes && !guarded {
                    out.push(finding(
                        at(field),
                        Severity::Warning,
                        "empty-result",
                        format!(
                            "{field} reads result[0] with no empty-result guard: when the query \
                             returns no series (no traffic yet, a typo in a label) the \
                             measurement is an Error, and enough of them abort the analysis"
                        ),
                        Some(format!("guard it: len(result) > 0 && {c}")),
                    ));
                }
            }
            // No data: what do the conditions make of NaN (Prometheus' 0/0)?
            let explicit = conditions.iter().any(|(_, c)| c.contains("isNaN"));
            let list = conditions.iter().any(|(_, c)| c.contains("result[0]"));
            let nan = if list {
                expr::Value::Array(vec![expr::Value::Float(f64::NAN)])
            } else {
                expr::Value::Float(f64::NAN)
            };
            let line = at("successCondition").or(at("failureCondition"));
            let nan_phase = match metric.provider.prometheus {
                Some(_) => crate::condition::evaluate(
                    &nan,
                    &metric.success_condition,
                    &metric.failure_condition,
                )
                .ok(),
                None => None,
            };
            match nan_phase {
                Some(Phase::Successful) => out.push(finding(
                    line,
                    Severity::Error,
                    "nan-passes",
                    "a NaN result (no requests: 0/0) makes the measurement Successful — \
                     missing data passes"
                        .into(),
                    Some(
                        "exclude NaN from success: `!isNaN(result[0]) && …`, and decide what no \
                         data means (Inconclusive is the safe choice)"
                            .into(),
                    ),
                )),
                Some(Phase::Inconclusive) if !explicit => out.push(finding(
                    line,
                    Severity::Warning,
                    "nan-inconclusive",
                    "on a NaN result (no requests: 0/0) both conditions are false: the \
                     measurement is Inconclusive, which pauses the rollout for a person"
                        .into(),
                    Some(
                        "say what no data means with isNaN() in the conditions, and set \
                         inconclusiveLimit to how many quiet measurements you tolerate"
                            .into(),
                    ),
                )),
                _ => {}
            }
            // Limits that count measurements can never exceed.
            let count = metric.count.filter(|c| *c > 0);
            if let Some(count) = count {
                for (field, limit) in [
                    ("failureLimit", metric.failure_limit),
                    ("inconclusiveLimit", metric.inconclusive_limit),
                    ("consecutiveErrorLimit", metric.consecutive_error_limit),
                ] {
                    if let Some(l) = limit.filter(|l| *l >= count) {
                        out.push(finding(
                            at(field).or(at("count")),
                            Severity::Warning,
                            "limit-unreachable",
                            format!(
                                "{field} {l} with count {count}: exceeding it takes {} \
                                 measurements, more than are taken — this limit never trips",
                                l + 1
                            ),
                            Some(format!(
                                "lower {field} below {count}, or raise count above {l}"
                            )),
                        ));
                    }
                }
            }
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
        let raw = doc.map(|d| d.value.to_string()).unwrap_or_default();
        for (name, _) in &spec.args {
            let variant_default = matches!(name.as_str(), "canary_hash" | "stable_hash");
            let used = raw.contains(&format!("args.{name}"));
            if !used && !variant_default {
                out.push(Finding {
                    file: file.into(),
                    line: line("/args"),
                    severity: Severity::Warning,
                    rule: "arg-unused",
                    message: format!(
                        "Judge {:?}: arg {name:?} is declared but no query uses it",
                        spec.name
                    ),
                    fix: Some(format!("remove it, or use it as {{{{args.{name}}}}}")),
                });
            }
        }
        let mut queries: Vec<(String, String)> = Vec::new();
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
        for (pointer, q) in queries {
            let metric = doc
                .and_then(|d| d.value.pointer(&format!("{}/name", parent(&pointer))))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let what = format!(
                "Judge {:?} {} {metric:?}",
                spec.name,
                dotted(parent(&pointer))
            );
            match parse_promql(&q) {
                Err(e) => out.push(Finding {
                    file: file.into(),
                    line: line(&pointer),
                    severity: Severity::Error,
                    rule: "promql",
                    message: format!("{what}: the query does not parse: {}", e.trim()),
                    fix: None,
                }),
                Ok(expr) => {
                    if pointer.starts_with("/metrics") {
                        for r in ranges(&expr).into_iter().filter(|r| *r < spec.step) {
                            out.push(Finding {
                                file: file.into(),
                                line: line(&pointer),
                                severity: Severity::Warning,
                                rule: "window-shorter-than-step",
                                message: format!(
                                    "{what}: range [{}] is shorter than the spec's step {}: \
                                     samples between steps are never looked at",
                                    human(r),
                                    human(spec.step)
                                ),
                                fix: Some("use [{{step}}], the spec's step".into()),
                            });
                        }
                        let series = pointer.ends_with("/query");
                        for r in ranges(&expr)
                            .into_iter()
                            .filter(|r| series && *r > spec.step)
                        {
                            out.push(Finding {
                                file: file.into(),
                                line: line(&pointer),
                                severity: Severity::Warning,
                                rule: "window-longer-than-step",
                                message: format!(
                                    "{what}: range [{}] is longer than the spec's step {}: \
                                     neighbouring points overlap, so the judge keeps only every \
                                     {}th point (a rank test over overlapping points is far too \
                                     confident)",
                                    human(r),
                                    human(spec.step),
                                    (r.as_secs_f64() / spec.step.as_secs_f64()).ceil()
                                ),
                                fix: Some(
                                    "use [{{step}}], or a histogram/counters metric that \
                                     judges requests instead of per-step points"
                                        .into(),
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    out
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
