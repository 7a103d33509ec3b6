//! The error budgets of a Judge spec's SLOs, fetched now: what `GET /api/v1/budgets/{judge}`
//! and `canary budget` answer, shaped as a deploy policy's (OPA's) `input`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::future::join_all;
use serde::Serialize;

use super::{fetch, JudgeError};
use crate::slo::budget::{budget, Budget};
use crate::slo::{self, WindowCounts};
use crate::source::{PromQuery, QueryValue, Sources};
use crate::template::judge_spec::{JudgeSpec, SloScope};

/// Every SLO's budget of one judge, for one set of args.
#[derive(Debug, Clone, Serialize)]
pub struct Budgets {
    /// The Judge spec.
    pub judge: String,
    /// The args as resolved.
    pub args: BTreeMap<String, String>,
    /// When the budgets were measured (RFC 3339).
    pub time: String,
    /// Any SLO's budget exhausted.
    pub exhausted: bool,
    /// Any SLO burning fast (a rule with factor ≥ 6 trips).
    pub fast_burn: bool,
    /// Per SLO.
    pub slos: Vec<Budget>,
}

/// Args the SLOs do not use may be left out (a policy asks about a service, not a canary):
/// they resolve to empty. Canary-scoped SLOs use the variants, so they need every arg.
fn args_for_slos(spec: &JudgeSpec, given: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut args = given.clone();
    if spec.slos.iter().any(|s| s.scope == SloScope::Canary) {
        return args;
    }
    let uses = |name: &str| {
        spec.slos.iter().any(|s| {
            [&s.error_query, &s.total_query].iter().any(|q| {
                q.split("{{")
                    .skip(1)
                    .filter_map(|t| t.split("}}").next())
                    .any(|t| t.trim() == format!("args.{name}"))
            })
        })
    };
    for (name, default) in &spec.args {
        if default.is_none() && !args.contains_key(name) && !uses(name) {
            args.insert(name.clone(), String::new());
        }
    }
    args
}

fn scalar(v: &QueryValue) -> f64 {
    super::scalar(Some(v))
}

/// Measure the budgets of `spec`'s SLOs with `args` at `now`.
pub async fn run(
    spec: &JudgeSpec,
    args: &BTreeMap<String, String>,
    sources: &Sources,
    now: DateTime<Utc>,
    query_timeout: Duration,
) -> Result<Budgets, JudgeError> {
    let values = spec.resolve_args(&args_for_slos(spec, args))?;
    let rendered = spec.render(&values)?;
    let (_, end) = super::window(spec, now);
    let instant = |q: &String| {
        let mut p = PromQuery::instant(q.clone());
        p.timeout = query_timeout;
        p.time = Some(end);
        p
    };
    let parts: Vec<Vec<PromQuery>> = rendered
        .slos
        .iter()
        .zip(&rendered.slo_periods)
        .map(|(rules, (pe, pt))| {
            rules
                .iter()
                .flat_map(|((le, lt), (se, st))| [le, lt, se, st])
                .chain([pe, pt])
                .map(instant)
                .collect()
        })
        .collect();
    let answers = join_all(parts.iter().map(|p| fetch::tagged(sources, p))).await;
    let mut slos = Vec::new();
    for (s, answer) in spec.slos.iter().zip(answers) {
        let values = answer?;
        let counts = |bad: &QueryValue, total: &QueryValue| {
            let (bad, total) = (scalar(bad), scalar(total));
            WindowCounts {
                bad: if bad.is_nan() && total.is_finite() {
                    0.0
                } else {
                    bad
                },
                total,
            }
        };
        let windows: Vec<(WindowCounts, WindowCounts)> = values
            .chunks(4)
            .take(s.windows.len())
            .filter(|c| c.len() == 4)
            .map(|c| (counts(&c[0], &c[1]), counts(&c[2], &c[3])))
            .collect();
        let period = match &values[values.len().saturating_sub(2)..] {
            [bad, total] => counts(bad, total),
            _ => WindowCounts {
                bad: f64::NAN,
                total: f64::NAN,
            },
        };
        let evaluated = slo::evaluate(s, &windows);
        slos.push(budget(s, period, &evaluated));
    }
    Ok(Budgets {
        judge: spec.name.clone(),
        args: values,
        time: end.to_rfc3339_opts(SecondsFormat::Secs, true),
        exhausted: slos.iter().any(|b| b.exhausted),
        fast_burn: slos.iter().any(|b| b.fast_burn),
        slos,
    })
}
