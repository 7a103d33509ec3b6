//! A real Prometheus for tests: Debian's `prometheus`, loaded with scenario data through
//! `promtool tsdb create-blocks-from openmetrics`, on a free loopback port.
//!
//! The server runs under `sh`, which kills it when our end of its stdin closes — when the
//! handle is dropped or the test process exits — so no Prometheus outlives a test run.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Prometheus.
pub struct Prometheus {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    _stdin: ChildStdin,
    _child: Child,
    _dir: tempfile::TempDir,
}

fn bin(name: &str, env: &str) -> String {
    std::env::var(env).unwrap_or_else(|_| name.to_string())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Load `openmetrics` (text ending in `# EOF`) and start Prometheus on it.
    pub fn start(openmetrics: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data.om");
        std::fs::write(&data, openmetrics).unwrap();
        let tsdb = dir.path().join("tsdb");
        let promtool = bin("promtool", "CANARY_PROMTOOL");
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&data)
            .arg(&tsdb)
            .output()
            .unwrap_or_else(|e| {
                panic!("{promtool}: {e} — install Debian's prometheus package (see .ci/run)")
            });
        assert!(
            out.status.success(),
            "promtool failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let prometheus = bin("prometheus", "CANARY_PROMETHEUS_BIN");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" >"$LOG" 2>&1 & p=$!; read _ ; kill $p; wait $p"#)
            .arg("sh")
            .arg(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .env("LOG", &log)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        wait_ready(port, &log);
        Prometheus {
            url,
            _stdin: stdin,
            _child: child,
            _dir: dir,
        }
    }
}

impl Prometheus {
    /// A Prometheus that scrapes `target` (`host:port`) every second, with native
    /// histograms enabled, from an empty database.
    #[allow(dead_code)]
    pub fn scraping(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n- job_name: t\n  \
                 static_configs:\n  - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = dir.path().join("prometheus.log");
        let prometheus = bin("prometheus", "CANARY_PROMETHEUS_BIN");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" >"$LOG" 2>&1 & p=$!; read _ ; kill $p; wait $p"#)
            .arg("sh")
            .arg(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=native-histograms")
            .env("LOG", &log)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        wait_ready(port, &log);
        Prometheus {
            url: format!("http://127.0.0.1:{port}"),
            _stdin: stdin,
            _child: child,
            _dir: dir,
        }
    }
}

fn wait_ready(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n");
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "Prometheus did not become ready: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Scenario data for the starter templates, around the current time: 2 h of history and
/// 20 min ahead (so "now" stays covered however long the tests take).
///
/// Services (namespace `prod`, revision `v2`):
/// * `healthy`   — 1 000 requests per 15 s, 0.1 % 5xx, p99 under 100 ms;
/// * `regressed` — 10 % 5xx, p99 near 1 s;
/// * `zero`      — series exist but counters are flat: every rate is 0, so ratios are 0/0 = NaN;
/// * `ghost`     — no series at all (empty results).
pub fn scenario_openmetrics() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let start = now - 2 * 3600;
    let end = now + 20 * 60;
    let step = 15;
    let labels = |svc: &str| {
        format!(
            r#"reporter="destination",destination_service_name="{svc}",destination_service_namespace="prod",destination_canonical_revision="v2""#
        )
    };
    // (service, ok per step, 5xx per step, per-bucket increments for le 10,50,100,250,500,1000,2500)
    let services: [(&str, u64, u64, [u64; 7]); 3] = [
        ("healthy", 999, 1, [600, 300, 100, 0, 0, 0, 0]),
        ("regressed", 900, 100, [300, 100, 100, 100, 200, 200, 0]),
        ("zero", 0, 0, [0; 7]),
    ];
    let mut out = String::new();
    out.push_str("# TYPE istio_requests counter\n");
    for (svc, ok, bad, _) in &services {
        for (code, inc) in [("200", *ok), ("503", *bad)] {
            let mut v = 5u64;
            let mut t = start;
            while t <= end {
                out.push_str(&format!(
                    "istio_requests_total{{{},response_code=\"{code}\"}} {v} {t}\n",
                    labels(svc)
                ));
                v += inc;
                t += step;
            }
        }
    }
    out.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
    let bounds = ["10", "50", "100", "250", "500", "1000", "2500", "+Inf"];
    for (svc, _, _, buckets) in &services {
        let per_step: u64 = buckets.iter().sum();
        let cumulative: Vec<u64> = (0..7).map(|i| buckets[..=i].iter().sum::<u64>()).collect();
        let mut t = start;
        let mut n = 0u64;
        let mut lines: Vec<Vec<String>> = vec![Vec::new(); 10];
        while t <= end {
            for (i, le) in bounds.iter().enumerate() {
                let c = if *le == "+Inf" {
                    per_step
                } else {
                    cumulative[i]
                };
                lines[i].push(format!(
                    "istio_request_duration_milliseconds_bucket{{{},le=\"{le}\"}} {} {t}\n",
                    labels(svc),
                    3 + c * n
                ));
            }
            lines[8].push(format!(
                "istio_request_duration_milliseconds_count{{{}}} {} {t}\n",
                labels(svc),
                3 + per_step * n
            ));
            lines[9].push(format!(
                "istio_request_duration_milliseconds_sum{{{}}} {} {t}\n",
                labels(svc),
                100 + 50 * per_step * n
            ));
            n += 1;
            t += step;
        }
        for l in lines {
            out.extend(l);
        }
    }
    out.push_str("# EOF\n");
    out
}
