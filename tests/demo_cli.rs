//! `canary demo` (the README's main command) and `canary promote`'s usage errors.

use std::process::Command;

fn canary(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        // No cluster, whatever the machine has configured.
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn demo_promotes_the_healthy_release_and_rolls_back_the_regressed_one() {
    let (code, stdout, stderr) = canary(&["demo", "--markdown"]);
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
