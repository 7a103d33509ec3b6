//! `canary demo`: two promotions end to end with no cluster and no Prometheus.
//!
//! An in-process stand-in for the Kubernetes API holds a VirtualService; analyses replay
//! snapshots recorded from a real Prometheus (`examples/analyze/`) through the shipped
//! `istio-success-rate` AnalysisTemplate. Release v2 is healthy and is promoted 10 → 50 →
//! 100 %; release v3 regressed and is rolled back at its first step.

mod embedded_kube;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::promote::{markdown, write_reports, EventSink};
use super::{write_stdout, CliError};
use crate::promote::{default_steps, OnInconclusive, Outcome, Promotion};
use crate::source::Sources;
use crate::template;
use crate::traffic::apply::{Applier, VirtualServiceRef};
use crate::traffic::{current_weights, Destinations, Target};
use embedded_kube::EmbeddedKube;

const TEMPLATE: &str = include_str!("../../../analysis-templates/istio-success-rate.yaml");
const HEALTHY: &str = include_str!("../../../examples/analyze/healthy.jsonl");
const REGRESSED: &str = include_str!("../../../examples/analyze/regressed.jsonl");

/// Run two promotions end to end on an embedded stand-in cluster and recorded Prometheus
/// data: a healthy release is promoted, a regressed one rolled back. Exit 0 when both end
/// as they should.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print the Markdown summaries (as written to $GITHUB_STEP_SUMMARY) too.
    #[arg(long)]
    pub markdown: bool,
    /// Write the reports here: `report-v2` and `report-v3` (`.json` and `.html`), `summary.md`
    /// and the audit ledger `audit.jsonl` (read it with `canary audit`).
    #[arg(long, value_name = "DIR", default_value = "canary-demo")]
    pub out: std::path::PathBuf,
}

fn vs() -> serde_json::Value {
    json!({"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"hosts": ["checkout.shop.svc.cluster.local"], "http": [{"name": "primary",
            "retries": {"attempts": 2, "perTryTimeout": "1s"},
            "route": [{"destination": {"host": "checkout", "subset": "stable"}, "weight": 100},
                      {"destination": {"host": "checkout", "subset": "canary"}, "weight": 0}]}]}})
}

/// Run the demo.
pub fn run(a: &DemoArgs) -> Result<u8, CliError> {
    let dir = tempfile_dir()?;
    let result = run_in(a, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(a: &DemoArgs, dir: &std::path::Path) -> Result<u8, CliError> {
    let runtime = super::runtime(Some(0))?;
    runtime.block_on(async {
        let kube = EmbeddedKube::start()
            .await
            .map_err(|e| {
                CliError::infrastructure(format!("cannot start the stand-in API server: {e}"))
            })?;
        let templates = template::parse_str("analysis-templates/istio-success-rate.yaml", TEMPLATE)
            .map_err(|e| CliError::usage(format!("{e:?}")))?;
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
        for (release, service, snapshot, expected) in [
            ("v2", "healthy", HEALTHY, Outcome::Promoted),
            ("v3", "regressed", REGRESSED, Outcome::RolledBack),
        ] {
            kube.put(vs());
            let path = dir.join(format!("{service}.jsonl"));
            std::fs::write(&path, snapshot)
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", path.display())))?;
            let args = BTreeMap::from([
                ("service".to_string(), service.to_string()),
                ("namespace".to_string(), "prod".to_string()),
            ]);
            let analysis = template::resolve(&templates, &args)
                .map_err(|e| CliError::usage(format!("{e:?}")))?;
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
                id: format!("shop/checkout:{release}"),
                steps: default_steps(&[10, 50, 100], Duration::from_millis(300), true),
                target: target.clone(),
                analyses: vec![analysis],
                background: None,
                watch: Duration::ZERO,
                sources: Sources::replay(&path).map_err(|e| CliError::usage(e.to_string()))?,
                applier,
                on_inconclusive: OnInconclusive::Pause,
                analysis_once: true,
            };
            eprintln!("── release {release} of shop/checkout (recorded data: {service} service)");
            let mut sink = EventSink::new(Some(&a.out.join("audit.jsonl")), promotion.steps.len())?
                .human_lines();
            let id = promotion.id.clone();
            let report = promotion
                .run(std::future::pending::<()>(), false, &mut |e| {
                    sink.event(&id, e)
                })
                .await;
            sink.close();
            write_reports(&report, Some(&a.out.join(format!("report-{release}.json"))))?;
            let page = a.out.join(format!("report-{release}.html"));
            std::fs::write(&page, crate::report::promotion::html(&report))
                .map_err(|e| CliError::usage(format!("cannot write {}: {e}", page.display())))?;
            summary.push_str(&markdown(&report));
            summary.push('\n');
            let object = kube.object("shop", "checkout").unwrap_or_default();
            let weights = current_weights(&object, &target)
                .map(|w| format!("stable {} % / canary {} %", w[0].stable, w[0].canary))
                .unwrap_or_default();
            let ok = report.outcome == expected;
            all_as_expected &= ok;
            write_stdout(&format!(
                "release {release}: {:?} — {} — VirtualService now {weights}{}",
                report.outcome,
                report.reason,
                if ok {
                    ""
                } else {
                    " (NOT the expected outcome)"
                }
            ))?;
            if a.markdown {
                write_stdout(&markdown(&report))?;
            }
        }
        let md = a.out.join("summary.md");
        std::fs::write(&md, &summary)
            .map_err(|e| CliError::usage(format!("cannot write {}: {e}", md.display())))?;
        write_stdout(&format!(
            "reports: {0}/report-v2.html {0}/report-v3.html (and .json), {0}/summary.md; audit ledger: \
             {0}/audit.jsonl (try `canary audit {0}/audit.jsonl`)",
            a.out.display()
        ))?;
        Ok(if all_as_expected { 0 } else { 1 })
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf, CliError> {
    let dir = std::env::temp_dir().join(format!("canary-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::usage(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}
