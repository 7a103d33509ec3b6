//! `canary demo` (the README's main command) and `canary promote`'s usage errors.

mod common;

use common::canary;

/// The README's main command: three promotions with the statistical Judge. The healthy
/// release goes 10 → 50 → 100 %; errors ×2 (a success rate a 99 % threshold passes) are
/// rolled back at 10 % by the anytime-valid errors test, its evidence growing poll by poll
/// past its threshold; an SLO burn is rolled back by the burn-rate gate.
#[test]
fn demo_promotes_with_the_statistical_judge_and_names_each_rollbacks_reason() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = canary(&["demo", "--markdown", "--out", dir]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        stdout.contains("release v2: Promoted — VirtualService now stable 0 % / canary 100 %"),
        "{stdout}"
    );
    for release in ["v3", "v4"] {
        assert!(
            stdout.contains(&format!(
                "release {release}: RolledBack — VirtualService now stable 100 % / canary 0 %"
            )),
            "{stdout}"
        );
    }
    // v3: the errors test decided, with the numbers, and the threshold it slipped past.
    let v3 = &stdout[stdout.find("release v3").unwrap()..stdout.find("release v4").unwrap()];
    assert!(v3.contains("→ REGRESSION"), "{v3}");
    assert!(v3.contains("why: errors: canary fails more often"), "{v3}");
    // The re-judgement for the page runs a moment later, so its ratio is about 2.
    assert!(
        v3.contains("rate ratio 2") || v3.contains("rate ratio 1.9"),
        "{v3}"
    );
    assert!(
        v3.contains("a 99 % success-rate threshold would have promoted it"),
        "{v3}"
    );
    // Its errors e-value grows from poll to poll until it passes the threshold.
    let e: Vec<f64> = v3
        .lines()
        .filter(|l| l.contains("poll "))
        .map(|l| {
            let at = l.find("errors e-value ").unwrap() + "errors e-value ".len();
            l[at..].split(' ').next().unwrap().parse().unwrap()
        })
        .collect();
    assert!(e.len() >= 2 && e.windows(2).all(|w| w[1] > w[0]), "{e:?}");
    // v4: nothing wrong with the canary; the SLO gate.
    let v4 = &stdout[stdout.find("release v4").unwrap()..];
    assert!(v4.contains("why: SLO availability"), "{v4}");
    assert!(!v4.contains("→ REGRESSION"), "{v4}");
    assert!(
        stderr.contains("1/2 of its 1 % budget per analysis"),
        "{stderr}"
    );
    assert!(
        stdout.contains("| 1 | analysis | Failed"),
        "markdown summary: {stdout}"
    );
    assert_eq!(stderr.matches("analysis Successful").count(), 2, "{stderr}");

    // The reports, the deciding judgements and the ledger are written, and `canary audit`
    // reads the ledger.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report-v3.json")).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "rolled_back");
    assert_eq!(report["final_weight"], 0);
    assert_eq!(report["judge_budget_share"], 0.5);
    let page = std::fs::read_to_string(out.path().join("judgement-v3.html")).unwrap();
    assert!(
        page.contains("Evidence so far") && page.contains("decision"),
        "{page}"
    );
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
        stdout.contains("shop/checkout:v2") && stdout.contains("shop/checkout:v4"),
        "{stdout}"
    );
    assert!(stdout.contains("3 entries"), "{stdout}");
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
