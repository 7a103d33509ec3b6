//! docs/exit-codes.md, checked: the real binary is run for every row whose "Checked by" column
//! names this file (fixtures in `tests/fixtures/exit-codes/`, no Prometheus, cluster or
//! database), and the page must document exactly the codes of [`Exit::ALL`], a section for
//! every command `canary --help` lists, and no row here without an example (nor an example
//! without a row), so the page, the code and this test cannot drift apart.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use canary_engine::cli::Exit;

/// How long one command may take before the test gives up on it.
const DEADLINE: Duration = Duration::from_secs(60);

/// Where the commands run: the fixtures are named by file name.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/exit-codes");

/// The example of one row of docs/exit-codes.md.
struct Example {
    /// The page's section: a command, or `every` (the rows that hold for every command).
    section: &'static str,
    /// The code the page promises.
    code: u8,
    /// `canary`'s arguments, split at spaces. `NO_PROMETHEUS` is `http://127.0.0.1:1`, where
    /// nothing listens; `snapshot.jsonl` holds recorded answers (see `ratio.yaml`).
    args: &'static str,
    /// Standard output goes to `/dev/full`, where every write fails.
    stdout_full: bool,
    /// What standard output must contain.
    stdout_has: &'static [&'static str],
    /// What standard error must contain.
    stderr_has: &'static [&'static str],
}

impl Example {
    const fn new(section: &'static str, code: u8, args: &'static str) -> Self {
        Example {
            section,
            code,
            args,
            stdout_full: false,
            stdout_has: &[],
            stderr_has: &[],
        }
    }

    /// Standard output to `/dev/full`: the command must say it cannot write its result.
    const fn stdout_full(mut self) -> Self {
        self.stdout_full = true;
        self.stderr_has = &["cannot write the result to standard output"];
        self
    }

    const fn stdout_has(mut self, has: &'static [&'static str]) -> Self {
        self.stdout_has = has;
        self
    }

    const fn stderr_has(mut self, has: &'static [&'static str]) -> Self {
        self.stderr_has = has;
        self
    }

    fn args(&self) -> Vec<&'static str> {
        self.args
            .split_whitespace()
            .map(|a| match a {
                "NO_PROMETHEUS" => "http://127.0.0.1:1",
                a => a,
            })
            .collect()
    }
}

/// The shipped Judge spec and the args its SLOs need, for `calibrate` and `budget`.
macro_rules! judge_spec {
    ($rest:literal) => {
        concat!(
            "../../../analysis-templates/judge-istio-golden-signals.yaml ",
            "--arg service=s --arg namespace=n --arg canary_hash=c --arg stable_hash=b ",
            $rest
        )
    };
}

/// A backtest of `ratio.yaml` over ten minutes of recorded answers.
macro_rules! backtest {
    ($service:literal) => {
        concat!(
            "backtest ratio.yaml --arg service=",
            $service,
            " --from 2026-11-20T08:00:00Z --to 2026-11-20T08:10:00Z --every 5m",
            " --source snapshot:snapshot.jsonl"
        )
    };
}

const EXAMPLES: &[Example] = &[
    // Every command.
    Example::new("every", 0, "--help"),
    Example::new("every", 0, "--version"),
    Example::new("every", 0, "analyze --help"),
    Example::new("every", 64, "--bogus").stderr_has(&["unexpected argument '--bogus'"]),
    Example::new("every", 64, "lint --output yaml ratio.yaml"),
    Example::new("every", 64, "analyze"),
    // judge
    Example::new("judge", 0, "judge --input judge.json").stdout_has(&["\"classification\""]),
    Example::new("judge", 64, "judge --input ratio.yaml").stderr_has(&["input is not valid JSON"]),
    Example::new("judge", 74, "judge --input judge.json").stdout_full(),
    // analyze
    Example::new(
        "analyze",
        0,
        "analyze --once ratio.yaml --arg service=healthy --source snapshot:snapshot.jsonl",
    )
    .stdout_has(&["Run phase: Successful"]),
    Example::new(
        "analyze",
        1,
        "analyze --once ratio.yaml --arg service=failing --source snapshot:snapshot.jsonl",
    )
    .stdout_has(&["Run phase: Failed"]),
    Example::new(
        "analyze",
        2,
        "analyze --once ratio.yaml --arg service=steady --source snapshot:snapshot.jsonl",
    )
    .stdout_has(&["Run phase: Inconclusive"]),
    Example::new(
        "analyze",
        3,
        "analyze --once ratio.yaml --arg service=steady --prometheus NO_PROMETHEUS",
    )
    .stdout_has(&["Run phase: Error", "http://127.0.0.1:1 is unreachable"]),
    Example::new(
        "analyze",
        3,
        "analyze --once ratio.yaml --arg service=gone --source snapshot:snapshot.jsonl",
    )
    .stdout_has(&["Run phase: Error", "no recorded answer"]),
    Example::new(
        "analyze",
        64,
        "analyze --once malformed.yaml --source snapshot:snapshot.jsonl",
    )
    .stderr_has(&[
        "error: malformed.yaml:10: metric \"ratio\"",
        "sucessCondition",
    ]),
    Example::new("analyze", 64, "analyze --once ratio.yaml --arg service")
        .stderr_has(&["NAME=VALUE"]),
    Example::new(
        "analyze",
        74,
        "analyze --once ratio.yaml --arg service=healthy --source snapshot:snapshot.jsonl",
    )
    .stdout_full(),
    // backtest
    Example::new("backtest", 0, backtest!("steady")).stdout_has(&["Inconclusive 3"]),
    Example::new("backtest", 3, backtest!("gone")).stdout_has(&["Error 3"]),
    Example::new(
        "backtest",
        64,
        "backtest ratio.yaml --arg service=steady --from 1h --every 0s",
    )
    .stderr_has(&["--every must be at least 1s"]),
    Example::new("backtest", 74, backtest!("steady")).stdout_full(),
    // calibrate: 0 and 1 need a history, and are tests/calibrate.rs's.
    Example::new(
        "calibrate",
        3,
        concat!(
            "calibrate ",
            judge_spec!("--from 2h --prometheus NO_PROMETHEUS")
        ),
    )
    .stderr_has(&["query failed", "127.0.0.1:1 is unreachable"]),
    Example::new(
        "calibrate",
        64,
        "calibrate ratio.yaml --arg service=steady --from 2h",
    )
    .stderr_has(&["calibrate takes one Judge spec"]),
    // lint
    Example::new("lint", 0, "lint ratio.yaml").stdout_has(&["1 files: 0 errors, 1 warnings"]),
    Example::new("lint", 1, "lint broken.yaml").stdout_has(&["broken.yaml:13: error[promql]"]),
    Example::new("lint", 1, "lint --strict ratio.yaml").stdout_has(&["0 errors, 1 warnings"]),
    Example::new("lint", 1, "lint malformed.yaml")
        .stdout_has(&["malformed.yaml:10: error[schema]"]),
    Example::new("lint", 64, "lint missing.yaml")
        .stderr_has(&["missing.yaml: no such file or directory"]),
    Example::new("lint", 74, "lint ratio.yaml").stdout_full(),
    // promote: the usage errors (the rest needs a Kubernetes API server).
    Example::new(
        "promote",
        64,
        "promote --stable-subset s --canary-subset c --steps 10,100",
    )
    .stderr_has(&["give --virtual-service NAMESPACE/NAME"]),
    Example::new(
        "promote",
        64,
        "promote --virtual-service shop/checkout --stable-subset s --canary-subset c --steps 10",
    )
    .stderr_has(&["no Kubernetes connection"]),
    // serve: 0 is `serve_drains_and_exits_0_on_sigterm`.
    Example::new("serve", 64, "serve --listen 127.0.0.1:0").stderr_has(&["set --prometheus"]),
    Example::new(
        "serve",
        64,
        "serve --listen 127.0.0.1:99999 --prometheus NO_PROMETHEUS",
    )
    .stderr_has(&["cannot listen on 127.0.0.1:99999"]),
    // audit: 1 needs a PostgreSQL ledger, and is tests/promote_process.rs's.
    Example::new("audit", 0, "audit ledger.jsonl")
        .stdout_has(&["3 entries, 1 damaged lines skipped"])
        .stderr_has(&["ledger.jsonl:4: not a ledger entry"]),
    Example::new(
        "audit",
        3,
        "audit postgres://canary:secret@127.0.0.1:1/ledger",
    )
    .stderr_has(&["database unavailable"]),
    Example::new("audit", 64, "audit --verify ledger.jsonl")
        .stderr_has(&["is a JSON-lines file, which has none"]),
    Example::new("audit", 64, "audit ledger.jsonl --since yesterday")
        .stderr_has(&["--since \"yesterday\""]),
    Example::new("audit", 74, "audit ledger.jsonl").stdout_full(),
    // budget
    Example::new(
        "budget",
        3,
        concat!("budget ", judge_spec!("--prometheus NO_PROMETHEUS")),
    )
    .stderr_has(&["127.0.0.1:1 is unreachable"]),
    Example::new("budget", 64, concat!("budget ", judge_spec!("")))
        .stderr_has(&["set --prometheus"]),
    // demo: 0 takes a quarter of a minute, and is tests/demo_cli.rs's.
    Example::new("demo", 64, "demo --out /dev/null/canary-demo")
        .stderr_has(&["cannot create /dev/null/canary-demo"]),
];

/// The rows checked here by a test of their own rather than an [`Example`].
const CHECKED_BY_OWN_TEST: &[(&str, u8)] = &[("serve", 0)];

/// `canary` in the fixtures' directory, with no cluster, no `CANARY_*` settings and no
/// `$GITHUB_STEP_SUMMARY` from the environment the tests run in.
fn canary(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_canary"));
    c.args(args)
        .current_dir(FIXTURES)
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CANARY_") {
            c.env_remove(name);
        }
    }
    c
}

/// Reads a child's pipe to the end on a thread of its own, so a full pipe never blocks it.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for `child` until [`DEADLINE`], polling; kills it and fails past that.
fn wait(child: &mut Child, what: &str) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for canary") {
            return status
                .code()
                .unwrap_or_else(|| panic!("{what}: ended by a signal ({status})"));
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one example: (code, stdout, stderr).
fn run(e: &Example) -> (i32, String, String) {
    let mut c = canary(&e.args());
    if e.stdout_full {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        c.stdout(full);
    } else {
        c.stdout(Stdio::piped());
    }
    let mut child = c.stderr(Stdio::piped()).spawn().expect("start canary");
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let code = wait(&mut child, &format!("canary {}", e.args));
    (code, out.join().unwrap(), err.join().unwrap())
}

#[test]
fn every_example_ends_with_the_code_the_page_gives_it() {
    let dev_full = Path::new("/dev/full").exists();
    let mut wrong = Vec::new();
    for e in EXAMPLES {
        if e.stdout_full && !dev_full {
            eprintln!("skipped (no /dev/full): canary {}", e.args);
            continue;
        }
        let (code, stdout, stderr) = run(e);
        let missing: Vec<&str> = (e.stdout_has.iter().filter(|s| !stdout.contains(**s)))
            .chain(e.stderr_has.iter().filter(|s| !stderr.contains(**s)))
            .copied()
            .collect();
        if code != i32::from(e.code) || !missing.is_empty() {
            wrong.push(format!(
                "canary {}: exit {code} (the page says {}), missing {missing:?}\n\
                 stdout: {stdout}\nstderr: {stderr}",
                e.args, e.code
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Kills the child if the test fails before it has exited.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn serve_drains_and_exits_0_on_sigterm() {
    let serve = Example::new(
        "serve",
        0,
        "serve --listen 127.0.0.1:0 --prometheus NO_PROMETHEUS",
    );
    let child = canary(&serve.args())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start canary serve");
    let mut serve = Reaped(child);
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = serve.0.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("listening on")) {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("canary serve never listened ({e}): {seen:?}"),
        }
    }
    let sent = Command::new("kill")
        .args(["-TERM", &serve.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let code = wait(&mut serve.0, "canary serve after SIGTERM");
    seen.extend(lines.try_iter());
    assert_eq!(code, 0, "{seen:?}");
    assert!(seen.iter().any(|l| l.contains("drained")), "{seen:?}");
}

/// docs/exit-codes.md, read: its sections' code rows.
struct Page {
    /// `The seven codes`: code → the `Exit` variant named.
    codes: BTreeMap<u8, String>,
    /// Each command's section (and `every`): its codes, each once.
    sections: BTreeMap<String, Vec<u8>>,
    /// The (section, code) rows whose "Checked by" names this test.
    checked_here: BTreeSet<(String, u8)>,
}

fn page() -> Page {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/exit-codes.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut page = Page {
        codes: BTreeMap::new(),
        sections: BTreeMap::new(),
        checked_here: BTreeSet::new(),
    };
    let mut section: Option<String> = None;
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        if let Some(heading) = line.strip_prefix("## ") {
            section = match heading.trim() {
                "The seven codes" => Some("codes".to_string()),
                "Every command" => Some("every".to_string()),
                h => h
                    .strip_prefix("`canary ")
                    .and_then(|c| c.strip_suffix('`'))
                    .map(str::to_string),
            };
            continue;
        }
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        // `\|` is a pipe inside a cell.
        let cells: Vec<String> = row
            .replace("\\|", "\u{0}")
            .split('|')
            .map(|c| c.trim().replace('\u{0}', "|"))
            .collect();
        let Ok(code) = cells[0].parse::<u8>() else {
            continue; // a header or the line under it
        };
        let section = section
            .as_deref()
            .unwrap_or_else(|| panic!("a code row outside any known section: {line}"));
        if section == "codes" {
            let name = cells[1].trim_matches('`').to_string();
            assert!(
                page.codes.insert(code, name).is_none(),
                "{code} twice: {line}"
            );
            continue;
        }
        let codes = page.sections.entry(section.to_string()).or_default();
        assert!(!codes.contains(&code), "{section}: {code} twice");
        codes.push(code);
        let checked_by = cells.iter().rev().find(|c| !c.is_empty()).expect("cells");
        if checked_by.contains("(../tests/exit_codes.rs)") {
            page.checked_here.insert((section.to_string(), code));
        }
    }
    page
}

#[test]
fn the_page_documents_exactly_the_codes_exit_all_has() {
    let page = page();
    let all: BTreeMap<u8, String> = Exit::ALL
        .iter()
        .map(|e| (e.code(), format!("{e:?}")))
        .collect();
    assert_eq!(
        page.codes, all,
        "the table of the seven codes against Exit::ALL"
    );
    let used: BTreeSet<u8> = page.sections.values().flatten().copied().collect();
    assert_eq!(
        used,
        all.keys().copied().collect(),
        "the codes the commands' tables use against Exit::ALL"
    );
    for (section, codes) in &page.sections {
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        assert_eq!(
            codes, &sorted,
            "{section}: rows in the order of their codes"
        );
    }
}

#[test]
fn the_page_has_a_section_for_every_command_and_no_other() {
    let out = canary(&["--help"]).output().expect("canary --help");
    let help = String::from_utf8_lossy(&out.stdout);
    let commands: BTreeSet<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(commands.len() >= 10, "{help}");
    let mut sections: BTreeSet<String> = page().sections.into_keys().collect();
    assert!(sections.remove("every"), "no `Every command` section");
    assert_eq!(
        sections, commands,
        "the page's sections against `canary --help`"
    );
}

#[test]
fn every_row_checked_here_has_an_example_and_every_example_a_row() {
    let examples: BTreeSet<(String, u8)> = EXAMPLES
        .iter()
        .map(|e| (e.section.to_string(), e.code))
        .chain(CHECKED_BY_OWN_TEST.iter().map(|(s, c)| (s.to_string(), *c)))
        .collect();
    assert_eq!(page().checked_here, examples);
}
