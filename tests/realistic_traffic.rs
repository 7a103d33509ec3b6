//! The judge on realistic traffic (`tests/common/traffic.rs`): false alarms and detection of
//! the shipped Judge spec v2, the Kayenta-compatible spec and a Flagger-style threshold
//! check, on the same simulated analyses (10 minutes, 30 s steps, Argo polling 5 times).
//!
//! Two paths, one answer:
//! - `simulated_figures` judges thousands of analyses in process with the engine's pure
//!   judge (`classify` + `score` over the spec's own metric configurations) and prints the
//!   README's table; it asserts the figures.
//! - `prometheus_path_agrees` writes a subset to a real Prometheus through `promtool` and
//!   judges every poll through `judging::run` (the code `canary serve` and `backtest` run),
//!   with the analysis start found in the data; every poll's verdict must equal the
//!   in-process one. That is what lets the table stand for the real paths.
//!
//! `CANARY_SIM_ANALYSES=N` runs N healthy analyses per scenario (default 600).

mod common;

use canary_engine::calibrate::upper95;
use canary_engine::judge::classify::{classify, MetricData};
use canary_engine::judge::histogram::HistogramData;
use canary_engine::judge::score::{score, Scored, Verdict};
use canary_engine::judge::share::ShareData;
use canary_engine::judge::Classification;
use canary_engine::stats::counts::{exact_p_value, Counts};
use canary_engine::stats::histogram::{quantile, StepBuckets};
use canary_engine::stats::sequential::Interval;
use canary_engine::template::judge_spec::{self, JudgeSpec, MetricSource};
use common::traffic::{self, Scenario, Step, BOUNDS, POLLS, STEPS};

const SEED: u64 = 0x5eed_2026;

fn load(path: &str) -> JudgeSpec {
    let text = std::fs::read_to_string(common::project_path(path)).unwrap();
    judge_spec::parse_str(path, &text)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .remove(0)
}

fn buckets(steps: &[Step]) -> Vec<StepBuckets> {
    steps
        .iter()
        .map(|s| StepBuckets {
            canary: s.canary.buckets.clone(),
            baseline: s.baseline.buckets.clone(),
        })
        .collect()
}

fn intervals(steps: &[Step]) -> Vec<Interval> {
    steps
        .iter()
        .map(|s| Interval {
            canary: Counts {
                bad: s.canary.errors,
                total: s.canary.requests,
            },
            baseline: Counts {
                bad: s.baseline.errors,
                total: s.baseline.requests,
            },
        })
        .collect()
}

fn verdict(spec: &JudgeSpec, data: impl Fn(&MetricSource) -> MetricData) -> Verdict {
    classes(spec, data).0
}

fn classes(
    spec: &JudgeSpec,
    data: impl Fn(&MetricSource) -> MetricData,
) -> (Verdict, Vec<Classification>) {
    let scored: Vec<Scored> = spec
        .metrics
        .iter()
        .map(|m| {
            let j = classify(&m.config, &data(&m.source));
            Scored {
                name: m.name.clone(),
                group: m.group.clone(),
                classification: j.classification,
                critical: j.critical,
                must_have_data: m.config.must_have_data,
            }
        })
        .collect();
    (
        score(&spec.scoring, &scored).verdict,
        scored.iter().map(|s| s.classification).collect(),
    )
}

/// The v2 spec on the steps so far (SLOs aside: they watch the whole service, not the
/// comparison, and the simulated service stays within its objective).
fn judge_v2(spec: &JudgeSpec, steps: &[Step], weight: f64) -> Verdict {
    judge_v2_metrics(spec, steps, weight).0
}

fn judge_v2_metrics(
    spec: &JudgeSpec,
    steps: &[Step],
    weight: f64,
) -> (Verdict, Vec<Classification>) {
    classes(spec, |source| v2_data(source, steps, weight))
}

/// What the v2 spec's metric of kind `source` judges on `steps` at canary weight `weight`.
fn v2_data(source: &MetricSource, steps: &[Step], weight: f64) -> MetricData {
    match source {
        MetricSource::Counters { .. } | MetricSource::Counts { .. } => MetricData {
            intervals: Some(intervals(steps)),
            ..MetricData::default()
        },
        MetricSource::Histogram { slower_than, .. } => MetricData {
            histogram: Some(HistogramData {
                bounds: BOUNDS.to_vec(),
                steps: buckets(steps),
                slower_than: *slower_than,
            }),
            ..MetricData::default()
        },
        MetricSource::Share { .. } => MetricData {
            share: Some(ShareData {
                canary: steps.iter().map(|s| s.canary.requests).collect(),
                baseline: steps.iter().map(|s| s.baseline.requests).collect(),
                expected: weight,
                expected_steps: None,
            }),
            ..MetricData::default()
        },
        MetricSource::Series(_) => MetricData::default(),
    }
}

/// The Kayenta-compatible spec: per-step points over the last 10 minutes.
fn judge_kayenta(spec: &JudgeSpec, steps: &[Step]) -> Verdict {
    let per_step = |f: &dyn Fn(&traffic::Side) -> f64| -> (Vec<f64>, Vec<f64>) {
        (
            steps.iter().map(|s| f(&s.canary)).collect(),
            steps.iter().map(|s| f(&s.baseline)).collect(),
        )
    };
    verdict(spec, |source| match source {
        MetricSource::Counts { .. } => MetricData {
            intervals: Some(intervals(steps)),
            ..MetricData::default()
        },
        MetricSource::Series(q) => {
            let (c, b) = if q.contains("histogram_quantile(0.99") {
                per_step(&|s| quantile(&BOUNDS, &s.buckets, 0.99))
            } else if q.contains("histogram_quantile(0.5") {
                per_step(&|s| quantile(&BOUNDS, &s.buckets, 0.5))
            } else {
                per_step(&|s| s.requests / traffic::STEP as f64)
            };
            MetricData {
                canary: Some(c),
                baseline: Some(b),
                ..MetricData::default()
            }
        }
        _ => MetricData::default(),
    })
}

/// Flagger's default checks on the canary's last minute: success rate ≥ 99 %, p99 ≤ 500 ms.
fn judge_flagger(steps: &[Step]) -> Verdict {
    let last = &steps[steps.len().saturating_sub(2)..];
    let (req, err): (f64, f64) = last.iter().fold((0.0, 0.0), |(r, e), s| {
        (r + s.canary.requests, e + s.canary.errors)
    });
    if req == 0.0 {
        return Verdict::Inconclusive;
    }
    let mut pooled = vec![0.0; BOUNDS.len()];
    for s in last {
        for (p, c) in pooled.iter_mut().zip(&s.canary.buckets) {
            *p += c;
        }
    }
    let p99 = quantile(&BOUNDS, &pooled, 0.99);
    if 1.0 - err / req < 0.99 || p99 > 500.0 {
        Verdict::Fail
    } else {
        Verdict::Pass
    }
}

#[derive(Default)]
struct Tally {
    judgements: usize,
    passes: usize,
    fails: usize,
    analyses: usize,
    failed_analyses: usize,
    detection_minutes: Vec<f64>,
}

impl Tally {
    fn add(&mut self, polls: &[Verdict]) {
        self.analyses += 1;
        self.judgements += polls.len();
        self.passes += polls.iter().filter(|v| **v == Verdict::Pass).count();
        self.fails += polls.iter().filter(|v| **v == Verdict::Fail).count();
        if let Some(i) = polls.iter().position(|v| *v == Verdict::Fail) {
            self.failed_analyses += 1;
            self.detection_minutes.push((i + 1) as f64 * 2.0);
        }
    }

    fn analysis_rate(&self) -> f64 {
        self.failed_analyses as f64 / self.analyses as f64
    }

    fn row(&self, healthy: bool) -> String {
        let pct = |x: f64| format!("{:.1} %", x * 100.0);
        let mut t = self.detection_minutes.clone();
        t.sort_by(f64::total_cmp);
        let median = t
            .get(t.len() / 2)
            .map_or("—".into(), |m| format!("{m} min"));
        if healthy {
            format!(
                "pass {} · fail {} of {} polls · fail {} of {} analyses ({}, 95 % ≤ {})",
                pct(self.passes as f64 / self.judgements as f64),
                pct(self.fails as f64 / self.judgements as f64),
                self.judgements,
                self.failed_analyses,
                self.analyses,
                pct(self.analysis_rate()),
                pct(upper95(self.failed_analyses, self.analyses)),
            )
        } else {
            format!(
                "caught {} of {} analyses ({}), median {median}",
                self.failed_analyses,
                self.analyses,
                pct(self.analysis_rate())
            )
        }
    }
}

fn polls(steps: &[Step], judge: impl Fn(&[Step]) -> Verdict) -> Vec<Verdict> {
    (1..=POLLS)
        .map(|p| judge(&steps[..p * STEPS / POLLS]))
        .collect()
}

fn scenarios() -> Vec<Scenario> {
    let busy = |name, weight| Scenario::healthy(name, 100.0, weight);
    vec![
        busy("healthy, busy (100 req/s), 10 %", 0.10),
        busy("healthy, busy, 50 %", 0.50),
        busy("healthy, busy, 1 %", 0.01),
        Scenario::healthy("healthy, quiet (0.3 req/s), 10 %", 0.3, 0.10),
        Scenario::healthy("healthy, quiet (1 req/s), 50 %", 1.0, 0.50),
        Scenario {
            errors: 2.0,
            ..busy("error ratio ×2 (0.3 % → 0.6 %), 10 %", 0.10)
        },
        Scenario {
            errors: 5.0,
            ..busy("error ratio ×5, 10 %", 0.10)
        },
        Scenario {
            latency: 1.3,
            ..busy("latency ×1.3, 10 %", 0.10)
        },
        Scenario {
            tail_frac: 0.03,
            tail_factor: 6.0,
            ..busy("tail: 3 % of requests 6× slower, 10 %", 0.10)
        },
        Scenario {
            share: 0.2,
            ..busy("crash-looping canary: 20 % of its share, 10 %", 0.10)
        },
    ]
}

#[test]
fn simulated_figures() {
    let v2 = load("analysis-templates/judge-istio-golden-signals.yaml");
    let kayenta = load("analysis-templates/judge-istio-kayenta-compatible.yaml");
    let healthy_n: usize = std::env::var("CANARY_SIM_ANALYSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let alpha_errors = v2
        .metrics
        .iter()
        .find(|m| m.name == "errors")
        .and_then(|m| m.config.alpha)
        .unwrap();
    let mut table = vec![
        "| scenario | v2 spec (anchored, one 1 % budget) | Kayenta-compatible | Flagger-style thresholds |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    for (si, s) in scenarios().into_iter().enumerate() {
        let n = if s.is_healthy() { healthy_n } else { 200 };
        let (mut a, mut b, mut c) = (Tally::default(), Tally::default(), Tally::default());
        let mut oracle = 0;
        for i in 0..n {
            let steps = traffic::analysis(&s, SEED + si as u64, i);
            a.add(&polls(&steps, |st| judge_v2(&v2, st, s.weight)));
            b.add(&polls(&steps, |st| judge_kayenta(&kayenta, st)));
            c.add(&polls(&steps, judge_flagger));
            // The most any test of the error ratio can do at the same budget: one exact
            // look at all 10 minutes, knowing in advance that it looks only then.
            let iv = intervals(&steps);
            let (cc, bb) = canary_engine::stats::sequential::totals(&iv);
            if exact_p_value(cc, bb) < alpha_errors {
                oracle += 1;
            }
        }
        let h = s.is_healthy();
        let mut row = format!(
            "| {} | {} | {} | {} |",
            s.name,
            a.row(h),
            b.row(h),
            c.row(h)
        );
        if s.errors == 2.0 {
            row.push_str(&format!(
                " (one exact look after 10 min at the same α = {}: {:.1} %)",
                alpha_errors,
                oracle as f64 / n as f64 * 100.0
            ));
        }
        println!("{row}");
        table.push(row);
        // The figures.
        if h {
            assert!(a.analysis_rate() <= 0.01, "{}: {}", s.name, a.row(h));
            if s.rps >= 100.0 && s.weight >= 0.1 {
                let pass = a.passes as f64 / a.judgements as f64;
                assert!(pass >= 0.9, "{}: {}", s.name, a.row(h));
            }
        } else if s.errors == 2.0 {
            assert!(a.analysis_rate() >= 0.7, "{}: {}", s.name, a.row(h));
        } else {
            assert_eq!(a.failed_analyses, a.analyses, "{}: {}", s.name, a.row(h));
        }
    }
    let out = std::env::temp_dir().join("canary-realistic-traffic.md");
    std::fs::write(&out, table.join("\n") + "\n").unwrap();
    println!("table written to {}", out.display());
}

#[test]
fn prometheus_path_agrees() {
    use canary_engine::judging::{self, AnchorSource, JudgeOptions};
    use canary_engine::source::{PrometheusConfig, Sources};
    let v2 = load("analysis-templates/judge-istio-golden-signals.yaml");
    let picked: Vec<(Scenario, usize)> = scenarios()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| [0, 3, 5, 7, 8, 9].contains(i))
        .map(|(i, s)| (s, i))
        .collect();
    let per = 6;
    let now = chrono::Utc::now().timestamp();
    let cycle = traffic::cycle_secs();
    let start = (now - 3 * 3600) - (now - 3 * 3600).rem_euclid(traffic::STEP);
    let mut lines = Vec::new();
    let mut runs = Vec::new();
    for (k, (s, si)) in picked.iter().enumerate() {
        let service = format!("svc{k}");
        let analyses: Vec<Vec<Step>> = (0..per)
            .map(|i| traffic::analysis(s, SEED + *si as u64, i))
            .collect();
        traffic::openmetrics_lines(&service, &analyses, start, &mut lines);
        runs.push((service, s.clone(), analyses));
    }
    let prom = common::prom::Prometheus::start(&traffic::to_openmetrics(lines));
    let sources = Sources::live(PrometheusConfig {
        url: Some(prom.url.clone()),
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut compared = 0;
    let mut fails = 0;
    for (service, s, analyses) in &runs {
        for (i, steps) in analyses.iter().enumerate() {
            let t0 = start + i as i64 * cycle;
            let args = [
                ("service", service.clone()),
                ("namespace", "sim".into()),
                ("canary_hash", format!("c{i}")),
                ("stable_hash", "stable".into()),
                ("canary_weight", format!("{}", s.weight * 100.0)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            for p in 1..=POLLS {
                let k = p * STEPS / POLLS;
                let at =
                    chrono::DateTime::from_timestamp(t0 + k as i64 * traffic::STEP, 0).unwrap();
                let j = rt
                    .block_on(judging::run(
                        &v2,
                        &args,
                        &sources,
                        at,
                        JudgeOptions::default(),
                    ))
                    .unwrap();
                let (want, want_classes) = judge_v2_metrics(&v2, &steps[..k], s.weight);
                // The SLO watches the whole service (the simulated one runs at 0.3 % errors,
                // over a 99.9 % objective in spikes): it can only add a fail on top, so the
                // metrics are compared always and the verdict when no SLO tripped.
                let slo_pass = j
                    .slos
                    .iter()
                    .all(|o| o.outcome == canary_engine::slo::SloOutcome::Pass);
                // The start is found in the data: the canary's first step with requests.
                let anchor = j.anchor.as_ref().unwrap();
                match steps[..k].iter().position(|s| s.canary.requests > 0.0) {
                    Some(first) => {
                        assert_eq!(
                            anchor.source,
                            AnchorSource::FirstTraffic,
                            "{service} c{i} poll {p}"
                        );
                        assert_eq!(
                            anchor.steps,
                            k - first,
                            "{service} c{i} poll {p}: {anchor:?}"
                        );
                    }
                    None => assert_eq!(anchor.source, AnchorSource::NoTraffic),
                }
                let metric_classes: Vec<Classification> = j
                    .metrics
                    .iter()
                    .map(|m| m.judgement.classification)
                    .collect();
                assert_eq!(
                    metric_classes, want_classes,
                    "{service} ({}) c{i} poll {p}: Prometheus path vs in-process; reasons {:?}",
                    s.name, j.reasons
                );
                if slo_pass {
                    assert_eq!(j.verdict, want, "{service} c{i} poll {p}: {:?}", j.reasons);
                }
                compared += 1;
                fails += usize::from(want == Verdict::Fail);
            }
        }
    }
    assert_eq!(compared, picked.len() * per * POLLS);
    assert!(fails > 0, "the regressed scenarios must fail somewhere");

    // `backtest --polls`: each analysis replayed as Argo polls it — an AnalysisRun starting
    // at the canary's start, 5 polls every 2 minutes anchored there, failureLimit 0 — fails
    // exactly when one of the in-process polls failed (SLO aside, as above).
    use canary_engine::backtest::{self, Plan, Subject};
    let (mut replayed, mut checked, mut failed_runs) = (0, 0, 0);
    for (service, s, analyses) in &runs {
        for (i, steps) in analyses.iter().enumerate() {
            let t0 = start + i as i64 * cycle;
            let args: std::collections::BTreeMap<String, String> = [
                ("service", service.clone()),
                ("namespace", "sim".into()),
                ("canary_hash", format!("c{i}")),
                ("stable_hash", "stable".into()),
                ("canary_weight", format!("{}", s.weight * 100.0)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let judge = canary_engine::template::JudgeProvider {
                spec: std::sync::Arc::new(v2.clone()),
                args: args.clone(),
            };
            let interval = std::time::Duration::from_secs(120);
            let subject = Subject::Analysis(vec![backtest::polled_judge(judge, 5, interval, 0)]);
            let at = chrono::DateTime::from_timestamp(t0, 0).unwrap();
            let plan = Plan {
                from: at,
                to: at,
                every: std::time::Duration::from_secs(60),
                limit: std::time::Duration::from_secs(3600),
            };
            let b = rt.block_on(backtest::run(
                &subject,
                &args,
                plan,
                &sources,
                &mut |_, _, _| {},
            ));
            let point = &b.points[0];
            let run = point.run.as_ref().unwrap();
            let metric = &run.metrics[0];
            let want: Vec<Verdict> = polls(steps, |st| judge_v2(&v2, st, s.weight));
            let slo_quiet = !point.why.contains("availability: burning");
            if slo_quiet {
                assert_eq!(
                    point.failed(),
                    want.contains(&Verdict::Fail),
                    "{service} c{i}: replayed {} vs in-process polls {want:?}: {}",
                    point.outcome,
                    point.why
                );
            }
            // Polls stop at the first failure (failureLimit 0), else all five are taken.
            let taken = want
                .iter()
                .position(|v| *v == Verdict::Fail)
                .map_or(5, |k| k + 1);
            if slo_quiet {
                assert_eq!(metric.count, taken as i64, "{service} c{i}: {}", point.why);
            }
            replayed += 1;
            checked += usize::from(slo_quiet);
            failed_runs += usize::from(point.failed() && slo_quiet);
        }
    }
    assert_eq!(replayed, picked.len() * per);
    println!("replayed {replayed}, compared {checked}, failed {failed_runs}");
    assert!(
        checked >= replayed / 2 && failed_runs > 0,
        "{checked} {failed_runs}"
    );
}

/// A promotion judges three analyses (10 %, 30 %, 50 % weight; 5 polls each). Each step is
/// its own anchored sequence, so the per-promotion false-fail bound is the sum of the steps'
/// budgets: the shipped spec at its full 1 % in every analysis can reach ~3 %; `canary
/// promote` gives each of its three analyses a third of the budget
/// (`JudgeSpec::with_budget_share`, the function it uses), which keeps a promotion at ≤ 1 %.
/// The Kayenta-compatible sliding-window judge is shown beside them. Detection is per
/// promotion: any step's analysis failing rolls it back.
#[test]
fn promotion_figures() {
    let shipped = load("analysis-templates/judge-istio-golden-signals.yaml");
    let per_step = shipped.with_budget_share(1.0 / 3.0);
    let n: usize = std::env::var("CANARY_SIM_PROMOTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let weights = [0.10, 0.30, 0.50];
    let kayenta = load("analysis-templates/judge-istio-kayenta-compatible.yaml");
    let promote = |spec: &JudgeSpec, s: &Scenario, seed: u64, i: usize| -> bool {
        weights.iter().enumerate().any(|(k, &w)| {
            let step = Scenario {
                weight: w,
                ..s.clone()
            };
            let steps = traffic::analysis(&step, seed, i * 3 + k);
            let judge = |st: &[Step]| {
                if spec.name == kayenta.name {
                    judge_kayenta(spec, st)
                } else {
                    judge_v2(spec, st, w)
                }
            };
            polls(&steps, judge).contains(&Verdict::Fail)
        })
    };
    let healthy = Scenario::healthy("healthy", 100.0, 0.1);
    let errors = Scenario {
        errors: 2.0,
        ..Scenario::healthy("errors ×2", 100.0, 0.1)
    };
    let latency = Scenario {
        latency: 1.3,
        ..Scenario::healthy("latency ×1.3", 100.0, 0.1)
    };
    let rate = |spec: &JudgeSpec, s: &Scenario, seed: u64, n: usize| -> usize {
        (0..n).filter(|&i| promote(spec, s, seed, i)).count()
    };
    let pct = |k: usize, n: usize| format!("{:.1} %", k as f64 / n as f64 * 100.0);
    let mut lines = Vec::new();
    for (name, spec) in [
        ("v2, full 1 % in every analysis", &shipped),
        (
            "v2 as `canary promote` runs it (1/3 per analysis)",
            &per_step,
        ),
        ("Kayenta-compatible (sliding window)", &kayenta),
    ] {
        let fa = rate(spec, &healthy, 0xfa1, n);
        let e2 = rate(spec, &errors, 0xe2, 200);
        let l13 = rate(spec, &latency, 0x113, 100);
        let bound = format!("{:.1} %", upper95(fa, n) * 100.0);
        let line = format!(
            "| {name} | {} of {n} healthy promotions rolled back ({}, 95 % ≤ {}) | errors ×2 caught in {} | latency ×1.3 in {} |",
            fa,
            pct(fa, n),
            bound,
            pct(e2, 200),
            pct(l13, 100),
        );
        println!("{line}");
        lines.push((name, fa, e2, l13));
    }
    let (_, fa, e2, l13) = lines[1];
    assert!(fa as f64 / n as f64 <= 0.01, "budget ÷ 3: {fa} of {n}");
    assert!(
        e2 >= 140,
        "errors ×2 per promotion at budget ÷ 3: {e2} of 200"
    );
    assert_eq!(l13, 100);
}

/// Whether a poll of the v2 spec on `steps` is a decided pass: verdict pass and every metric
/// `cleared` (each anytime-valid test has ruled out the regression it looks for) — what the
/// judge answers as `decision: pass` before `decide_after`.
fn decided_early(spec: &JudgeSpec, steps: &[Step], weight: f64) -> bool {
    judge_all(spec, steps, weight)
        .iter()
        .all(|j| j.cleared && j.classification == Classification::Pass)
}

/// Whether the mirror test named `test` has ruled its regression out on `steps`.
fn mirror_clears(spec: &JudgeSpec, steps: &[Step], weight: f64, test: &str) -> bool {
    judge_all(spec, steps, weight)
        .iter()
        .flat_map(|j| &j.evidence)
        .any(|e| e.test == test && e.state == "cleared")
}

fn judge_all(
    spec: &JudgeSpec,
    steps: &[Step],
    weight: f64,
) -> Vec<canary_engine::judge::MetricJudgement> {
    spec.metrics
        .iter()
        .map(|m| {
            let data = v2_data(&m.source, steps, weight);
            classify(&m.config, &data)
        })
        .collect()
}

/// Early stopping: how often, and how soon, a healthy canary's analysis ends with a decided
/// pass before its planned 10 minutes; and, for canaries that are worse (exactly as bad as
/// the spec tolerates: errors ×1.2, every request ×1.1 slower; a 3 % tail), how often an
/// analysis is passed early by mistake, and how often the mirror test alone rules out the
/// regression the canary really has (its own false-clear rate, which must stay within its
/// budget whatever the regression test says).
#[test]
fn early_stopping_figures() {
    let v2 = load("analysis-templates/judge-istio-golden-signals.yaml");
    let n: usize = std::env::var("CANARY_SIM_EARLY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let scenarios = [
        Scenario::healthy("healthy, 100 req/s, 10 %", 100.0, 0.10),
        Scenario::healthy("healthy, 1000 req/s, 10 %", 1000.0, 0.10),
        Scenario::healthy("healthy, 1000 req/s, 50 %", 1000.0, 0.50),
        Scenario::healthy("healthy, 5000 req/s, 50 %", 5000.0, 0.50),
        Scenario {
            errors: 1.2,
            pod_spread: false,
            ..Scenario::healthy("at the margin: errors ×1.2, 5000 req/s, 50 %", 5000.0, 0.5)
        },
        Scenario {
            latency: 1.1,
            pod_spread: false,
            ..Scenario::healthy("at the margin: latency ×1.1, 5000 req/s, 50 %", 5000.0, 0.5)
        },
        Scenario {
            tail_frac: 0.03,
            tail_factor: 6.0,
            ..Scenario::healthy(
                "a tail: 3 % of requests 6× slower, 5000 req/s, 50 %",
                5000.0,
                0.5,
            )
        },
    ];
    for (si, s) in scenarios.iter().enumerate() {
        let mut early = Vec::new();
        for i in 0..n {
            let steps = traffic::analysis(s, 0xea71 + si as u64, i);
            if let Some(p) =
                (1..POLLS).find(|p| decided_early(&v2, &steps[..p * STEPS / POLLS], s.weight))
            {
                early.push(p as f64 * 2.0);
            }
        }
        let mirror = match (s.errors != 1.0, s.latency != 1.0) {
            (true, _) => Some("errors"),
            (_, true) => Some("latency shift"),
            _ => None,
        };
        if let Some(test) = mirror {
            let cleared = (0..n)
                .filter(|&i| {
                    let steps = traffic::analysis(s, 0xea71 + si as u64, i);
                    (1..=POLLS)
                        .any(|p| mirror_clears(&v2, &steps[..p * STEPS / POLLS], s.weight, test))
                })
                .count();
            println!(
                "| {} | its `{test}` mirror test alone ruled it out in {cleared} of {n} analyses ({:.1} %, 95 % ≤ {:.1} %) |",
                s.name,
                cleared as f64 / n as f64 * 100.0,
                upper95(cleared, n) * 100.0
            );
            assert!(
                cleared as f64 / n as f64 <= 0.01,
                "{}: {cleared} of {n}",
                s.name
            );
        }
        let k = early.len();
        early.sort_by(f64::total_cmp);
        let median = early.get(k / 2).map_or("—".into(), |m| format!("{m} min"));
        println!(
            "| {} | decided pass before 10 min in {k} of {n} analyses ({:.1} %, 95 % ≤ {:.1} %), median {median} |",
            s.name,
            k as f64 / n as f64 * 100.0,
            upper95(k, n) * 100.0
        );
        if !s.is_healthy() {
            assert!(
                k as f64 / n as f64 <= 0.01,
                "{}: passed early {k} of {n}",
                s.name
            );
        }
        if s.rps >= 5000.0 && s.is_healthy() {
            assert!(k * 4 >= n, "{}: early in only {k} of {n}", s.name);
        }
    }
}
