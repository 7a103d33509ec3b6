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
}

impl<'a> Selector<'a> {
    /// A selector with nothing learned yet.
    pub fn new(diffs: Differences<'a>) -> Self {
        Self {
            diffs,
            seen: Vec::new(),
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

    /// The `k1`-th and `k2`-th smallest differences (`k1 ≤ k2`, close together), found in
    /// one search: the median of an even count needs both middle ones.
    pub fn kth_pair(&mut self, k1: u64, k2: u64) -> (f64, f64) {
        let d = self.diffs;
        assert!(
            1 <= k1 && k1 <= k2 && k2 <= d.len(),
            "ranks {k1}..{k2} outside 1..={}",
            d.len()
        );
        // Invariant: count_le(lo) < k1 and k2 ≤ count_le(hi); the answers lie in
        // [lo_next, hi], where lo_next is the smallest difference above lo and hi is itself a
        // difference. Start below the smallest difference (count 0) and at the largest.
        let (mut lo, mut c_lo, mut lo_next) = (d.min().next_down(), 0u64, d.min());
        let (mut hi, mut c_hi) = (d.max(), d.len());
        for &(at, p) in &self.seen {
            if p.count_le < k1 && at > lo {
                (lo, c_lo, lo_next) = (at, p.count_le, p.min_gt);
            }
            if p.count_le >= k2 && p.max_le < hi {
                (hi, c_hi) = (p.max_le, p.count_le);
            }
        }
        let enumerate_below = 2 * (d.x.len() + d.y.len()) as u64 + 64;
        let margin = enumerate_below as f64 / 4.0;
        let mut bisect = false;
        loop {
            if lo_next >= hi {
                return (hi, hi);
            }
            if c_hi - c_lo <= enumerate_below {
                return d.select_in(lo, hi, k1 - c_lo, k2 - c_lo);
            }
            let span = (c_hi - c_lo) as f64;
            let before = c_hi - c_lo;
            // Aim a little below k1 and a little above k2, so that if the counts are locally
            // linear both ends of the bracket close in at once. Bisect when that did not halve
            // the bracket (a kink or a heavy tie in the distribution of differences).
            let probes = if bisect {
                [Some(lo + (hi - lo) / 2.0), None]
            } else {
                let at = |target: f64| {
                    let frac = ((target - c_lo as f64) / span).clamp(0.0, 1.0);
                    lo + (hi - lo) * frac
                };
                [Some(at(k1 as f64 - margin)), Some(at(k2 as f64 + margin))]
            };
            let mut moved = false;
            for at in probes.into_iter().flatten() {
                if !(at > lo && at < hi) {
                    continue;
                }
                moved = true;
                let p = self.probe(at);
                if p.count_le >= k2 {
                    (hi, c_hi) = (p.max_le, p.count_le);
                } else if p.count_le < k1 {
                    (lo, c_lo, lo_next) = (at, p.count_le, p.min_gt);
                } else {
                    // `at` separates the two ranks: k1 is at or below it, k2 above. Search
                    // each on its own (only when k1 < k2), reusing what was learned.
                    let a = self.kth_pair(k1, k1).0;
                    let b = self.kth_pair(k2, k2).0;
                    return (a, b);
                }
            }
            if !moved && bisect {
                // No double lies strictly between lo and hi, so every difference in (lo, hi]
                // equals hi.
                return (hi, hi);
            }
            bisect = !moved || (c_hi - c_lo) * 2 > before;
        }
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
