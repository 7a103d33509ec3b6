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

use super::args::{self, ArgError, Syntax};
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

mod parse;
pub use parse::{default_windows, from_json, judges_in, parse_str, split_documents};

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
