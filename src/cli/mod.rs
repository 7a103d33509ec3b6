//! The command line: one file per subcommand. Every command ends with an [`Exit`] (see
//! `exit.rs` and docs/exit-codes.md); usage and input errors are 64 (EX_USAGE).

pub mod analyze;
pub mod args;
pub mod audit;
pub mod backtest;
pub mod budget;
pub mod calibrate;
pub mod demo;
mod exit;
pub mod judge;
mod judge_table;
pub mod lint;
pub mod prometheus_args;
pub mod promote;
pub mod serve;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub use exit::Exit;

/// The async runtime a command runs on: `workers` threads (`None`: one per core, for
/// `serve`; `Some(0)`: the current thread only). Failing to start it is an infrastructure
/// error, not a usage error.
pub fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, CliError> {
    let built = match workers {
        Some(0) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    built.map_err(|e| CliError::infrastructure(format!("cannot start the async runtime: {e}")))
}

/// Writes a report page (`--html`) beside a command's result. The result decides the exit
/// code: a page that cannot be written is a warning on stderr, never a usage error that would
/// hide a Failed or a rollback from the pipeline.
pub fn write_report(path: &std::path::Path, page: &str) {
    if let Err(e) = std::fs::write(path, page) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}

/// Prints a command's result and a newline. A closed pipe (`canary judge … | head`) is the
/// reader's choice, not an error; any other write failure is exit 74.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::new(
            Exit::Io,
            format!("cannot write the result to standard output: {e}"),
        )),
        _ => Ok(()),
    }
}

/// Resolves on SIGTERM (Kubernetes stopping a pod, a CI job cancelled) or Ctrl-C. The
/// handlers are installed when this is called, not when the future is first polled, so a
/// signal that arrives while the caller is busy (mid-update of a VirtualService) is not lost
/// and does not kill the process. Call it inside the tokio runtime.
pub fn terminate_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// canary-engine: is the new version worse than the old one? Statistical canary analysis
/// for Kubernetes, Istio, Prometheus and Argo Rollouts.
#[derive(Debug, Parser)]
#[command(name = "canary", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge one metric, canary vs baseline, from JSON numbers: rank-sum test with a
    /// Hodges-Lehmann interval, effect sizes, tail check, count tests.
    Judge(judge::JudgeArgs),
    /// Run Argo Rollouts AnalysisTemplates against Prometheus (or a recorded snapshot) with
    /// Argo's semantics; exit 0 Successful, 1 Failed, 2 Inconclusive, 3 Error.
    Analyze(Box<analyze::AnalyzeArgs>),
    /// Serve judgements over HTTP for Argo Rollouts' web metric provider (Judge specs,
    /// canary vs baseline statistics, SLO burn rate).
    Serve(Box<serve::ServeArgs>),
    /// Shift traffic step by step through an Istio VirtualService, analyzing at each step;
    /// roll back on a bad verdict. Exit 0 promoted, 1 rolled back, 2 paused, 3 error, 4 denied
    /// by the deploy policy (--policy).
    Promote(Box<promote::PromoteArgs>),
    /// Three promotions end to end with no cluster and no Prometheus (embedded stand-ins): a
    /// healthy release promoted, a regressed one rolled back, and one rolled back by the SLO's
    /// burn-rate gate.
    Demo(demo::DemoArgs),
    /// List and filter the decisions in promotion audit ledgers (`promote --audit`), and
    /// check a PostgreSQL ledger's hash chain (`--verify`).
    Audit(audit::AuditArgs),
    /// The error budgets of a Judge spec's SLOs as JSON: a deploy policy's input.
    Budget(Box<budget::BudgetArgs>),
    /// Check AnalysisTemplates and Judge specs: schema, Argo's rules, PromQL, args, and
    /// footguns; exit 1 on errors.
    Lint(lint::LintArgs),
    /// Replay an AnalysisTemplate or Judge spec over a past time range and print the verdict
    /// timeline: how would this template have judged the past?
    Backtest(Box<backtest::BacktestArgs>),
    /// A/A test over history: how often would a Judge spec raise a false alarm, which
    /// thresholds meet a target, and how fast it catches injected regressions.
    Calibrate(Box<calibrate::CalibrateArgs>),
}

/// An error a command reports: a one-line message and how the process ends.
#[derive(Debug)]
pub struct CliError {
    /// The line printed after `error: `.
    pub message: String,
    /// The exit code.
    pub exit: Exit,
}

impl CliError {
    /// `message`, ending the process with `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit,
        }
    }

    /// The engine could not do its job for a reason outside the input (exit 3, as Argo
    /// reads Error): no async runtime, the cluster or Prometheus unreachable.
    pub fn infrastructure(message: impl Into<String>) -> Self {
        Self::new(Exit::Infrastructure, message)
    }

    /// A usage or input error (exit 64).
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }
}

/// Each module's error, its message and the exit its [`Exit`] conversion decides.
macro_rules! cli_error_from {
    ($($error:ty),*) => {$(
        impl From<$error> for CliError {
            fn from(e: $error) -> Self {
                Self::new(Exit::from(&e), e.to_string())
            }
        }
    )*};
}
cli_error_from!(
    crate::audit::AuditError,
    crate::calibrate::CalibrateError,
    crate::judging::JudgeError,
    crate::promote::plan::PlanError,
    crate::store::StoreError
);

/// Parses `std::env::args`, runs the command, and returns the exit code.
pub fn run() -> ExitCode {
    crate::telemetry::init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let exit = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            };
            let _ = e.print();
            return exit.into();
        }
    };
    let result = match cli.command {
        Command::Judge(args) => judge::run(&args),
        Command::Analyze(args) => analyze::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Promote(args) => promote::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Calibrate(args) => calibrate::run(&args),
        Command::Budget(args) => budget::run(&args),
    };
    crate::telemetry::shutdown();
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.exit.into()
        }
    }
}
