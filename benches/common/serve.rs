//! `canary serve` started for a load bench: on a free port, its address read from the line it
//! prints when it listens, killed when dropped.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `canary serve`.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The process, for its pid's /proc figures.
    pub child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `canary serve --listen 127.0.0.1:0 --prometheus PROMETHEUS ARGS…` with logs at
/// `error`, and returns once it listens. Its later stderr is read and dropped, so a full pipe
/// never blocks it.
pub fn start(prometheus: &str, args: Vec<OsString>) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--prometheus",
            prometheus,
        ])
        .args(args)
        .env("CANARY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start canary serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let url = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap_or(0) > 0,
            "canary serve did not start"
        );
        if let Some(rest) = line.trim().strip_prefix("canary serve listening on ") {
            break format!("http://{}", rest.split_whitespace().next().unwrap_or(""));
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    Server { url, child }
}

/// `OsString`s from anything that converts, for [`start`]'s args.
#[macro_export]
macro_rules! os_args {
    ($($a:expr),* $(,)?) => {
        vec![$(std::ffi::OsString::from($a)),*]
    };
}
