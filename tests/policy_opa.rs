//! The shipped deploy gate (`policies/deploy-gate.rego`) in a real OPA built from its Go
//! module: its own unit tests under `opa test`, and the budgets `canary budget` measures on a
//! real Prometheus fed to `opa run --server` — a healthy budget is allowed, an exhausted,
//! fast-burning one denied, with reasons.

mod common;

use std::process::Command;

use common::judge_data::shared_prometheus;
use serde_json::{json, Value};

#[test]
fn the_policys_unit_tests_pass_in_real_opa() {
    let Some(opa) = common::opa::binary() else {
        return;
    };
    let out = Command::new(opa)
        .args(["test", "-v"])
        .arg(common::project_path("policies"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = stdout.lines().filter(|l| l.contains("PASS")).count();
    assert!(stdout.contains("PASS: 9/9"), "{stdout}");
    assert!(passed >= 9, "{stdout}");
}

fn budget(service: &str) -> Value {
    let (code, out, err) = common::canary(&[
        "budget",
        "analysis-templates/judge-istio-golden-signals.yaml",
        "--arg",
        &format!("service={service}"),
        "--arg",
        "namespace=prod",
        "--prometheus",
        &shared_prometheus().url,
    ]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn measured_budgets_are_what_the_policy_decides_on() {
    let gate = common::project_path("policies/deploy-gate.rego");
    let Some(opa) = common::opa::Opa::start(&[&gate]) else {
        return;
    };
    let ask = |b: &Value| -> Value {
        let input = json!({"virtual_service": "prod/x", "budgets": [b]});
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            reqwest::Client::new()
                .post(opa.gate())
                .json(&json!({"input": input}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["result"]
                .clone()
        })
    };
    // `busy` errs 0.05 % against a 99.9 % objective: half the budget spent.
    let busy = budget("busy");
    let slo = &busy["slos"][0];
    assert_eq!(slo["name"], "availability", "{busy}");
    let remaining = slo["remaining"].as_f64().unwrap();
    assert!((0.3..0.7).contains(&remaining), "{busy}");
    assert_eq!(
        (busy["exhausted"].as_bool(), busy["fast_burn"].as_bool()),
        (Some(false), Some(false))
    );
    let answer = ask(&busy);
    assert_eq!(answer["allow"], true, "{answer}");

    // `burning` errs 20 % for the last hour: budget gone, the 1h/5m rule trips.
    let burning = budget("burning");
    assert_eq!(burning["exhausted"], true, "{burning}");
    assert_eq!(burning["fast_burn"], true, "{burning}");
    assert_eq!(burning["slos"][0]["rules"][0]["trips"], true, "{burning}");
    let answer = ask(&burning);
    assert_eq!(answer["allow"], false, "{answer}");
    let deny = answer["deny"].to_string();
    assert!(
        deny.contains("error budget exhausted") && deny.contains("burning"),
        "{deny}"
    );
}
