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
        assert!(
            k >= 1 && k <= self.len(),
            "k = {k} outside 1..={}",
            self.len()
        );
        let first = self.probe(self.min());
        if first.count_le >= k {
            return self.min();
        }
        // Invariant: count_le(lo) < k ≤ count_le(hi); the answer lies in [lo_next, hi], where
        // lo_next is the smallest difference above lo and hi is itself a difference.
        let (mut lo, mut c_lo, mut lo_next) = (self.min(), first.count_le, first.min_gt);
        let (mut hi, mut c_hi) = (self.max(), self.len());
        let enumerate_below = 2 * (self.x.len() + self.y.len()) as u64 + 64;
        let mut bisect = false;
        loop {
            if lo_next >= hi {
                return hi;
            }
            if c_hi - c_lo <= enumerate_below {
                return self.select_in(lo, hi, k - c_lo);
            }
            let d = if bisect {
                lo + (hi - lo) / 2.0
            } else {
                let frac = (k - c_lo) as f64 / (c_hi - c_lo) as f64;
                lo + (hi - lo) * frac.clamp(0.02, 0.98)
            };
            bisect = !bisect;
            if !(d > lo && d < hi) {
                // No double lies strictly between lo and hi, so every difference in (lo, hi]
                // equals hi.
                return hi;
            }
            let p = self.probe(d);
            if p.count_le >= k {
                hi = p.max_le;
                c_hi = p.count_le;
            } else {
                lo = d;
                c_lo = p.count_le;
                lo_next = p.min_gt;
            }
        }
    }

    /// Enumerates the differences in `(lo, hi]` and returns the `rank`-th smallest of them.
    fn select_in(&self, lo: f64, hi: f64, rank: u64) -> f64 {
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
        let idx = (rank - 1) as usize;
        let (_, v, _) = diffs.select_nth_unstable_by(idx, f64::total_cmp);
        *v
    }

    /// The Hodges-Lehmann estimator: the median of all differences (the mean of the two
    /// middle ones when their number is even).
    pub fn median(&self) -> f64 {
        let len = self.len();
        if len % 2 == 1 {
            self.kth(len / 2 + 1)
        } else {
            let (a, b) = (self.kth(len / 2), self.kth(len / 2 + 1));
            a + (b - a) / 2.0
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
            }
        }
    }
}
