//! `canary backtest`: how would this template have judged the past?

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::args::{load_metrics, parse_args, Output, SourceArgs, TimeRange};
use super::prometheus_args::PrometheusArgs;
use super::{write_stdout, CliError, Exit};
use crate::backtest::{self, Backtest, Plan, Point, Subject};
use crate::judge::{Classification, Verdict};
use crate::report::terminal::{range, sparkline, strip};

/// Replay an AnalysisTemplate or a Judge spec over a past time range: at each moment, run it
/// as it would have run then (queries evaluated at that time; an Argo analysis with its
/// interval, count and limits on a virtual clock), and print a verdict timeline with the
/// deciding numbers. Each query is fetched once as a range query for the whole range and
/// every moment is judged from memory. Exit 0 when every moment could be analysed, 3 when
/// some could not (a query or the template failed), 64 on bad arguments.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// AnalysisTemplate files or one Judge spec (several files run together as one analysis).
    #[arg(required = true, value_name = "TEMPLATE.yaml")]
    pub templates: Vec<PathBuf>,
    /// Template argument NAME=VALUE (repeatable).
    #[arg(long = "arg", short = 'a', value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub range: TimeRange,
    /// Time between moments.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub every: Duration,
    /// Longest virtual run of an Argo analysis; one with an interval and no count is ended
    /// (as terminated) after this long.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub limit: Duration,
    /// Judge the way Argo polls: each moment starts an analysis of a lone Judge spec that
    /// polls it this many times (`count`), every `--poll-interval`, anchored at the moment
    /// (`since`), failing on more than `--failure-limit` failed polls. The summary is then
    /// the per-analysis false-alarm or detection rate.
    #[arg(long, value_name = "COUNT", requires = "poll_interval")]
    pub polls: Option<u32>,
    /// Time between polls of one analysis (Argo `interval`), e.g. 2m.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub poll_interval: Option<Duration>,
    /// Failed polls an analysis tolerates (Argo `failureLimit`, default 0).
    #[arg(long, default_value_t = 0)]
    pub failure_limit: u32,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Also write an HTML report (verdict timeline, canary vs baseline over the range).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
}

/// Run the command: exit 0 when every moment could be analysed, 3 when some could not.
pub fn run(a: &BacktestArgs) -> Result<Exit, CliError> {
    let given = parse_args(&a.args)?;
    let (from, to) = a.range.resolve()?;
    if a.every.as_secs() == 0 {
        return Err(CliError::usage("--every must be at least 1s"));
    }
    let moments = (to - from).num_seconds() / a.every.as_secs() as i64 + 1;
    if moments > 100_000 {
        return Err(CliError::usage(format!(
            "{moments} moments from --from to --to every {}: use a larger --every",
            humantime::format_duration(a.every)
        )));
    }
    let metrics = load_metrics(&a.templates, &given, None)?;
    let subject =
        match (Subject::of(metrics), a.polls, a.poll_interval) {
            (Subject::Judge(j), Some(count), Some(interval)) => {
                Subject::Analysis(vec![backtest::polled_judge(
                    j,
                    count,
                    interval,
                    a.failure_limit,
                )])
            }
            (Subject::Analysis(_), Some(_), _) => return Err(CliError::usage(
                "--polls replays a lone Judge spec; an AnalysisTemplate brings its own interval \
                 and count",
            )),
            (s, _, _) => s,
        };
    let sources = a.source.sources(&a.prometheus)?;
    let plan = Plan {
        from,
        to,
        every: a.every,
        limit: a.limit,
    };
    let runtime = super::runtime(Some(2))?;
    let bar = progress_bar(moments as u64);
    let result = runtime.block_on(async {
        let mut on_point = |p: &Point, done: usize, _total: usize| {
            bar.set_position(done as u64);
            bar.set_message(format!("{} {}", p.at, p.outcome));
        };
        backtest::run(&subject, &given, plan, &sources, &mut on_point).await
    });
    bar.finish_and_clear();
    if let Some(path) = &a.html {
        let page = crate::report::backtest::html(&result);
        super::write_report(path, &page);
    }
    let text = match a.output {
        Output::Json => serde_json::to_string_pretty(&result)
            .map_err(|e| CliError::usage(format!("cannot encode the backtest: {e}")))?,
        Output::Table => render(&result, terminal_width()),
    };
    write_stdout(&text)?;
    Ok(if result.points.iter().any(Point::errored) {
        Exit::Infrastructure
    } else {
        Exit::Success
    })
}

/// A progress bar on a terminal; hidden otherwise.
fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} backtest [{bar:30}] {pos}/{len} moments · {elapsed} · {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(120)
}

/// The timeline for a person: a strip of outcomes, per-metric sparklines (judge), every moment
/// that was not a pass (runs of passes collapsed), and the totals.
pub fn render(b: &Backtest, width: usize) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
    let strip_width = width.saturating_sub(12).clamp(10, 120);
    let outcomes: Vec<backtest::Outcome> = b.points.iter().map(|p| p.outcome).collect();
    let mut out = format!(
        "Backtest of {} ({}): {} → {}, every {}, {} moments\n\n  timeline  {}\n",
        b.name,
        b.kind,
        b.from,
        b.to,
        humantime::format_duration(Duration::from_secs(b.every_seconds)),
        b.points.len(),
        strip(&outcomes, strip_width)
    );
    out.push_str("            ✓ pass  ~ marginal  ? inconclusive  ✗ fail  ! error\n\n");
    if b.kind == "judge" && !b.series.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec!["metric", "canary", "baseline", "verdicts", "fail"]);
        let spark_width = (width / 4).clamp(10, 40);
        for (name, s) in &b.series {
            let c: Vec<f64> = s.canary.iter().map(|p| p.1).collect();
            let bl: Vec<f64> = s.baseline.iter().map(|p| p.1).collect();
            let both: Vec<f64> = c.iter().chain(&bl).copied().collect();
            let scale = Some(range(&both));
            let classes: Vec<Classification> = b
                .points
                .iter()
                .map(|p| {
                    p.judgement
                        .as_ref()
                        .and_then(|j| j.metrics.iter().find(|m| &m.name == name))
                        .map_or(Classification::Error, |m| m.judgement.classification)
                })
                .collect();
            let fails = classes
                .iter()
                .filter(|c| matches!(c, Classification::High | Classification::Low))
                .count();
            t.add_row(vec![
                name.clone(),
                sparkline(&c, spark_width, scale),
                sparkline(&bl, spark_width, scale),
                strip(&classes, spark_width),
                format!("{fails}/{}", classes.len()),
            ]);
        }
        out.push_str(&t.to_string());
        out.push_str("\n\n");
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(width.max(60) as u16);
    t.set_header(vec!["moment", "outcome", "score", "why"]);
    let mut passes = 0usize;
    let flush = |t: &mut Table, passes: &mut usize| {
        if *passes > 0 {
            t.add_row(vec![
                format!("… {} moment(s)", passes),
                Verdict::Pass.as_str().to_string(),
                String::new(),
                String::new(),
            ]);
            *passes = 0;
        }
    };
    for p in &b.points {
        if p.outcome.passed() {
            passes += 1;
            continue;
        }
        flush(&mut t, &mut passes);
        let mut why = p.why.clone();
        if why.chars().count() > 160 {
            why = why.chars().take(157).collect::<String>() + "…";
        }
        t.add_row(vec![
            p.at.clone(),
            p.outcome.to_string(),
            p.score.map(|s| format!("{s:.0}")).unwrap_or_default(),
            why,
        ]);
    }
    flush(&mut t, &mut passes);
    out.push_str(&t.to_string());
    let total = b.points.len().max(1);
    let failed = b.points.iter().filter(|p| p.failed()).count();
    let counts: Vec<String> = b.summary.iter().map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!(
        "\n\n{} — would have failed {failed} of {} moments ({:.1} %)\nqueries: {} range \
         queries fetched, {} answered from memory, {} sent as asked",
        counts.join(" · "),
        b.points.len(),
        100.0 * failed as f64 / total as f64,
        b.queries.range_queries,
        b.queries.from_memory,
        b.queries.passed_through
    ));
    out
}
