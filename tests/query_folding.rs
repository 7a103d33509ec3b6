//! Folding is exact on a real Prometheus: for every shipped Judge spec and scenario, each
//! metric query folded over both variants, split back by the variant's label, answers exactly
//! what the two queries answer on their own, and an SLO's windows folded into one tagged query
//! answer what each window's queries do.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use canary_engine::judging::merge::{merge_variants, tag_union, TAG_LABEL};
use canary_engine::source::{PromQuery, PrometheusConfig, QueryValue, Range, Series, Sources};
use canary_engine::template::judge_spec;
use common::judge_data::{shared_prometheus, BASELINE, CANARY};

const SPECS: [&str; 2] = [
    "analysis-templates/judge-istio-golden-signals.yaml",
    "analysis-templates/judge-istio-kayenta-compatible.yaml",
];

/// The series of `v` as (labels less `drop`, samples), sorted.
fn series(v: &QueryValue, keep: impl Fn(&Series) -> bool, drop: &str) -> Vec<String> {
    let (QueryValue::Matrix(s) | QueryValue::Vector(s)) = v else {
        panic!("not a vector: {v:?}");
    };
    let mut out: Vec<String> = s
        .iter()
        .filter(|s| keep(s))
        .map(|s| {
            let mut labels = s.labels.clone();
            labels.remove(drop);
            format!("{labels:?} {:?}", s.samples)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn folded_queries_answer_exactly_what_the_parts_answer() {
    let prometheus = shared_prometheus();
    let sources = Sources::live(PrometheusConfig {
        url: Some(prometheus.url.clone()),
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ask = |q: &PromQuery| rt.block_on(sources.prometheus(q)).unwrap().value;
    let end = chrono::Utc::now() - chrono::Duration::minutes(1);
    let (mut folded_metrics, mut folded_slos, mut nonempty) = (0, 0, 0);
    for file in SPECS {
        let text = std::fs::read_to_string(common::project_path(file)).unwrap();
        let spec = judge_spec::parse_str(file, &text).unwrap().remove(0);
        for service in ["healthy", "errors", "tail", "burning"] {
            let given = BTreeMap::from([
                ("service".to_string(), service.to_string()),
                ("namespace".to_string(), "prod".to_string()),
                ("canary_hash".to_string(), CANARY.to_string()),
                ("stable_hash".to_string(), BASELINE.to_string()),
            ]);
            let rendered = spec.render(&spec.resolve_args(&given).unwrap()).unwrap();
            for (canary, baseline) in &rendered.metrics {
                for (c, b) in canary.iter().zip(baseline) {
                    let m =
                        merge_variants(c, b).unwrap_or_else(|| panic!("{file}: not folded: {c}"));
                    let range = |q: &str| {
                        let mut p = PromQuery::instant(q.to_string());
                        p.range = Some(Range {
                            start: end - chrono::Duration::minutes(20),
                            end,
                            step: Duration::from_secs(30),
                        });
                        p
                    };
                    let both = ask(&range(&m.query));
                    let has = |v: &str| {
                        let (label, v) = (m.label.clone(), v.to_string());
                        move |s: &Series| s.labels.get(&label) == Some(&v)
                    };
                    let alone_c = series(&ask(&range(c)), |_| true, &m.label);
                    let alone_b = series(&ask(&range(b)), |_| true, &m.label);
                    assert_eq!(series(&both, has(&m.canary), &m.label), alone_c, "{c}");
                    assert_eq!(series(&both, has(&m.baseline), &m.label), alone_b, "{b}");
                    nonempty += usize::from(!alone_c.is_empty() && !alone_b.is_empty());
                    folded_metrics += 1;
                }
            }
            for rules in &rendered.slos {
                let parts: Vec<&String> = rules
                    .iter()
                    .flat_map(|((le, lt), (se, st))| [le, lt, se, st])
                    .collect();
                let tags: Vec<String> = (0..parts.len()).map(|i| format!("q{i}")).collect();
                let texts: Vec<(&str, &str)> = tags
                    .iter()
                    .zip(&parts)
                    .map(|(t, q)| (t.as_str(), q.as_str()))
                    .collect();
                let text = tag_union(TAG_LABEL, &texts).expect("SLO folded");
                let instant = |q: &str| {
                    let mut p = PromQuery::instant(q.to_string());
                    p.time = Some(end);
                    p
                };
                let all = ask(&instant(&text));
                for (tag, q) in tags.iter().zip(&parts) {
                    let alone = series(&ask(&instant(q)), |_| true, TAG_LABEL);
                    let tagged = series(&all, |s| s.labels.get(TAG_LABEL) == Some(tag), TAG_LABEL);
                    assert!(!alone.is_empty(), "{q}");
                    assert_eq!(tagged, alone, "{q}");
                }
                folded_slos += 1;
            }
        }
    }
    eprintln!("{folded_metrics} metric queries and {folded_slos} SLOs folded, all exact");
    assert!(nonempty >= folded_metrics / 2, "the comparison saw data");
    assert!(folded_slos >= 8);
}
