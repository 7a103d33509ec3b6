//! schemathesis (Python) run against a live server: installed or not, the run itself
//! (bounded in examples and time), and its summary read from its JSON and ndjson reports.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::serve::TOKEN;
use crate::READER;

/// The schemathesis version `.ci/run` installs; another one runs, with a note.
pub const PINNED: &str = "4.32.5";

/// The longest a run may take before it is stopped and the test fails.
const BUDGET: Duration = Duration::from_secs(150);

/// The checks that must have run (and passed) at least once.
const REQUIRED_CHECKS: [&str; 5] = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "json_error_shape",
];

/// schemathesis' version, or `None` (announced loudly) when it is not installed — a failure
/// with `CANARY_REQUIRE_SCHEMATHESIS=1`.
pub fn installed() -> Option<String> {
    let required = std::env::var("CANARY_REQUIRE_SCHEMATHESIS").is_ok_and(|v| v == "1");
    let out = Command::new("python3")
        .args(["-c", "import schemathesis; print(schemathesis.__version__)"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if version != PINNED {
                eprintln!("note: schemathesis {version} installed; .ci/run pins {PINNED}");
            }
            Some(version)
        }
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                Err(e) => format!("python3: {e}"),
            };
            assert!(
                !required,
                "CANARY_REQUIRE_SCHEMATHESIS=1 but schemathesis is not installed: {why}"
            );
            eprintln!(
                "\n!!!!!!!!\n!!! SKIPPED: schemathesis is not installed \
                 (python3 -m pip install schemathesis=={PINNED}): {why}\n!!!!!!!!\n"
            );
            None
        }
    }
}

/// A finished run.
pub struct Run {
    seed: String,
    examples: String,
    took: Duration,
    status: ExitStatus,
    /// schemathesis' JSON report.
    report: Value,
    /// Check name → (passed, failed, neither).
    checks: BTreeMap<String, (u64, u64, u64)>,
    /// Its text output (failures with a curl command to reproduce each).
    log: String,
}

/// Runs schemathesis with every check against the server at `url`, with the document in
/// `schema`, working in `dir`: `CANARY_SCHEMATHESIS_EXAMPLES` (50) examples per operation,
/// seed `CANARY_SCHEMATHESIS_SEED` (1), one worker; stopped (a failure) past the budget.
pub fn run(url: &str, schema: &Path, dir: &Path, skip_audit: bool) -> Run {
    let examples = std::env::var("CANARY_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "50".into());
    let seed = std::env::var("CANARY_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let reports = dir.join("reports");
    let (json_report, events) = (reports.join("run.json"), reports.join("events.ndjson"));
    let log_path = dir.join("schemathesis.log");
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "schemathesis.cli", "--config-file"])
        .arg(crate::common::project_path(
            "tests/schemathesis/schemathesis.toml",
        ))
        .arg("run")
        .arg(schema)
        .args(["--url", url, "--checks", "all", "--max-examples", &examples])
        .args(["--seed", &seed, "--workers", "1", "--request-timeout", "20"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--report", "json,ndjson", "--report-json-path"])
        .arg(&json_report)
        .arg("--report-ndjson-path")
        .arg(&events);
    if skip_audit {
        cmd.args(["--exclude-operation-id", "audit"]);
    }
    // One worker: hypothesis' strategy descriptions are not thread-safe here (a rare
    // "AST constructor recursion depth mismatch" error with two).
    let log = std::fs::File::create(&log_path).unwrap();
    cmd.current_dir(dir)
        .env(
            "SCHEMATHESIS_HOOKS",
            crate::common::project_path("tests/schemathesis/hooks.py"),
        )
        .env("CANARY_ST_JUDGE_TOKEN", TOKEN)
        .env("CANARY_ST_READER_TOKEN", READER)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("python3 -m schemathesis.cli");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BUDGET {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis ran over {BUDGET:?}:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let took = started.elapsed();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let report: Value = std::fs::read_to_string(&json_report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no JSON report ({status}):\n{log}"));
    let checks = check_counts(&std::fs::read_to_string(&events).unwrap_or_default());
    Run {
        seed,
        examples,
        took,
        status,
        report,
        checks,
        log,
    }
}

/// How each check fared, from schemathesis' ndjson events: name → (passed, failed, other).
fn check_counts(ndjson: &str) -> BTreeMap<String, (u64, u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for line in ndjson
        .lines()
        .filter(|l| l.contains("\"ScenarioFinished\""))
    {
        let event: Value = serde_json::from_str(line).expect("an ndjson event");
        let checks = &event["ScenarioFinished"]["recorder"]["checks"];
        for results in checks.as_object().into_iter().flat_map(|m| m.values()) {
            for r in results.as_array().into_iter().flatten() {
                let entry = out
                    .entry(r["name"].as_str().unwrap_or("?").to_string())
                    .or_default();
                match r["status"].as_str() {
                    Some("success") => entry.0 += 1,
                    Some("failure") => entry.1 += 1,
                    _ => entry.2 += 1,
                }
            }
        }
    }
    out
}

impl Run {
    fn failed_checks(&self) -> u64 {
        self.checks.values().map(|(_, f, _)| f).sum()
    }

    /// The summary: operations, test cases, each check, failures.
    pub fn print(&self, version: &str, postgres: bool) {
        let (ops, cases) = (&self.report["operations"], &self.report["test_cases"]);
        let run: u64 = self.checks.values().map(|(p, f, o)| p + f + o).sum();
        eprintln!(
            "schemathesis {version} against canary serve{} (seed {}, {} examples per \
             operation, {:.1} s):",
            if postgres { " with PostgreSQL" } else { "" },
            self.seed,
            self.examples,
            self.took.as_secs_f64()
        );
        eprintln!(
            "  operations: {} tested of {} selected ({} in the document)",
            ops["tested"], ops["selected"], ops["total"]
        );
        eprintln!(
            "  test cases: {} generated, {} with failures, {} errored",
            cases["generated"], cases["with_failures"], cases["errored"]
        );
        eprintln!("  checks: {run} run, {} failed", self.failed_checks());
        for (name, (passed, failed, other)) in &self.checks {
            eprintln!("    {name:30} {passed:6} passed {failed:4} failed {other:5} other");
        }
        let count = |k: &str| self.report[k].as_array().map_or(0, Vec::len);
        eprintln!(
            "  failures: {}, errors: {}",
            count("failures"),
            count("errors")
        );
    }

    /// No failure, no error, every operation tested, and the required checks ran.
    pub fn assert_clean(&self, operations: u64) {
        let log = &self.log;
        let empty = |k: &str| self.report[k].as_array().is_none_or(Vec::is_empty);
        assert!(
            self.status.success()
                && empty("failures")
                && empty("errors")
                && self.report["test_cases"]["with_failures"] == 0
                && self.failed_checks() == 0,
            "schemathesis found problems ({}):\n{log}",
            self.status
        );
        assert_eq!(
            self.report["operations"]["tested"], operations,
            "operations tested:\n{log}"
        );
        for name in REQUIRED_CHECKS {
            let (passed, _, _) = self.checks.get(name).copied().unwrap_or_default();
            assert!(passed > 0, "check {name} never ran:\n{log}");
        }
    }
}
