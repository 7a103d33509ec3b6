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

criterion_group!(judge, benches);
criterion_main!(judge);
