//! `canary calibrate`: the false-alarm rate of a Judge spec, from an A/A test over history.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::args::{load_metrics, parse_args, Output, SourceArgs, TimeRange};
use super::prometheus_args::PrometheusArgs;
use super::{write_stdout, CliError, Exit};
use crate::calibrate::{self, Calibration, Mode, Plan};
use crate::judge::Verdict;
use crate::report::terminal::{sparkline, strip};

/// Judge the baseline against itself over many windows of history (A/A) and report how often
/// the Judge spec would have raised a false alarm, per metric and overall; the effect
/// threshold and confidence that would bring each metric under --target; and, with
/// regressions of known sizes injected into the same history, how often and how fast each
/// metric catches them. Exit 0 when the overall false-alarm rate meets the target, 1 when it
/// does not, 3 when a query failed, 64 on bad arguments.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// The Judge spec.
    #[arg(value_name = "JUDGE.yaml")]
    pub judge: PathBuf,
    /// Judge argument NAME=VALUE (repeatable).
    #[arg(long = "arg", short = 'a', value_name = "NAME=VALUE")]
    pub args: Vec<String>,
    #[command(flatten)]
    pub range: TimeRange,
    /// Time between judged windows; default the Judge's window (windows do not overlap).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub every: Option<Duration>,
    /// `adjacent`: the baseline's latest window against the window before it (the same
    /// pods). `args`: canary and baseline as the args select them (point the canary args at
    /// other stable pods).
    #[arg(long, value_enum, default_value_t = Mode::Adjacent)]
    pub mode: Mode,
    /// Acceptable false-alarm rate: `1%` or `0.01`.
    #[arg(long, default_value = "1%", value_parser = parse_rate)]
    pub target: f64,
    /// Regression sizes to inject, as factors (1.25 = 25 % worse), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1.1,1.25,1.5,2")]
    pub inject: Vec<f64>,
    /// Also replay analyses the way Argo polls the Judge: each starts an analysis that looks
    /// this many times (`count`), every `--poll-interval`, anchored at its start, failing on
    /// more than `--failure-limit` failed looks. Reports the per-analysis false-alarm rate
    /// (with its 95 % bound) and, with each metric made worse from the start, how often and
    /// how fast an analysis fails. The exit code then follows the per-analysis rate.
    #[arg(long, value_name = "COUNT", requires = "poll_interval")]
    pub polls: Option<u32>,
    /// Time between looks of one analysis (Argo `interval`), e.g. 2m.
    #[arg(long, value_parser = humantime::parse_duration, requires = "polls")]
    pub poll_interval: Option<Duration>,
    /// Failed looks an analysis tolerates (Argo `failureLimit`).
    #[arg(long, default_value_t = 0, requires = "polls")]
    pub failure_limit: u32,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Also write an HTML report (rates against the target, threshold curves, detection).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("{s:?} is not a rate such as 1% or 0.01"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?}: a rate is between 0 and 1 (0 % and 100 %)"))
    }
}

/// Run the command: exit 0 when the false-alarm rate meets the target, 1 when it does not.
pub fn run(a: &CalibrateArgs) -> Result<Exit, CliError> {
    let given = parse_args(&a.args)?;
    let (from, to) = a.range.resolve()?;
    if let Some(bad) = a.inject.iter().find(|f| !(f.is_finite() && **f > 1.0)) {
        return Err(CliError::usage(format!(
            "--inject {bad}: a regression factor is above 1 (1.25 = 25 % worse)"
        )));
    }
    let metrics = load_metrics(std::slice::from_ref(&a.judge), &given, None)?;
    let spec = match metrics.as_slice() {
        [m] => m.judge.clone(),
        _ => None,
    }
    .ok_or_else(|| {
        CliError::usage(format!(
            "{}: calibrate takes one Judge spec (kind: Judge); for Argo templates use backtest",
            a.judge.display()
        ))
    })?;
    let every = a
        .every
        .unwrap_or(spec.spec.window)
        .max(Duration::from_secs(1));
    let moments = (to - from).num_seconds() / every.as_secs() as i64 + 1;
    if moments > 50_000 {
        return Err(CliError::usage(format!(
            "{moments} windows: use a larger --every or a shorter range"
        )));
    }
    let sources = a.source.sources(&a.prometheus)?;
    let plan = Plan {
        from,
        to,
        every,
        mode: a.mode,
        target: a.target,
        inject: a.inject.clone(),
        polls: match (a.polls, a.poll_interval) {
            (Some(count), Some(interval)) if count > 0 && !interval.is_zero() => {
                Some(calibrate::Polls {
                    count,
                    interval,
                    failure_limit: a.failure_limit,
                })
            }
            (Some(_), _) => {
                return Err(CliError::usage(
                    "--polls and --poll-interval must both be above zero",
                ))
            }
            _ => None,
        },
    };
    let runtime = super::runtime(Some(2))?;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(spec.spec.metrics.len() as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} calibrate [{bar:30}] {msg}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b.enable_steady_tick(Duration::from_millis(120));
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let outcome = runtime.block_on(async {
        let mut progress = |msg: &str, done: usize, _: usize| {
            bar.set_position(done as u64);
            bar.set_message(msg.to_string());
        };
        calibrate::run(&spec.spec, &spec.args, &plan, &sources, &mut progress).await
    });
    bar.finish_and_clear();
    let c = outcome?;
    if let Some(path) = &a.html {
        super::write_report(path, &crate::report::calibration::html(&c));
    }
    let text = match a.output {
        Output::Json => serde_json::to_string_pretty(&c)
            .map_err(|e| CliError::usage(format!("cannot encode the calibration: {e}")))?,
        Output::Table => render(&c),
    };
    write_stdout(&text)?;
    let meets = c.polled.as_ref().map_or(c.meets_target, |p| p.meets_target);
    Ok(Exit::yes_or_no(meets))
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1} %", v * 100.0)
    } else {
        "–".into()
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| humantime::format_duration(Duration::from_secs(s.round() as u64)).to_string())
        .unwrap_or_else(|| "–".into())
}

/// The calibration for a person: per-metric rates and recommendations, detection, verdict.
pub fn render(c: &Calibration) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mode = match c.mode {
        Mode::Adjacent => "baseline's latest window vs the window before",
        Mode::Args => "canary and baseline as the args select them",
    };
    let verdicts: Vec<Verdict> = c.verdicts.iter().map(|v| v.1).collect();
    let mut out = format!(
        "A/A calibration of {}: {} → {}, {} windows ({mode})\n\n  verdicts  {}\n\n",
        c.judge,
        c.from,
        c.to,
        c.moments,
        strip(&verdicts, 100)
    );
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "metric",
        "A/A canary÷baseline",
        "windows",
        "false alarms",
        "rate (95 % bound)",
        "effect now → for target",
        "confidence now → for target",
    ]);
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    for m in &c.metrics {
        let ratio: Vec<f64> = m.ratio.iter().map(|p| p.1).collect();
        t.add_row(vec![
            m.name.clone(),
            sparkline(&ratio, 24, None),
            format!("{} (+{} nodata)", m.windows, m.nodata),
            m.false_alarms.to_string(),
            format!(
                "{} (≤ {}) {}",
                pct(m.false_alarm_rate),
                pct(m.false_alarm_rate_upper95),
                mark(m.meets_target)
            ),
            format!(
                "{} → {}",
                crate::judge::words::readable(m.effect),
                m.recommended_effect
                    .map(crate::judge::words::readable)
                    .unwrap_or_else(|| "none in range".into())
            ),
            format!(
                "{} → {}",
                m.confidence,
                m.recommended_confidence
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "none in range".into())
            ),
        ]);
    }
    out.push_str(&t.to_string());
    out.push_str("\n\nInjected regressions: caught in a fully regressed window · caught within one window of the start · time to first alarm (median / p90)\n");
    let mut d = Table::new();
    d.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["metric".to_string()];
    if let Some(m) = c.metrics.first() {
        header.extend(m.detection.iter().map(|x| format!("×{}", x.factor)));
    }
    d.set_header(header);
    for m in &c.metrics {
        let mut row = vec![m.name.clone()];
        row.extend(m.detection.iter().map(|x| {
            format!(
                "{} · {} · {} / {}",
                pct(x.rate),
                pct(x.caught_within_window),
                secs(x.median_seconds),
                secs(x.p90_seconds)
            )
        }));
        d.add_row(row);
    }
    out.push_str(&d.to_string());
    let judged = c.moments - c.inconclusive;
    out.push_str(&format!(
        "\n\nOverall: the A/A verdict was fail in {} of {} judged windows ({}, 95 % upper \
         bound {}), marginal in {}, inconclusive in {} — {} the {} target.{}\nSLO burn-rate \
         gates do not compare canary to baseline and are not part of A/A.\nqueries: {} range \
         queries fetched, {} sent as asked",
        c.fail,
        judged,
        pct(c.false_alarm_rate),
        pct(c.false_alarm_rate_upper95),
        c.marginal,
        c.inconclusive,
        if c.meets_target { "meets" } else { "ABOVE" },
        pct(c.target),
        if judged < c.windows_needed {
            format!(
                "\nOnly {judged} windows: {} judged windows are needed before no alarm at all \
                 shows (95 %) a rate under the target — use a longer range or a shorter --every.",
                c.windows_needed
            )
        } else {
            String::new()
        },
        c.queries.range_queries,
        c.queries.passed_through
    ));
    if let Some(p) = &c.polled {
        out.push_str(&render_polled(p, c.target));
    }
    out
}

fn render_polled(p: &calibrate::PolledCalibration, target: f64) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let judged = p.analyses - p.inconclusive;
    let mut out = format!(
        "\n\nPolled as Argo polls (count {}, interval {}, failureLimit {}): {} of {} A/A \
         analyses failed ({}, 95 % upper bound {}; {} inconclusive), {} of {} looks — {} the {} \
         target per analysis.\n",
        p.count,
        secs(Some(p.interval_seconds as f64)),
        p.failure_limit,
        p.failed,
        judged,
        pct(p.false_alarm_rate),
        pct(p.false_alarm_rate_upper95),
        p.inconclusive,
        p.failed_looks,
        p.looks,
        if p.meets_target { "meets" } else { "ABOVE" },
        pct(target)
    );
    let mut d = Table::new();
    d.load_preset(UTF8_FULL_CONDENSED);
    let factors: Vec<f64> = {
        let mut f: Vec<f64> = p.detection.iter().map(|d| d.factor).collect();
        f.dedup();
        f.sort_by(f64::total_cmp);
        f.dedup();
        f
    };
    let mut header = vec!["metric made worse from the start".to_string()];
    header.extend(
        factors
            .iter()
            .map(|f| format!("×{f}: analyses failed · median time")),
    );
    d.set_header(header);
    let mut names: Vec<&str> = p.detection.iter().map(|d| d.metric.as_str()).collect();
    names.dedup();
    for name in names {
        let mut row = vec![name.to_string()];
        for f in &factors {
            let x = p
                .detection
                .iter()
                .find(|d| d.metric == name && d.factor == *f);
            row.push(x.map_or("–".into(), |x| {
                format!(
                    "{} of {} · {}",
                    x.caught,
                    x.analyses,
                    secs(x.median_seconds)
                )
            }));
        }
        d.add_row(row);
    }
    out.push_str(&d.to_string());
    out
}
