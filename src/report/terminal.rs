//! Terminal pictures: sparklines and verdict strips, for tables read at a glance.

use super::tone::Toned;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// `values` as a sparkline at most `width` characters wide (buckets averaged; a bucket with
/// no finite value is a space). Scaled between the finite minimum and maximum of `values`,
/// or of `scale` when given, so that two lines on one scale can be compared.
pub fn sparkline(values: &[f64], width: usize, scale: Option<(f64, f64)>) -> String {
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let buckets = width.min(values.len());
    let means: Vec<f64> = (0..buckets)
        .map(|b| {
            let lo = b * values.len() / buckets;
            let hi = ((b + 1) * values.len() / buckets).max(lo + 1);
            let finite: Vec<f64> = values[lo..hi]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            if finite.is_empty() {
                f64::NAN
            } else {
                finite.iter().sum::<f64>() / finite.len() as f64
            }
        })
        .collect();
    let (min, max) = scale.unwrap_or_else(|| range(&means));
    means
        .iter()
        .map(|&v| {
            if !v.is_finite() {
                ' '
            } else if max <= min {
                BARS[3]
            } else {
                let i = ((v - min) / (max - min) * 7.0).round().clamp(0.0, 7.0) as usize;
                BARS[i]
            }
        })
        .collect()
}

/// Finite minimum and maximum (`(0, 0)` when there is none).
pub fn range(values: &[f64]) -> (f64, f64) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let min = finite.clone().fold(f64::INFINITY, f64::min);
    let max = finite.fold(f64::NEG_INFINITY, f64::max);
    if min.is_finite() {
        (min, max)
    } else {
        (0.0, 0.0)
    }
}

/// One character per outcome, its [`Tone::symbol`](super::tone::Tone::symbol): `✓` pass,
/// `~` marginal, `✗` fail (or a metric classified high/low), `?` inconclusive/nodata, `!`
/// error, `·` not decided. At most `width` characters: when there are more outcomes, each
/// character shows the worst of its bucket.
pub fn strip<T: Toned>(outcomes: &[T], width: usize) -> String {
    if outcomes.is_empty() || width == 0 {
        return String::new();
    }
    let buckets = width.min(outcomes.len());
    (0..buckets)
        .map(|b| {
            let lo = b * outcomes.len() / buckets;
            let hi = ((b + 1) * outcomes.len() / buckets).max(lo + 1);
            outcomes[lo..hi]
                .iter()
                .map(Toned::tone)
                .max_by_key(|t| t.severity())
                .map_or('·', |t| t.symbol())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_series_rises() {
        assert_eq!(
            sparkline(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 8, None),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(sparkline(&[1.0, f64::NAN, 3.0], 3, None), "▁ █");
        assert_eq!(sparkline(&[5.0, 5.0], 2, None), "▄▄");
    }

    #[test]
    fn long_series_are_averaged_into_the_width() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        let s = sparkline(&v, 10, None);
        assert_eq!(s.chars().count(), 10);
        assert!(s.starts_with('▁') && s.ends_with('█'));
    }

    #[test]
    fn a_shared_scale_keeps_lines_comparable() {
        assert_eq!(sparkline(&[1.0, 1.0], 2, Some((0.0, 2.0))), "▅▅");
    }

    #[test]
    fn strips_keep_the_worst_outcome_of_a_bucket() {
        use crate::analysis::Phase;
        use crate::judge::Verdict::{Fail, Inconclusive, Pass};
        assert_eq!(strip(&[Pass, Fail, Inconclusive], 3), "✓✗?");
        assert_eq!(strip(&[Pass, Fail, Pass, Pass], 2), "✗✓");
        assert_eq!(strip(&[Phase::Successful, Phase::Error], 5), "✓!");
    }
}
