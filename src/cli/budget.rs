//! `canary budget`: the error budgets of a Judge spec's SLOs, now, as JSON shaped to be a
//! deploy policy's (OPA's) `input`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::args::parse_args;
use super::prometheus_args::PrometheusArgs;
use super::{write_stdout, CliError, Exit};
use crate::source::Sources;
use crate::template::judge_spec;

/// Print each SLO's error budget (objective, budget left over the SLO period, burn rate per
/// window, which multiwindow rules trip) as JSON, e.g. for `opa eval --input`.
#[derive(Debug, Args)]
pub struct BudgetArgs {
    /// The Judge spec file (YAML, `kind: Judge`).
    #[arg(value_name = "JUDGE")]
    pub spec: PathBuf,
    /// Which judge, when the file holds several.
    #[arg(long, value_name = "NAME")]
    pub judge: Option<String>,
    /// An arg of the spec, NAME=VALUE (repeatable); args the SLOs do not use may be left out.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    /// How long the queries may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
}

/// Run the command: exit 0 with the JSON, 3 when Prometheus cannot answer, 64 on bad input.
pub fn run(a: &BudgetArgs) -> Result<Exit, CliError> {
    let file = a.spec.display().to_string();
    let text = crate::template::yaml::read_file(&a.spec)
        .map_err(|e| CliError::usage(format!("cannot read {file}: {e}")))?;
    let specs = judge_spec::parse_str(&file, &text).map_err(|errors| {
        CliError::usage(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let spec = match &a.judge {
        Some(name) => specs
            .into_iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| CliError::usage(format!("{file}: no judge named {name:?}")))?,
        None => specs
            .into_iter()
            .next()
            .ok_or_else(|| CliError::usage(format!("{file}: no Judge spec")))?,
    };
    if spec.slos.is_empty() {
        return Err(CliError::usage(format!(
            "{file}: judge {} has no slos, so no error budget",
            spec.name
        )));
    }
    let args = parse_args(&a.args)?;
    let config = a.prometheus.config()?;
    if config.url.is_none() {
        return Err(CliError::usage(
            "set --prometheus (or CANARY_PROMETHEUS_URL)",
        ));
    }
    let sources = Sources::live(config).map_err(|e| CliError::usage(e.to_string()))?;
    let runtime = super::runtime(Some(1))?;
    let budgets = runtime
        .block_on(crate::judging::budget::run(
            &spec,
            &args,
            &sources,
            chrono::Utc::now(),
            a.timeout,
        ))
        .map_err(CliError::from)?;
    let text = serde_json::to_string_pretty(&budgets)
        .map_err(|e| CliError::infrastructure(e.to_string()))?;
    write_stdout(&text)?;
    Ok(Exit::Success)
}
