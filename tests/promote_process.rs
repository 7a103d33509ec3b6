//! `canary promote` as a process, against a real Kubernetes API server (`tests/kube-apiserver`)
//! reached through its kubeconfig — TLS, a bearer token, as kubectl would find it: signals, kill -9 at random
//! moments then rerun, a Rollout manifest's steps and background analysis, Judge specs as
//! analyses, a missing VirtualService, and `canary audit` over the ledger.

mod common;

use common::promotion::{target, vs};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use canary_engine::source::snapshot::Entry;
use canary_engine::source::{QueryValue, Series};
use canary_engine::traffic::current_weights;
use common::kube_proxy::TestKube;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Uniform};
use serde_json::Value;

/// (stable, canary) weights of the stored VirtualService.
async fn weights(kube: &TestKube) -> (i64, i64) {
    let o = kube.object().await.expect("stored");
    let w = current_weights(&o, &target()).expect("managed route");
    (w[0].stable, w[0].canary)
}

async fn progress_phase(kube: &TestKube) -> String {
    let o = kube.object().await.expect("stored");
    canary_engine::promote::progress_of(&o)
        .map(|p| p.phase.to_string())
        .unwrap_or_default()
}

struct Env {
    dir: tempfile::TempDir,
    kube: TestKube,
    kubeconfig: PathBuf,
}

fn entry(key: &str, value: QueryValue) -> String {
    let e = Entry {
        kind: "prometheus".into(),
        key: key.into(),
        recorded_at: String::new(),
        result: Some(value),
        warnings: vec![],
        response: None,
        error: None,
    };
    serde_json::to_string(&e).unwrap()
}

fn series(values: impl Iterator<Item = f64>) -> QueryValue {
    QueryValue::Matrix(vec![Series::of(
        Default::default(),
        values
            .enumerate()
            .map(|(i, v)| (1_700_000_000.0 + 30.0 * i as f64, v))
            .collect(),
    )])
}

impl Env {
    /// `None` (announced loudly) without Go.
    async fn new() -> Option<Env> {
        let dir = tempfile::tempdir().unwrap();
        let kube = TestKube::start().await?;
        let kubeconfig = common::kube_server::server()?.kubeconfig.clone();
        kube.put(vs()).await;
        // Scalar answers for the AnalysisTemplates, and latency series for the Judge: the
        // `good` canary (hash c) matches the baseline (hash s), the `slow` one is twice as slow.
        let mut snap = String::new();
        // q_late answers 0.99 at the first analysis and 0.1 from the second on.
        for (q, v) in [
            ("q_good", 0.99),
            ("q_bad", 0.1),
            ("q_late", 0.99),
            ("q_late", 0.1),
        ] {
            snap.push_str(&entry(
                q,
                QueryValue::Scalar {
                    time: 0.0,
                    value: v,
                },
            ));
            snap.push('\n');
        }
        let noise = |i: usize| ((i * 37) % 11) as f64;
        for (hash, scale) in [("s", 1.0), ("good", 1.0), ("slow", 2.0)] {
            let key = format!("latency_ms{{h=\"{hash}\"}} [range 600s step 30s]");
            snap.push_str(&entry(
                &key,
                series((0..20).map(|i| scale * (100.0 + noise(i)))),
            ));
            snap.push('\n');
        }
        std::fs::write(dir.path().join("snap.jsonl"), snap).unwrap();
        for (name, query, interval) in [
            ("ok", "q_good", ""),
            ("bad", "q_bad", "    interval: 1s\n"),
            ("late", "q_late", ""),
        ] {
            std::fs::write(
                dir.path().join(format!("{name}.yaml")),
                format!(
                    "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: {name}}}\nspec:\n  args: [{{name: service, value: reviews}}]\n  metrics:\n  - name: success-{name}\n{interval}    successCondition: result >= 0.9\n    failureCondition: result < 0.5\n    provider: {{prometheus: {{query: {query}}}}}\n"
                ),
            )
            .unwrap();
        }
        std::fs::write(
            dir.path().join("judge.yaml"),
            "kind: Judge\nname: latency-judge\nargs: [canary_hash, stable_hash]\nwindow: 10m\nstep: 30s\nmetrics:\n- name: latency\n  query: latency_ms{h=\"{{variant.hash}}\"}\n",
        )
        .unwrap();
        Some(Env {
            dir,
            kube,
            kubeconfig,
        })
    }

    /// `prod/x` in an argument becomes `<this test's namespace>/x`.
    fn in_namespace(&self, arg: &str) -> String {
        match arg.strip_prefix("prod/") {
            Some(name) => format!("{}/{name}", self.kube.ns),
            None => arg.to_string(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_canary"));
        c.args(args.iter().map(|a| self.in_namespace(a)))
            .current_dir(self.dir.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("RUST_LOG", "off")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }
}

const FLAGS: &[&str] = &[
    "promote",
    "--virtual-service",
    "prod/reviews",
    "--route",
    "primary",
    "--stable-subset",
    "stable",
    "--canary-subset",
    "canary",
    "--source",
    "snapshot:snap.jsonl",
    "--analysis-once",
    "--audit",
    "audit.jsonl",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    FLAGS.iter().chain(extra).copied().collect()
}

/// Run to the end, off the async runtime (the fake API server lives on it).
async fn finish(c: Command) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let mut c = c;
        let out = c.output().expect("run canary");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, f: impl Fn() -> F) {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ledger(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_rolls_back_or_leaves_the_weight_when_asked() {
    for (pause_on_signal, code, expected) in [(false, 1, (100, 0)), (true, 2, (90, 10))] {
        let Some(env) = Env::new().await else {
            return;
        };
        let mut args = with(&["--analysis", "ok.yaml", "--step-pause", "60s"]);
        if pause_on_signal {
            args.push("--pause-on-signal");
        }
        let child = env.command(&args).spawn().unwrap();
        let kube = env.kube.clone();
        wait_for("canary at 10 %", || async {
            weights(&kube).await == (90, 10)
        })
        .await;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill (procps)");
        assert!(status.success());
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(code), "{stdout}");
        assert_eq!(weights(&env.kube).await, expected);
        let phase = if pause_on_signal {
            "paused"
        } else {
            "rolled_back"
        };
        assert_eq!(progress_phase(&env.kube).await, phase);
        assert!(stdout.contains("interrupted"), "{stdout}");
        let events: Vec<String> = ledger(&env.path("audit.jsonl"))
            .iter()
            .map(|e| e["event"].as_str().unwrap_or("").to_string())
            .collect();
        let last = if pause_on_signal {
            "deployment.paused"
        } else {
            "deployment.rolled_back"
        };
        assert_eq!(events.last().map(String::as_str), Some(last), "{events:?}");
    }
}

/// Kill -9 at random moments, then rerun the same command: it resumes (or reports the
/// finished promotion), the weights always sum to 100, and no step's weight is raised before
/// every analysis up to it has passed — across all the runs' ledger entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_then_rerun_never_skips_an_analysis() {
    let Some(env) = Env::new().await else {
        return;
    };
    let args = with(&["--analysis", "ok.yaml", "--step-pause", "30ms"]);
    // A new seed each run, printed; CANARY_TRIAL_SEED=<seed> replays a failure
    // (CANARY_KILL_SEED, its older name, still works).
    let seed = std::env::var("CANARY_TRIAL_SEED")
        .or_else(|_| std::env::var("CANARY_KILL_SEED"))
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("kill -9 trials: seed {seed} (CANARY_TRIAL_SEED={seed} replays them)");
    let mut rng = StdRng::seed_from_u64(seed);
    // Kill within the time a whole run takes on this machine, measured first, so that most
    // kills land mid-promotion however fast or slow the machine is.
    env.kube.put(vs()).await;
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 0, "a whole run: {stdout}\n{stderr}");
    let whole = started.elapsed().as_millis() as u64;
    eprintln!("a whole run takes {whole} ms");
    let delays = Uniform::new(0u64, (whole * 9 / 10).max(20)).unwrap();
    let mut killed = 0;
    let mut resumed = 0;
    for trial in 0..24 {
        env.kube.put(vs()).await;
        let _ = std::fs::remove_file(env.path("audit.jsonl"));
        let mut child = env.command(&args).spawn().unwrap();
        let delay = Duration::from_millis(delays.sample(&mut rng));
        tokio::time::sleep(delay).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        let (s, c) = weights(&env.kube).await;
        assert_eq!(s + c, 100, "trial {trial}: weights {s}/{c} after kill -9");

        let (code, stdout, stderr) = finish(env.command(&args)).await;
        assert_eq!(code, 0, "trial {trial}: rerun: {stdout}\n{stderr}");
        assert_eq!(weights(&env.kube).await, (0, 100), "trial {trial}");
        if stderr.contains("resumed_at_step\":") && !stderr.contains("resumed_at_step\":null") {
            resumed += 1;
        }

        // Steps: setWeight 10 (0), pause (1), analysis (2), setWeight 50 (3), …
        let mut passed: Vec<u64> = Vec::new();
        for e in ledger(&env.path("audit.jsonl")) {
            match e["event"].as_str() {
                Some("analysis.completed") => {
                    assert_eq!(e["phase"], "Successful");
                    passed.push(e["index"].as_u64().unwrap());
                }
                Some("deployment.step") if e["step"].as_str().unwrap().starts_with("setWeight") => {
                    let i = e["index"].as_u64().unwrap();
                    for analysis in (2..i).step_by(3) {
                        assert!(
                            passed.contains(&analysis),
                            "trial {trial}: step {i} raised the weight before analysis {analysis} passed"
                        );
                    }
                }
                _ => {}
            }
        }
        for analysis in [2, 5, 8] {
            assert!(
                passed.contains(&analysis),
                "trial {trial}: analysis {analysis} never ran"
            );
        }
    }
    assert!(killed >= 10, "only {killed} of 24 runs were killed mid-way");
    assert!(
        resumed >= 5,
        "only {resumed} reruns resumed a recorded step"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_virtual_service_is_a_usage_error() {
    let Some(env) = Env::new().await else {
        return;
    };
    let args: Vec<&str> = FLAGS
        .iter()
        .map(|a| if *a == "prod/reviews" { "prod/nope" } else { a })
        .collect();
    let (code, _, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains(&format!("VirtualService {}/nope not found", env.kube.ns)),
        "{stderr}"
    );

    let (code, _, stderr) = finish(env.command(&with(&["--route", "nope"]))).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("does not fit"), "{stderr}");
    assert_eq!(weights(&env.kube).await, (100, 0), "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_specs_decide_promotions() {
    for (canary, code, expected) in [("good", 0, (0, 100)), ("slow", 1, (100, 0))] {
        let Some(env) = Env::new().await else {
            return;
        };
        let canary_arg: &'static str = Box::leak(format!("canary_hash={canary}").into_boxed_str());
        let args = with(&[
            "--steps",
            "10,100",
            "--analysis",
            "judge.yaml",
            "--arg",
            canary_arg,
            "--arg",
            "stable_hash=s",
            "--report",
            "report.json",
            "--html",
            "report.html",
        ]);
        let (c, stdout, stderr) = finish(env.command(&args)).await;
        assert_eq!(c, code, "{canary}: {stdout}\n{stderr}");
        assert_eq!(weights(&env.kube).await, expected, "{canary}");
        // The HTML report: weight over time with the analysis's verdict, and its measurements.
        let html = std::fs::read_to_string(env.path("report.html")).unwrap();
        let outcome = if canary == "good" {
            ">promoted</span>"
        } else {
            ">rolled_back</span>"
        };
        assert!(html.contains(outcome), "{html}");
        assert!(html.contains("Canary weight") && html.matches("<svg").count() >= 2);
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(env.path("report.json")).unwrap())
                .unwrap();
        let value = report["analyses"][0]["metrics"][0]["measurements"][0]["value"]
            .as_str()
            .unwrap()
            .to_string();
        let verdict = if canary == "good" { "pass" } else { "fail" };
        assert!(
            value.contains(&format!("\"verdict\":\"{verdict}\"")),
            "{value}"
        );
    }
}

const ROLLOUT: &str = r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: reviews, namespace: prod}
spec:
  strategy:
    canary:
      trafficRouting:
        istio:
          virtualService: {name: reviews, routes: [primary]}
          destinationRule: {name: reviews, canarySubsetName: canary, stableSubsetName: stable}
      steps:
      - setWeight: 20
      - analysis:
          templates: [{templateName: ok}]
          args:
          - name: service
            valueFrom: {podTemplateHashValue: Latest}
      - pause: {}
      - setWeight: 60
      - pause: {duration: 1}
      - setWeight: 100
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_manifest_gives_steps_routing_and_an_indefinite_pause() {
    let Some(env) = Env::new().await else {
        return;
    };
    let rollout = ROLLOUT.replace("namespace: prod", &format!("namespace: {}", env.kube.ns));
    std::fs::write(env.path("rollout.yaml"), rollout).unwrap();
    let base = [
        "promote",
        "--rollout",
        "rollout.yaml",
        "--source",
        "snapshot:snap.jsonl",
        "--analysis-once",
        "--audit",
        "audit.jsonl",
    ];
    // The hash arg comes from the cluster in Argo: without --arg it is a usage error.
    let (code, _, stderr) = finish(env.command(&base)).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("--arg service=VALUE"), "{stderr}");

    let args: Vec<&str> = base.iter().copied().chain(["--arg", "service=r"]).collect();
    let (code, stdout, _) = finish(env.command(&args)).await;
    assert_eq!(code, 2, "the `pause: {{}}` step stops the run: {stdout}");
    assert_eq!(weights(&env.kube).await, (80, 20));
    assert_eq!(progress_phase(&env.kube).await, "paused");

    let (code, stdout, _) = finish(env.command(&args)).await;
    assert_eq!(code, 0, "a rerun continues after the pause: {stdout}");
    assert_eq!(weights(&env.kube).await, (0, 100));
    let steps: Vec<String> = ledger(&env.path("audit.jsonl"))
        .iter()
        .filter(|e| e["event"] == "deployment.step")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        steps,
        [
            "setWeight 20",
            "analysis",
            "pause (until resumed)",
            "setWeight 60",
            "pause 1s",
            "setWeight 100"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_background_analysis_rolls_back_mid_pause_and_the_watch_keeps_judging() {
    let rollout = ROLLOUT
        .replace(
            "      steps:\n",
            "      analysis:\n        startingStep: 1\n        templates: [{templateName: bad}]\n      steps:\n",
        )
        .replace("      - pause: {}\n", "      - pause: {duration: 60}\n");
    let Some(env) = Env::new().await else {
        return;
    };
    let rollout = rollout.replace("namespace: prod", &format!("namespace: {}", env.kube.ns));
    std::fs::write(env.path("rollout.yaml"), rollout).unwrap();
    let args = [
        "promote",
        "--rollout",
        "rollout.yaml",
        "--source",
        "snapshot:snap.jsonl",
        "--analysis-once",
        "--arg",
        "service=r",
        "--audit",
        "audit.jsonl",
    ];
    let started = Instant::now();
    let (code, stdout, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "did not wait out the pause"
    );
    assert!(stdout.contains("background analysis Failed"), "{stdout}");
    assert_eq!(weights(&env.kube).await, (100, 0));
    let background: Vec<Value> = ledger(&env.path("audit.jsonl"))
        .into_iter()
        .filter(|e| e["event"] == "analysis.completed" && e["background"] == true)
        .collect();
    assert_eq!(background.len(), 1, "{background:?}");
    assert_eq!(background[0]["phase"], "Failed");

    // Flags: a healthy background Judge and a 2 s watch after 100 % → promoted after the watch;
    // --watch without a background analysis is a usage error.
    let Some(env) = Env::new().await else {
        return;
    };
    let (code, _, stderr) = finish(env.command(&with(&["--watch", "2s"]))).await;
    assert_eq!(code, 64, "{stderr}");
    let args = with(&[
        "--steps",
        "50,100",
        "--background-analysis",
        "judge.yaml",
        "--background-interval",
        "1s",
        "--arg",
        "canary_hash=good",
        "--arg",
        "stable_hash=s",
        "--watch",
        "2s",
    ]);
    let started = Instant::now();
    let (code, stdout, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the watch was skipped"
    );
    assert!(stderr.contains("watch 2s"), "{stderr}");
    assert_eq!(weights(&env.kube).await, (0, 100));

    // The same with a slow canary: the background Judge fails during the watch → rolled back.
    let Some(env) = Env::new().await else {
        return;
    };
    let args: Vec<&str> = args
        .iter()
        .map(|a| {
            if *a == "canary_hash=good" {
                "canary_hash=slow"
            } else {
                a
            }
        })
        .collect();
    let (code, stdout, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert_eq!(weights(&env.kube).await, (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lists_and_filters_the_ledger() {
    let Some(env) = Env::new().await else {
        return;
    };
    let (code, _, _) = finish(env.command(&with(&["--analysis", "ok.yaml"]))).await;
    assert_eq!(code, 0);
    env.kube.put(vs()).await;
    let (code, _, _) =
        finish(env.command(&with(&["--analysis", "bad.yaml", "--steps", "5,100"]))).await;
    assert_eq!(code, 1);
    // A line cut short by a crash is reported and skipped, not fatal.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.path("audit.jsonl"))
        .unwrap();
    f.write_all(b"{\"event\":\"deployment.st").unwrap();

    let (code, stdout, stderr) = finish(env.command(&["audit", "audit.jsonl"])).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("deployment.promoted") && stdout.contains("deployment.rolled_back"));
    assert!(stdout.contains("1 damaged lines skipped"), "{stdout}");
    assert!(stderr.contains("audit.jsonl:"), "{stderr}");

    let (_, stdout, _) = finish(env.command(&[
        "audit",
        "audit.jsonl",
        "--event",
        "deployment.rolled_back",
        "--output",
        "json",
    ]))
    .await;
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0]["reason"].as_str().unwrap().contains("Failed"));

    let (_, stdout, _) = finish(env.command(&[
        "audit",
        "audit.jsonl",
        "--promotion",
        "canary:5,100",
        "--event",
        "analysis",
        "--output",
        "json",
    ]))
    .await;
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    let (_, stdout, _) =
        finish(env.command(&["audit", "audit.jsonl", "--since", "1h", "--output", "json"])).await;
    let (_, all, _) = finish(env.command(&["audit", "audit.jsonl", "--output", "json"])).await;
    assert_eq!(stdout, all, "everything happened within the hour");
    let (_, stdout, _) = finish(env.command(&[
        "audit",
        "audit.jsonl",
        "--until",
        "2000-01-01T00:00:00Z",
        "--output",
        "json",
    ]))
    .await;
    assert!(stdout.is_empty(), "{stdout}");
    let (code, _, stderr) =
        finish(env.command(&["audit", "audit.jsonl", "--since", "yesterday"])).await;
    assert_eq!(code, 64, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_50_percent_rolls_back_to_0() {
    let Some(env) = Env::new().await else {
        return;
    };
    let (code, stdout, stderr) = finish(env.command(&with(&["--analysis", "late.yaml"]))).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("analysis Failed at step 3"), "{stdout}");
    assert_eq!(weights(&env.kube).await, (100, 0));
    let seen: Vec<String> = ledger(&env.path("audit.jsonl"))
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("deployment.step") => Some(e["step"].as_str().unwrap().to_string()),
            Some("analysis.completed") => Some(e["phase"].as_str().unwrap().to_string()),
            Some("deployment.rolled_back") => Some("rolled back".into()),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        [
            "setWeight 10",
            "analysis",
            "Successful",
            "setWeight 50",
            "analysis",
            "Failed",
            "rolled back"
        ]
    );
}

/// The VirtualService deleted mid-promotion: the next change fails, the rollback is attempted
/// (and fails too: there is nothing to roll back), exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_deleted_mid_promotion_is_an_infrastructure_error() {
    let Some(env) = Env::new().await else {
        return;
    };
    let args = with(&[
        "--analysis",
        "ok.yaml",
        "--step-pause",
        "2s",
        "--kube-deadline",
        "2s",
    ]);
    let child = env.command(&args).spawn().unwrap();
    let kube = env.kube.clone();
    wait_for("canary at 10 %", || async {
        weights(&kube).await == (90, 10)
    })
    .await;
    env.kube.delete().await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("not found"), "{stdout}");
    assert!(env.kube.object().await.is_none(), "nothing recreated");
}

/// The traffic has moved before the reports are written: a report that cannot be written
/// after a rollback is a warning, and the exit code stays the rollback's 1 (a pipeline must
/// not read it as a usage error, 64).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_that_cannot_be_written_keeps_the_rollbacks_exit_code() {
    let Some(env) = Env::new().await else {
        return;
    };
    let args = with(&[
        "--analysis",
        "bad.yaml",
        "--report",
        "no-such-dir/report.json",
        "--html",
        "no-such-dir/report.html",
    ]);
    let (code, stdout, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.contains("warning: cannot write report no-such-dir/report.json"),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-dir/report.html"), "{stderr}");
    assert_eq!(weights(&env.kube).await, (100, 0));
}

/// A denial is the promotion's outcome, decided before any weight change: standard output
/// that cannot take the `PolicyDenied` line is a warning, and the exit code stays the
/// denial's 4 (not 74, which a pipeline would read as an I/O failure of the runner).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_that_cannot_be_printed_keeps_the_policys_exit_code() {
    let Some(env) = Env::new().await else {
        return;
    };
    // A policy engine answering as OPA's data API does: denied.
    let opa = common::http::Server::start(|_| {
        common::http::Reply::json(
            200,
            r#"{"result": {"allow": false, "deny": ["change freeze"]}}"#,
        )
    });
    let url = format!("{}/v1/data/canary/deploy", opa.url);
    let mut args: Vec<&str> = with(&[]);
    args.extend(["--policy", url.as_str()]);
    let mut c = env.command(&args);
    c.stdout(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    );
    let (code, _, stderr) = finish(c).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("warning: cannot write the result to standard output"),
        "{stderr}"
    );
    assert_eq!(weights(&env.kube).await, (100, 0), "no weight changed");
    assert_eq!(opa.seen().len(), 1, "the policy was asked once");
}

/// `canary audit` as a process: (exit code, stdout, stderr).
fn audit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_write_a_tamper_evident_ledger_to_postgres() {
    let Some(pg) = common::postgres::Postgres::start() else {
        return;
    };
    let url = pg.database("ledger");
    let (Some(a), Some(b)) = (Env::new().await, Env::new().await) else {
        return;
    };
    // Two promotions of different services, writing to one ledger at once.
    let run = |env: &Env| {
        let mut args: Vec<&str> = FLAGS.to_vec();
        let at = args.iter().position(|a| *a == "audit.jsonl").unwrap();
        args[at] = url.as_str();
        args.extend(["--analysis", "ok.yaml"]);
        finish(env.command(&args))
    };
    let ((ca, oa, ea), (cb, ob, eb)) = tokio::join!(run(&a), run(&b));
    assert_eq!((ca, cb), (0, 0), "{oa}{ea}\n{ob}{eb}");
    assert!(!ea.contains("pw-not-to-be-logged"), "{ea}");
    let rows = pg.sql(
        "ledger",
        "SELECT count(*), count(DISTINCT promotion) FROM canary_audit",
    );
    let (total, promotions) = rows.split_once('|').unwrap();
    assert_eq!(promotions, "2", "{rows}");
    let total: usize = total.parse().unwrap();
    assert!(total >= 2 * 5, "{rows}");
    assert_eq!(
        pg.sql(
            "ledger",
            "SELECT count(*) FROM canary_audit WHERE event = 'deployment.created'"
        ),
        "2",
        "today's deployment.started is the platform's deployment.created"
    );
    let (code, out, err) = audit(&[&url, "--verify"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("ledger intact: {total} rows")),
        "{out}"
    );
    let (code, out, _) = audit(&[&url, "--event", "deployment.promoted", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");

    // The ledger's own role may only add and read.
    for change in [
        "UPDATE canary_audit SET body = '{}' WHERE seq = 3",
        "DELETE FROM canary_audit WHERE seq = 3",
        "TRUNCATE canary_audit",
    ] {
        let e = pg
            .try_sql("ledger", &format!("SET ROLE canary_ledger; {change}"))
            .expect_err(change);
        assert!(e.contains("permission denied"), "{change}: {e}");
    }
    pg.sql(
        "ledger",
        "SET ROLE canary_ledger; SELECT count(*) FROM canary_audit",
    );
    // Not even a superuser changes it through the table…
    for change in [
        "UPDATE canary_audit SET body = '{}' WHERE seq = 3",
        "DELETE FROM canary_audit WHERE seq = 3",
    ] {
        let e = pg.try_sql("ledger", change).expect_err(change);
        assert!(e.contains("append-only"), "{change}: {e}");
    }
    // …but one who switches the triggers off can; the chain then names the row.
    let seq = pg.sql(
        "ledger",
        "SELECT seq FROM canary_audit WHERE body LIKE '%setWeight%' ORDER BY seq LIMIT 1 OFFSET 1",
    );
    let changed = pg.sql(
        "ledger",
        &format!(
            "SET session_replication_role = replica; \
             UPDATE canary_audit SET body = replace(body, 'setWeight', 'SETWEIGHT') WHERE seq = {seq}"
        ),
    );
    assert_eq!(changed, "SET\nUPDATE 1");
    let (code, out, _) = audit(&[&url, "--verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("row {seq} ")) && out.contains("content was changed"),
        "{out}"
    );
    pg.sql(
        "ledger",
        &format!(
            "SET session_replication_role = replica; \
             UPDATE canary_audit SET body = replace(body, 'SETWEIGHT', 'setWeight') WHERE seq = {seq}"
        ),
    );
    assert_eq!(audit(&[&url, "--verify"]).0, 0, "restored");
    pg.sql(
        "ledger",
        &format!(
            "SET session_replication_role = replica; DELETE FROM canary_audit WHERE seq = {seq}"
        ),
    );
    let next = pg.sql(
        "ledger",
        &format!("SELECT min(seq) FROM canary_audit WHERE seq > {seq}"),
    );
    let (code, out, _) = audit(&[&url, "--verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("row {next} ")) && out.contains("missing"),
        "{out}"
    );
    // Months are partitions, so old ones can be detached and archived.
    let parts = pg.sql(
        "ledger",
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'canary_audit'::regclass",
    );
    assert_eq!(parts, "1", "this month's partition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_that_cannot_be_written_stops_the_promotion_before_the_next_weight_change() {
    let Some(pg) = common::postgres::Postgres::start() else {
        return;
    };
    let url = pg.database("ledger");
    let Some(env) = Env::new().await else {
        return;
    };
    let mut args: Vec<&str> = FLAGS.to_vec();
    let at = args.iter().position(|a| *a == "audit.jsonl").unwrap();
    args[at] = url.as_str();
    args.extend(["--step-pause", "3s"]);
    let child = env.command(&args).spawn().unwrap();
    let kube = env.kube.clone();
    wait_for("canary at 10 %", || async {
        weights(&kube).await == (90, 10)
    })
    .await;
    pg.stop();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stdout.contains("stopped before setting weight 50") && stdout.contains("audit ledger"),
        "{stdout}"
    );
    assert_eq!(weights(&env.kube).await, (90, 10), "traffic left as it was");

    pg.start_server();
    let (code, stdout, stderr) = finish(env.command(&args)).await;
    assert_eq!(code, 0, "the rerun resumes: {stdout}{stderr}");
    assert_eq!(weights(&env.kube).await, (0, 100));
    let (code, out, _) = audit(&[&url, "--verify"]);
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_asks_the_deploy_policy_before_any_weight_change() {
    let gate_policy = common::project_path("policies/deploy-gate.rego");
    let Some(opa) = common::opa::Opa::start(&[&gate_policy]) else {
        return;
    };
    let prometheus = common::judge_data::shared_prometheus().url.clone();
    let gate = opa.gate();
    let closed_port = common::prom::free_port().to_string();
    let nowhere = format!("http://127.0.0.1:{closed_port}/v1/data/canary/deploy");
    // (service, policy URL, extra flags, exit code (-1: any outcome of a promotion that ran),
    // weights changed, the policy event)
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], i32, bool, &'a str);
    let cases: [Case; 4] = [
        ("burning", &gate, &[], 4, false, "policy.violated"),
        ("busy", &gate, &[], -1, true, "policy.evaluated"),
        ("busy", &nowhere, &[], 3, false, "policy.violated"),
        (
            "busy",
            &nowhere,
            &["--policy-fail", "open"],
            -1,
            true,
            "policy.bypassed",
        ),
    ];
    for (service, policy, extra, code, moves, event) in cases {
        let Some(env) = Env::new().await else { return };
        std::fs::copy(
            common::project_path("analysis-templates/judge-istio-golden-signals.yaml"),
            env.path("golden.yaml"),
        )
        .unwrap();
        let service_arg = format!("service={service}");
        let mut args = vec![
            "promote",
            "--virtual-service",
            "prod/reviews",
            "--route",
            "primary",
            "--stable-subset",
            "stable",
            "--canary-subset",
            "canary",
            "--prometheus",
            &prometheus,
            "--analysis-once",
            "--steps",
            "10,100",
            "--analysis",
            "golden.yaml",
            "--arg",
            &service_arg,
            "--arg",
            "namespace=prod",
            "--arg",
            "canary_hash=c0ffee",
            "--arg",
            "stable_hash=5tab1e",
            "--audit",
            "audit.jsonl",
            "--policy",
            policy,
            "--policy-timeout",
            "3s",
        ];
        args.extend_from_slice(extra);
        let (c, stdout, stderr) = finish(env.command(&args)).await;
        let what = format!("{service} via {policy} {extra:?}: exit {c}\n{stdout}\n{stderr}");
        if code >= 0 {
            assert_eq!(c, code, "{what}");
        } else {
            assert!([0, 1, 2].contains(&c), "{what}");
        }
        let entries = ledger(&env.path("audit.jsonl"));
        let events: Vec<&str> = entries
            .iter()
            .map(|e| e["event"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(
            events.first().copied(),
            Some(event),
            "the gate comes first: {events:?}\n{what}"
        );
        let stepped = events.contains(&"deployment.step");
        assert_eq!(stepped, moves, "{events:?}\n{what}");
        if !moves {
            assert_eq!(
                weights(&env.kube).await,
                (100, 0),
                "no weight changed: {what}"
            );
        }
        if service == "burning" {
            let deny = entries[0]["deny"].to_string();
            assert!(deny.contains("error budget exhausted"), "{deny}");
            assert!(stdout.contains("PolicyDenied"), "{what}");
            assert_eq!(entries[0]["input"]["exhausted"], true);
        }
    }
}

/// Promote through the test proxy (so the API can be taken down), with `kube_deadline`; at
/// 10 % the API answers 500 to everything for two minutes. The end state of that run, its
/// exit code, and what the API log shows.
async fn promote_through_an_outage(kube_deadline: &'static str) -> (Env, i32, String) {
    let env = Env::new().await.expect("Go is required for this test");
    let kubeconfig = env.kube.proxy.kubeconfig(env.dir.path());
    let mut c = env.command(&with(&[
        "--analysis",
        "ok.yaml",
        "--step-pause",
        "5s",
        "--kube-deadline",
        kube_deadline,
    ]));
    c.env("KUBECONFIG", &kubeconfig);
    let child = c.spawn().unwrap();
    let kube = env.kube.clone();
    wait_for("canary at 10 %", || async {
        weights(&kube).await == (90, 10)
    })
    .await;
    env.kube.outage(Duration::from_secs(120));
    let (code, _, stderr) = tokio::task::spawn_blocking(move || {
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    (env, code, stderr)
}

/// The Kubernetes API answering 500 for two minutes mid-promotion, with a retry deadline
/// shorter than the outage: the weight change and then the rollback give up (exit 3), the
/// traffic stays exactly as it was (10 %, its progress unchanged, never half-written), and
/// the same command rerun after the outage resumes from 10 % and promotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_api_outage_stops_with_exit_3_and_the_rerun_resumes() {
    if common::kube_server::server().is_none() {
        return;
    }
    let (env, code, stderr) = promote_through_an_outage("30s").await;
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(weights(&env.kube).await, (90, 10), "{stderr}");
    assert_eq!(progress_phase(&env.kube).await, "progressing");
    assert!(
        env.kube.log().iter().any(|l| l == "500 (outage)"),
        "{:?}",
        env.kube.log()
    );
    // The outage ends two minutes after it began; the rerun waits for the API to answer.
    let kube = env.kube.clone();
    let deadline = Instant::now() + Duration::from_secs(150);
    while kube.proxy.client().apiserver_version().await.is_err() {
        assert!(Instant::now() < deadline, "the outage never ended");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let kubeconfig = env.kube.proxy.kubeconfig(env.dir.path());
    let mut c = env.command(&with(&["--analysis", "ok.yaml"]));
    c.env("KUBECONFIG", &kubeconfig);
    let (code, _, stderr) = finish(c).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(weights(&env.kube).await, (0, 100));
    let resumed = ledger(&env.path("audit.jsonl"))
        .iter()
        .filter(|e| e["event"] == "deployment.created")
        .map(|e| e["resumed_at_step"].clone())
        .collect::<Vec<_>>();
    assert_eq!(resumed.len(), 2, "{resumed:?}");
    assert!(resumed[1].is_number(), "the rerun resumed: {resumed:?}");
}

/// The same outage with a retry deadline longer than it: the promotion rides it out —
/// retrying with backoff, never writing a partial weight — and promotes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_api_outage_is_ridden_out_within_the_kube_deadline() {
    if common::kube_server::server().is_none() {
        return;
    }
    let (env, code, stderr) = promote_through_an_outage("4m").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(weights(&env.kube).await, (0, 100));
    let outage_answers = env
        .kube
        .log()
        .iter()
        .filter(|l| *l == "500 (outage)")
        .count();
    assert!(outage_answers >= 3, "{:?}", env.kube.log());
}
