//! The judge on the cases that matter to an SRE, including the ones Kayenta gets wrong:
//! a huge deviation on six points (kayenta#633), a tail regression with the same median
//! (kayenta#780), and reasons that carry numbers (#521).

use canary_engine::judge::classify::Classification::{self, *};
use canary_engine::judge::config::{Direction, EffectConfig, TailConfig};
use canary_engine::judge::score::{score, Scored, ScoringConfig, Verdict};
use canary_engine::judge::{classify, MetricConfig, MetricData};
use canary_engine::stats::counts::Counts;
use canary_engine::stats::sequential::Interval;

/// Deterministic, roughly normal noise (sum of uniforms from an LCG).
fn noise(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            let mut acc = 0.0;
            for _ in 0..6 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                acc += (s >> 11) as f64 / (1u64 << 53) as f64;
            }
            acc - 3.0
        })
        .collect()
}

fn latencies(n: usize, seed: u64, median: f64) -> Vec<f64> {
    noise(n, seed)
        .into_iter()
        .map(|z| median * (0.1 * z).exp())
        .collect()
}

fn samples(canary: Vec<f64>, baseline: Vec<f64>) -> MetricData {
    MetricData {
        canary: Some(canary),
        baseline: Some(baseline),
        ..MetricData::default()
    }
}

fn judge(cfg: &MetricConfig, data: &MetricData) -> (Classification, Vec<String>) {
    let j = classify(cfg, data);
    (j.classification, j.reasons)
}

#[test]
fn healthy_canary_passes_and_says_why() {
    let (c, reasons) = judge(
        &MetricConfig::default(),
        &samples(latencies(60, 1, 100.0), latencies(60, 2, 100.0)),
    );
    assert_eq!(c, Pass);
    assert!(
        reasons[0].contains("no significant difference"),
        "{reasons:?}"
    );
    assert!(reasons[0].contains("CI ["));
}

#[test]
fn a_clear_increase_is_high_and_respects_direction() {
    let data = samples(latencies(60, 3, 130.0), latencies(60, 4, 100.0));
    assert_eq!(judge(&MetricConfig::default(), &data).0, High);
    let cfg = MetricConfig {
        direction: Direction::Decrease,
        ..MetricConfig::default()
    };
    let (c, reasons) = judge(&cfg, &data);
    assert_eq!(
        c, Pass,
        "an increase is harmless when only a decrease is bad"
    );
    assert!(reasons[0].contains("harmless direction"));
    let lower = samples(latencies(60, 5, 70.0), latencies(60, 6, 100.0));
    assert_eq!(judge(&MetricConfig::default(), &lower).0, Low);
}

#[test]
fn effect_size_gates_a_significant_but_small_change() {
    let data = samples(latencies(2000, 7, 103.0), latencies(2000, 8, 100.0));
    assert_eq!(judge(&MetricConfig::default(), &data).0, High);
    let cfg = MetricConfig {
        effect: EffectConfig {
            allowed_increase: Some(1.1),
            ..EffectConfig::default()
        },
        tail: TailConfig {
            enabled: false,
            ..TailConfig::default()
        },
        ..MetricConfig::default()
    };
    let (c, reasons) = judge(&cfg, &data);
    assert_eq!(c, Pass, "+3 % is below the allowed +10 %: {reasons:?}");
    assert!(reasons[0].contains("less than allowed"));
}

#[test]
fn six_points_never_pass_kayenta_633() {
    // A 650 % deviation on six points: Kayenta passed it. Too few points is nodata.
    let cfg = MetricConfig::default();
    let (c, reasons) = judge(
        &cfg,
        &samples(
            vec![7.5, 7.4, 7.6, 7.5, 7.7, 7.5],
            vec![1.0, 1.1, 0.9, 1.0, 1.0, 1.05],
        ),
    );
    assert_eq!(c, Nodata);
    assert!(reasons[0].contains("min_samples = 20"), "{reasons:?}");
    let j = classify(&cfg, &samples(vec![7.5; 6], vec![1.0; 6]));
    assert!(j.mann_whitney.is_some(), "the numbers are still reported");
}

#[test]
fn tail_regression_with_the_same_median_is_caught_kayenta_780() {
    // Same median; the canary's slowest quarter gets 2-3x slower (a p90/p99 regression).
    let base = latencies(120, 9, 100.0);
    let mut canary = latencies(120, 10, 100.0);
    let mut order = canary.clone();
    order.sort_by(f64::total_cmp);
    let p75 = order[90];
    for (i, v) in canary.iter_mut().enumerate() {
        if *v >= p75 {
            *v *= 2.0 + (i % 3) as f64 * 0.5;
        }
    }
    let data = samples(canary, base);
    let no_tail = MetricConfig {
        tail: TailConfig {
            enabled: false,
            ..TailConfig::default()
        },
        ..MetricConfig::default()
    };
    assert_eq!(
        judge(&no_tail, &data).0,
        Pass,
        "the rank-sum test alone misses it"
    );
    let j = classify(&MetricConfig::default(), &data);
    assert_eq!(j.classification, High, "{:?}", j.reasons);
    let tail = j.tail.expect("tail check ran");
    assert!(tail.ks_p_value < 0.02 && tail.upper_ratio.unwrap() > 1.2);
    assert!(
        j.reasons.iter().any(|r| r.contains("tail or spread")),
        "{:?}",
        j.reasons
    );
}

#[test]
fn wider_spread_same_median_is_caught() {
    let base = latencies(200, 11, 100.0);
    let canary: Vec<f64> = noise(200, 12)
        .into_iter()
        .map(|z| 100.0 * (0.4 * z).exp())
        .collect();
    let j = classify(&MetricConfig::default(), &samples(canary, base));
    assert_eq!(j.classification, High, "{:?}", j.reasons);
}

#[test]
fn missing_data_is_nodata_never_pass() {
    let cfg = MetricConfig::default();
    let (c, r) = judge(&cfg, &samples(vec![f64::NAN; 30], latencies(30, 13, 1.0)));
    assert_eq!(c, Nodata);
    assert!(r[0].contains("30 NaN removed"), "{r:?}");
    // NaN as 0 (0/0 error ratio with no traffic) when asked.
    let cfg = MetricConfig {
        nan: canary_engine::stats::preprocess::NanStrategy::Replace,
        ..cfg
    };
    assert_ne!(
        judge(&cfg, &samples(vec![f64::NAN; 30], vec![0.0; 30])).0,
        Nodata
    );
    // A critical metric with no data fails the judgement.
    let critical = MetricConfig {
        critical: true,
        ..MetricConfig::default()
    };
    assert!(classify(&critical, &samples(vec![], vec![])).critical);
}

#[test]
fn constant_sides_decided_by_the_values() {
    let (c, r) = judge(
        &MetricConfig::default(),
        &samples(vec![5.0; 30], vec![2.0; 30]),
    );
    assert_eq!(c, High);
    assert!(r[0].contains("constant at 5"), "{r:?}");
    assert_eq!(
        judge(
            &MetricConfig::default(),
            &samples(vec![3.0; 30], vec![3.0; 30])
        )
        .0,
        Pass
    );
}

#[test]
fn critical_effect_fails_the_judgement() {
    let cfg = MetricConfig {
        critical: true,
        direction: Direction::Increase,
        effect: EffectConfig {
            allowed_increase: Some(1.1),
            critical_increase: Some(1.5),
            ..EffectConfig::default()
        },
        ..MetricConfig::default()
    };
    let mild = classify(
        &cfg,
        &samples(latencies(60, 14, 125.0), latencies(60, 15, 100.0)),
    );
    assert_eq!((mild.classification, mild.critical), (High, false));
    let severe = classify(
        &cfg,
        &samples(latencies(60, 16, 200.0), latencies(60, 17, 100.0)),
    );
    assert_eq!((severe.classification, severe.critical), (High, true));

    let scored = |name: &str, j: &canary_engine::judge::MetricJudgement| Scored {
        name: name.into(),
        group: "latency".into(),
        classification: j.classification,
        critical: j.critical,
        must_have_data: false,
    };
    let healthy = classify(
        &cfg,
        &samples(latencies(60, 18, 100.0), latencies(60, 19, 100.0)),
    );
    let s = score(
        &ScoringConfig::default(),
        &[
            scored("p50", &healthy),
            scored("p90", &healthy),
            scored("p99", &severe),
        ],
    );
    assert_eq!((s.score, s.verdict), (0.0, Verdict::Fail));
}

#[test]
fn counts_catch_more_errors_and_respect_min_events() {
    let iv = |cb: f64, ct: f64, bb: f64, bt: f64| Interval {
        canary: Counts { bad: cb, total: ct },
        baseline: Counts { bad: bb, total: bt },
    };
    let worse: Vec<Interval> = (0..30).map(|_| iv(3.0, 100.0, 9.0, 900.0)).collect();
    let data = MetricData {
        intervals: Some(worse),
        ..MetricData::default()
    };
    let j = classify(&MetricConfig::default(), &data);
    assert_eq!(j.classification, High, "{:?}", j.reasons);
    let counts = j.counts.unwrap();
    assert!(counts.sequential_p_value < 0.02 && (counts.rate_ratio.unwrap() - 3.0).abs() < 1e-9);

    let healthy: Vec<Interval> = (0..30).map(|_| iv(0.0, 100.0, 1.0, 900.0)).collect();
    let data = MetricData {
        intervals: Some(healthy),
        ..MetricData::default()
    };
    assert_eq!(
        classify(&MetricConfig::default(), &data).classification,
        Pass
    );

    let quiet = MetricData {
        intervals: Some(vec![iv(1.0, 50.0, 0.0, 450.0)]),
        ..MetricData::default()
    };
    assert_eq!(
        classify(&MetricConfig::default(), &quiet).classification,
        Nodata
    );
}
