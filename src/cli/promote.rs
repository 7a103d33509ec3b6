//! `canary promote`: shift traffic through an Istio VirtualService step by step, analyze at
//! each step, roll back on a bad verdict; resumable after a crash.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::analyze::{load_metrics, parse_args, sources};
use super::prometheus_args::PrometheusArgs;
use super::{write_stdout, CliError};
use crate::promote::{self, default_steps, Event, OnInconclusive, Outcome, Promotion, Report};
use crate::traffic::apply::{Applier, VirtualServiceRef};
use crate::traffic::{Destinations, Target};

/// What to do on an Inconclusive analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InconclusiveAction {
    /// Stop at the current weight, exit 2, for a human to decide.
    Pause,
    /// Roll back.
    Rollback,
}

/// Shift traffic 10 → 50 → 100 % (or --steps) through an Istio VirtualService, running the
/// analysis at each step; roll back on Failed/Error. Exit 0 promoted, 1 rolled back,
/// 2 paused, 3 infrastructure error, 64 usage error. Rerun the same command to resume.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The VirtualService, as NAMESPACE/NAME.
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub virtual_service: String,
    /// HTTP route to manage (repeatable; default: the only route, or the first unnamed one).
    #[arg(long = "route", value_name = "NAME")]
    pub routes: Vec<String>,
    /// Stable DestinationRule subset (with --canary-subset).
    #[arg(long, requires = "canary_subset", conflicts_with_all = ["stable_host", "canary_host"])]
    pub stable_subset: Option<String>,
    /// Canary DestinationRule subset.
    #[arg(long, requires = "stable_subset")]
    pub canary_subset: Option<String>,
    /// Stable Service host (with --canary-host).
    #[arg(long, requires = "canary_host")]
    pub stable_host: Option<String>,
    /// Canary Service host.
    #[arg(long, requires = "stable_host")]
    pub canary_host: Option<String>,
    /// Canary weights, in order.
    #[arg(long, value_delimiter = ',', default_value = "10,50,100")]
    pub steps: Vec<u32>,
    /// Wait this long after each weight change, before its analysis.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub step_pause: Duration,
    /// AnalysisTemplate file run at each step (repeatable; all run together).
    #[arg(long = "analysis", value_name = "TEMPLATE.yaml")]
    pub analysis: Vec<PathBuf>,
    /// Template argument NAME=VALUE (repeatable).
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// Take one measurement per metric at each analysis (ignore interval/count).
    #[arg(long)]
    pub analysis_once: bool,
    /// On an Inconclusive analysis.
    #[arg(long, value_enum, default_value_t = InconclusiveAction::Pause)]
    pub on_inconclusive: InconclusiveAction,
    /// On SIGTERM/SIGINT leave the traffic where it is (paused) instead of rolling back.
    #[arg(long)]
    pub pause_on_signal: bool,
    /// Roll the canary back to 0 % now and record the promotion as rolled back.
    #[arg(long)]
    pub abort: bool,
    /// `networking.istio.io` API version of the VirtualService.
    #[arg(long, default_value = "v1", value_parser = ["v1", "v1beta1", "v1alpha3"])]
    pub istio_version: String,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Append every decision to this JSON-lines audit ledger (flushed and fsync'd per event).
    #[arg(long, env = "CANARY_AUDIT_FILE", value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// Where analysis measurements come from: `prometheus` or `snapshot:FILE`.
    #[arg(long, default_value = "prometheus")]
    pub source: String,
    /// Give up on Kubernetes API retries (conflicts, 5xx, timeouts) after this long.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub kube_deadline: Duration,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
}

/// Everything the flags describe, checked before any connection to a cluster is made (a typo
/// in a flag or a template is a usage error, exit 64, whatever the cluster's state).
pub struct Plan {
    virtual_service: VirtualServiceRef,
    id: String,
    steps: Vec<promote::Step>,
    target: Target,
    analysis: Vec<crate::template::ResolvedMetric>,
    sources: crate::source::Sources,
    on_inconclusive: OnInconclusive,
    analysis_once: bool,
}

impl Plan {
    /// The promotion, talking to the cluster through `client`.
    pub fn connect(self, client: kube::Client, deadline: Duration) -> Promotion {
        let mut applier = Applier::new(client, self.virtual_service);
        applier.deadline = deadline;
        Promotion {
            id: self.id,
            steps: self.steps,
            target: self.target,
            analysis: self.analysis,
            sources: self.sources,
            applier,
            on_inconclusive: self.on_inconclusive,
            analysis_once: self.analysis_once,
        }
    }
}

/// Check the flags and load the analysis templates.
pub fn plan(a: &PromoteArgs) -> Result<Plan, CliError> {
    let (namespace, name) = a
        .virtual_service
        .split_once('/')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| CliError::usage("--virtual-service must be NAMESPACE/NAME"))?;
    let destinations = match (
        &a.stable_subset,
        &a.canary_subset,
        &a.stable_host,
        &a.canary_host,
    ) {
        (Some(s), Some(c), None, None) => Destinations::Subsets {
            stable: s.clone(),
            canary: c.clone(),
        },
        (None, None, Some(s), Some(c)) => Destinations::Hosts {
            stable: s.clone(),
            canary: c.clone(),
        },
        _ => {
            return Err(CliError::usage(
                "give --stable-subset and --canary-subset, or --stable-host and --canary-host",
            ))
        }
    };
    if a.steps.is_empty() || a.steps.iter().any(|w| *w > 100) {
        return Err(CliError::usage("--steps must be weights between 0 and 100"));
    }
    let analysis = if a.analysis.is_empty() {
        Vec::new()
    } else {
        load_metrics(&a.analysis, &parse_args(&a.args)?)?
    };
    let canary = match &destinations {
        Destinations::Subsets { canary, .. } | Destinations::Hosts { canary, .. } => canary.clone(),
    };
    let steps_label: Vec<String> = a.steps.iter().map(u32::to_string).collect();
    Ok(Plan {
        virtual_service: VirtualServiceRef {
            namespace: namespace.into(),
            name: name.into(),
            version: a.istio_version.clone(),
        },
        // The same command gives the same id, so a rerun resumes this promotion.
        id: format!("{}:{canary}:{}", a.virtual_service, steps_label.join(",")),
        steps: default_steps(&a.steps, a.step_pause, !analysis.is_empty()),
        target: Target {
            http_routes: a.routes.clone(),
            tls_routes: Vec::new(),
            tcp_ports: Vec::new(),
            destinations,
        },
        analysis,
        sources: sources(&a.source, None, &a.prometheus)?,
        on_inconclusive: match a.on_inconclusive {
            InconclusiveAction::Pause => OnInconclusive::Pause,
            InconclusiveAction::Rollback => OnInconclusive::Rollback,
        },
        analysis_once: a.analysis_once,
    })
}

/// Prints events: a line each on a terminal, JSON lines otherwise; and appends them to the
/// audit ledger.
pub struct EventSink {
    tty: bool,
    audit: Option<std::fs::File>,
    /// Audit write failures (reported at the end).
    pub audit_errors: Vec<String>,
}

impl EventSink {
    /// Open the ledger (append-only) if asked.
    pub fn new(audit: Option<&PathBuf>) -> Result<Self, CliError> {
        let audit = match audit {
            None => None,
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        CliError::usage(format!("cannot open audit ledger {}: {e}", p.display()))
                    })?,
            ),
        };
        Ok(EventSink {
            tty: std::io::stderr().is_terminal(),
            audit,
            audit_errors: Vec::new(),
        })
    }

    /// Show and record one event.
    pub fn event(&mut self, id: &str, e: &Event) {
        let mut v = serde_json::to_value(e).unwrap_or_default();
        v["promotion"] = serde_json::Value::String(id.to_string());
        v["time"] = serde_json::Value::String(chrono::Utc::now().to_rfc3339());
        if self.tty {
            eprintln!("{}", human(e));
        } else {
            eprintln!("{v}");
        }
        if let Some(f) = &mut self.audit {
            let line = format!("{v}\n");
            if let Err(err) = f.write_all(line.as_bytes()).and_then(|()| f.sync_data()) {
                self.audit_errors.push(err.to_string());
            }
        }
    }
}

/// One line for a person.
pub fn human(e: &Event) -> String {
    let t = chrono::Local::now().format("%H:%M:%S");
    match e {
        Event::Started {
            id,
            resumed_at_step,
        } => match resumed_at_step {
            Some(s) => format!("{t}  resuming {id} at step {s}"),
            None => format!("{t}  starting {id}"),
        },
        Event::Step {
            index,
            step,
            weight,
        } => format!("{t}  step {index}: {step} (canary {weight} %)"),
        Event::Analysis {
            index,
            phase,
            message,
        } => format!("{t}  step {index}: analysis {phase} {message}"),
        Event::Promoted { weight } => format!("{t}  promoted: canary at {weight} %"),
        Event::RolledBack { reason } => format!("{t}  ROLLED BACK: {reason}"),
        Event::Paused { reason } => format!("{t}  paused: {reason}"),
    }
}

/// The Markdown summary for a CI step summary.
pub fn markdown(r: &Report) -> String {
    let icon = match r.outcome {
        Outcome::Promoted => "✅",
        Outcome::RolledBack => "↩️",
        Outcome::Paused => "⏸️",
        Outcome::Error => "❌",
    };
    let mut out = format!(
        "### {icon} canary promote `{}`: {:?}\n\n{}\n\nFinal canary weight: **{} %**\n\n| step | what | result |\n|---|---|---|\n",
        r.id, r.outcome, r.reason, r.final_weight
    );
    for e in &r.events {
        match e {
            Event::Step {
                index,
                step,
                weight,
            } => out.push_str(&format!("| {index} | {step} | canary {weight} % |\n")),
            Event::Analysis {
                index,
                phase,
                message,
            } => out.push_str(&format!(
                "| {index} | analysis | {phase} {} |\n",
                message.replace('|', "\\|")
            )),
            _ => {}
        }
    }
    out
}

/// Write the JSON report and the step summary.
pub fn write_reports(r: &Report, report: Option<&PathBuf>) -> Result<(), CliError> {
    if let Some(p) = report {
        let text = serde_json::to_string_pretty(r).unwrap_or_default();
        std::fs::write(p, text)
            .map_err(|e| CliError::usage(format!("cannot write report {}: {e}", p.display())))?;
    }
    if let Ok(summary) = std::env::var("GITHUB_STEP_SUMMARY") {
        if !summary.is_empty() {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&summary)
                .map_err(|e| {
                    CliError::usage(format!("cannot append to $GITHUB_STEP_SUMMARY: {e}"))
                })?;
            let _ = f.write_all(markdown(r).as_bytes());
        }
    }
    Ok(())
}

/// Run the command.
pub fn run(a: &PromoteArgs) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))?;
    let plan = plan(a)?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.map_err(|e| {
            CliError::usage(format!(
                "no Kubernetes connection (KUBECONFIG or in-cluster config): {e}"
            ))
        })?;
        let promotion = plan.connect(client, a.kube_deadline);
        let mut sink = EventSink::new(a.audit.as_ref())?;
        let report = if a.abort {
            promotion.abort().await
        } else {
            let id = promotion.id.clone();
            promotion
                .run(super::terminate_signal(), a.pause_on_signal, &mut |e| {
                    sink.event(&id, e)
                })
                .await
        };
        if a.abort {
            for e in &report.events {
                sink.event(&report.id, e);
            }
        }
        write_reports(&report, a.report.as_ref())?;
        write_stdout(&format!("{:?}: {}", report.outcome, report.reason))?;
        if !sink.audit_errors.is_empty() {
            eprintln!(
                "warning: audit ledger writes failed: {}",
                sink.audit_errors.join("; ")
            );
        }
        Ok(report.outcome.exit_code())
    })
}
