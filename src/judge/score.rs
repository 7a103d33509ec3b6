//! Group scoring: many metric classifications into one score and verdict (Kayenta's
//! weighted-sum scorer, with missing data made inconclusive instead of silently dropped).

use super::part::Classification;
use super::words::readable;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The judgement of a whole canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Score at or above `pass`: promote.
    Pass,
    /// Score between `marginal` and `pass`: a human should look (Argo: Inconclusive).
    Marginal,
    /// Score below `marginal`, or a critical metric failed: roll back.
    Fail,
    /// Not enough data to decide (half or more of the metrics had none): never a pass.
    Inconclusive,
}

impl Verdict {
    /// Lower-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Marginal => "marginal",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Weights and thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    /// Weight per group, in percent. Groups without a weight share what is left of 100.
    pub groups: BTreeMap<String, f64>,
    /// Minimum score for `pass` (default 95).
    pub pass: f64,
    /// Minimum score for `marginal` (default 75).
    pub marginal: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            groups: BTreeMap::new(),
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

/// What the scorer needs to know about one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Metric name, for reasons.
    pub name: String,
    /// The group it is scored in (its name when the spec gives none).
    pub group: String,
    /// What the metric's tests concluded.
    pub classification: Classification,
    /// It fails the whole judgement.
    pub critical: bool,
    /// Missing data counts as a failure (`must_have_data`).
    pub must_have_data: bool,
}

/// One group's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupScore {
    /// Group name.
    pub name: String,
    /// `pass / (pass + high + low + nodata_fail) × 100`; 100 when nothing counted.
    pub score: f64,
    /// The weight actually applied, in percent of the total.
    pub weight: f64,
    /// Metrics in the group.
    pub metrics: usize,
}

/// The scored judgement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Score {
    /// 0–100.
    pub score: f64,
    /// `pass`, `marginal` or `fail`, from the score and the critical metrics.
    pub verdict: Verdict,
    /// Per-group scores.
    pub groups: Vec<GroupScore>,
    /// Why, with numbers.
    pub reasons: Vec<String>,
}

/// Scores the metrics. Weights of the groups present are normalised to 100 % so a
/// configuration naming absent groups cannot cap the score below `pass`.
pub fn score(cfg: &ScoringConfig, metrics: &[Scored]) -> Score {
    let mut by_group: BTreeMap<&str, Vec<&Scored>> = BTreeMap::new();
    for m in metrics {
        by_group.entry(m.group.as_str()).or_default().push(m);
    }
    let configured: f64 = by_group
        .keys()
        .filter_map(|g| cfg.groups.get(*g))
        .sum::<f64>();
    let unweighted = by_group
        .keys()
        .filter(|g| !cfg.groups.contains_key(**g))
        .count();
    let share = if unweighted > 0 {
        ((100.0 - configured) / unweighted as f64).max(0.0)
    } else {
        0.0
    };
    let mut raw: Vec<(String, f64, f64, usize)> = by_group
        .iter()
        .map(|(g, ms)| {
            let count = |c: Classification| ms.iter().filter(|m| m.classification == c).count();
            let pass = count(Classification::Pass);
            let bad = count(Classification::High)
                + count(Classification::Low)
                + ms.iter()
                    .filter(|m| m.classification == Classification::Nodata && m.must_have_data)
                    .count();
            let s = if pass + bad == 0 {
                100.0
            } else {
                pass as f64 / (pass + bad) as f64 * 100.0
            };
            let w = cfg.groups.get(*g).copied().unwrap_or(share);
            (g.to_string(), s, w, ms.len())
        })
        .collect();
    let total_w: f64 = raw.iter().map(|r| r.2).sum();
    let n_groups = raw.len().max(1) as f64;
    for r in &mut raw {
        r.2 = if total_w > 0.0 {
            r.2 / total_w * 100.0
        } else {
            100.0 / n_groups
        };
    }
    let mut total: f64 = raw.iter().map(|(_, s, w, _)| s * w / 100.0).sum();
    let groups: Vec<GroupScore> = raw
        .into_iter()
        .map(|(name, score, weight, metrics)| GroupScore {
            name,
            score,
            weight,
            metrics,
        })
        .collect();

    let mut reasons = Vec::new();
    let criticals: Vec<&Scored> = metrics.iter().filter(|m| m.critical).collect();
    let missing = metrics
        .iter()
        .filter(|m| {
            matches!(
                m.classification,
                Classification::Nodata | Classification::Error
            )
        })
        .count();
    let verdict = if metrics.is_empty() {
        total = 0.0;
        reasons.push("no metrics were judged".into());
        Verdict::Inconclusive
    } else if !criticals.is_empty() {
        total = 0.0;
        for m in &criticals {
            reasons.push(format!(
                "critical metric {} is {}: the judgement fails regardless of the score",
                m.name,
                m.classification.as_str()
            ));
        }
        Verdict::Fail
    } else if missing * 2 >= metrics.len() {
        total = 0.0;
        reasons.push(format!(
            "{missing} of {} metrics had no data: too little to judge, so inconclusive (never a pass)",
            metrics.len()
        ));
        Verdict::Inconclusive
    } else if metrics
        .iter()
        .any(|m| m.classification == Classification::Error)
    {
        reasons.push("a metric could not be queried: inconclusive".into());
        Verdict::Inconclusive
    } else {
        let v = if total >= cfg.pass {
            Verdict::Pass
        } else if total >= cfg.marginal {
            Verdict::Marginal
        } else {
            Verdict::Fail
        };
        let failing: Vec<String> = metrics
            .iter()
            .filter(|m| matches!(m.classification, Classification::High | Classification::Low))
            .map(|m| format!("{} ({})", m.name, m.classification.as_str()))
            .collect();
        reasons.push(format!(
            "score {} (pass ≥ {}, marginal ≥ {}){}",
            readable(total),
            readable(cfg.pass),
            readable(cfg.marginal),
            if failing.is_empty() {
                String::new()
            } else {
                format!("; failing: {}", failing.join(", "))
            }
        ));
        v
    };
    Score {
        score: total,
        verdict,
        groups,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Classification::*;

    fn m(name: &str, group: &str, c: Classification) -> Scored {
        Scored {
            name: name.into(),
            group: group.into(),
            classification: c,
            critical: false,
            must_have_data: false,
        }
    }

    fn cfg(weights: &[(&str, f64)]) -> ScoringConfig {
        ScoringConfig {
            groups: weights.iter().map(|(g, w)| (g.to_string(), *w)).collect(),
            ..ScoringConfig::default()
        }
    }

    #[test]
    fn weighted_groups() {
        // errors: 1 of 2 pass → 50; latency: 2 of 2 → 100. 60/40 → 30 + 40 = 70 → fail.
        let ms = [
            m("e1", "errors", Pass),
            m("e2", "errors", High),
            m("l1", "latency", Pass),
            m("l2", "latency", Pass),
        ];
        let s = score(&cfg(&[("errors", 60.0), ("latency", 40.0)]), &ms);
        assert!((s.score - 70.0).abs() < 1e-12);
        assert_eq!(s.verdict, Verdict::Fail);
        // Unweighted groups share the remainder: errors 60, latency (100 − 60) = 40.
        let s = score(&cfg(&[("errors", 60.0)]), &ms);
        assert!((s.score - 70.0).abs() < 1e-12);
    }

    #[test]
    fn thresholds() {
        let mut ms: Vec<Scored> = (0..19).map(|i| m(&format!("m{i}"), "g", Pass)).collect();
        ms.push(m("bad", "g", High));
        assert_eq!(score(&cfg(&[]), &ms).verdict, Verdict::Pass); // 95
        ms.push(m("bad2", "g", Low));
        let s = score(&cfg(&[]), &ms);
        assert_eq!(s.verdict, Verdict::Marginal); // 19/21 = 90.5
        assert!(s.reasons[0].contains("bad (high)"));
    }

    #[test]
    fn critical_failure_zeroes_the_score() {
        let mut bad = m("p99", "latency", High);
        bad.critical = true;
        let ms = [m("a", "g", Pass), m("b", "g", Pass), m("c", "g", Pass), bad];
        let s = score(&cfg(&[]), &ms);
        assert_eq!((s.score, s.verdict), (0.0, Verdict::Fail));
        assert!(s.reasons[0].contains("critical metric p99"));
    }

    #[test]
    fn missing_data_is_never_a_pass() {
        let ms = [m("a", "g", Pass), m("b", "g", Nodata)];
        let s = score(&cfg(&[]), &ms);
        assert_eq!((s.score, s.verdict), (0.0, Verdict::Inconclusive));
        assert_eq!(score(&cfg(&[]), &[]).verdict, Verdict::Inconclusive);
        // Below half: nodata metrics are left out of the group score, unless must_have_data.
        let ms = [m("a", "g", Pass), m("b", "g", Pass), m("c", "g", Nodata)];
        assert_eq!(score(&cfg(&[]), &ms).verdict, Verdict::Pass);
        let mut c = m("c", "g", Nodata);
        c.must_have_data = true;
        let ms = [m("a", "g", Pass), m("b", "g", Pass), c];
        let s = score(&cfg(&[]), &ms);
        assert!((s.score - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.verdict, Verdict::Fail);
    }
}
