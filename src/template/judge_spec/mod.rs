//! Judge specs: the canary-vs-baseline comparisons and SLO gates Argo cannot express.
//!
//! ```yaml
//! kind: Judge
//! name: http-golden-signals
//! args: [service, namespace, canary_hash, stable_hash]     # or {name: x, default: y}
//! variants:                          # optional; this is the default
//!   canary:   {hash: "{{args.canary_hash}}"}
//!   baseline: {hash: "{{args.stable_hash}}"}
//! window: 10m                        # how far back each query looks
//! step: 30s                          # range-query resolution: one sample per step
//! metrics:
//!   - name: p99-latency
//!     group: latency
//!     query: histogram_quantile(0.99, sum by (le) (rate(x_bucket{pod_hash="{{variant.hash}}"}[1m])))
//!     direction: increase            # every `canary judge` field is allowed here
//!     effect: {allowed_increase: 1.1, critical_increase: 1.5}
//!     critical: true
//!   - name: errors
//!     counts: {bad: 'sum(increase(errors{pod_hash="{{variant.hash}}"}[{{step}}]))',
//!              total: 'sum(increase(requests{pod_hash="{{variant.hash}}"}[{{step}}]))'}
//! slos:
//!   - name: availability
//!     objective: 99.9
//!     error_query: sum(increase(requests{code=~"5.."}[{{window}}]))
//!     total_query: sum(increase(requests[{{window}}]))
//! scoring: {groups: {latency: 50, errors: 50}, pass: 95, marginal: 75}
//! ```
//!
//! Queries may use `{{args.NAME}}`, `{{variant.KEY}}` (a key of both variants, or `name`:
//! `canary`/`baseline`), `{{step}}` and, in SLO queries, `{{window}}`. Values are escaped for
//! PromQL where they land, as for Argo templates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::argo::parse_duration;
use super::args::{self, ArgError, Syntax};
use super::yaml::{self, Document};
use super::{dotted, TemplateError};
use crate::judge::config::MetricConfig;
use crate::judge::score::ScoringConfig;

/// A loaded, validated Judge spec.
#[derive(Debug, Clone)]
pub struct JudgeSpec {
    /// Name requests use.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// File it came from (`inline` for a request body).
    pub file: String,
    /// Declared args with defaults.
    pub args: Vec<(String, Option<String>)>,
    /// Label values per variant (`canary`, `baseline`).
    pub variants: BTreeMap<String, BTreeMap<String, String>>,
    /// How far back queries look.
    pub window: Duration,
    /// Range-query resolution.
    pub step: Duration,
    /// How far back the start of an analysis (the canary's first step with traffic) is
    /// looked for when the caller gives no `since`.
    pub lookback: Duration,
    /// The verdict's false-alarm budget over all looks of one analysis, when set.
    pub budget: Option<Budget>,
    /// Compared metrics.
    pub metrics: Vec<JudgeMetric>,
    /// SLO burn-rate gates.
    pub slos: Vec<Slo>,
    /// Group weights and verdict thresholds.
    pub scoring: ScoringConfig,
}

/// What a metric compares.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricSource {
    /// One value per step per variant (range query), compared by rank test.
    Series(String),
    /// Bad and total events per step per variant, compared by the count tests.
    Counts {
        /// Bad-event query.
        bad: String,
        /// All-event query.
        total: String,
    },
    /// Like `Counts`, but the queries return the raw counters (e.g. `istio_requests_total`)
    /// and the engine takes each step's increase itself, series by series, with counter
    /// resets handled as Prometheus' `increase` does and no extrapolation: exact requests
    /// per non-overlapping step.
    Counters {
        /// Counter of bad events.
        bad: String,
        /// Counter of all events.
        total: String,
    },
    /// A classic Prometheus histogram (`..._bucket` counters with `le`), judged request by
    /// request with the stratified rank test and the slow-request count test.
    Histogram {
        /// Selector (or expression) returning the bucket counters of one variant (`buckets`),
        /// or its native histogram series (`native`).
        buckets: String,
        /// Requests slower than this bucket bound are tested as a tail (same unit as `le`;
        /// for a native histogram, the first bucket bound at or above it).
        slower_than: Option<f64>,
        /// A Prometheus native histogram (sparse exponential buckets, one series) rather than
        /// classic `..._bucket` counters.
        native: bool,
    },
    /// The canary's share of requests against the share it should have.
    Share {
        /// Counter of requests of one variant.
        requests: String,
        /// Expected canary share in percent, e.g. `{{args.canary_weight}}`; empty when
        /// `ready_pods` gives it.
        expected: String,
        /// Ready pods of one variant (a gauge, e.g. from kube-state-metrics): the expected
        /// share of each step is the canary's share of the ready pods, as when traffic is
        /// split by pod count (an Argo canary without a traffic router).
        ready_pods: Option<String>,
    },
}

impl MetricSource {
    /// Whether the metric is judged by an anytime-valid test over the steps since the start
    /// of the analysis (rather than over a sliding window).
    pub fn is_sequential(&self) -> bool {
        !matches!(self, MetricSource::Series(_))
    }

    /// Whether the queries return raw counters the engine differentiates per step.
    pub fn is_counter(&self) -> bool {
        matches!(
            self,
            MetricSource::Counters { .. }
                | MetricSource::Histogram { .. }
                | MetricSource::Share { .. }
        )
    }
}

/// One compared metric.
#[derive(Debug, Clone)]
pub struct JudgeMetric {
    /// How reasons, reports and `budget.split` refer to it; unique in the spec.
    pub name: String,
    /// Scoring group (default: the metric's name).
    pub group: String,
    /// Queries.
    pub source: MetricSource,
    /// How it is judged.
    pub config: MetricConfig,
}

/// One false-alarm budget for the verdict: `alpha` split across the metrics' anytime-valid
/// tests by weight, so that a healthy canary fails any look of an analysis with probability
/// at most `alpha`.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Probability that a healthy canary is failed at all, over every look (e.g. 0.01).
    pub alpha: f64,
    /// Share of `alpha` per metric name (relative weights); metrics not named share equally
    /// what the weights leave, or everything when no weights are given.
    #[serde(default)]
    pub split: BTreeMap<String, f64>,
}

/// Which traffic an SLO watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloScope {
    /// The whole service (queries must not use `{{variant.*}}`).
    Service,
    /// The canary's own traffic (queries rendered for the canary variant).
    Canary,
}

/// One multiwindow burn-rate rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BurnWindow {
    /// Long window (is the burn significant?).
    #[serde(with = "humantime_serde_str")]
    pub long: Duration,
    /// Short window (is it still happening?).
    #[serde(with = "humantime_serde_str")]
    pub short: Duration,
    /// Burn-rate factor both windows must exceed.
    pub burn_rate: f64,
}

/// An SLO gate.
#[derive(Debug, Clone)]
pub struct Slo {
    /// How reasons and reports refer to the SLO.
    pub name: String,
    /// Objective as a ratio (0.999).
    pub objective: f64,
    /// Bad events over `{{window}}`.
    pub error_query: String,
    /// All events over `{{window}}`.
    pub total_query: String,
    /// Whose traffic.
    pub scope: SloScope,
    /// Burn-rate rules; any one tripping fails.
    pub windows: Vec<BurnWindow>,
    /// Fewer events than this in a window → that window is inconclusive.
    pub min_events: f64,
    /// …unless at least this many events were bad and the burn exceeds the factor: a hard
    /// outage on a quiet service still fails.
    pub min_bad_events: f64,
    /// SLO period the budget is defined over (default 30 days).
    pub period: Duration,
}

mod humantime_serde_str {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

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
    let docs = yaml::load_documents(text).map_err(|e| vec![super::syntax_error(file, &e)])?;
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
    let docs = yaml::load_documents(text).map_err(|e| vec![super::syntax_error(file, &e)])?;
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
            let pointer = super::json_pointer_of(e.path()).replace("/config", "");
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

/// An SLO rule's four queries: (error, total) over the long window, then over the short one.
pub type RuleQueries = ((String, String), (String, String));

/// Label values of one variant, or why they could not be rendered.
type VariantValues = Result<BTreeMap<String, String>, ArgError>;

/// The queries of a spec with args substituted.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// Per metric: (canary queries, baseline queries); one query for series, two (bad,
    /// total) for counts.
    pub metrics: Vec<(Vec<String>, Vec<String>)>,
    /// Per SLO, per burn window: ((error, total) over long, (error, total) over short).
    pub slos: Vec<Vec<RuleQueries>>,
    /// Per SLO: (error, total) over the whole SLO period, for its error budget.
    pub slo_periods: Vec<(String, String)>,
    /// Per metric: the expected canary share in percent (share metrics), as rendered.
    pub expected_share: Vec<Option<String>>,
    errors: Vec<(String, ArgError)>,
}

impl JudgeSpec {
    /// The same spec with every anytime-valid metric's false-alarm budget multiplied by
    /// `share` (in (0, 1]): `canary promote` gives each of a promotion's analyses its share of
    /// the spec's budget, so the promotion as a whole is failed by mistake with probability at
    /// most `budget.alpha`. Per-step series metrics are not anytime-valid and keep their
    /// confidence.
    pub fn with_budget_share(&self, share: f64) -> JudgeSpec {
        let share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let mut out = self.clone();
        if let Some(b) = &mut out.budget {
            b.alpha *= share;
        }
        for m in out.metrics.iter_mut().filter(|m| m.source.is_sequential()) {
            m.config.alpha = Some(m.config.budget() * share);
        }
        out
    }

    /// Resolve the args of a request: given values, else defaults; unknown names are errors.
    pub fn resolve_args(
        &self,
        given: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ArgError> {
        let declared: Vec<super::argo::Argument> = self
            .args
            .iter()
            .map(|(name, default)| super::argo::Argument {
                name: name.clone(),
                value: default.clone(),
                value_from: None,
            })
            .collect();
        args::resolve(&declared, given)
    }

    /// Render every query for resolved args.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<Rendered, ArgError> {
        let r = self.render_with(values);
        match r.errors.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(Rendered {
                errors: Vec::new(),
                ..r
            }),
        }
    }

    fn variant_values(
        &self,
        variant: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ArgError> {
        let mut out = BTreeMap::new();
        out.insert("name".to_string(), variant.to_string());
        if let Some(m) = self.variants.get(variant) {
            for (k, v) in m {
                out.insert(k.clone(), args::substitute(v, values, Syntax::Plain)?);
            }
        }
        Ok(out)
    }

    fn render_with(&self, values: &BTreeMap<String, String>) -> Rendered {
        let mut r = Rendered::default();
        let step = format!("{}s", self.step.as_secs().max(1));
        let variants: Vec<(&str, VariantValues)> = ["canary", "baseline"]
            .iter()
            .map(|v| (*v, self.variant_values(v, values)))
            .collect();
        let render = |q: &str,
                      variant: Option<&BTreeMap<String, String>>,
                      window: Option<&str>|
         -> Result<String, ArgError> {
            let lookup = |tag: &str| -> Option<String> {
                if let Some(n) = tag.strip_prefix("args.") {
                    return values.get(n).cloned();
                }
                if let Some(k) = tag.strip_prefix("variant.") {
                    return variant.and_then(|v| v.get(k).cloned());
                }
                match tag {
                    "step" => Some(step.clone()),
                    "window" => window.map(str::to_string),
                    _ => None,
                }
            };
            args::substitute_with(q, &lookup, Syntax::PromQl)
        };
        for (i, m) in self.metrics.iter().enumerate() {
            let queries: Vec<(&str, &str)> = match &m.source {
                MetricSource::Series(q) => vec![("query", q.as_str())],
                MetricSource::Counts { bad, total } => {
                    vec![
                        ("counts/bad", bad.as_str()),
                        ("counts/total", total.as_str()),
                    ]
                }
                MetricSource::Counters { bad, total } => {
                    vec![
                        ("counters/bad", bad.as_str()),
                        ("counters/total", total.as_str()),
                    ]
                }
                MetricSource::Histogram { buckets, .. } => {
                    vec![("histogram/buckets", buckets.as_str())]
                }
                MetricSource::Share {
                    requests,
                    ready_pods,
                    ..
                } => {
                    let mut q = vec![("share/requests", requests.as_str())];
                    if let Some(p) = ready_pods {
                        q.push(("share/ready_pods", p.as_str()));
                    }
                    q
                }
            };
            r.expected_share.push(match &m.source {
                MetricSource::Share {
                    ready_pods: Some(_),
                    ..
                } => None,
                MetricSource::Share { expected, .. } => {
                    match args::substitute_with(
                        expected,
                        &|tag: &str| {
                            tag.strip_prefix("args.")
                                .and_then(|n| values.get(n).cloned())
                        },
                        Syntax::Plain,
                    ) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            r.errors.push((format!("/metrics/{i}/share/expected"), e));
                            None
                        }
                    }
                }
                _ => None,
            });
            let mut pair: (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
            for (vi, (_, vals)) in variants.iter().enumerate() {
                let vals = match vals {
                    Ok(v) => v,
                    Err(e) => {
                        r.errors.push(("/variants".into(), e.clone()));
                        continue;
                    }
                };
                for (field, q) in &queries {
                    match render(q, Some(vals), None) {
                        Ok(s) => {
                            if vi == 0 {
                                pair.0.push(s)
                            } else {
                                pair.1.push(s)
                            }
                        }
                        Err(e) => r.errors.push((format!("/metrics/{i}/{field}"), e)),
                    }
                }
            }
            r.metrics.push(pair);
        }
        for (i, s) in self.slos.iter().enumerate() {
            let variant = match s.scope {
                SloScope::Canary => variants[0].1.as_ref().ok(),
                SloScope::Service => None,
            };
            let mut per_window = Vec::new();
            for w in &s.windows {
                let mut q = |field: &str, text: &str, d: Duration| {
                    let window = format!("{}s", d.as_secs());
                    render(text, variant, Some(&window)).unwrap_or_else(|e| {
                        r.errors.push((format!("/slos/{i}/{field}"), e));
                        String::new()
                    })
                };
                let long = (
                    q("error_query", &s.error_query, w.long),
                    q("total_query", &s.total_query, w.long),
                );
                let short = (
                    q("error_query", &s.error_query, w.short),
                    q("total_query", &s.total_query, w.short),
                );
                per_window.push((long, short));
            }
            r.slos.push(per_window);
            let mut q = |field: &str, text: &str| {
                let window = format!("{}s", s.period.as_secs());
                render(text, variant, Some(&window)).unwrap_or_else(|e| {
                    r.errors.push((format!("/slos/{i}/{field}"), e));
                    String::new()
                })
            };
            let period = (
                q("error_query", &s.error_query),
                q("total_query", &s.total_query),
            );
            r.slo_periods.push(period);
        }
        r
    }
}

#[cfg(test)]
mod tests;
