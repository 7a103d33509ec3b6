//! A real Open Policy Agent for tests: built from its Go module (`tests/opa`, the `opa` CLI
//! itself) into `target/go-bin/opa`, run as a server on a free loopback port with a policy.
//! Without Go the tests that need it say so and return; with `CANARY_REQUIRE_KUBE=1` (CI) a
//! missing harness fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `opa run --server`, killed when dropped.
pub struct Opa {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    child: Child,
}

impl Drop for Opa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The built `opa`, or `None` (announced loudly) without Go.
pub fn binary() -> Option<PathBuf> {
    super::kube_server::go_harness("opa")
}

impl Opa {
    /// Serve `files` (policies and JSON data, loaded at the root of `data`).
    pub fn start(files: &[&Path]) -> Option<Opa> {
        let opa = binary()?;
        let port = super::prom::free_port();
        let child = Command::new(opa)
            .args(["run", "--server", "--log-level", "error", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .args(files)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let ready = || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = s.write_all(b"GET /health HTTP/1.0\r\n\r\n");
                let mut head = [0u8; 12];
                s.read_exact(&mut head).is_ok() && head.ends_with(b"200")
            })
        };
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "opa never became healthy on {url}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Opa { url, child })
    }

    /// The data API URL of the shipped deploy gate.
    pub fn gate(&self) -> String {
        format!("{}/v1/data/canary/deploy", self.url)
    }
}
