//! Soak for `canary serve`: mixed load for a long time while its Prometheus (Debian's, loaded
//! with `promtool`) is stopped, slowed and restarted on a schedule.
//!
//! The load: judge workers posting judgements for 20 services as Argo does, readers fetching
//! stored analyses and their HTML reports by the ids the judges were answered, a poller on
//! `/readyz` and `/metrics`, and reloads — the spec rewritten every 20 s, a broken file put
//! beside it and removed, SIGHUP every 30 s. The faults, every `SOAK_CYCLE` (120 s): 40 s
//! healthy, Prometheus killed for 20 s, restarted on the same data, 20 s healthy, 20 s slowed
//! (SIGSTOP 1.5 s / SIGCONT 0.5 s), 20 s healthy.
//!
//! Every answer is checked against the contract in docs/serve.md (a judgement is a verdict or
//! a JSON error with a listed code, never a 500 or a pass while Prometheus is away); the newest
//! ids a judge was answered, as many as `--keep-results` holds, are read back at the end (a 404
//! is a lost result). Every 10 s it samples
//! the server's RSS, open file descriptors and threads.
//!
//! `cargo bench --bench soak` runs 30 minutes (`SOAK_SECS=1800`); under
//! `cargo test --all-targets` a 25 s smoke run with a compressed schedule.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "common/fleet_data.rs"]
mod fleet_data;
#[path = "common/serve.rs"]
#[macro_use]
mod serve;

const SPEC: &str = "analysis-templates/judge-istio-golden-signals.yaml";
const TOKEN: &str = "soak-token";
const SERVICES: usize = 20;
const JUDGE_WORKERS: usize = 6;
const READERS: usize = 2;
/// `--keep-results`: the server keeps this many; older ones are evicted by design.
const KEEP: usize = 5000;
/// The ids read back at the end, the newest: all must be there (a margin below `KEEP` for
/// judgements stored in a different order than they were answered).
const READ_BACK: usize = KEEP - 100;
/// The error codes a judgement may answer while Prometheus is away or slow (docs/serve.md).
const UPSTREAM_CODES: [&str; 5] = [
    "prometheus_unreachable",
    "prometheus_timeout",
    "prometheus_error",
    "deadline_exceeded",
    "overloaded",
];

/// Prometheus under our control: stopped, paused and restarted on the same data and port.
struct Prometheus {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Prometheus {
    fn load(openmetrics: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.om");
        std::fs::write(&data, openmetrics).unwrap();
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&data)
            .arg(dir.path().join("tsdb"))
            .output()
            .expect("promtool: install Debian's prometheus package (see .ci/run)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            dir.path().join("prometheus.yml"),
            "global:\n  scrape_interval: 1h\n",
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut p = Prometheus {
            dir,
            port,
            child: None,
        };
        p.start();
        p.wait_ready();
        p
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("prometheus.log")).unwrap();
        self.child = Some(
            Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    d.join("prometheus.yml").display()
                ))
                .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
                .arg("--storage.tsdb.retention.time=100y")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            use std::io::{Read, Write};
            let mut answer = String::new();
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n");
                let _ = s.read_to_string(&mut answer);
            }
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Prometheus did not become ready");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.stop();
    }
}

/// One sample of the server process.
#[derive(Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_mib: f64,
    fds: usize,
    threads: u64,
}

fn sample(pid: u32, at: Duration) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Sample {
        at_s: at.as_secs_f64(),
        rss_mib: field("VmRSS:") as f64 / 1024.0,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0),
        threads: field("Threads:"),
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// `route status code-or-verdict` → count.
    answers: BTreeMap<String, usize>,
    /// Answers outside the contract, with what was wrong (the first 20 kept).
    violations: Vec<String>,
    violation_count: usize,
    judge_ms: Vec<f64>,
    ids: Vec<String>,
}

impl Tally {
    fn count(&mut self, key: String) {
        *self.answers.entry(key).or_default() += 1;
    }

    fn violation(&mut self, what: String) {
        self.violation_count += 1;
        if self.violations.len() < 20 {
            self.violations.push(what);
        }
    }
}

/// The fault schedule, compressed for the smoke run.
struct Schedule {
    cycle: Duration,
}

impl Schedule {
    /// What happens to Prometheus at `t`: the phase name at each sixth of the cycle.
    fn phase(&self, t: Duration) -> &'static str {
        let at = (t.as_secs_f64() % self.cycle.as_secs_f64()) / self.cycle.as_secs_f64();
        match (at * 6.0) as u32 {
            0 | 1 => "healthy",
            2 => "stopped",
            3 => "restarted",
            4 => "slowed",
            _ => "healthy",
        }
    }
}

fn judge_body(i: usize) -> Value {
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    json!({"judge": "istio-golden-signals", "since": since.to_rfc3339(),
        "args": {"service": format!("svc{}", i % SERVICES), "namespace": "fleet",
                 "canary_hash": format!("c{}", i % SERVICES),
                 "stable_hash": format!("s{}", i % SERVICES)}})
}

/// One judgement, checked against the contract.
async fn judge_once(client: &reqwest::Client, url: &str, i: usize, tally: &Mutex<Tally>) {
    let t = Instant::now();
    let sent = client
        .post(format!("{url}/api/v1/judge"))
        .bearer_auth(TOKEN)
        .json(&judge_body(i))
        .send()
        .await;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let Ok(r) = sent else {
        tally
            .lock()
            .unwrap()
            .violation(format!("judge: no answer: {:?}", sent.err()));
        return;
    };
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let mut t = tally.lock().unwrap();
    match status {
        200 => {
            let verdict = body["verdict"].as_str().unwrap_or("");
            let id = body["id"].as_str().unwrap_or("");
            if !["pass", "marginal", "fail", "inconclusive"].contains(&verdict) || id.is_empty() {
                t.violation(format!("judge 200 without a verdict and id: {body}"));
            }
            t.count(format!("judge 200 {verdict}"));
            t.judge_ms.push(ms);
            t.ids.push(id.to_string());
        }
        502..=504 => {
            let code = body["error"]["code"].as_str().unwrap_or("");
            if !UPSTREAM_CODES.contains(&code) || body["error"]["message"].as_str().is_none() {
                t.violation(format!("judge {status} outside the contract: {body}"));
            }
            t.count(format!("judge {status} {code}"));
        }
        _ => {
            t.violation(format!("judge {status}: {body}"));
            t.count(format!("judge {status}"));
        }
    }
}

/// Read back a stored analysis and its report.
async fn read_once(client: &reqwest::Client, url: &str, id: &str, tally: &Mutex<Tally>) {
    for (route, path) in [
        ("analysis", format!("{url}/api/v1/analyses/{id}")),
        ("report", format!("{url}/reports/{id}")),
    ] {
        let r = client.get(path).bearer_auth(TOKEN).send().await;
        let mut t = tally.lock().unwrap();
        match r {
            Ok(r) if r.status() == 200 => t.count(format!("{route} 200")),
            Ok(r) => {
                let status = r.status().as_u16();
                t.violation(format!("{route} {id}: {status}"));
                t.count(format!("{route} {status}"));
            }
            Err(e) => t.violation(format!("{route} {id}: no answer: {e}")),
        }
    }
}

/// `/readyz` (200, or 503 with a JSON reason while Prometheus is away) and `/metrics`.
async fn poll_once(client: &reqwest::Client, url: &str, tally: &Mutex<Tally>) {
    let ready = client.get(format!("{url}/readyz")).send().await;
    let metrics = client.get(format!("{url}/metrics")).send().await;
    let mut t = tally.lock().unwrap();
    match ready {
        Ok(r) if r.status() == 200 || r.status() == 503 => {
            t.count(format!("readyz {}", r.status().as_u16()))
        }
        other => t.violation(format!("readyz: {other:?}")),
    }
    match metrics {
        Ok(r) if r.status() == 200 => t.count("metrics 200".into()),
        other => t.violation(format!("metrics: {other:?}")),
    }
}

/// Rewrite the spec (a changed comment), or put a broken file beside it and take it away.
fn reload(judges: &Path, spec: &str, n: usize, pid: u32) {
    std::fs::write(judges.join("spec.yaml"), format!("{spec}\n# reload {n}\n")).unwrap();
    let broken = judges.join("broken.yaml");
    if n.is_multiple_of(2) {
        std::fs::write(
            &broken,
            "apiVersion: canary-engine/v1\nkind: Judge\nspec: [\n",
        )
        .unwrap();
    } else {
        let _ = std::fs::remove_file(&broken);
    }
    if n.is_multiple_of(3) {
        let _ = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status();
    }
}

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let secs = |k: &str, d: u64| -> Duration {
        Duration::from_secs(
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d),
        )
    };
    let (duration, cycle) = if bench {
        (secs("SOAK_SECS", 1800), secs("SOAK_CYCLE", 120))
    } else {
        (Duration::from_secs(25), Duration::from_secs(24))
    };
    let schedule = Schedule { cycle };
    let now = chrono::Utc::now().timestamp();
    let now = now - now % 30;
    let mut prometheus = Prometheus::load(&fleet_data::openmetrics(
        SERVICES,
        now - 1800,
        now + duration.as_secs() as i64 + 600,
    ));
    let judges = tempfile::tempdir().unwrap();
    let spec =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(SPEC)).unwrap();
    std::fs::write(judges.path().join("spec.yaml"), &spec).unwrap();
    let token = judges.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    // The token is not a spec: keep it out of the judges directory's YAML files.
    // The smoke run's outages (4 s) are shorter than the default 10 s answer cache, which
    // would answer through them: a 1 s cache there, so the faults are seen.
    let extra: &[&str] = if bench { &[] } else { &["--cache-ttl", "1s"] };
    let mut args = os_args![
        "--judges",
        judges.path(),
        "--token-file",
        &token,
        "--keep-results",
        KEEP.to_string(),
        "--reload-interval",
        "2s",
        "--deadline",
        "4s",
    ];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    let server = serve::start(&prometheus.url(), args);
    let pid = server.child.id();
    println!(
        "soak: {} of mixed load, faults every {}; {JUDGE_WORKERS} judge workers, {READERS} \
         readers, a poller, reloads",
        humantime::format_duration(duration),
        humantime::format_duration(cycle)
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..JUDGE_WORKERS {
        let (client, url, tally, stop) = (
            client.clone(),
            server.url.clone(),
            tally.clone(),
            stop.clone(),
        );
        tasks.push(rt.spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                judge_once(&client, &url, i, &tally).await;
                i += JUDGE_WORKERS;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    for r in 0..READERS {
        let (client, url, tally, stop) = (
            client.clone(),
            server.url.clone(),
            tally.clone(),
            stop.clone(),
        );
        tasks.push(rt.spawn(async move {
            let mut k = r;
            while !stop.load(Ordering::Relaxed) {
                let id = {
                    let t = tally.lock().unwrap();
                    // Among the newest half of what the server keeps.
                    let recent = &t.ids[t.ids.len().saturating_sub(KEEP / 2)..];
                    (!recent.is_empty()).then(|| recent[(k * 7919) % recent.len()].clone())
                };
                if let Some(id) = id {
                    read_once(&client, &url, &id, &tally).await;
                }
                k += READERS;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }));
    }
    {
        let (client, url, tally, stop) = (
            client.clone(),
            server.url.clone(),
            tally.clone(),
            stop.clone(),
        );
        tasks.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                poll_once(&client, &url, &tally).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }));
    }

    // The schedule runs here: faults, reloads and samples.
    let started = Instant::now();
    let mut samples = vec![sample(pid, Duration::ZERO)];
    let (mut last_phase, mut reloads, mut faults) = ("healthy", 0usize, BTreeMap::new());
    let (sample_every, reload_every) = if bench {
        (Duration::from_secs(10), Duration::from_secs(20))
    } else {
        (Duration::from_secs(5), Duration::from_secs(4))
    };
    let (mut next_sample, mut next_reload) = (sample_every, reload_every);
    let mut paused = false;
    while started.elapsed() < duration {
        let t = started.elapsed();
        let phase = schedule.phase(t);
        if phase != last_phase {
            *faults.entry(phase).or_insert(0usize) += 1;
            match phase {
                "stopped" => prometheus.stop(),
                "restarted" => prometheus.start(),
                _ => {}
            }
            if last_phase == "slowed" && paused {
                prometheus.signal("-CONT");
                paused = false;
            }
            last_phase = phase;
        }
        if phase == "slowed" {
            // 1.5 s frozen, 0.5 s running: queries that straddle a freeze take seconds.
            let in_two = t.as_millis() % 2000;
            let want_paused = in_two < 1500;
            if want_paused != paused {
                prometheus.signal(if want_paused { "-STOP" } else { "-CONT" });
                paused = want_paused;
            }
        }
        if t >= next_reload {
            reloads += 1;
            reload(judges.path(), &spec, reloads, pid);
            next_reload += reload_every;
        }
        if t >= next_sample {
            samples.push(sample(pid, t));
            next_sample += sample_every;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if paused {
        prometheus.signal("-CONT");
    }
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
    let elapsed = started.elapsed();
    samples.push(sample(pid, elapsed));

    // The newest ids a judge was answered are read back: a 404 is a lost result.
    let answered = tally.lock().unwrap().ids.len();
    let ids: Vec<String> = {
        let t = tally.lock().unwrap();
        t.ids[t.ids.len().saturating_sub(READ_BACK)..].to_vec()
    };
    let lost: usize = rt.block_on(async {
        let mut lost = 0;
        for chunk in ids.chunks(32) {
            let mut reads = tokio::task::JoinSet::new();
            for id in chunk {
                let get = client
                    .get(format!("{}/api/v1/analyses/{id}", server.url))
                    .bearer_auth(TOKEN)
                    .send();
                reads.spawn(async move { matches!(get.await, Ok(r) if r.status() == 200) });
            }
            lost += reads
                .join_all()
                .await
                .iter()
                .filter(|found| !**found)
                .count();
        }
        lost
    });

    let mut t = tally.lock().unwrap();
    t.judge_ms.sort_by(f64::total_cmp);
    let requests: usize = t.answers.values().sum();
    let middle = samples[samples.len() / 2];
    let (first, last) = (samples[0], *samples.last().unwrap());
    println!(
        "{:>8} {:>9} {:>5} {:>8}",
        "t s", "RSS MiB", "fds", "threads"
    );
    let every = (samples.len() / 20).max(1);
    for s in samples.iter().step_by(every).chain(std::iter::once(&last)) {
        println!(
            "{:>8.0} {:>9.1} {:>5} {:>8}",
            s.at_s, s.rss_mib, s.fds, s.threads
        );
    }
    println!(
        "soak: {:.0} s, {requests} requests ({} judgements answered 200, p50 {:.1} ms, p99 \
         {:.1} ms), {reloads} reloads, faults {faults:?}",
        elapsed.as_secs_f64(),
        t.judge_ms.len(),
        quantile(&t.judge_ms, 0.5),
        quantile(&t.judge_ms, 0.99)
    );
    println!(
        "soak: RSS start {:.1} / middle {:.1} / end {:.1} MiB; fds {} / {} / {}; threads {} / \
         {} / {}",
        first.rss_mib,
        middle.rss_mib,
        last.rss_mib,
        first.fds,
        middle.fds,
        last.fds,
        first.threads,
        middle.threads,
        last.threads
    );
    println!("soak: answers {:?}", t.answers);
    println!(
        "soak: outside the contract {} {:?}; results lost {lost} of the newest {} read back \
         ({answered} answered; --keep-results {KEEP})",
        t.violation_count,
        t.violations,
        ids.len()
    );
    assert!(
        !t.judge_ms.is_empty(),
        "no judgement succeeded: {:?}",
        t.answers
    );
    assert_eq!(t.violation_count, 0, "answers outside the contract");
    assert_eq!(lost, 0, "results lost");
    // Prometheus away must have been seen, or the faults did not happen.
    assert!(
        t.answers.keys().any(|k| k.starts_with("judge 50")),
        "no judgement saw Prometheus away: {:?}",
        t.answers
    );
    drop(server);
    prometheus.stop();
}
