//! A real PostgreSQL for tests: Debian's server (`postgresql` package), a fresh cluster made
//! with `initdb` in a temporary directory and started with `pg_ctl` on a free loopback port.
//! As root (CI), the server runs as the `postgres` user, since PostgreSQL refuses root.
//!
//! Without the server installed the tests that need it say so on stderr and return; with
//! `CANARY_REQUIRE_POSTGRES=1` (set by `.ci/run`) a missing server fails them instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster, stopped when dropped.
pub struct Postgres {
    /// The loopback port it listens on.
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

/// PostgreSQL's binaries: `CANARY_PG_BIN`, else Debian's newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(d) = std::env::var("CANARY_PG_BIN") {
        return Ok(PathBuf::from(d));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (apt-get install postgresql)"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/pg_ctl (apt-get install postgresql)".into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether the tests must have PostgreSQL (CI) rather than skip without it.
fn required() -> bool {
    std::env::var("CANARY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

impl Postgres {
    /// A new cluster, started; `None` (announced loudly) when PostgreSQL is not installed.
    pub fn start() -> Option<Postgres> {
        let bin = match bin_dir() {
            Ok(b) => b,
            Err(why) => {
                assert!(
                    !required(),
                    "CANARY_REQUIRE_POSTGRES=1 but PostgreSQL is unavailable: {why}"
                );
                eprintln!(
                    "\n!!!!!!!!\n!!! SKIPPED: this test needs a real PostgreSQL server: {why}\n!!!!!!!!\n"
                );
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        if is_root() {
            // The server runs as `postgres`: it must own the directory it writes in.
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown postgres {}", dir.path().display());
        }
        let pg = Postgres {
            port: super::prom::free_port(),
            bin,
            data,
            log,
            dir,
        };
        let out = pg.run(
            "initdb",
            &[
                "-D",
                &pg.data.display().to_string(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(out.status.success(), "initdb: {}", stderr(&out));
        pg.start_server();
        Some(pg)
    }

    /// Run one of PostgreSQL's programs, as `postgres` when we are root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Start (or start again after [`Postgres::stop`]) and wait until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-l",
                &self.log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            stderr(&out),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.try_sql("postgres", "SELECT 1").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL on port {} never accepted a query", self.port);
    }

    /// Stop the server (fast shutdown: open connections are closed).
    pub fn stop(&self) {
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
        assert!(out.status.success(), "pg_ctl stop: {}", stderr(&out));
    }

    /// Create database `name` and return a URL for it, with a password the server ignores
    /// (trust auth) but the client must keep out of every message.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// A URL for database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres:pw-not-to-be-logged@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Run `sql` in database `db` as the superuser; its output, one row a line, `|` between
    /// columns.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("psql {db}: {sql}: {e}"))
    }

    /// Like [`Postgres::sql`], the error as text.
    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(stderr(&out))
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where the cluster lives.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data.display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        );
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
