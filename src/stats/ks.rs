//! Two-sample Kolmogorov-Smirnov test: catches a change of *shape* — a wider spread or a
//! heavier tail with the same median — that a rank-sum test on location misses
//! (spinnaker/kayenta#780).

/// The KS statistic and its asymptotic p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KolmogorovSmirnov {
    /// `D = sup_t |F_canary(t) − F_baseline(t)|`.
    pub statistic: f64,
    /// `Q_KS(√(nm/(n+m)) · D)`, the limiting Kolmogorov distribution (scipy's
    /// `kstwobign.sf`). Conservative enough for the ≥ 20 points the judge requires.
    pub p_value: f64,
}

/// `D` for two **sorted**, non-empty samples; ties are stepped over together.
pub fn statistic(x: &[f64], y: &[f64]) -> f64 {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < x.len() && j < y.len() {
        let v = x[i].min(y[j]);
        while i < x.len() && x[i] == v {
            i += 1;
        }
        while j < y.len() && y[j] == v {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    d
}

/// Survival function of the Kolmogorov distribution, `P(K > λ)`.
pub fn kolmogorov_sf(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 1.0;
    }
    if lambda < 1.18 {
        // Jacobi theta form of the CDF converges fast for small λ:
        // P(K ≤ λ) = √(2π)/λ · Σ_{k≥1} exp(−(2k−1)²π²/(8λ²)).
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        let mut sum = 0.0;
        for k in 1..=20 {
            let odd = (2 * k - 1) as f64;
            let term = (-(odd * odd) * pi2 / (8.0 * lambda * lambda)).exp();
            sum += term;
            if term < 1e-300 {
                break;
            }
        }
        (1.0 - (2.0 * std::f64::consts::PI).sqrt() / lambda * sum).clamp(0.0, 1.0)
    } else {
        // P(K > λ) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²λ²).
        let mut sum = 0.0;
        for k in 1..=100 {
            let kf = k as f64;
            let term = (-2.0 * kf * kf * lambda * lambda).exp();
            sum += if k % 2 == 1 { term } else { -term };
            if term < 1e-300 {
                break;
            }
        }
        (2.0 * sum).clamp(0.0, 1.0)
    }
}

/// Runs the test on two **sorted**, non-empty samples.
pub fn ks_test(x: &[f64], y: &[f64]) -> KolmogorovSmirnov {
    let d = statistic(x, y);
    let (n, m) = (x.len() as f64, y.len() as f64);
    let en = n * m / (n + m);
    KolmogorovSmirnov {
        statistic: d,
        p_value: kolmogorov_sf(en.sqrt() * d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_with_ties() {
        assert_eq!(statistic(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(statistic(&[1.0, 1.0], &[2.0, 2.0]), 1.0);
        assert!((statistic(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn both_series_agree_where_they_meet() {
        let a = kolmogorov_sf(1.18 - 1e-9);
        let b = kolmogorov_sf(1.18 + 1e-9);
        // The two forms are ~2e-9 apart in λ here; the density is ~0.6, so |a − b| ≈ 1.2e-9.
        assert!((a - b).abs() < 3e-9, "{a} vs {b}");
        // scipy 1.17.1: kstwobign.sf(1.18) = 0.1234538094297657
        assert!((kolmogorov_sf(1.18) - 0.123_453_809_429_765_7).abs() < 1e-12);
        // scipy 1.17.1: kstwobign.sf(1.0) = 0.26999967167735456
        assert!((kolmogorov_sf(1.0) - 0.269_999_671_677_354_56).abs() < 1e-13);
    }
}
