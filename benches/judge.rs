//! Criterion benches of the full per-metric judgement (`canary judge` minus process start
//! and JSON parsing) at n = 50, 1,000 and 10,000 points per side, on the same inputs R was
//! timed on (`benches/data/`, `benches/reference/r-timing.md`).
//!
//! Reference run in the same process: sorting both samples, the floor any exact
//! Hodges-Lehmann interval has to pay (STATISTICS.md §1). Figures: `benches/README.md`.

use canary_engine::cli::judge::parse_input;
use canary_engine::judge::classify;
use canary_engine::stats::mann_whitney;
use canary_engine::stats::sample::sorted;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

fn load(n: usize) -> String {
    let path = format!("{}/benches/data/judge-{n}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("judge");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    for n in [50usize, 1_000, 10_000] {
        let text = load(n);
        let (data, cfg) = parse_input(&text).expect("bench input parses");
        let (x, y) = (
            data.canary.clone().expect("canary"),
            data.baseline.clone().expect("baseline"),
        );
        g.bench_with_input(BenchmarkId::new("full_metric", n), &n, |b, _| {
            b.iter(|| classify(black_box(&cfg), black_box(&data)))
        });
        let (xs, ys) = (sorted(&x), sorted(&y));
        g.bench_with_input(BenchmarkId::new("mann_whitney_hl_ci", n), &n, |b, _| {
            b.iter(|| mann_whitney(black_box(&xs), black_box(&ys), 0.95))
        });
        g.bench_with_input(BenchmarkId::new("reference_sort_both", n), &n, |b, _| {
            b.iter(|| (sorted(black_box(&x)), sorted(black_box(&y))))
        });
        g.bench_with_input(BenchmarkId::new("parse_and_judge", n), &n, |b, _| {
            b.iter(|| {
                let (d, c) = parse_input(black_box(&text)).expect("parses");
                classify(&c, &d)
            })
        });
    }
    g.finish();
}

/// Request-level latency from histogram buckets: 20 steps × 20 Istio buckets, with the
/// example's ~300/2,700 requests per step and with 50,000 per step per variant (10⁶ requests
/// per variant in all). The statistic costs O(steps × buckets), whatever the request count;
/// the reference is one pass summing both sides' buckets.
fn histogram_benches(c: &mut Criterion) {
    use canary_engine::stats::histogram::pooled;
    let mut g = c.benchmark_group("histogram");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30);
    let path = format!(
        "{}/examples/judge/histogram-latency-regression.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (data, cfg) = parse_input(&text).expect("histogram example parses");
    let mut million = data.clone();
    if let Some(h) = million.histogram.as_mut() {
        for s in &mut h.steps {
            let (n, m): (f64, f64) = (s.canary.iter().sum(), s.baseline.iter().sum());
            s.canary.iter_mut().for_each(|c| *c *= 50_000.0 / n);
            s.baseline.iter_mut().for_each(|c| *c *= 50_000.0 / m);
        }
    }
    for (name, d) in [("20x20", &data), ("1e6_per_variant", &million)] {
        let steps = &d.histogram.as_ref().expect("histogram").steps;
        g.bench_function(BenchmarkId::new("full_metric", name), |b| {
            b.iter(|| classify(black_box(&cfg), black_box(d)))
        });
        g.bench_function(BenchmarkId::new("reference_pool_buckets", name), |b| {
            b.iter(|| {
                (
                    pooled(black_box(steps), true),
                    pooled(black_box(steps), false),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(judge, benches, histogram_benches);
criterion_main!(judge);
