//! `canary serve` as a child process over TCP, with the shipped Judge specs and a token.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

/// The bearer token the server is started with.
pub const TOKEN: &str = "test-token-0123456789";

/// A `canary serve` child process. It runs under `sh`, which sends it SIGTERM when our end of
/// its stdin closes — on drop, or when the test process exits (the shared server lives in a
/// static and is never dropped).
pub struct Serve {
    pub url: String,
    stdin: Option<ChildStdin>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Closing stdin makes the wrapper send SIGTERM; then reap it.
        self.stdin.take();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// The `canary serve` process id (the child of the `sh` wrapper).
    pub fn pid(&self) -> String {
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string()])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!pid.is_empty(), "canary serve process not found");
        pid
    }

    /// A field of the process' `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`: the peak).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
    }

    /// Send a signal to the `canary serve` process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid()])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Serve {
    pub fn start(prometheus_url: &str, extra: &[&str]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let judges = dir.path().join("judges");
        std::fs::create_dir(&judges).unwrap();
        // The whole analysis-templates/ directory, as the chart mounts it: Argo templates
        // are skipped, Judge specs loaded.
        for entry in std::fs::read_dir(super::project_path("analysis-templates")).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "yaml") {
                std::fs::copy(&p, judges.join(p.file_name().unwrap())).unwrap();
            }
        }
        Serve::start_in(dir, prometheus_url, extra)
    }

    /// Start with `dir/judges` as the judges directory.
    // The child is reaped by `Drop` (or, for the shared static server, by the wrapper when
    // the test process exits); the lint cannot see through the early panics.
    #[allow(clippy::zombie_processes)]
    pub fn start_in(dir: tempfile::TempDir, prometheus_url: &str, extra: &[&str]) -> Serve {
        let judges = dir.path().join("judges");
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" </dev/null >/dev/null & p=$!; read _ ; kill $p; wait $p"#)
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_canary"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--prometheus",
                prometheus_url,
            ])
            .arg("--judges")
            .arg(&judges)
            .arg("--token-file")
            .arg(&token)
            .args(extra)
            .env("CANARY_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap_or(0) == 0 {
                drop(stdin);
                let status = child.wait();
                panic!("canary serve exited before listening: {status:?}");
            }
            if let Some(rest) = line.trim().strip_prefix("canary serve listening on ") {
                let addr = rest.split_whitespace().next().unwrap().to_string();
                // Keep draining stderr so the child never blocks on a full pipe.
                std::thread::spawn(move || for _ in stderr.lines() {});
                return Serve {
                    url: format!("http://{addr}"),
                    stdin: Some(stdin),
                    child,
                    _dir: dir,
                };
            }
        }
    }
}
