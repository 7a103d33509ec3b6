//! `canary analyze`: run Argo AnalysisTemplates outside the cluster, with Argo's semantics.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::args::{load_metrics, parse_args, Output, SourceArgs};
use super::prometheus_args::PrometheusArgs;
use super::{write_stdout, CliError, Exit};
use crate::analysis::{self, Event, Phase, RunOptions, RunReport};

/// Run Argo Rollouts AnalysisTemplates (Prometheus and web metrics) with Argo's own
/// semantics: interval, count, limits, dry-run. Exit 0 Successful, 1 Failed,
/// 2 Inconclusive, 3 Error, 64 bad template or arguments.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// AnalysisTemplate or ClusterAnalysisTemplate files (multi-document YAML is fine);
    /// several files run together, as the templates of one Rollout step.
    #[arg(required = true, value_name = "TEMPLATE.yaml")]
    pub templates: Vec<PathBuf>,
    /// Template argument NAME=VALUE (repeatable); overrides the template's default.
    #[arg(long = "arg", short = 'a', value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Take one measurement per metric now, ignoring interval, count and initialDelay.
    #[arg(long)]
    pub once: bool,
    /// Also write an HTML report: each metric's measurements over time, coloured by phase.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
}

/// Run the command: exit with the run's phase, as Argo reads it.
pub fn run(a: &AnalyzeArgs) -> Result<Exit, CliError> {
    let given = parse_args(&a.args)?;
    let metrics = load_metrics(&a.templates, &given, None)?;
    let sources = a.source.sources(&a.prometheus)?;
    let runtime = super::runtime(Some(2))?;
    let options = RunOptions {
        once: a.once,
        ..RunOptions::default()
    };
    let table = a.output == Output::Table;
    let live = table && std::io::stderr().is_terminal();
    let report = runtime.block_on(async {
        let mut on_event = |e: Event<'_>| {
            if table {
                print_event(&e, live);
            }
        };
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        analysis::run(&metrics, &sources, options, ctrl_c, &mut on_event).await
    });
    if live {
        eprint!("\r\x1b[2K");
    }
    if let Some(path) = &a.html {
        let names: Vec<String> = a
            .templates
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let page =
            crate::report::analysis::html(&format!("Analysis: {}", names.join(", ")), &report);
        super::write_report(path, &page);
    }
    let text = match a.output {
        Output::Json => serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::usage(format!("cannot encode the report: {e}")))?,
        Output::Table => render_table(&report),
    };
    write_stdout(&text)?;
    Ok(Exit::from(report.phase))
}

fn print_event(e: &Event<'_>, live: bool) {
    match e {
        Event::Measured {
            metric,
            measurement,
        } => {
            if live {
                eprint!("\r\x1b[2K");
            }
            let value = if measurement.value.is_empty() {
                "-"
            } else {
                &measurement.value
            };
            let mut line = format!(
                "{}  {:<24} {:<13} {}",
                chrono::Local::now().format("%H:%M:%S"),
                metric.name,
                measurement.phase.as_str(),
                value
            );
            if metric.dry_run {
                line.push_str("  (dry-run)");
            }
            if !measurement.message.is_empty() {
                line.push_str(&format!("  {}", measurement.message));
            }
            for w in &measurement.warnings {
                line.push_str(&format!("  warning: {w}"));
            }
            // Measurements go to stderr so stdout carries only the final result.
            eprintln!("{line}");
        }
        Event::Waiting { seconds } => {
            if live {
                eprint!("\r\x1b[2Knext measurement in {seconds:.0}s…");
            }
        }
    }
}

/// The end-of-run summary: one row per metric, then the phase and its reason.
pub fn render_table(r: &RunReport) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "metric",
        "phase",
        "measured",
        "ok",
        "failed",
        "inconcl.",
        "error",
        "values",
        "last value",
    ]);
    for m in &r.metrics {
        let name = if m.dry_run {
            format!("{} (dry-run)", m.name)
        } else {
            m.name.clone()
        };
        t.add_row(vec![
            name,
            m.phase.to_string(),
            m.measurements.len().to_string(),
            m.successful.to_string(),
            m.failed.to_string(),
            m.inconclusive.to_string(),
            m.error.to_string(),
            crate::report::terminal::sparkline(
                &m.measurements
                    .iter()
                    .map(|x| crate::report::analysis::measured_number(&x.value).unwrap_or(f64::NAN))
                    .collect::<Vec<_>>(),
                20,
                None,
            ),
            m.last()
                .map(|x| x.value.clone())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut out = t.to_string();
    out.push_str(&format!("\nRun phase: {}", r.phase));
    if !r.message.is_empty() {
        out.push_str(&format!(" — {}", r.message));
    }
    if r.phase == Phase::Successful && r.metrics.iter().all(|m| m.dry_run) {
        out.push_str(" (every metric is dry-run)");
    }
    out
}
