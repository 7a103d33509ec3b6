use super::*;

fn template(metric: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  args:\n  - name: service\n  metrics:\n{metric}"
    )
}

const GOOD: &str = r#"  - name: success
    interval: 1m
    count: 5
    failureLimit: 1
    successCondition: len(result) > 0 && !isNaN(result[0]) && result[0] >= 0.99
    failureCondition: len(result) > 0 && !isNaN(result[0]) && result[0] < 0.99
    provider:
      prometheus:
        query: sum(rate(ok{service="{{args.service}}"}[2m])) / sum(rate(all{service="{{args.service}}"}[2m]))
"#;

fn rules(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.rule).collect()
}

#[test]
fn a_careful_template_is_clean() {
    let f = lint_text("t.yaml", &template(GOOD));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn each_footgun_is_found_with_its_line() {
    // result[0] with no guard, and NaN both-false (no isNaN anywhere).
    let m = GOOD
        .replace(
            "len(result) > 0 && !isNaN(result[0]) && result[0] >= 0.99",
            "result[0] >= 0.99",
        )
        .replace(
            "len(result) > 0 && !isNaN(result[0]) && result[0] < 0.99",
            "result[0] < 0.99",
        );
    let f = lint_text("t.yaml", &template(&m));
    assert_eq!(
        rules(&f),
        ["empty-result", "nan-inconclusive", "empty-result"],
        "{f:?}"
    );
    assert_eq!(f[0].line, Some(12), "{}", f[0]);
    assert!(f[0].fix.as_deref().unwrap().contains("len(result) > 0 &&"));

    // NaN passes: success written as "not below the threshold".
    let m = GOOD
        .replace(
            "len(result) > 0 && !isNaN(result[0]) && result[0] >= 0.99",
            "len(result) > 0 && !(result[0] < 0.99)",
        )
        .replace(
            "len(result) > 0 && !isNaN(result[0]) && result[0] < 0.99",
            "len(result) > 0 && result[0] < 0.99",
        );
    let f = lint_text("t.yaml", &template(&m));
    assert_eq!(rules(&f), ["nan-passes"], "{f:?}");
    assert_eq!(f[0].severity, Severity::Error);

    // A limit count cannot exceed, a window shorter than the interval, an unused arg.
    let m = GOOD
        .replace("failureLimit: 1", "failureLimit: 5")
        .replace("[2m]", "[30s]")
        .replace("{{args.service}}", "checkout");
    let f = lint_text("t.yaml", &template(&m));
    assert_eq!(
        rules(&f),
        [
            "arg-unused",
            "limit-unreachable",
            "window-shorter-than-interval",
            "window-shorter-than-interval"
        ],
        "{f:?}"
    );
    assert_eq!(f[0].line, Some(6));
    assert_eq!(f[1].line, Some(11));
}

#[test]
fn broken_promql_and_schema_errors_are_errors() {
    let m = GOOD.replace("[2m]))", "[2m])");
    let f = lint_text("t.yaml", &template(&m));
    assert_eq!(rules(&f), ["promql"], "{f:?}");
    assert_eq!(f[0].line, Some(16));
    assert_eq!(f[0].severity, Severity::Error);

    let m = GOOD.replace("count: 5", "cuont: 5");
    let f = lint_text("t.yaml", &template(&m));
    assert_eq!(rules(&f), ["schema"], "{f:?}");
    // The schema names the unknown field on the line of the metric that holds it.
    assert_eq!(f[0].line, Some(8));
    assert!(f[0].message.contains("cuont"), "{}", f[0]);
}

#[test]
fn judge_specs_are_checked_too() {
    let judge = "kind: Judge\nname: j\nargs: [service, unused, canary_hash, stable_hash]\nwindow: 10m\nstep: 1m\nmetrics:\n- name: p99\n  query: histogram_quantile(0.99, sum by (le) (rate(lat_bucket{s=\"{{args.service}}\", h=\"{{variant.hash}}\"}[30s])))\n- name: broken\n  query: sum(rate(x{h=\"{{variant.hash}}\"}[1m])\n";
    let f = lint_text("j.yaml", judge);
    assert_eq!(
        rules(&f),
        ["arg-unused", "window-shorter-than-step", "promql"],
        "{f:?}"
    );
    assert_eq!(f[1].line, Some(8));
    assert_eq!(f[2].line, Some(10));
}

#[test]
fn the_shipped_templates_have_no_errors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("analysis-templates");
    let files = files(&[dir]).unwrap();
    assert_eq!(files.len(), 6);
    for f in files {
        let findings = lint_file(&f);
        assert!(
            findings.iter().all(|x| x.severity == Severity::Warning),
            "{findings:?}"
        );
    }
}

#[test]
fn overlapping_series_points_are_a_warning_with_a_fix() {
    let judge = "kind: Judge\nname: j\nargs: [canary_hash, stable_hash]\nstep: 30s\nmetrics:\n- name: p99\n  query: histogram_quantile(0.99, sum by (le) (rate(lat_bucket{h=\"{{variant.hash}}\"}[2m])))\n";
    let f = lint_text("j.yaml", judge);
    assert_eq!(rules(&f), ["window-longer-than-step"], "{f:?}");
    assert_eq!(f[0].line, Some(7));
    assert!(f[0].message.contains("every 4th point"), "{f:?}");
}
