//! Judge spec YAML → a checked [`JudgeSpec`]: every problem of a document reported at once,
//! each with its file, line, metric and field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{Budget, BurnWindow, JudgeMetric, JudgeSpec, MetricSource, Slo, SloScope};
use crate::judge::config::MetricConfig;
use crate::judge::score::ScoringConfig;
use crate::template::argo::parse_duration;
use crate::template::yaml::{self, Document};
use crate::template::{dotted, TemplateError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(rename = "kind")]
    _kind: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    args: Vec<RawArg>,
    #[serde(default)]
    variants: Option<BTreeMap<String, BTreeMap<String, String>>>,
    #[serde(default = "default_window")]
    window: String,
    #[serde(default = "default_step")]
    step: String,
    #[serde(default = "default_lookback")]
    lookback: String,
    #[serde(default)]
    budget: Option<Budget>,
    #[serde(default)]
    metrics: Vec<RawMetric>,
    #[serde(default)]
    slos: Vec<RawSlo>,
    #[serde(default)]
    scoring: ScoringConfig,
}

fn default_window() -> String {
    "10m".into()
}
fn default_step() -> String {
    "30s".into()
}
fn default_lookback() -> String {
    "1h".into()
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawArg {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        default: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    counts: Option<RawCounts>,
    #[serde(default)]
    counters: Option<RawCounts>,
    #[serde(default)]
    histogram: Option<RawHistogram>,
    #[serde(default)]
    share: Option<RawShare>,
    #[serde(default)]
    config: MetricConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHistogram {
    #[serde(default)]
    buckets: Option<String>,
    #[serde(default)]
    native: Option<String>,
    #[serde(default)]
    slower_than: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShare {
    requests: String,
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    ready_pods: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounts {
    bad: String,
    total: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: String,
    objective: f64,
    error_query: String,
    total_query: String,
    #[serde(default = "default_scope")]
    scope: SloScope,
    #[serde(default)]
    windows: Option<Vec<RawWindow>>,
    #[serde(default = "default_min_events")]
    min_events: f64,
    #[serde(default = "default_min_bad")]
    min_bad_events: f64,
    #[serde(default = "default_period")]
    period: String,
}

fn default_scope() -> SloScope {
    SloScope::Service
}
fn default_min_events() -> f64 {
    100.0
}
fn default_min_bad() -> f64 {
    10.0
}
fn default_period() -> String {
    "30d".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    long: String,
    short: String,
    burn_rate: f64,
}

/// The SRE Workbook's defaults for a 30-day objective: 1h/5m at 14.4× and 6h/30m at 6×.
pub fn default_windows() -> Vec<BurnWindow> {
    vec![
        BurnWindow {
            long: Duration::from_secs(3600),
            short: Duration::from_secs(300),
            burn_rate: 14.4,
        },
        BurnWindow {
            long: Duration::from_secs(6 * 3600),
            short: Duration::from_secs(1800),
            burn_rate: 6.0,
        },
    ]
}

/// Keys of a metric entry that are not `canary judge` configuration.
const METRIC_KEYS: [&str; 7] = [
    "name",
    "group",
    "query",
    "counts",
    "counters",
    "histogram",
    "share",
];

/// Parse every `kind: Judge` document of a YAML text.
pub fn parse_str(file: &str, text: &str) -> Result<Vec<JudgeSpec>, Vec<TemplateError>> {
    let docs =
        yaml::load_documents(text).map_err(|e| vec![crate::template::syntax_error(file, &e)])?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for doc in docs {
        match parse_document(file, &doc) {
            Ok(s) => out.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The Judge documents of a file (other kinds skipped).
pub fn judges_in(file: &str, text: &str) -> Result<Vec<JudgeSpec>, Vec<TemplateError>> {
    let docs =
        yaml::load_documents(text).map_err(|e| vec![crate::template::syntax_error(file, &e)])?;
    // Each document keeps the lines of the file, so only the Judges need parsing (re-parsing
    // each document padded to its place would cost the square of the file's length).
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d.value.get("kind").and_then(Value::as_str) == Some("Judge"))
    {
        match parse_document(file, doc) {
            Ok(s) => specs.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(errors)
    }
}

/// Split a multi-document YAML text at `---` lines: (line offset, document text).
pub fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            out.push((start, std::mem::take(&mut current)));
            start = i + 1;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    out.push((start, current));
    out
}

/// Parse a Judge spec given as JSON (an inline spec in a request body).
pub fn from_json(value: &Value) -> Result<JudgeSpec, Vec<TemplateError>> {
    let text = serde_json::to_string(value).unwrap_or_default();
    let docs = yaml::load_documents(&text).map_err(|e| {
        vec![TemplateError {
            file: "inline".into(),
            line: None,
            metric: None,
            field: None,
            message: e.message,
        }]
    })?;
    match docs.first() {
        Some(d) => parse_document("inline", d),
        None => Err(vec![TemplateError {
            file: "inline".into(),
            line: None,
            metric: None,
            field: None,
            message: "empty spec".into(),
        }]),
    }
}

fn parse_document(file: &str, doc: &Document) -> Result<JudgeSpec, Vec<TemplateError>> {
    let at = At { file, doc };
    check_kind(&at)?;
    let raw: RawSpec =
        serde_path_to_error::deserialize(with_metric_configs(&doc.value)).map_err(|e| {
            let pointer = crate::template::json_pointer_of(e.path()).replace("/config", "");
            vec![at.err(&pointer, e.inner().to_string())]
        })?;
    let mut errors = Vec::new();
    let window = at.duration(&mut errors, "/window", &raw.window);
    let step = at.duration(&mut errors, "/step", &raw.step);
    let lookback = at.duration(&mut errors, "/lookback", &raw.lookback);
    if let Some(b) = &raw.budget {
        check_budget(&at, b, &raw.metrics, &mut errors);
    }
    let args: Vec<(String, Option<String>)> = raw
        .args
        .into_iter()
        .map(|a| match a {
            RawArg::Name(n) => (n, None),
            RawArg::Full { name, default } => (name, default),
        })
        .collect();
    let variants = variants_of(&at, raw.variants, &mut errors);
    let mut metrics = Vec::new();
    for (i, m) in raw.metrics.into_iter().enumerate() {
        if let Some(m) = metric_of(&at, i, m, &metrics, &mut errors) {
            metrics.push(m);
        }
    }
    let slos: Vec<Slo> = raw
        .slos
        .into_iter()
        .enumerate()
        .map(|(i, s)| slo_of(&at, i, s, &mut errors))
        .collect();
    if metrics.is_empty() && slos.is_empty() {
        errors.push(at.err("", "a Judge needs at least one metric or SLO".into()));
    }
    if raw.scoring.marginal > raw.scoring.pass {
        errors.push(at.err("/scoring/marginal", "must not exceed scoring.pass".into()));
    }
    if raw.name.trim().is_empty() {
        errors.push(at.err("/name", "must not be empty".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let raw_budget_ref = raw.budget.as_ref().cloned();
    let spec = JudgeSpec {
        name: raw.name,
        description: raw.description,
        file: file.into(),
        args,
        variants,
        window: window.unwrap_or_default(),
        step: step.unwrap_or_default(),
        lookback: lookback.unwrap_or_default(),
        budget: raw.budget,
        metrics: split_budget(metrics, raw_budget_ref),
        slos,
        scoring: raw.scoring,
    };
    let placeholder_errors = check_rendering(&at, &spec);
    if !placeholder_errors.is_empty() {
        return Err(placeholder_errors);
    }
    Ok(spec)
}

/// Where in which document an error is: its line, metric and dotted field from a JSON
/// pointer.
struct At<'a> {
    file: &'a str,
    doc: &'a Document,
}

impl At<'_> {
    fn err(&self, pointer: &str, message: String) -> TemplateError {
        let metric = pointer.strip_prefix("/metrics/").and_then(|rest| {
            let i = rest.split('/').next()?;
            self.doc
                .value
                .pointer(&format!("/metrics/{i}/name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        TemplateError {
            file: self.file.into(),
            line: self.doc.line_of(pointer),
            metric,
            field: Some(dotted(pointer)).filter(|f| !f.is_empty()),
            message,
        }
    }

    /// The duration at `pointer`, longer than 0; an error otherwise.
    fn duration(
        &self,
        errors: &mut Vec<TemplateError>,
        pointer: &str,
        text: &str,
    ) -> Option<Duration> {
        match parse_duration(text) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                errors.push(self.err(pointer, "must be longer than 0".into()));
                None
            }
            Err(e) => {
                errors.push(self.err(pointer, e));
                None
            }
        }
    }
}

fn check_kind(at: &At) -> Result<(), Vec<TemplateError>> {
    let doc = at.doc;
    match doc.value.get("kind").and_then(Value::as_str) {
        Some("Judge") => Ok(()),
        other => Err(vec![TemplateError {
            line: doc.line_of("/kind").or(Some(doc.start_line())),
            ..at.err("/kind", format!("expected kind: Judge, found {other:?}"))
        }]),
    }
}

/// The document with each metric's judge configuration moved under `config`, so that
/// unknown keys are still errors.
fn with_metric_configs(value: &Value) -> Value {
    let mut shaped = value.clone();
    if let Some(ms) = shaped.get_mut("metrics").and_then(Value::as_array_mut) {
        for m in ms.iter_mut() {
            if let Value::Object(obj) = m {
                let mut config = serde_json::Map::new();
                let keys: Vec<String> = obj
                    .keys()
                    .filter(|k| !METRIC_KEYS.contains(&k.as_str()))
                    .cloned()
                    .collect();
                for k in keys {
                    if let Some(v) = obj.remove(&k) {
                        config.insert(k, v);
                    }
                }
                obj.insert("config".into(), Value::Object(config));
            }
        }
    }
    shaped
}

fn check_budget(at: &At, b: &Budget, metrics: &[RawMetric], errors: &mut Vec<TemplateError>) {
    if !(b.alpha > 0.0 && b.alpha < 1.0) {
        errors.push(at.err("/budget/alpha", "must be strictly between 0 and 1".into()));
    }
    for (name, w) in &b.split {
        if !(w.is_finite() && *w >= 0.0) {
            errors.push(at.err(
                &format!("/budget/split/{name}"),
                "must be a finite weight ≥ 0".into(),
            ));
        }
        if !metrics.iter().any(|m| &m.name == name) {
            errors.push(at.err(
                &format!("/budget/split/{name}"),
                format!("no metric is named {name:?}"),
            ));
        }
    }
}

/// The spec's variants (canary and baseline by pod-template hash when not given), which
/// must be exactly `canary` and `baseline` with the same keys.
fn variants_of(
    at: &At,
    given: Option<BTreeMap<String, BTreeMap<String, String>>>,
    errors: &mut Vec<TemplateError>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let variants = given.unwrap_or_else(|| {
        BTreeMap::from([
            (
                "canary".to_string(),
                BTreeMap::from([("hash".to_string(), "{{args.canary_hash}}".to_string())]),
            ),
            (
                "baseline".to_string(),
                BTreeMap::from([("hash".to_string(), "{{args.stable_hash}}".to_string())]),
            ),
        ])
    });
    let keys_of = |v: &str| {
        variants
            .get(v)
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    if keys_of("canary").is_none() || keys_of("baseline").is_none() || variants.len() != 2 {
        errors.push(at.err(
            "/variants",
            "variants must be exactly `canary` and `baseline`".into(),
        ));
    } else if keys_of("canary") != keys_of("baseline") {
        errors.push(at.err(
            "/variants",
            "canary and baseline must define the same keys".into(),
        ));
    }
    variants
}

/// Metric `i`, checked; `None` when it has no usable source. `earlier`: the metrics before
/// it, for duplicate names.
fn metric_of(
    at: &At,
    i: usize,
    m: RawMetric,
    earlier: &[JudgeMetric],
    errors: &mut Vec<TemplateError>,
) -> Option<JudgeMetric> {
    let base = format!("/metrics/{i}");
    if earlier.iter().any(|x: &JudgeMetric| x.name == m.name) {
        errors.push(at.err(
            &format!("{base}/name"),
            format!("duplicate name {:?}", m.name),
        ));
    }
    if let Err(e) = m.config.validate() {
        errors.push(at.err(&format!("{base}/{}", e.field.replace('.', "/")), e.message));
    }
    let source = match (m.query, m.counts, m.counters, m.histogram, m.share) {
        (Some(q), None, None, None, None) => MetricSource::Series(q),
        (None, Some(c), None, None, None) => MetricSource::Counts {
            bad: c.bad,
            total: c.total,
        },
        (None, None, Some(c), None, None) => MetricSource::Counters {
            bad: c.bad,
            total: c.total,
        },
        (None, None, None, Some(h), None) => {
            if h.slower_than.is_some_and(|t| !t.is_finite()) {
                errors.push(at.err(
                    &format!("{base}/histogram/slower_than"),
                    "must be a finite bucket bound".into(),
                ));
            }
            match (h.buckets, h.native) {
                (Some(buckets), None) => MetricSource::Histogram {
                    buckets,
                    slower_than: h.slower_than,
                    native: false,
                },
                (None, Some(selector)) => MetricSource::Histogram {
                    buckets: selector,
                    slower_than: h.slower_than,
                    native: true,
                },
                _ => {
                    errors.push(
                        at.err(
                            &format!("{base}/histogram"),
                            "set exactly one of `buckets` (a classic histogram's `..._bucket` \
                         counters) or `native` (a native histogram's series)"
                                .into(),
                        ),
                    );
                    return None;
                }
            }
        }
        (None, None, None, None, Some(sh)) => match (sh.expected, sh.ready_pods) {
            (Some(expected), None) => MetricSource::Share {
                requests: sh.requests,
                expected,
                ready_pods: None,
            },
            (None, Some(pods)) => MetricSource::Share {
                requests: sh.requests,
                expected: String::new(),
                ready_pods: Some(pods),
            },
            _ => {
                errors.push(
                    at.err(
                        &format!("{base}/share"),
                        "set exactly one of `expected` (the canary's weight in percent) or \
                     `ready_pods` (a selector of each variant's ready pods)"
                            .into(),
                    ),
                );
                return None;
            }
        },
        _ => {
            errors.push(at.err(
                &base,
                "set exactly one of `query`, `counts`, `counters`, `histogram` or `share`".into(),
            ));
            return None;
        }
    };
    Some(JudgeMetric {
        group: m.group.unwrap_or_else(|| m.name.clone()),
        name: m.name,
        source,
        config: m.config,
    })
}

/// SLO `i`, checked: an objective as a ratio or a percentage, burn-rate windows (the
/// multiwindow defaults when none are given) and a period.
fn slo_of(at: &At, i: usize, s: RawSlo, errors: &mut Vec<TemplateError>) -> Slo {
    let base = format!("/slos/{i}");
    let objective = if s.objective > 1.0 && s.objective < 100.0 {
        s.objective / 100.0
    } else {
        s.objective
    };
    if !(objective > 0.0 && objective < 1.0) {
        errors.push(at.err(
            &format!("{base}/objective"),
            "must be a ratio in (0, 1) or a percentage in (1, 100)".into(),
        ));
    }
    let mut windows = Vec::new();
    match s.windows {
        None => windows = default_windows(),
        Some(ws) => {
            for (j, w) in ws.into_iter().enumerate() {
                let wp = format!("{base}/windows/{j}");
                let long = at.duration(errors, &format!("{wp}/long"), &w.long);
                let short = at.duration(errors, &format!("{wp}/short"), &w.short);
                if !(w.burn_rate.is_finite() && w.burn_rate > 0.0) {
                    errors.push(at.err(&format!("{wp}/burn_rate"), "must be > 0".into()));
                }
                if let (Some(long), Some(short)) = (long, short) {
                    if short >= long {
                        errors.push(at.err(&wp, "short must be shorter than long".into()));
                    }
                    windows.push(BurnWindow {
                        long,
                        short,
                        burn_rate: w.burn_rate,
                    });
                }
            }
        }
    }
    let period = at.duration(errors, &format!("{base}/period"), &s.period);
    Slo {
        name: s.name,
        objective,
        error_query: s.error_query,
        total_query: s.total_query,
        scope: s.scope,
        windows,
        min_events: s.min_events,
        min_bad_events: s.min_bad_events,
        period: period.unwrap_or(Duration::from_secs(30 * 86400)),
    }
}

/// Errors only rendering shows: every placeholder must resolve (rendered once with
/// placeholder values), and each histogram query must select what its kind needs.
fn check_rendering(at: &At, spec: &JudgeSpec) -> Vec<TemplateError> {
    // Every placeholder must resolve: render once with placeholder values.
    let dummy: BTreeMap<String, String> = spec
        .args
        .iter()
        .map(|(n, _)| (n.clone(), "x".to_string()))
        .collect();
    let mut placeholder_errors = Vec::new();
    let probe = spec.render_with(&dummy);
    for (pointer, e) in probe.errors {
        placeholder_errors.push(at.err(&pointer, e.to_string()));
    }
    if let Some(e) = raw_kind_check(spec) {
        placeholder_errors.push(at.err("", e));
    }
    for (i, m) in spec.metrics.iter().enumerate() {
        if let (MetricSource::Histogram { native, .. }, Some(q)) =
            (&m.source, probe.metrics.get(i).and_then(|p| p.0.first()))
        {
            let (field, problem) = if *native {
                ("native", native_selector_problem(q))
            } else {
                ("buckets", histogram_selector_problem(q))
            };
            if let Some(problem) = problem {
                placeholder_errors
                    .push(at.err(&format!("/metrics/{i}/histogram/{field}"), problem));
            }
        }
    }
    placeholder_errors
}

/// Why a histogram's `buckets` query cannot give per-bucket counters, if it cannot: it must
/// keep the `le` label and return the counters themselves (the engine takes each step's
/// increase; a `rate()` or `increase()` would overlap and extrapolate).
fn histogram_selector_problem(query: &str) -> Option<String> {
    use promql_parser::parser::{Expr, LabelModifier};
    let expr = match promql_parser::parser::parse(query) {
        Ok(e) => e,
        Err(e) => return Some(format!("the query does not parse: {}", e.trim())),
    };
    let mut e = &expr;
    loop {
        match e {
            Expr::Paren(p) => e = &p.expr,
            Expr::Aggregate(a) => {
                let keeps_le = match &a.modifier {
                    Some(LabelModifier::Include(l)) => l.labels.iter().any(|x| x == "le"),
                    Some(LabelModifier::Exclude(l)) => !l.labels.iter().any(|x| x == "le"),
                    None => false,
                };
                if !keeps_le {
                    return Some(
                        "the aggregation drops the `le` label: aggregate `by (le, …)` so each \
                         bucket stays its own series"
                            .into(),
                    );
                }
                e = &a.expr;
            }
            Expr::VectorSelector(v) => {
                let name = v.name.clone().unwrap_or_default();
                return (!name.ends_with("_bucket")).then(|| {
                    format!(
                        "selects {name:?}, not a histogram's `..._bucket` counters (with their \
                         `le` label)"
                    )
                });
            }
            Expr::Call(_) | Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                return Some(
                    "give the bucket counters themselves (a `..._bucket` selector, optionally \
                     `sum by (le, …)`), not rate()/increase(): the engine takes each step's \
                     increase itself, without overlap or extrapolation"
                        .into(),
                )
            }
            _ => return None,
        }
    }
}

/// Why a `native` query cannot give a native histogram's raw series, if it cannot: the
/// series itself (optionally summed), not its `_bucket` counters nor a rate.
fn native_selector_problem(query: &str) -> Option<String> {
    use promql_parser::parser::Expr;
    let expr = match promql_parser::parser::parse(query) {
        Ok(e) => e,
        Err(e) => return Some(format!("the query does not parse: {}", e.trim())),
    };
    let mut e = &expr;
    loop {
        match e {
            Expr::Paren(p) => e = &p.expr,
            Expr::Aggregate(a) => e = &a.expr,
            Expr::VectorSelector(v) => {
                let name = v.name.clone().unwrap_or_default();
                return name.ends_with("_bucket").then(|| {
                    format!(
                        "selects {name:?}, a classic histogram's bucket counters: use \
                         `histogram.buckets` for those, or the native histogram's own name"
                    )
                });
            }
            Expr::Call(_) | Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                return Some(
                    "give the native histogram series itself (optionally `sum by (…)`), not \
                     rate()/increase(): the engine takes each step's increase itself"
                        .into(),
                )
            }
            _ => return None,
        }
    }
}

fn raw_kind_check(spec: &JudgeSpec) -> Option<String> {
    if spec.step > spec.window {
        return Some("step must not be longer than window".into());
    }
    if spec.step > spec.lookback {
        return Some("step must not be longer than lookback".into());
    }
    None
}

/// Each sequential metric without its own `alpha` gets its share of the budget.
fn split_budget(mut metrics: Vec<JudgeMetric>, budget: Option<Budget>) -> Vec<JudgeMetric> {
    let Some(b) = budget else {
        return metrics;
    };
    let sequential: Vec<usize> = (0..metrics.len())
        .filter(|&i| metrics[i].source.is_sequential())
        .collect();
    let named: f64 = sequential
        .iter()
        .filter_map(|&i| b.split.get(&metrics[i].name))
        .sum();
    let unnamed = sequential
        .iter()
        .filter(|&&i| !b.split.contains_key(&metrics[i].name))
        .count();
    // Weights are relative: named metrics keep their proportions; unnamed ones each weigh
    // the mean of the named (or 1 when none is named).
    let each_unnamed = if named > 0.0 && sequential.len() > unnamed {
        named / (sequential.len() - unnamed) as f64
    } else {
        1.0
    };
    let total = named + each_unnamed * unnamed as f64;
    for &i in &sequential {
        let w = b
            .split
            .get(&metrics[i].name)
            .copied()
            .unwrap_or(each_unnamed);
        if metrics[i].config.alpha.is_none() && total > 0.0 {
            metrics[i].config.alpha = Some(b.alpha * w / total);
        }
    }
    metrics
}
