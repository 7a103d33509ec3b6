//! `canary lint` as a process: the shipped templates pass, a broken directory fails with
//! file:line findings, JSON output for CI annotations, and usage errors.

mod common;

use common::canary;

#[test]
fn the_shipped_templates_lint_clean() {
    let (code, stdout, stderr) = canary(&["lint", "analysis-templates", "--strict"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("6 files: 0 errors, 0 warnings"), "{stdout}");
}

#[test]
fn a_broken_directory_fails_with_located_findings() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("team");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(
        nested.join("rate.yaml"),
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: rate}\nspec:\n  metrics:\n  - name: success\n    interval: 1m\n    count: 3\n    failureLimit: 3\n    successCondition: result[0] >= 0.99\n    provider:\n      prometheus:\n        query: sum(rate(ok[1m])) / sum(rate(all[1m])\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.yml"), "kind: ConfigMap\n").unwrap();
    let path = dir.path().to_str().unwrap();

    let (code, stdout, _) = canary(&["lint", path]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("rate.yaml:13: error[promql]"), "{stdout}");
    assert!(
        stdout.contains("rate.yaml:9: warning[limit-unreachable]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rate.yaml:10: warning[empty-result]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notes.yml: warning[not-a-template]"),
        "{stdout}"
    );
    assert!(stdout.contains("2 files: 1 errors, 3 warnings"), "{stdout}");

    let (code, stdout, _) = canary(&["lint", path, "--output", "json"]);
    assert_eq!(code, 1);
    let findings: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let promql = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "promql")
        .unwrap();
    assert_eq!(promql["severity"], "error");
    assert_eq!(promql["line"], 13);
    assert!(promql["file"].as_str().unwrap().ends_with("team/rate.yaml"));
}

#[test]
fn usage_errors_exit_64() {
    let (code, _, stderr) = canary(&["lint", "no/such/dir"]);
    assert_eq!(code, 64, "{stderr}");
    let (code, _, _) = canary(&["lint"]);
    assert_eq!(code, 64);
}
