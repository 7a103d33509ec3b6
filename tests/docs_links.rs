//! The README is the front door: every relative link in README.md and docs/*.md (Markdown links
//! and images, outside code) must reach a file that exists, and a `#fragment` a heading of the
//! page it points at, as GitHub makes anchors from headings. And what the pages name must
//! exist: every `--flag` of a command's page (docs/<command>.md) and of the README is in
//! `canary <command> --help`, and every `canary <command>` the README shows is a subcommand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let docs = root().join("docs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("{}: {e}", docs.display()))
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    found.sort();
    pages.extend(found);
    pages
}

/// The page's lines with code removed: fenced blocks blanked, inline code spans cut out.
fn prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push(String::new());
            continue;
        }
        if fenced {
            out.push(String::new());
            continue;
        }
        // Inline code: `…` spans (a line's backticks pair up; an odd one out is kept).
        let mut kept = String::new();
        let mut rest = line;
        while let Some(open) = rest.find('`') {
            let Some(len) = rest[open + 1..].find('`') else {
                break;
            };
            kept.push_str(&rest[..open]);
            rest = &rest[open + 1 + len + 1..];
        }
        kept.push_str(rest);
        out.push(kept);
    }
    out
}

/// The targets of the `[text](target)` and `![alt](target)` links of one line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        // Up to the closing parenthesis, allowing one level of nesting in the target.
        let mut depth = 0;
        let mut end = None;
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                ')' => depth -= 1,
                _ => {}
            }
        }
        let Some(end) = end else {
            break;
        };
        // `[text](target "title")`: the target is the first word.
        let target = after[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.trim_matches(['<', '>']).to_string());
        rest = &after[end..];
    }
    targets
}

/// The link goes off the repository (a URL, a mail address).
fn external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:") || target.starts_with("//")
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation other than `-`
/// and `_` dropped (markup included).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown page's headings (a repeated heading gets `-1`, `-2`, …).
fn anchors(page: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim().trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while out.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        out.insert(anchor);
    }
    out
}

/// Every dead relative link of `page`, as `page:line: target (why)`.
fn dead_links(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let dir = page.parent().expect("a page is in a directory");
    let shown = page
        .strip_prefix(root())
        .unwrap_or(page)
        .display()
        .to_string();
    let mut dead = Vec::new();
    for (i, line) in prose(&text).iter().enumerate() {
        for target in link_targets(line) {
            if target.is_empty() || external(&target) {
                continue;
            }
            let (file, fragment) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let path = if file.is_empty() {
                page.to_path_buf()
            } else {
                dir.join(file)
            };
            if !path.exists() {
                dead.push(format!("{shown}:{}: {target} (no such file)", i + 1));
                continue;
            }
            let is_markdown = path.extension().is_some_and(|x| x == "md");
            if let (Some(fragment), true) = (fragment, is_markdown) {
                if !anchors(&path).contains(fragment) {
                    dead.push(format!("{shown}:{}: {target} (no such heading)", i + 1));
                }
            }
        }
    }
    dead
}

#[test]
fn every_relative_link_in_the_readme_and_docs_reaches_a_file_and_heading() {
    let pages = pages();
    assert!(pages.len() > 5, "README.md and docs/*.md: {pages:?}");
    let dead: Vec<String> = pages.iter().flat_map(|p| dead_links(p)).collect();
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn the_readme_links_every_page_of_the_docs() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let linked: BTreeSet<String> = prose(&readme)
        .iter()
        .flat_map(|l| link_targets(l))
        .filter_map(|t| t.split('#').next().map(str::to_string))
        .collect();
    let missing: Vec<String> = pages()
        .iter()
        .skip(1)
        .filter_map(|p| {
            p.file_name()
                .map(|n| format!("docs/{}", n.to_string_lossy()))
        })
        .filter(|p| !linked.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "docs the README does not link: {missing:?}"
    );
}

#[test]
fn the_checker_sees_links_anchors_and_code() {
    assert_eq!(
        link_targets("see [a](docs/a.md#x) and ![i](images/p.png \"t\")"),
        ["docs/a.md#x", "images/p.png"]
    );
    assert_eq!(
        prose("a `[x](gone.md)` b\n```\n[y](gone.md)\n```"),
        ["a  b", "", "", ""]
    );
    assert_eq!(slug("`canary audit`"), "canary-audit");
    assert_eq!(slug("One replica or several"), "one-replica-or-several");
    assert_eq!(slug("The seven codes"), "the-seven-codes");
    assert!(external("https://example.com/x.md"));
}

/// The page's code, line by line: fenced blocks whole, and a line's paired `…` spans.
fn code(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push(String::new());
        } else if fenced {
            out.push(line.to_string());
        } else {
            let parts: Vec<&str> = line.split('`').collect();
            // An odd backtick out opens no span.
            let paired = parts.len() - (parts.len() + 1) % 2;
            let spans: Vec<&str> = parts[..paired].iter().skip(1).step_by(2).copied().collect();
            out.push(spans.join(" "));
        }
    }
    out
}

/// `canary ARGS --help`, as text.
fn help(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run canary");
    assert!(out.status.success(), "canary {args:?} --help: {out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The subcommands `canary --help` lists (less `help`).
fn subcommands() -> Vec<String> {
    help(&[])
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The long flags an option line of `help` declares (`  -o, --output <FORMAT>`), not the ones
/// its descriptions mention: clap indents options by at most 6 spaces, descriptions by 10.
fn declared_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter(|l| l.len() - l.trim_start().len() <= 6)
        .filter_map(|l| {
            let l = l.trim_start();
            let l = if l.starts_with('-') && l.get(2..4) == Some(", ") {
                &l[4..]
            } else {
                l
            };
            let name = l.strip_prefix("--")?;
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            (end > 0).then(|| format!("--{}", &name[..end]))
        })
        .collect()
}

/// Every subcommand's flags, by subcommand.
fn flags_by_command(commands: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    commands
        .iter()
        .map(|c| (c.clone(), declared_flags(&help(&[c]))))
        .collect()
}

/// Other tools whose command lines the pages show (`cargo test --test x -- --nocapture`,
/// `opa run --server`, `helm install --set`, `kubectl create --from-literal`): a flag on a
/// line or in a code span that starts with one of them is that tool's, not canary's.
const OTHER_TOOLS: &[&str] = &["cargo", "helm", "kubectl", "opa"];

/// Whether the command a flag belongs to, which starts at the last backtick before it (or at
/// the start of the line), is one of [`OTHER_TOOLS`]; `VAR=value` prefixes and `$` skipped.
fn another_tools(before_flag: &str) -> bool {
    let command = before_flag.rsplit('`').next().unwrap_or(before_flag);
    command
        .split_whitespace()
        .find(|w| *w != "$" && !w.contains('='))
        .is_some_and(|w| OTHER_TOOLS.contains(&w))
}

/// The `--flags` of one line with their byte offsets. A name ending in `-` (`--prometheus-…`)
/// stands for a family of flags; a sentence's full stop is not part of the name.
fn flags_in(line: &str) -> Vec<(usize, String)> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    for (at, _) in line.match_indices("--") {
        let before_ok = at == 0
            || !matches!(bytes[at - 1], b'-' | b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9');
        if !before_ok || !bytes.get(at + 2).is_some_and(u8::is_ascii_lowercase) {
            continue;
        }
        let rest = &line[at + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
            .unwrap_or(rest.len());
        out.push((at, format!("--{}", rest[..end].trim_end_matches('.'))));
    }
    out
}

/// Whether the paragraph `text` names `canary <command>`.
fn names_command(text: &str, command: &str) -> bool {
    let said = format!("canary {command}");
    text.match_indices(&said).any(|(at, _)| {
        !text[at + said.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '-' || c == '_')
    })
}

/// A `--flag` a page names that is not another tool's.
#[derive(Debug, PartialEq)]
struct Mention {
    /// 1-based line number.
    line: usize,
    /// `--name`, or `--prefix-` for a family.
    flag: String,
    /// The `canary` subcommands its paragraph names (`canary audit … --verify`).
    commands: BTreeSet<String>,
}

/// Every canary flag `text` names, code included; a command continued with `\` is one line.
fn mentions(text: &str, commands: &[String]) -> Vec<Mention> {
    let lines: Vec<&str> = text.lines().collect();
    let mut named = vec![BTreeSet::new(); lines.len()];
    let mut start = 0;
    for end in 0..=lines.len() {
        if end < lines.len() && !lines[end].trim().is_empty() {
            continue;
        }
        let paragraph = lines[start..end]
            .iter()
            .flat_map(|l| l.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        let set: BTreeSet<String> = commands
            .iter()
            .filter(|c| names_command(&paragraph, c))
            .cloned()
            .collect();
        named[start..end].fill(set);
        start = end + 1;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = i;
        let mut line = lines[i].to_string();
        while line.ends_with('\\') && i + 1 < lines.len() {
            line.pop();
            i += 1;
            line.push_str(lines[i]);
        }
        i += 1;
        for (at, flag) in flags_in(&line) {
            if !another_tools(&line[..at]) {
                out.push(Mention {
                    line: first + 1,
                    flag,
                    commands: named[first].clone(),
                });
            }
        }
    }
    out
}

/// Whether `known` has the flag `mention` names (or, for a `--prefix-`, one of its family).
fn known(known: &BTreeSet<String>, mention: &str) -> bool {
    if mention.ends_with('-') {
        known.iter().any(|f| f.starts_with(mention))
    } else {
        known.contains(mention)
    }
}

#[test]
fn every_flag_a_command_page_names_is_in_its_help() {
    let commands = subcommands();
    let flags = flags_by_command(&commands);
    let (mut pages, mut checked) = (0, 0);
    let mut missing = Vec::new();
    for command in &commands {
        let page = root().join("docs").join(format!("{command}.md"));
        let Ok(text) = std::fs::read_to_string(&page) else {
            continue;
        };
        pages += 1;
        for m in mentions(&text, &commands) {
            checked += 1;
            // The page's command, or a command its paragraph names (promote.md shows
            // `canary audit … --verify`).
            let of: BTreeSet<&String> = std::iter::once(command).chain(&m.commands).collect();
            if !of.iter().any(|c| known(&flags[*c], &m.flag)) {
                let of: Vec<String> = of.iter().map(|c| format!("canary {c} --help")).collect();
                missing.push(format!(
                    "docs/{command}.md:{}: {} is not in {}",
                    m.line,
                    m.flag,
                    of.join(", ")
                ));
            }
        }
    }
    // Guards against a checker that silently finds nothing.
    assert!(
        pages >= 5 && checked >= 100,
        "{checked} flags on {pages} docs/<command>.md pages of {commands:?}"
    );
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_readme_names_real_commands_and_flags() {
    let commands = subcommands();
    assert!(commands.len() >= 5, "canary --help: {commands:?}");
    let flags = flags_by_command(&commands);
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut wrong = Vec::new();

    // `canary <word>` in code is a subcommand (prose says "canary vs baseline").
    for (i, code) in code(&readme).iter().enumerate() {
        for (at, _) in code.match_indices("canary ") {
            let word: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            if !word.is_empty() && !commands.contains(&word) {
                wrong.push(format!(
                    "README.md:{}: canary {word} is no subcommand",
                    i + 1
                ));
            }
        }
    }
    // Each subcommand is documented: in the README or on a page of its own.
    for c in &commands {
        if !names_command(&readme, c) && !root().join(format!("docs/{c}.md")).exists() {
            wrong.push(format!(
                "canary {c}: neither in README.md nor in docs/{c}.md"
            ));
        }
    }
    // A flag is one of the commands its paragraph names, or of some command.
    let every: BTreeSet<String> = flags.values().flatten().cloned().collect();
    for m in mentions(&readme, &commands) {
        let ok = if m.commands.is_empty() {
            known(&every, &m.flag)
        } else {
            m.commands.iter().any(|c| known(&flags[c], &m.flag))
        };
        if !ok {
            wrong.push(format!(
                "README.md:{}: {} is not a flag of canary {:?}",
                m.line, m.flag, m.commands
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_flag_checker_reads_help_lines_and_skips_other_tools() {
    let help = "Options:\n      --judge <NAME>\n          Which judge; see --not-a-flag\n  -o, --output <F>\n  -h, --help\n";
    assert_eq!(
        declared_flags(help),
        ["--help", "--judge", "--output"].map(String::from).into()
    );
    assert_eq!(
        flags_in("`--a-b`, --c. x--d ---- | --- | `--prometheus-…` -- --e"),
        [(1, "--a-b"), (9, "--c"), (33, "--prometheus-"), (54, "--e")]
            .map(|(at, f)| (at, f.to_string()))
    );
    assert!(another_tools("run `opa run "));
    assert!(another_tools("  CANARY_SEED=1 cargo test --test x -- "));
    assert!(!another_tools("`canary serve "));
    assert!(!another_tools("`opa run` then `"));
    let commands = ["audit".to_string(), "promote".to_string()];
    let text = "`canary audit URL \\\n  --verify` walks\n\nno `cargo test --test x`; --watch";
    assert_eq!(
        mentions(text, &commands),
        [
            Mention {
                line: 1,
                flag: "--verify".into(),
                commands: ["audit".to_string()].into(),
            },
            Mention {
                line: 4,
                flag: "--watch".into(),
                commands: BTreeSet::new(),
            },
        ]
    );
    assert!(known(
        &["--prometheus-tenant".to_string()].into(),
        "--prometheus-"
    ));
    assert!(!names_command("canary linting", "lint"));
    assert_eq!(
        code("a `canary x` b `c` `odd\n```\ncanary y\n```"),
        ["canary x c", "", "canary y", ""]
    );
}
