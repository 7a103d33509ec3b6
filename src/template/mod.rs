//! Analysis templates: Argo `AnalysisTemplate`/`ClusterAnalysisTemplate` loading, args and
//! validation.
//!
//! Loading is in two stages, as in Argo: a template file is parsed and checked against the CRD
//! schema once ([`parse_str`]); a run then resolves its args and checks every metric with
//! Argo's rules ([`resolve`]). Every error names the file, the metric, the field and the line.

pub mod argo;
pub mod args;
pub mod judge_spec;
pub mod schema;
pub mod validate;
pub mod yaml;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use self::argo::{Argument, DryRun, Metric, TemplateKind};
use self::yaml::Document;

/// Every error, one per line as the CLI prints them after its first `error: `.
pub fn errors_text(errors: &[TemplateError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    lines.join("\nerror: ")
}

/// A problem with a template, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The file (as given on the command line).
    pub file: String,
    /// 1-based line, where known.
    pub line: Option<usize>,
    /// The metric the problem is in, if any.
    pub metric: Option<String>,
    /// The field, dotted (`spec.metrics[0].count`), if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ":")?;
        if let Some(m) = &self.metric {
            write!(f, " metric {m:?}:")?;
        }
        if let Some(field) = &self.field {
            write!(f, " {field}:")?;
        }
        write!(f, " {}", self.message)
    }
}

impl std::error::Error for TemplateError {}

/// A parsed, schema-valid template whose metrics still carry `{{args.…}}` placeholders.
#[derive(Debug, Clone)]
pub struct Template {
    /// File it came from.
    pub file: String,
    /// AnalysisTemplate or ClusterAnalysisTemplate.
    pub kind: TemplateKind,
    /// `metadata.name`.
    pub name: String,
    /// Declared args.
    pub args: Vec<Argument>,
    /// `spec.dryRun` rules.
    pub dry_run: Vec<DryRun>,
    doc: Document,
}

impl Template {
    /// The YAML document, with the line of every field.
    pub fn doc(&self) -> &Document {
        &self.doc
    }
}

/// A Judge spec run as a metric: each measurement is one judgement over the spec's window;
/// the result is `{verdict, score, reasons}`.
#[derive(Debug, Clone)]
pub struct JudgeProvider {
    /// The parsed spec, shared by every measurement.
    pub spec: std::sync::Arc<judge_spec::JudgeSpec>,
    /// Its args, resolved.
    pub args: BTreeMap<String, String>,
}

/// One metric ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedMetric {
    /// The metric with args substituted.
    pub metric: Metric,
    /// A Judge spec measured in-process in place of an Argo provider (for `kind: Judge`
    /// files; the metric's own `provider` is then empty).
    pub judge: Option<JudgeProvider>,
    /// Whether a `dryRun` rule matches it (reported, but does not decide the run).
    pub dry_run: bool,
    /// Template name it came from.
    pub template: String,
}

/// Read and parse a template file.
pub fn load_file(path: &Path) -> Result<Vec<Template>, Vec<TemplateError>> {
    let label = path.display().to_string();
    let text = yaml::read_file(path).map_err(|e| {
        vec![TemplateError {
            file: label.clone(),
            line: None,
            metric: None,
            field: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse_str(&label, &text)
}

/// Load analysis files for `analyze` and `promote`: Argo AnalysisTemplates, and canary-engine
/// Judge specs (files with `kind: Judge` documents), each Judge run as one metric whose
/// measurement is a judgement (`pass` Successful, `fail` Failed, `marginal`/`inconclusive`
/// Inconclusive). A given arg goes to every file that declares it; an arg nobody declares is
/// an error. With `judge_every`, Judges measure at that interval until stopped (background
/// analyses) and tolerate Inconclusive windows; without, they judge once.
pub fn load_analysis(
    paths: &[std::path::PathBuf],
    given: &BTreeMap<String, String>,
    judge_every: Option<std::time::Duration>,
) -> Result<Vec<ResolvedMetric>, Vec<TemplateError>> {
    let mut templates = Vec::new();
    let mut judges = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let label = path.display().to_string();
        let text = match yaml::read_file(path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(located(
                    &label,
                    None,
                    None,
                    None,
                    &format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        let is_judge = yaml::load_documents(&text).is_ok_and(|docs| {
            docs.iter()
                .any(|d| d.value.get("kind").and_then(Value::as_str) == Some("Judge"))
        });
        let loaded = if is_judge {
            judge_spec::judges_in(&label, &text).map(|mut j| judges.append(&mut j))
        } else {
            parse_str(&label, &text).map(|mut t| templates.append(&mut t))
        };
        if let Err(mut e) = loaded {
            errors.append(&mut e);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let judge_args: Vec<&str> = judges
        .iter()
        .flat_map(|j| j.args.iter().map(|(n, _)| n.as_str()))
        .collect();
    let template_args: Vec<&str> = templates
        .iter()
        .flat_map(|t| t.args.iter().map(|a| a.name.as_str()))
        .collect();
    let mut out = Vec::new();
    if templates.is_empty() {
        for name in given.keys() {
            if !judge_args.contains(&name.as_str()) {
                errors.push(located(
                    &paths_label(paths),
                    None,
                    None,
                    Some("args".into()),
                    &format!("argument {name:?} is not declared by any of these files"),
                ));
            }
        }
    } else {
        let for_templates: BTreeMap<String, String> = given
            .iter()
            .filter(|(k, _)| {
                template_args.contains(&k.as_str()) || !judge_args.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match resolve(&templates, &for_templates) {
            Ok(mut m) => out.append(&mut m),
            Err(mut e) => errors.append(&mut e),
        }
    }
    for spec in judges {
        let mine: BTreeMap<String, String> = given
            .iter()
            .filter(|(k, _)| spec.args.iter().any(|(n, _)| n == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let at = |e: &dyn fmt::Display| {
            located(
                &spec.file,
                None,
                Some(spec.name.clone()),
                Some("args".into()),
                &e.to_string(),
            )
        };
        let values = match spec
            .resolve_args(&mine)
            .and_then(|v| spec.render(&v).map(|_| v))
        {
            Ok(v) => v,
            Err(e) => {
                errors.push(at(&e));
                continue;
            }
        };
        if out
            .iter()
            .any(|r: &ResolvedMetric| r.metric.name == spec.name)
        {
            errors.push(at(&format!("duplicate metric name '{}'", spec.name)));
            continue;
        }
        out.push(judge_metric(spec, values, judge_every));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn paths_label(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Judge spec as a metric (see [`load_analysis`]).
pub fn judge_metric(
    spec: judge_spec::JudgeSpec,
    args: BTreeMap<String, String>,
    every: Option<std::time::Duration>,
) -> ResolvedMetric {
    let metric = Metric {
        name: spec.name.clone(),
        interval: every.map(|d| format!("{}s", d.as_secs().max(1))),
        initial_delay: None,
        count: None,
        success_condition: "result.verdict == \"pass\"".into(),
        failure_condition: "result.verdict == \"fail\"".into(),
        failure_limit: None,
        // A background Judge sees thin data in its first windows: only `fail` decides.
        inconclusive_limit: every.map(|_| i64::MAX),
        consecutive_error_limit: None,
        consecutive_success_limit: None,
        provider: argo::Provider::default(),
    };
    ResolvedMetric {
        template: format!("Judge/{}", metric.name),
        metric,
        judge: Some(JudgeProvider {
            spec: std::sync::Arc::new(spec),
            args,
        }),
        dry_run: false,
    }
}

/// Parse every document of a YAML text as an Argo analysis template.
pub fn parse_str(file: &str, text: &str) -> Result<Vec<Template>, Vec<TemplateError>> {
    let docs = yaml::load_documents(text).map_err(|e| vec![syntax_error(file, &e)])?;
    parse_documents(file, docs)
}

/// Parse documents already loaded from `file` (see [`yaml::load_documents`]) as Argo
/// analysis templates, as [`parse_str`] does.
pub fn parse_documents(
    file: &str,
    docs: Vec<Document>,
) -> Result<Vec<Template>, Vec<TemplateError>> {
    if docs.is_empty() {
        return Err(vec![located(file, None, None, None, "no YAML documents")]);
    }
    let mut templates = Vec::new();
    let mut errors = Vec::new();
    for doc in docs {
        match parse_document(file, doc) {
            Ok(t) => templates.push(t),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(templates)
    } else {
        Err(errors)
    }
}

fn parse_document(file: &str, doc: Document) -> Result<Template, Vec<TemplateError>> {
    let err_at = |pointer: &str, message: String| TemplateError {
        file: file.into(),
        line: doc.line_of(pointer),
        metric: metric_name_at(&doc.value, pointer),
        field: Some(dotted(pointer)).filter(|f| !f.is_empty()),
        message,
    };
    let kind = match doc.value.get("kind").and_then(Value::as_str) {
        Some("AnalysisTemplate") => TemplateKind::AnalysisTemplate,
        Some("ClusterAnalysisTemplate") => TemplateKind::ClusterAnalysisTemplate,
        Some(other) => {
            return Err(vec![err_at(
                "/kind",
                format!(
                    "kind {other:?} is not an Argo AnalysisTemplate or ClusterAnalysisTemplate"
                ),
            )])
        }
        None => {
            return Err(vec![TemplateError {
                line: Some(doc.start_line()),
                ..err_at("", "document has no kind".into())
            }])
        }
    };
    let api = doc.value.get("apiVersion").and_then(Value::as_str);
    if api != Some("argoproj.io/v1alpha1") {
        return Err(vec![err_at(
            "/apiVersion",
            format!("apiVersion must be argoproj.io/v1alpha1, not {api:?}"),
        )]);
    }
    let violations = schema::validate(&doc.value);
    if !violations.is_empty() {
        return Err(violations
            .into_iter()
            .map(|v| err_at(&v.pointer, format!("schema: {}", v.message)))
            .collect());
    }
    let name = doc
        .value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let args: Vec<Argument> = typed(&doc, "/spec/args").map_err(|e| vec![e(file)])?;
    let dry_run: Vec<DryRun> = typed(&doc, "/spec/dryRun").map_err(|e| vec![e(file)])?;
    Ok(Template {
        file: file.into(),
        kind,
        name,
        args,
        dry_run,
        doc,
    })
}

type LateError = Box<dyn FnOnce(&str) -> TemplateError>;

fn typed<T: DeserializeOwned + Default>(doc: &Document, pointer: &str) -> Result<T, LateError> {
    let Some(v) = doc.value.pointer(pointer) else {
        return Ok(T::default());
    };
    serde_path_to_error::deserialize(v.clone()).map_err(|e| {
        let inner = json_pointer_of(e.path());
        let full = format!("{pointer}{inner}");
        let line = doc.line_of(&full);
        let metric = metric_name_at(&doc.value, &full);
        let message = e.inner().to_string();
        Box::new(move |file: &str| TemplateError {
            file: file.into(),
            line,
            metric,
            field: Some(dotted(&full)),
            message,
        }) as LateError
    })
}

/// Resolve args and validate every metric of one or more templates run together (as Argo does
/// for a Rollout step listing several templates). Returns all problems, not only the first.
pub fn resolve(
    templates: &[Template],
    given: &BTreeMap<String, String>,
) -> Result<Vec<ResolvedMetric>, Vec<TemplateError>> {
    let mut errors = Vec::new();
    // Merge declared args; the same name with two different defaults is ambiguous.
    let mut declared: Vec<Argument> = Vec::new();
    for t in templates {
        for a in &t.args {
            match declared.iter().find(|d| d.name == a.name) {
                Some(d) if d.value != a.value && !given.contains_key(&a.name) => {
                    errors.push(located(
                        &t.file,
                        None,
                        None,
                        Some("spec.args".into()),
                        &format!("argument {:?} is declared with different values", a.name),
                    ));
                }
                Some(_) => {}
                None => declared.push(a.clone()),
            }
        }
    }
    let label = templates
        .iter()
        .map(|t| t.file.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let values = match args::resolve(&declared, given) {
        Ok(v) => v,
        Err(e) => {
            errors.push(located(
                &label,
                None,
                None,
                Some("spec.args".into()),
                &e.to_string(),
            ));
            return Err(errors);
        }
    };

    let mut out: Vec<ResolvedMetric> = Vec::new();
    for t in templates {
        let raw = t
            .doc
            .value
            .pointer("/spec/metrics")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (i, m) in raw.into_iter().enumerate() {
            let base = format!("/spec/metrics/{i}");
            let name = m.get("name").and_then(Value::as_str).map(str::to_string);
            let at = |pointer: &str, message: String| TemplateError {
                file: t.file.clone(),
                line: t.doc.line_of(pointer),
                metric: name.clone(),
                field: Some(dotted(pointer)),
                message,
            };
            let substituted = match substitute_tree(m, "", &values) {
                Ok(v) => v,
                Err((pointer, e)) => {
                    errors.push(at(&format!("{base}{pointer}"), e.to_string()));
                    continue;
                }
            };
            let metric: Metric = match serde_path_to_error::deserialize(substituted) {
                Ok(m) => m,
                Err(e) => {
                    let p = format!("{base}{}", json_pointer_of(e.path()));
                    errors.push(at(&p, e.inner().to_string()));
                    continue;
                }
            };
            for p in validate::metric(&metric) {
                let pointer = if p.field.is_empty() {
                    base.clone()
                } else {
                    format!("{base}/{}", p.field)
                };
                errors.push(at(&pointer, p.message));
            }
            if out.iter().any(|r| r.metric.name == metric.name) {
                errors.push(at(
                    &format!("{base}/name"),
                    format!("duplicate name '{}'", metric.name),
                ));
            }
            out.push(ResolvedMetric {
                metric,
                judge: None,
                dry_run: false,
                template: t.name.clone(),
            });
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(located(
            &label,
            None,
            None,
            Some("spec.metrics".into()),
            "no metrics specified",
        ));
    }
    // dryRun rules: unanchored regular expressions, each must match at least one metric.
    for t in templates {
        for (i, rule) in t.dry_run.iter().enumerate() {
            let pointer = format!("/spec/dryRun/{i}/metricName");
            let re = match regex::Regex::new(&rule.metric_name) {
                Ok(re) => re,
                Err(e) => {
                    errors.push(TemplateError {
                        file: t.file.clone(),
                        line: t.doc.line_of(&pointer),
                        metric: None,
                        field: Some(dotted(&pointer)),
                        message: format!("invalid regular expression: {e}"),
                    });
                    continue;
                }
            };
            let mut matched = 0;
            for r in out.iter_mut().filter(|r| re.is_match(&r.metric.name)) {
                r.dry_run = true;
                matched += 1;
            }
            if matched == 0 {
                errors.push(TemplateError {
                    file: t.file.clone(),
                    line: t.doc.line_of(&pointer),
                    metric: None,
                    field: Some(dotted(&pointer)),
                    message: format!("dryRun[{i}]: Rule didn't match any metric name(s)"),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Substitute args in every string of a metric, with the escaping its field needs.
fn substitute_tree(
    value: Value,
    pointer: &str,
    values: &BTreeMap<String, String>,
) -> Result<Value, (String, args::ArgError)> {
    Ok(match value {
        Value::String(s) => {
            let syntax = match pointer {
                "/provider/prometheus/query" => args::Syntax::PromQl,
                "/provider/web/body" => args::Syntax::JsonText,
                _ => args::Syntax::Plain,
            };
            Value::String(args::substitute(&s, values, syntax).map_err(|e| (pointer.into(), e))?)
        }
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| substitute_tree(v, &format!("{pointer}/{i}"), values))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let child = format!("{pointer}/{}", yaml::pointer_token(&k));
                    substitute_tree(v, &child, values).map(|v| (k, v))
                })
                .collect::<Result<_, _>>()?,
        ),
        other => other,
    })
}

/// A YAML syntax error (or a text refused by a limit of [`yaml`]) as a template error of
/// `file`.
pub(crate) fn syntax_error(file: &str, e: &yaml::SyntaxError) -> TemplateError {
    let what = if e.refused {
        "YAML refused"
    } else {
        "YAML syntax error"
    };
    TemplateError {
        file: file.into(),
        line: Some(e.line),
        metric: None,
        field: None,
        message: format!("{what} at column {}: {}", e.column, e.message),
    }
}

fn located(
    file: &str,
    line: Option<usize>,
    metric: Option<String>,
    field: Option<String>,
    message: &str,
) -> TemplateError {
    TemplateError {
        file: file.into(),
        line,
        metric,
        field,
        message: message.into(),
    }
}

/// `/spec/metrics/0/provider/web/url` → `spec.metrics[0].provider.web.url`.
pub fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

pub(crate) fn json_pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{}", yaml::pointer_token(key))),
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    out
}

fn metric_name_at(doc: &Value, pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix("/spec/metrics/")?;
    let index = rest.split('/').next()?;
    doc.pointer(&format!("/spec/metrics/{index}/name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
