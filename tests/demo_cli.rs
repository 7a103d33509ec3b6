//! `canary demo` (the README's main command) and `canary promote`'s usage errors.

mod common;

use common::canary;

#[test]
fn demo_promotes_the_healthy_release_and_rolls_back_the_regressed_one() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let (code, stdout, stderr) = canary(&["demo", "--markdown", "--out", dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("release v2: Promoted") && stdout.contains("stable 0 % / canary 100 %"),
        "{stdout}"
    );
    assert!(
        stdout.contains("release v3: RolledBack") && stdout.contains("stable 100 % / canary 0 %"),
        "{stdout}"
    );
    assert!(stdout.contains("analysis Failed at step 2"), "{stdout}");
    assert!(
        stdout.contains("| 2 | analysis | Failed"),
        "markdown summary: {stdout}"
    );
    assert_eq!(stderr.matches("analysis Successful").count(), 3, "{stderr}");

    // The reports and the ledger are written, and `canary audit` reads the ledger.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report-v3.json")).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["final_weight"], 0);
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(
        summary.contains("canary promote `shop/checkout:v2`: Promoted"),
        "{summary}"
    );
    let ledger = out.path().join("audit.jsonl");
    let (code, stdout, _) = canary(&[
        "audit",
        ledger.to_str().unwrap(),
        "--event",
        "deployment.promoted",
        "--event",
        "deployment.rolled_back",
    ]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("shop/checkout:v2") && stdout.contains("shop/checkout:v3"),
        "{stdout}"
    );
    assert!(stdout.contains("2 entries"), "{stdout}");
}

#[test]
fn promote_usage_errors_exit_64() {
    let (code, _, stderr) = canary(&[
        "promote",
        "--virtual-service",
        "nonamespace",
        "--stable-subset",
        "a",
        "--canary-subset",
        "b",
    ]);
    assert_eq!(code, 64, "{stderr}");
    let (code, _, stderr) = canary(&[
        "promote",
        "--virtual-service",
        "ns/vs",
        "--stable-subset",
        "a",
    ]);
    assert_eq!(code, 64, "{stderr}");
}

/// The reusable workflow `_promote.yml` passes only flags `canary promote` has.
#[test]
fn the_promote_workflow_uses_real_flags() {
    let workflow = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.github/workflows/_promote.yml"
    ))
    .unwrap();
    assert!(workflow.contains("workflow_call:"));
    let start = workflow
        .find("flags=(")
        .expect("the promote step builds flags");
    let end = workflow
        .find("canary promote \"${flags[@]}\"")
        .expect("and runs them");
    let (_, help, _) = canary(&["promote", "--help"]);
    let used: Vec<&str> = workflow[start..end]
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(used.len() >= 12, "{used:?}");
    for flag in used {
        assert!(
            help.contains(&format!("{flag} ")),
            "{flag} is not a canary promote flag"
        );
    }
}
