//! `canary demo`: three promotions end to end with the statistical Judge, no cluster and no
//! Prometheus.
//!
//! In-process stand-ins hold a VirtualService (`embedded_kube`) and answer the Judge's
//! Prometheus queries from a model of Istio traffic that follows the VirtualService's weights
//! (`embedded_prometheus`). Every step's analysis is the shipped Judge spec v2 (at 1 s steps,
//! so polls a second apart see new data), polled three times from the moment the weight was
//! set, each analysis spending its share of the spec's 1 % budget. Release v2 is healthy and
//! is promoted 10 → 50 → 100 %; v3 errors twice as often as the stable (0.6 % against 0.3 %,
//! which a 99 % success-rate threshold never sees) and is rolled back at 10 %; v4 is as good
//! as the stable, but the whole service has been burning its error budget for an hour, and the
//! SLO's burn-rate gate rolls it back.

mod embedded_kube;
mod embedded_prometheus;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use super::promote::{write_reports, EventSink};
use super::{write_stdout, CliError, Exit};
use crate::audit::Ledger;
use crate::judging::{self, JudgeOptions, Judgement};
use crate::promote::{OnInconclusive, Outcome, Promotion, Report, Step};
use crate::report::promotion_text::markdown;
use crate::source::{PrometheusConfig, Sources};
use crate::template::judge_spec::{self, JudgeSpec};
use crate::template::ResolvedMetric;
use crate::traffic::apply::{Applier, VirtualServiceRef};
use crate::traffic::{current_weights, Destinations, Target};
use embedded_kube::EmbeddedKube;
use embedded_prometheus::EmbeddedPrometheus;

const SPEC_FILE: &str = "analysis-templates/judge-istio-golden-signals.yaml";
const SPEC: &str = include_str!("../../../analysis-templates/judge-istio-golden-signals.yaml");
const STABLE: &str = "5d8b6c";

/// Run three promotions end to end with the statistical Judge, on embedded stand-ins for the
/// cluster and Prometheus: a healthy release is promoted, one with twice the errors and one
/// during an SLO burn are rolled back. Exit 0 when all three end as they should.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the Markdown summaries (as written to $GITHUB_STEP_SUMMARY) too.
    #[arg(long)]
    pub markdown: bool,
    /// Write the reports here: `report-v2`…`report-v4` (`.json` and `.html`), the deciding
    /// judgements `judgement-v3.html` and `judgement-v4.html`, `summary.md` and the audit
    /// ledger `audit.jsonl` (read it with `canary audit`).
    #[arg(long, value_name = "DIR", default_value = "canary-demo")]
    pub out: std::path::PathBuf,
}

/// One demo release.
struct Release {
    name: &'static str,
    hash: &'static str,
    what: &'static str,
    errors: f64,
    burning: bool,
    expected: Outcome,
}

const RELEASES: [Release; 3] = [
    Release {
        name: "v2",
        hash: "7c9f2a",
        what: "healthy",
        errors: 1.0,
        burning: false,
        expected: Outcome::Promoted,
    },
    Release {
        name: "v3",
        hash: "3e41d0",
        what: "errors ×2 (0.6 % against the stable's 0.3 %)",
        errors: 2.0,
        burning: false,
        expected: Outcome::RolledBack,
    },
    Release {
        name: "v4",
        hash: "91b7e5",
        what: "as good as the stable, but the service has burned its error budget for an hour",
        errors: 1.0,
        burning: true,
        expected: Outcome::RolledBack,
    },
];

fn vs() -> serde_json::Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"hosts": ["checkout.shop.svc.cluster.local"], "http": [{"name": "primary",
            "retries": {"attempts": 2, "perTryTimeout": "1s"},
            "route": [{"destination": {"host": "checkout", "subset": "stable"}, "weight": 100},
                      {"destination": {"host": "checkout", "subset": "canary"}, "weight": 0}]}]}})
}

/// Run the demo.
pub fn run(a: &DemoArgs) -> Result<Exit, CliError> {
    let dir = tempfile_dir()?;
    let result = run_in(a, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The shipped spec at 1 s steps: the demo's polls are a second apart.
fn demo_spec() -> Result<JudgeSpec, CliError> {
    let text = SPEC.replace("\nstep: 30s\n", "\nstep: 1s\n");
    judge_spec::parse_str(SPEC_FILE, &text)
        .map_err(|e| CliError::usage(format!("{e:?}")))?
        .into_iter()
        .next()
        .ok_or_else(|| CliError::usage(format!("{SPEC_FILE}: no Judge spec")))
}

fn args_for(release: &Release) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("service".to_string(), "checkout".to_string()),
        ("namespace".to_string(), "shop".to_string()),
        ("canary_hash".to_string(), release.hash.to_string()),
        ("stable_hash".to_string(), STABLE.to_string()),
    ])
}

/// The step analysis: the Judge polled three times, a second apart, the first two seconds in
/// (one whole step after the weight was set);
/// a fail ends it at once, an inconclusive poll is tolerated once.
fn step_analysis(spec: &JudgeSpec, release: &Release) -> ResolvedMetric {
    let mut m = crate::template::judge_metric(
        spec.clone(),
        args_for(release),
        Some(Duration::from_secs(1)),
    );
    m.metric.count = Some(3);
    m.metric.initial_delay = Some("2s".into());
    m.metric.failure_limit = Some(0);
    m.metric.inconclusive_limit = Some(1);
    m
}

/// Each poll's evidence, as lines: how the e-values grew against their thresholds.
fn evidence_lines(report: &Report) -> Vec<String> {
    let weights: Vec<u32> = report
        .events
        .iter()
        .filter_map(|e| match e {
            crate::promote::Event::Step { weight, step, .. } if step.starts_with("analysis") => {
                Some(*weight)
            }
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (i, run) in report.analyses.iter().enumerate() {
        let weight = weights
            .get(i)
            .map_or(String::new(), |w| format!(" at {w} %"));
        out.push(format!("  analysis{weight}: {}", run.phase));
        for metric in &run.metrics {
            for (k, m) in metric.measurements.iter().enumerate() {
                let v: Value = serde_json::from_str(&m.value).unwrap_or(Value::Null);
                let steps = v["steps"].as_u64().unwrap_or(0);
                let tests: Vec<String> = v["evidence"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        let (metric, test) = (
                            e["metric"].as_str().unwrap_or(""),
                            e["test"].as_str().unwrap_or(""),
                        );
                        format!(
                            "{}e-value {} of {}{}",
                            if metric == test {
                                format!("{test} ")
                            } else {
                                format!("{metric} {test} ")
                            },
                            crate::judge::words::readable(e["e_value"].as_f64().unwrap_or(0.0)),
                            crate::judge::words::readable(e["threshold"].as_f64().unwrap_or(0.0)),
                            match e["state"].as_str() {
                                Some("decided") => " → REGRESSION",
                                Some("cleared") => " (ruled out)",
                                _ => "",
                            }
                        )
                    })
                    .collect();
                out.push(format!(
                    "    poll {} ({steps} s judged): {} — {}",
                    k + 1,
                    v["verdict"].as_str().unwrap_or(&m.phase.to_string()),
                    tests.join(", ")
                ));
            }
        }
    }
    out
}

/// The statistical reason of a rolled-back release: the failing metrics' and SLOs' reasons.
fn deciding_reasons(j: &Judgement) -> Vec<String> {
    let mut out = Vec::new();
    for m in &j.metrics {
        if matches!(
            m.judgement.classification,
            crate::judge::Classification::High | crate::judge::Classification::Low
        ) {
            out.push(format!("{}: {}", m.name, m.judgement.reasons.join("; ")));
            if let Some(c) = &m.judgement.counts {
                if c.canary.total > 0.0 {
                    out.push(format!(
                        "{}: the canary's success rate is {:.2} % — a 99 % success-rate \
                         threshold would have promoted it",
                        m.name,
                        100.0 * (1.0 - c.canary.bad / c.canary.total)
                    ));
                }
            }
        }
    }
    for s in &j.slos {
        if s.outcome == crate::slo::SloOutcome::Fail {
            out.push(format!("SLO {}: {}", s.name, s.reasons.join("; ")));
        }
    }
    out
}

fn run_in(a: &DemoArgs, dir: &std::path::Path) -> Result<Exit, CliError> {
    let _ = dir;
    let runtime = super::runtime(Some(0))?;
    runtime.block_on(async {
        let kube = EmbeddedKube::start().await.map_err(|e| {
            CliError::infrastructure(format!("cannot start the stand-in API server: {e}"))
        })?;
        let prometheus = EmbeddedPrometheus::start(STABLE, kube.clone())
            .await
            .map_err(|e| {
                CliError::infrastructure(format!("cannot start the stand-in Prometheus: {e}"))
            })?;
        let sources = Sources::live(PrometheusConfig {
            url: Some(prometheus.url.clone()),
            ..PrometheusConfig::default()
        })
        .map_err(|e| CliError::infrastructure(e.to_string()))?;
        let spec = demo_spec()?;
        let target = Target {
            http_routes: vec!["primary".into()],
            tls_routes: vec![],
            tcp_ports: vec![],
            destinations: Destinations::Subsets {
                stable: "stable".into(),
                canary: "canary".into(),
            },
        };
        std::fs::create_dir_all(&a.out)
            .map_err(|e| CliError::usage(format!("cannot create {}: {e}", a.out.display())))?;
        let _ = std::fs::remove_file(a.out.join("audit.jsonl"));
        let mut summary = String::new();
        let mut all_as_expected = true;
        let mut judgement_pages = Vec::new();
        for release in &RELEASES {
            kube.put(vs());
            prometheus.release(release.hash, release.errors, release.burning);
            let started = chrono::Utc::now();
            let mut applier = Applier::new(
                kube.client().map_err(CliError::infrastructure)?,
                VirtualServiceRef {
                    namespace: "shop".into(),
                    name: "checkout".into(),
                    version: "v1".into(),
                },
            );
            applier.deadline = Duration::from_secs(10);
            let promotion = Promotion {
                id: format!("shop/checkout:{}", release.name),
                steps: vec![
                    Step::SetWeight(10),
                    Step::Analysis(0),
                    Step::SetWeight(50),
                    Step::Analysis(0),
                    Step::SetWeight(100),
                ],
                target: target.clone(),
                analyses: vec![vec![step_analysis(&spec, release)]],
                background: None,
                watch: Duration::ZERO,
                sources: sources.clone(),
                applier,
                on_inconclusive: OnInconclusive::Pause,
                analysis_once: false,
                recording: Default::default(),
            };
            eprintln!(
                "── release {} of shop/checkout ({}), judged by the Judge spec {} \
                 (1/{} of its 1 % budget per analysis)",
                release.name,
                release.what,
                spec.name,
                (1.0 / promotion.judge_budget_share()).round()
            );
            let ledger = Ledger::file(a.out.join("audit.jsonl"))
                .map_err(|e| CliError::usage(e.to_string()))?;
            let mut sink = EventSink::new(
                Some(ledger),
                promotion.recording.clone(),
                promotion.steps.len(),
            )
            .human_lines();
            let id = promotion.id.clone();
            let report = promotion
                .run(std::future::pending::<()>(), false, &mut |e| {
                    sink.event(&id, e)
                })
                .await;
            sink.close();
            let name = release.name;
            write_reports(&report, Some(&a.out.join(format!("report-{name}.json"))))?;
            let page = a.out.join(format!("report-{name}.html"));
            std::fs::write(&page, crate::report::promotion::html(&report))
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", page.display())))?;
            summary.push_str(&markdown(&report));
            summary.push('\n');
            let object = kube.object("shop", "checkout").unwrap_or_default();
            let weights = current_weights(&object, &target)
                .map(|w| format!("stable {} % / canary {} %", w[0].stable, w[0].canary))
                .unwrap_or_default();
            let ok = report.outcome == release.expected;
            all_as_expected &= ok;
            write_stdout(&format!(
                "release {name}: {:?} — VirtualService now {weights}{}",
                report.outcome,
                if ok {
                    ""
                } else {
                    " (NOT the expected outcome)"
                }
            ))?;
            write_stdout(&evidence_lines(&report).join("\n"))?;
            if report.outcome == Outcome::RolledBack {
                // The deciding judgement again, from the release's start: its page shows
                // canary vs baseline, the evidence against its thresholds and the budget.
                let mut args = args_for(release);
                args.insert(crate::promote::WEIGHT_ARG.into(), "10".into());
                let scaled = spec.with_budget_share(promotion.judge_budget_share());
                let judgement = judging::run(
                    &scaled,
                    &args,
                    &sources,
                    chrono::Utc::now(),
                    JudgeOptions {
                        since: Some(started),
                        ..JudgeOptions::default()
                    },
                )
                .await
                .map_err(|e| CliError::infrastructure(e.to_string()))?;
                for r in deciding_reasons(&judgement) {
                    write_stdout(&format!("  why: {r}"))?;
                }
                let page = a.out.join(format!("judgement-{name}.html"));
                std::fs::write(
                    &page,
                    crate::report::judgement::html(&format!("demo-{name}"), &judgement),
                )
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", page.display())))?;
                judgement_pages.push(page.display().to_string());
            }
            if a.markdown {
                write_stdout(&markdown(&report))?;
            }
        }
        let md = a.out.join("summary.md");
        std::fs::write(&md, &summary)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", md.display())))?;
        write_stdout(&format!(
            "judgement reports (canary vs baseline, the evidence, the budget): {1}\n\
             promotion reports: {0}/report-v2.html … report-v4.html (and .json), \
             {0}/summary.md; audit ledger: {0}/audit.jsonl (try `canary audit {0}/audit.jsonl`)",
            a.out.display(),
            judgement_pages.join(" ")
        ))?;
        Ok(Exit::yes_or_no(all_as_expected))
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!("canary-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}
