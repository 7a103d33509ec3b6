//! `canary promote`: shift traffic through an Istio VirtualService step by step, analyze at
//! each step, roll back on a bad verdict; resumable after a crash.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::args::{load_metrics, parse_args, sources};
use super::prometheus_args::PrometheusArgs;
use super::{write_stdout, CliError, Exit};
use crate::audit::{Entry, Ledger};
use crate::policy::FailMode;
use crate::promote::{
    self, default_steps, Event, OnInconclusive, Promotion, RecordingFailure, Report,
};
use crate::report::promotion_text::{human, markdown, Status};
use crate::traffic::apply::{Applier, ApplyError, VirtualServiceRef};
use crate::traffic::{Destinations, Target, TlsRoute};

/// What to do on an Inconclusive analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InconclusiveAction {
    /// Stop at the current weight, exit 2, for a human to decide.
    Pause,
    /// Roll back to 0 %, exit 1.
    Rollback,
}

/// Shift traffic 10 → 50 → 100 % (or --steps) through an Istio VirtualService, running the
/// analysis at each step; roll back on Failed/Error. Exit 0 promoted, 1 rolled back,
/// 2 paused, 3 infrastructure error, 4 denied by the deploy policy (--policy), 64 usage error.
/// Rerun the same command to resume.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// Argo Rollout manifest to follow: its `canary.steps` (setWeight, pause, analysis), its
    /// background `canary.analysis` and its `trafficRouting.istio` replace the flags below.
    /// The templates it names are looked up in --templates-dir.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["steps", "step_pause", "analysis", "routes", "stable_subset", "stable_host", "background_analysis"])]
    pub rollout: Option<PathBuf>,
    /// Where to find the AnalysisTemplates and Judges a --rollout names (by metadata.name, or
    /// a Judge's name); repeatable. Default: the Rollout file's directory.
    #[arg(long = "templates-dir", value_name = "DIR", requires = "rollout")]
    pub templates_dirs: Vec<PathBuf>,
    /// The VirtualService, as NAMESPACE/NAME (with --rollout: defaults to the Rollout's).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub virtual_service: Option<String>,
    /// HTTP route to manage (repeatable; default: the only route, or the first unnamed one).
    #[arg(long = "route", value_name = "NAME")]
    pub routes: Vec<String>,
    /// TLS route to manage, as PORT or PORT:SNI[,SNI…] (repeatable; matched as Argo's
    /// `tlsRoutes`).
    #[arg(long = "tls-route", value_name = "PORT[:SNI,…]")]
    pub tls_routes: Vec<String>,
    /// TCP route to manage, by port (repeatable).
    #[arg(long = "tcp-route", value_name = "PORT")]
    pub tcp_routes: Vec<i64>,
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
    /// Analysis run across the whole promotion (AnalysisTemplate or Judge spec; repeatable):
    /// Failed or Error rolls back at once, whatever step is running. Judges judge every
    /// --background-interval.
    #[arg(long = "background-analysis", value_name = "TEMPLATE.yaml")]
    pub background_analysis: Vec<PathBuf>,
    /// How often a background Judge judges.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    pub background_interval: Duration,
    /// After the last step, keep the background analysis running this long (the
    /// post-promotion watch); a failure in it still rolls back.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub watch: Duration,
    /// Template argument NAME=VALUE (repeatable; overrides a Rollout's own arg values and
    /// gives those it takes from the cluster, like podTemplateHashValue).
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
    /// Also write an HTML report: canary weight over time with each analysis's verdict,
    /// the events, and every analysis's measurements.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Append every decision to this audit ledger: a JSON-lines file (flushed and fsync'd per
    /// event), or PostgreSQL (`postgres://USER:PASSWORD@HOST:PORT/DB`: append-only rows chained
    /// by hash). An event that cannot be written is retried three times; then the promotion
    /// stops before its next weight change (exit 3; rerun to resume).
    #[arg(
        long,
        env = "CANARY_AUDIT",
        value_name = "FILE|URL",
        hide_env_values = true
    )]
    pub audit: Option<String>,
    /// Ask this deploy policy (OPA's data API, e.g. http://opa:8181/v1/data/canary/deploy)
    /// before the first weight change, with the error budgets of the promotion's Judge SLOs
    /// as input; a denial ends the promotion with no change (exit 4, `policy.violated`).
    #[arg(long, env = "CANARY_POLICY_URL", value_name = "URL")]
    pub policy: Option<String>,
    /// When the policy engine cannot be asked: `closed` refuses the deploy (exit 3, before
    /// any change), `open` deploys anyway and records `policy.bypassed`.
    #[arg(long, env = "CANARY_POLICY_FAIL", value_enum, default_value_t = FailMode::Closed)]
    pub policy_fail: FailMode,
    /// How long the policy engine (and the budgets' queries) may take.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub policy_timeout: Duration,
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
    analyses: Vec<Vec<crate::template::ResolvedMetric>>,
    background: Option<promote::Background>,
    watch: Duration,
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
            analyses: self.analyses,
            background: self.background,
            watch: self.watch,
            sources: self.sources,
            applier,
            on_inconclusive: self.on_inconclusive,
            analysis_once: self.analysis_once,
            recording: Default::default(),
        }
    }
}

/// Check the flags and load the analysis templates.
pub fn plan(a: &PromoteArgs) -> Result<Plan, CliError> {
    let given = parse_args(&a.args)?;
    let from_rollout = match &a.rollout {
        Some(path) => Some(promote::plan::from_rollout(
            path,
            &a.templates_dirs,
            &given,
            a.background_interval,
        )?),
        None => None,
    };
    let vs_flag = a.virtual_service.as_deref().map(|v| {
        v.split_once('/')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .ok_or_else(|| CliError::usage("--virtual-service must be NAMESPACE/NAME"))
    });
    let vs_flag = vs_flag.transpose()?;
    let mut tls_routes = Vec::new();
    for t in &a.tls_routes {
        let (port, sni) = t.split_once(':').unwrap_or((t, ""));
        let port = port.parse::<i64>().map_err(|_| {
            CliError::usage(format!(
                "--tls-route {t:?}: expected PORT or PORT:SNI[,SNI…]"
            ))
        })?;
        tls_routes.push(TlsRoute {
            port,
            sni_hosts: sni
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        });
    }
    let background_flags = if a.background_analysis.is_empty() {
        None
    } else {
        Some(promote::Background {
            metrics: load_metrics(&a.background_analysis, &given, Some(a.background_interval))?,
            starting_step: 0,
        })
    };

    let (namespace, name, steps, analyses, background, target) = match from_rollout {
        Some(r) => {
            let (namespace, name) = match vs_flag {
                Some(v) => v,
                None => r.virtual_service,
            };
            let mut target = r.target;
            target.tls_routes.extend(tls_routes);
            target.tcp_ports.extend(&a.tcp_routes);
            (namespace, name, r.steps, r.analyses, r.background, target)
        }
        None => {
            let (namespace, name) = vs_flag.ok_or_else(|| {
                CliError::usage("give --virtual-service NAMESPACE/NAME (or --rollout FILE)")
            })?;
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
                _ => return Err(CliError::usage(
                    "give --stable-subset and --canary-subset, or --stable-host and --canary-host",
                )),
            };
            if a.steps.is_empty() || a.steps.iter().any(|w| *w > 100) {
                return Err(CliError::usage("--steps must be weights between 0 and 100"));
            }
            let analysis = if a.analysis.is_empty() {
                Vec::new()
            } else {
                load_metrics(&a.analysis, &given, None)?
            };
            let steps = default_steps(&a.steps, a.step_pause, !analysis.is_empty());
            let target = Target {
                http_routes: a.routes.clone(),
                tls_routes,
                tcp_ports: a.tcp_routes.clone(),
                destinations,
            };
            (namespace, name, steps, vec![analysis], None, target)
        }
    };
    let background = background_flags.or(background);
    if !a.watch.is_zero() && background.is_none() {
        return Err(CliError::usage(
            "--watch keeps the background analysis running after the last step: give \
             --background-analysis (or a Rollout with canary.analysis)",
        ));
    }
    let canary = match &target.destinations {
        Destinations::Subsets { canary, .. } | Destinations::Hosts { canary, .. } => canary.clone(),
    };
    let weights: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            promote::Step::SetWeight(w) => Some(w.to_string()),
            _ => None,
        })
        .collect();
    Ok(Plan {
        // The same command gives the same id, so a rerun resumes this promotion.
        id: format!("{namespace}/{name}:{canary}:{}", weights.join(",")),
        virtual_service: VirtualServiceRef {
            namespace,
            name,
            version: a.istio_version.clone(),
        },
        steps,
        target,
        analyses,
        background,
        watch: a.watch,
        sources: sources(&a.source, None, &a.prometheus)?,
        on_inconclusive: match a.on_inconclusive {
            InconclusiveAction::Pause => OnInconclusive::Pause,
            InconclusiveAction::Rollback => OnInconclusive::Rollback,
        },
        analysis_once: a.analysis_once,
    })
}

/// Prints events: on a terminal, a line each under a live status line (step, weight, time
/// left in the step, last verdict) redrawn every second; JSON lines otherwise. Appends them to
/// the audit ledger.
pub struct EventSink {
    tty: bool,
    human: bool,
    audit: Option<Ledger>,
    recording: RecordingFailure,
    status: Arc<Mutex<Status>>,
    ticker: Option<std::thread::JoinHandle<()>>,
    /// Audit write failures (reported at the end).
    pub audit_errors: Vec<String>,
}

impl EventSink {
    /// Events go to `audit` if given; a failure to record one is reported to `recording`
    /// (the promotion stops before its next weight change). On a terminal, start the status
    /// line.
    pub fn new(audit: Option<Ledger>, recording: RecordingFailure, steps: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        let status = Arc::new(Mutex::new(Status::new(steps)));
        let ticker = tty.then(|| {
            let status = status.clone();
            std::thread::spawn(move || loop {
                std::thread::sleep(Duration::from_secs(1));
                let s = status.lock().unwrap_or_else(|p| p.into_inner());
                if s.done {
                    break;
                }
                eprint!("\r\x1b[2K{}", s.line());
            })
        });
        EventSink {
            tty,
            human: tty,
            audit,
            recording,
            status,
            ticker,
            audit_errors: Vec::new(),
        }
    }

    /// Show and record one event.
    pub fn event(&mut self, id: &str, e: &Event) {
        let entry = Entry::new(id, serde_json::to_value(e).unwrap_or_default());
        {
            let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
            s.update(e);
            if self.tty {
                eprint!("\r\x1b[2K{}\n", human(e));
                if !s.done {
                    eprint!("{}", s.line());
                }
            } else if self.human {
                eprintln!("{}", human(e));
            } else {
                eprintln!("{}", entry.body);
            }
        }
        self.write(&entry);
    }

    /// Record an entry that is not a promotion event (`policy.*`), showing it as JSON.
    pub fn record(&mut self, id: &str, body: serde_json::Value) {
        let entry = Entry::new(id, body);
        if !self.tty && !self.human {
            eprintln!("{}", entry.body);
        }
        self.write(&entry);
    }

    fn write(&mut self, entry: &Entry) {
        let Some(ledger) = &self.audit else { return };
        let Err(e) = ledger.append_blocking(entry) else {
            return;
        };
        let why = e.to_string();
        self.recording.fail(why.clone());
        self.audit_errors.push(why);
    }

    /// Lines for people even when stderr is not a terminal (the demo).
    pub fn human_lines(mut self) -> Self {
        self.human = true;
        self
    }

    /// Stop the status line.
    pub fn close(&mut self) {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).done = true;
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
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

/// A VirtualService that is missing, or whose routes do not fit the flags, is a usage error
/// (exit 64) found before anything changes.
async fn preflight(p: &Promotion) -> Result<(), CliError> {
    let vs = &p.applier.target;
    let object = match p.applier.get().await {
        Ok(o) => o,
        Err(ApplyError::NotFound(name)) => {
            return Err(CliError::usage(format!(
                "VirtualService {name} not found (networking.istio.io/{}): check \
                 --virtual-service or the Rollout's trafficRouting.istio.virtualService",
                vs.version
            )))
        }
        // Other failures (API down, RBAC) are for the run to report as infrastructure errors.
        Err(_) => return Ok(()),
    };
    crate::traffic::desired(&object, &p.target, 0)
        .map(|_| ())
        .map_err(|e| {
            CliError::usage(format!(
                "VirtualService {}/{} does not fit the promotion: {e}",
                vs.namespace, vs.name
            ))
        })
}

/// The deploy gate: ask the policy at `url` with the budgets of every Judge SLO the promotion
/// uses. `Some(exit)` when the promotion must not start; every answer is recorded.
async fn gate(
    promotion: &Promotion,
    url: &str,
    a: &PromoteArgs,
    sink: &mut EventSink,
) -> Result<Option<Exit>, CliError> {
    let judges = promotion
        .analyses
        .iter()
        .flatten()
        .chain(promotion.background.iter().flat_map(|b| &b.metrics))
        .filter_map(|m| m.judge.as_ref())
        .filter(|j| !j.spec.slos.is_empty());
    let mut budgets = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for j in judges {
        if !seen.insert((j.spec.name.clone(), j.args.clone())) {
            continue;
        }
        let b = crate::judging::budget::run(
            &j.spec,
            &j.args,
            &promotion.sources,
            chrono::Utc::now(),
            a.policy_timeout,
        )
        .await
        .map_err(|e| CliError::infrastructure(format!("the deploy gate's budgets: {e}")))?;
        budgets.push(b);
    }
    let input = serde_json::json!({
        "promotion": promotion.id,
        "virtual_service": a.virtual_service,
        "budgets": budgets,
        "exhausted": budgets.iter().any(|b| b.exhausted),
        "fast_burn": budgets.iter().any(|b| b.fast_burn),
    });
    let id = promotion.id.as_str();
    match crate::policy::ask(url, &input, a.policy_timeout).await {
        Ok(v) if v.allow => {
            sink.record(
                id,
                serde_json::json!({"event": "policy.evaluated", "policy": url, "allow": true,
                    "deny": v.deny, "exception": v.exception, "input": input}),
            );
            if v.exception.is_some() {
                sink.record(
                    id,
                    serde_json::json!({"event": "exception.granted", "policy": url,
                        "exception": v.exception, "excused": v.deny}),
                );
            }
            Ok(None)
        }
        Ok(v) => {
            let reason = format!("denied by the deploy policy: {}", v.deny.join("; "));
            sink.record(
                id,
                serde_json::json!({"event": "policy.violated", "policy": url, "allow": false,
                    "deny": v.deny, "input": input}),
            );
            // The denial is the outcome: a line that cannot be printed does not change it.
            if let Err(e) = write_stdout(&format!("PolicyDenied: {reason} (no weight was changed)"))
            {
                eprintln!("warning: {}", e.message);
            }
            Ok(Some(Exit::PolicyDenied))
        }
        Err(e) if a.policy_fail == FailMode::Open => {
            eprintln!("warning: {e}; --policy-fail open: promoting without the policy");
            sink.record(
                id,
                serde_json::json!({"event": "policy.bypassed", "policy": url,
                    "reason": e.to_string(), "input": input}),
            );
            Ok(None)
        }
        Err(e) => {
            sink.record(
                id,
                serde_json::json!({"event": "policy.violated", "policy": url,
                    "reason": format!("{e} (--policy-fail closed)"), "input": input}),
            );
            Err(CliError::infrastructure(format!(
                "{e}: no weight was changed (--policy-fail closed; `open` would promote anyway)"
            )))
        }
    }
}

/// Run the command: exit with the promotion's outcome (or the policy's denial), whatever
/// happens to the reports written after it.
pub fn run(a: &PromoteArgs) -> Result<Exit, CliError> {
    let runtime = super::runtime(Some(2))?;
    let plan = plan(a)?;
    runtime.block_on(async {
        let signal = super::terminate_signal();
        let client = kube::Client::try_default().await.map_err(|e| {
            CliError::usage(format!(
                "no Kubernetes connection (KUBECONFIG or in-cluster config): {e}"
            ))
        })?;
        let promotion = plan.connect(client, a.kube_deadline);
        preflight(&promotion).await?;
        let ledger = match a.audit.as_deref() {
            None => None,
            // The database down is exit 3, a bad target or a newer schema 64; either way no
            // traffic has moved.
            Some(target) => Some(Ledger::open(target).await?),
        };
        let mut sink = EventSink::new(ledger, promotion.recording.clone(), promotion.steps.len());
        if let (Some(url), false) = (&a.policy, a.abort) {
            if let Some(exit) = gate(&promotion, url, a, &mut sink).await? {
                sink.close();
                return Ok(exit);
            }
        }
        let report = if a.abort {
            promotion.abort().await
        } else {
            let id = promotion.id.clone();
            promotion
                .run(signal, a.pause_on_signal, &mut |e| sink.event(&id, e))
                .await
        };
        if a.abort {
            for e in &report.events {
                sink.event(&report.id, e);
            }
        }
        sink.close();
        // The traffic has already moved: the exit code is the promotion's outcome whatever
        // happens to the reports; a failed write is a warning, never a usage error.
        let mut warnings = vec![];
        if let Err(e) = write_reports(&report, a.report.as_ref()) {
            warnings.push(e.message);
        }
        if let Some(path) = &a.html {
            if let Err(e) = std::fs::write(path, crate::report::promotion::html(&report)) {
                warnings.push(format!("cannot write {}: {e}", path.display()));
            }
        }
        if let Err(e) = write_stdout(&format!("{:?}: {}", report.outcome, report.reason)) {
            warnings.push(e.message);
        }
        if !sink.audit_errors.is_empty() {
            warnings.push(format!(
                "audit ledger writes failed: {}",
                sink.audit_errors.join("; ")
            ));
        }
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        Ok(Exit::from(report.outcome))
    })
}
