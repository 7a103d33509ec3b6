//! The `n·m` pairwise differences `x_i − y_j` of two sorted samples, counted and selected
//! without materialising them.
//!
//! Every Hodges-Lehmann quantity (the estimate and both interval ends) is an order statistic
//! of these differences. Counting the differences `≤ d` is a two-pointer walk over the sorted
//! samples, O(n + m); selecting the k-th smallest alternates interpolation and bisection on
//! the value axis, snapping to real differences so heavy ties end the search early, and
//! finishes by enumerating the few differences left in the bracket.

/// The pairwise differences `x_i − y_j` of two sorted, non-empty samples.
#[derive(Debug, Clone, Copy)]
pub struct Differences<'a> {
    x: &'a [f64],
    y: &'a [f64],
}

/// What one walk over the samples learns about a probe value `d`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Probe {
    /// `#{(i, j) : x_i − y_j ≤ d}`.
    count_le: u64,
    /// The largest difference `≤ d` (−∞ if none).
    max_le: f64,
    /// The smallest difference `> d` (+∞ if none).
    min_gt: f64,
}

impl<'a> Differences<'a> {
    /// `x` and `y` must be sorted ascending, NaN-free and non-empty.
    pub fn new(x: &'a [f64], y: &'a [f64]) -> Self {
        debug_assert!(!x.is_empty() && !y.is_empty());
        debug_assert!(x.windows(2).all(|w| w[0] <= w[1]) && y.windows(2).all(|w| w[0] <= w[1]));
        Self { x, y }
    }

    /// How many differences there are (`n·m`).
    pub fn len(&self) -> u64 {
        self.x.len() as u64 * self.y.len() as u64
    }

    /// Never true: both samples are non-empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The smallest difference, `min(x) − max(y)`.
    pub fn min(&self) -> f64 {
        self.x[0] - self.y[self.y.len() - 1]
    }

    /// The largest difference, `max(x) − min(y)`.
    pub fn max(&self) -> f64 {
        self.x[self.x.len() - 1] - self.y[0]
    }

    /// `#{(i, j) : x_i − y_j ≤ d}`.
    pub fn count_le(&self, d: f64) -> u64 {
        self.probe(d).count_le
    }

    fn probe(&self, d: f64) -> Probe {
        let m = self.y.len();
        let (mut j, mut count) = (0usize, 0u64);
        let (mut max_le, mut min_gt) = (f64::NEG_INFINITY, f64::INFINITY);
        // For fixed x_i the differences fall as y_j rises, so {j : x_i − y_j ≤ d} is a suffix
        // [j, m); as x_i rises that suffix can only start later.
        for &xi in self.x {
            while j < m && xi - self.y[j] > d {
                j += 1;
            }
            count += (m - j) as u64;
            if j < m {
                max_le = max_le.max(xi - self.y[j]);
            }
            if j > 0 {
                min_gt = min_gt.min(xi - self.y[j - 1]);
            }
        }
        Probe {
            count_le: count,
            max_le,
            min_gt,
        }
    }

    /// The k-th smallest difference, `k` in `1..=n·m`.
    pub fn kth(&self, k: u64) -> f64 {
        Selector::new(*self).kth_pair(k, k).0
    }

    /// The `k1`-th and `k2`-th smallest differences (`k1 ≤ k2`, close together).
    pub fn kth_pair(&self, k1: u64, k2: u64) -> (f64, f64) {
        Selector::new(*self).kth_pair(k1, k2)
    }

    /// Enumerates the differences in `(lo, hi]` and returns the `r1`-th and `r2`-th
    /// smallest of them (1-based, `r1 ≤ r2`).
    fn select_in(&self, lo: f64, hi: f64, r1: u64, r2: u64) -> (f64, f64) {
        let m = self.y.len();
        let mut diffs = Vec::new();
        let (mut j_hi, mut j_lo) = (0usize, 0usize);
        for &xi in self.x {
            // j_hi: first j with x_i − y_j ≤ hi; j_lo: first j with x_i − y_j ≤ lo.
            while j_hi < m && xi - self.y[j_hi] > hi {
                j_hi += 1;
            }
            while j_lo < m && xi - self.y[j_lo] > lo {
                j_lo += 1;
            }
            diffs.extend(self.y[j_hi..j_lo].iter().map(|&yj| xi - yj));
        }
        let i1 = (r1 - 1) as usize;
        let (_, a, rest) = diffs.select_nth_unstable_by(i1, f64::total_cmp);
        let a = *a;
        if r2 == r1 {
            return (a, a);
        }
        let i2 = (r2 - r1 - 1) as usize;
        let (_, b, _) = rest.select_nth_unstable_by(i2, f64::total_cmp);
        (a, *b)
    }

    /// The Hodges-Lehmann estimator: the median of all differences (the mean of the two
    /// middle ones when their number is even).
    pub fn median(&self) -> f64 {
        Selector::new(*self).median()
    }
}

/// Several order statistics of the same differences: every probe is remembered, so each
/// search starts from the tightest bracket the earlier ones found (the interval ends lie
/// close to the median in rank).
#[derive(Debug, Clone)]
pub struct Selector<'a> {
    diffs: Differences<'a>,
    seen: Vec<(f64, Probe)>,
    /// A fixed pseudo-random sample of differences, sorted; built on first need.
    sample: Vec<f64>,
}

/// How many pairs to draw to seed a search: about a quarter of `n + m`, so drawing and
/// sorting them costs about one counting pass. Their quantiles bracket the target rank to
/// within ±3·0.5/√s of n·m (±2.1 % at 10⁴ per side).
fn sample_size(n: usize, m: usize) -> usize {
    ((n + m) / 4).clamp(256, 8192)
}

impl<'a> Selector<'a> {
    /// The differences this selector works on.
    pub fn differences(&self) -> Differences<'a> {
        self.diffs
    }

    /// How many probes have been made (for benches and tests).
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// A selector with nothing learned yet.
    pub fn new(diffs: Differences<'a>) -> Self {
        Self {
            diffs,
            seen: Vec::new(),
            sample: Vec::new(),
        }
    }

    fn probe(&mut self, d: f64) -> Probe {
        let p = self.diffs.probe(d);
        self.seen.push((d, p));
        p
    }

    /// The Hodges-Lehmann estimator (see [`Differences::median`]).
    pub fn median(&mut self) -> f64 {
        let len = self.diffs.len();
        if len % 2 == 1 {
            self.kth_pair(len / 2 + 1, len / 2 + 1).0
        } else {
            let (a, b) = self.kth_pair(len / 2, len / 2 + 1);
            a + (b - a) / 2.0
        }
    }

    /// Two sampled differences expected just below rank `k1` and just above rank `k2`
    /// (three standard errors of a sample quantile out). Deterministic: the sample comes
    /// from a fixed generator, so every run probes the same values.
    fn seeds(&mut self, k1: u64, k2: u64) -> [f64; 2] {
        let d = self.diffs;
        let (n, m) = (d.x.len() as u64, d.y.len() as u64);
        if self.sample.is_empty() {
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            self.sample = (0..sample_size(d.x.len(), d.y.len()))
                .map(|_| {
                    // SplitMix64.
                    state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    let i = ((z >> 32) % n) as usize;
                    let j = ((z & 0xFFFF_FFFF) % m) as usize;
                    d.x[i] - d.y[j]
                })
                .collect();
            self.sample.sort_unstable_by(f64::total_cmp);
        }
        let s = self.sample.len() as f64;
        let at = |k: u64, side: f64| {
            let p = k as f64 / d.len() as f64;
            let spread = 3.0 * (s * p * (1.0 - p)).sqrt() + 2.0;
            let idx = (p * s + side * spread).round().clamp(0.0, s - 1.0) as usize;
            self.sample[idx]
        };
        [at(k1, -1.0), at(k2, 1.0)]
    }

    /// The `k1`-th and `k2`-th smallest differences (`k1 ≤ k2`, close together), found in
    /// one search: the median of an even count needs both middle ones.
    pub fn kth_pair(&mut self, k1: u64, k2: u64) -> (f64, f64) {
        let d = self.diffs;
        assert!(
            1 <= k1 && k1 <= k2 && k2 <= d.len(),
            "ranks {k1}..{k2} outside 1..={}",
            d.len()
        );
        // Start below the smallest difference (count 0) and at the largest, then tighten
        // with everything earlier searches learned.
        let mut b = Bracket {
            lo: d.min().next_down(),
            c_lo: 0,
            lo_next: d.min(),
            hi: d.max(),
            c_hi: d.len(),
        };
        for &(at, p) in &self.seen {
            if p.count_le < k1 && at > b.lo {
                (b.lo, b.c_lo, b.lo_next) = (at, p.count_le, p.min_gt);
            }
            if p.count_le >= k2 && p.max_le < b.hi {
                (b.hi, b.c_hi) = (p.max_le, p.count_le);
            }
        }
        let enumerate_below = 2 * (d.x.len() + d.y.len()) as u64 + 64;
        let margin = enumerate_below as f64 / 4.0;
        // Far from the answer, jump close to it with the sample's quantiles first; then
        // interpolate, aiming a little below k1 and a little above k2 so that if the counts
        // are locally linear both ends of the bracket close in at once; bisect when a round
        // did not halve the bracket (a kink or a heavy tie in the distribution).
        let mut round = if b.c_hi - b.c_lo > 64 * enumerate_below {
            Round::Seed
        } else {
            Round::Interpolate
        };
        loop {
            if b.lo_next >= b.hi {
                return (b.hi, b.hi);
            }
            if b.c_hi - b.c_lo <= enumerate_below {
                return d.select_in(b.lo, b.hi, k1 - b.c_lo, k2 - b.c_lo);
            }
            let before = b.c_hi - b.c_lo;
            let probes = match round {
                Round::Seed => self.seeds(k1, k2).map(Some),
                Round::Bisect => [Some(b.lo + (b.hi - b.lo) / 2.0), None],
                Round::Interpolate => {
                    let span = before as f64;
                    let at = |target: f64| {
                        let frac = ((target - b.c_lo as f64) / span).clamp(0.0, 1.0);
                        b.lo + (b.hi - b.lo) * frac
                    };
                    [Some(at(k1 as f64 - margin)), Some(at(k2 as f64 + margin))]
                }
            };
            let mut moved = false;
            for at in probes.into_iter().flatten() {
                if !(at > b.lo && at < b.hi) {
                    continue;
                }
                moved = true;
                let p = self.probe(at);
                if !b.narrow(at, p, k1, k2) {
                    // `at` separates the two ranks: k1 is at or below it, k2 above. Search
                    // each on its own (only when k1 < k2), reusing what was learned.
                    let a = self.kth_pair(k1, k1).0;
                    let c = self.kth_pair(k2, k2).0;
                    return (a, c);
                }
            }
            if !moved && round == Round::Bisect {
                // No double lies strictly between lo and hi, so every difference in (lo, hi]
                // equals hi.
                return (b.hi, b.hi);
            }
            round = if !moved || (b.c_hi - b.c_lo) * 2 > before {
                Round::Bisect
            } else {
                Round::Interpolate
            };
        }
    }
}

/// How the next probes of a search are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    Seed,
    Interpolate,
    Bisect,
}

/// The search interval for ranks `k1..=k2`. Invariant: `count_le(lo) < k1 ≤ k2 ≤
/// count_le(hi)`; the answers lie in `[lo_next, hi]`, where `lo_next` is the smallest
/// difference above `lo` and `hi` is itself a difference.
#[derive(Debug, Clone, Copy)]
struct Bracket {
    lo: f64,
    c_lo: u64,
    lo_next: f64,
    hi: f64,
    c_hi: u64,
}

impl Bracket {
    /// Narrows with a probe at `at`; false when `at` falls between the two ranks.
    fn narrow(&mut self, at: f64, p: Probe, k1: u64, k2: u64) -> bool {
        if p.count_le >= k2 {
            (self.hi, self.c_hi) = (p.max_le, p.count_le);
        } else if p.count_le < k1 {
            (self.lo, self.c_lo, self.lo_next) = (at, p.count_le, p.min_gt);
        } else {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_sorted(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn small_example() {
        let x = [1.0, 4.0, 9.0];
        let y = [2.0, 3.0];
        let diffs = Differences::new(&x, &y);
        let brute = all_sorted(&x, &y);
        for k in 1..=6 {
            assert_eq!(diffs.kth(k), brute[k as usize - 1], "k = {k}");
        }
        assert_eq!(diffs.count_le(1.0), 3);
        assert_eq!(diffs.median(), (1.0 + 2.0) / 2.0);
    }

    #[test]
    fn heavy_ties_large() {
        // 400 × 400 values from five levels: 160,000 differences, nine distinct.
        let x: Vec<f64> = (0..400).map(|i| (i % 5) as f64).collect();
        let y: Vec<f64> = (0..400).map(|i| ((i * 7) % 5) as f64 * 0.5).collect();
        let (x, y) = (sorted(x), sorted(y));
        let diffs = Differences::new(&x, &y);
        let brute = all_sorted(&x, &y);
        for k in [1u64, 2, 999, 40_000, 80_000, 80_001, 123_456, 160_000] {
            assert_eq!(diffs.kth(k), brute[k as usize - 1], "k = {k}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn seeded_search_matches_brute_force_on_large_samples(
            x in prop::collection::vec(-2000i32..2000, 450..700),
            y in prop::collection::vec(-2000i32..2000, 450..700),
            scale in prop::sample::select(vec![1.0, 0.001, 1e5]),
            ties in prop::sample::select(vec![1, 50]),
        ) {
            // Large enough (n·m > 64 × the enumeration threshold) that each search starts
            // from the sample-quantile seeds; `ties` coarsens the values to force long runs
            // of equal differences.
            let v = |a: Vec<i32>| sorted(a.into_iter().map(|v| f64::from(v / ties) * scale).collect());
            let (x, y) = (v(x), v(y));
            let diffs = Differences::new(&x, &y);
            let brute = all_sorted(&x, &y);
            let len = diffs.len();
            let mut sel = Selector::new(diffs);
            for k in [1, 2, len / 100, len / 4, len / 2, len / 2 + 1, len - len / 50, len - 1, len] {
                let k = k.clamp(1, len);
                prop_assert_eq!(sel.kth_pair(k, k).0, brute[k as usize - 1], "k = {}", k);
                prop_assert_eq!(diffs.kth(k), brute[k as usize - 1]);
            }
            let mid = if len % 2 == 1 {
                brute[len as usize / 2]
            } else {
                let (a, b) = (brute[len as usize / 2 - 1], brute[len as usize / 2]);
                a + (b - a) / 2.0
            };
            prop_assert_eq!(diffs.median(), mid);
        }
    }

    proptest! {
        #[test]
        fn kth_matches_brute_force(
            x in prop::collection::vec(-50i32..50, 1..40),
            y in prop::collection::vec(-50i32..50, 1..40),
            scale in prop::sample::select(vec![1.0, 0.1, 1e-3, 1e6]),
        ) {
            let x = sorted(x.into_iter().map(|v| v as f64 * scale).collect());
            let y = sorted(y.into_iter().map(|v| v as f64 * scale).collect());
            let diffs = Differences::new(&x, &y);
            let brute = all_sorted(&x, &y);
            for k in 1..=diffs.len() {
                prop_assert_eq!(diffs.kth(k), brute[k as usize - 1]);
                let k2 = (k + 1).min(diffs.len());
                prop_assert_eq!(
                    diffs.kth_pair(k, k2),
                    (brute[k as usize - 1], brute[k2 as usize - 1])
                );
            }
        }
    }
}
