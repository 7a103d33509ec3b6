//! `canary lint`: check AnalysisTemplates and Judge specs before a rollout does.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{write_stdout, CliError, Exit};
use crate::lint::{self, Severity};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintOutput {
    /// `file:line: severity[rule]: message`, with a suggested fix.
    Text,
    /// A JSON array of findings (file, line, severity, rule, message, fix), for CI annotations.
    Json,
}

/// Check Argo AnalysisTemplates and Judge specs: schema, Argo's rules, conditions that
/// compile, PromQL that parses, args declared vs used, and footguns (result[0] with no
/// empty-result guard, no data passing or quietly Inconclusive, limits count never reaches,
/// range selectors shorter than the step or interval). Exit 1 on any error, 0 otherwise.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// Template files or directories (searched recursively for *.yaml and *.yml).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = LintOutput::Text)]
    pub output: LintOutput,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub strict: bool,
}

/// Run the command.
pub fn run(a: &LintArgs) -> Result<Exit, CliError> {
    for p in &a.paths {
        if !p.exists() {
            return Err(CliError::usage(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    let files = lint::files(&a.paths).map_err(|e| CliError::usage(e.to_string()))?;
    let findings: Vec<lint::Finding> = files.iter().flat_map(|f| lint::lint_file(f)).collect();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match a.output {
        LintOutput::Json => {
            write_stdout(&serde_json::to_string_pretty(&findings).unwrap_or_default())?
        }
        LintOutput::Text => {
            for f in &findings {
                write_stdout(&f.to_string())?;
            }
            write_stdout(&format!(
                "{} files: {errors} errors, {warnings} warnings",
                files.len()
            ))?;
        }
    }
    Ok(Exit::yes_or_no(errors == 0 && !(a.strict && warnings > 0)))
}
