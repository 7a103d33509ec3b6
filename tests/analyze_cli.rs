//! `canary analyze` input errors: exit 64 with the file, metric, field and line; and every
//! starter template in analysis-templates/ validates against Argo's CRD schema and rules.

mod common;

use common::canary;

use std::collections::BTreeMap;

use canary_engine::template;

#[test]
fn every_starter_template_validates() {
    let dir = common::project_path("analysis-templates");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("\nkind: Judge\n") {
            // Judge specs are checked by tests/serve_e2e.rs.
            continue;
        }
        let t = template::load_file(&path).unwrap_or_else(|e| panic!("{e:?}"));
        // Every required arg filled with a plausible value: Argo's rules must hold.
        let mut args = BTreeMap::new();
        for a in t.iter().flat_map(|t| &t.args) {
            if a.value.is_none() {
                args.insert(a.name.clone(), "checkout".to_string());
            }
        }
        let metrics =
            template::resolve(&t, &args).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert!(!metrics.is_empty());
        // Every query mentions the service: the args reached the PromQL (or the web body).
        for m in &metrics {
            let text = match (&m.metric.provider.prometheus, &m.metric.provider.web) {
                (Some(p), _) => p.query.clone(),
                (_, Some(w)) => w
                    .json_body
                    .as_ref()
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
                _ => unreachable!("validated"),
            };
            assert!(text.contains("\"checkout\""), "{}: {text}", path.display());
            assert!(
                !text.contains("{{"),
                "{}: unresolved placeholder",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 4, "starter templates found: {n}");
}

#[test]
fn bad_template_names_file_metric_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("bad.yaml");
    std::fs::write(
        &t,
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: x}\nspec:\n  metrics:\n  - name: rate\n    count: 3\n    provider:\n      prometheus: {query: up}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = canary(&[
        "analyze",
        t.to_str().unwrap(),
        "--source",
        "snapshot:/dev/null",
    ]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stdout.is_empty());
    let want = format!(
        "error: {}:7: metric \"rate\": spec.metrics[0].count: interval must be specified when count > 1",
        t.display()
    );
    assert_eq!(stderr.trim(), want);
}

#[test]
fn unknown_field_and_missing_arg_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.yaml");
    std::fs::write(
        &t,
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: x}\nspec:\n  args:\n  - name: service\n  - name: token\n    valueFrom: {secretKeyRef: {name: prom, key: token}}\n  metrics:\n  - name: rate\n    provider:\n      prometheus:\n        query: up{service=\"{{args.service}}\"}\n        headers: [{key: Authorization, value: \"Bearer {{args.token}}\"}]\n",
    )
    .unwrap();
    let p = t.to_str().unwrap();
    let (code, _, stderr) = canary(&["analyze", p, "--source", "snapshot:/dev/null"]);
    assert_eq!(code, 64);
    assert!(
        stderr.contains("argument \"service\" was not supplied"),
        "{stderr}"
    );
    let (code, _, stderr) = canary(&[
        "analyze",
        p,
        "--arg",
        "service=a",
        "--source",
        "snapshot:/dev/null",
    ]);
    assert_eq!(code, 64);
    assert!(
        stderr.contains("secretKeyRef") && stderr.contains("--arg token=VALUE"),
        "{stderr}"
    );
    let (code, _, stderr) = canary(&[
        "analyze",
        p,
        "--arg",
        "service=a",
        "--arg",
        "token=x",
        "--arg",
        "servce=b",
    ]);
    assert_eq!(code, 64);
    assert!(stderr.contains("\"servce\" is not declared"), "{stderr}");

    std::fs::write(&t, "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: x}\nspec:\n  metrics:\n  - name: rate\n    sucessCondition: result > 1\n    provider: {prometheus: {query: up}}\n").unwrap();
    let (code, _, stderr) = canary(&["analyze", p]);
    assert_eq!(code, 64);
    assert!(
        stderr.contains(":6: metric \"rate\": spec.metrics[0]: schema:")
            && stderr.contains("sucessCondition"),
        "{stderr}"
    );
}

#[test]
fn usage_errors() {
    let (code, _, _) = canary(&["analyze"]);
    assert_eq!(code, 64);
    let t = common::project_path("analysis-templates/istio-success-rate.yaml");
    let (code, _, stderr) = canary(&["analyze", t.to_str().unwrap(), "--arg", "service"]);
    assert_eq!(code, 64);
    assert!(stderr.contains("NAME=VALUE"), "{stderr}");
    let (code, _, stderr) = canary(&[
        "analyze",
        t.to_str().unwrap(),
        "--arg",
        "service=a",
        "--arg",
        "namespace=b",
        "--source",
        "snapshot:/nonexistent",
    ]);
    assert_eq!(code, 64);
    assert!(stderr.contains("/nonexistent"), "{stderr}");
}
