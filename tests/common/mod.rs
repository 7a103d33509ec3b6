//! Shared helpers for black-box tests.
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;

/// Path of a file under the project root.
pub fn project_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Reads and parses a JSON fixture.
pub fn fixture(rel: &str) -> Value {
    let path = project_path(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON array of numbers (null → NaN).
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::NAN))
        .collect()
}

/// `|a − b| ≤ tol · max(|b|, tiny)`.
pub fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    if a == b {
        return true;
    }
    (a - b).abs() <= tol * b.abs().max(f64::MIN_POSITIVE)
}
pub mod http;
pub mod judge_data;
pub mod kube_proxy;
pub mod kube_server;
pub mod opa;
pub mod postgres;
pub mod prom;
pub mod promotion;
pub mod serve;
pub mod traffic;
pub mod virtual_service;
pub mod wait;

/// Runs the `canary` binary from the project root with no cluster configured (whatever the
/// machine has): (exit code, stdout, stderr).
pub fn canary(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
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
