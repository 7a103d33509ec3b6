//! What the server's source says it can answer: the statuses each route's handler, its
//! token check, the body reader and the connection limit can produce, and every error code.
//! Read from `src/server/*.rs` as text (comments and string literals aside), so that a new
//! `StatusCode` or error code in the server fails the sync test until the document lists it.

use std::collections::{BTreeMap, BTreeSet};

use canary_engine::server::openapi::{Access, Route};

/// The server's source files (`src/server/*.rs`), without their `#[cfg(test)]` modules.
fn server_sources() -> BTreeMap<String, String> {
    let dir = crate::common::project_path("src/server");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text
                .split("\n#[cfg(test)]")
                .next()
                .unwrap_or("")
                .to_string();
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            out.insert(stem, code);
        }
    }
    out
}

/// The text of the top-level item starting at `start` (a line at column 0) to its closing
/// `}` at column 0.
fn item_at(src: &str, start: usize) -> &str {
    let rest = &src[start..];
    let end = rest.find("\n}").map(|i| i + 2).unwrap_or(rest.len());
    &rest[..end]
}

/// `text` without its comments and with its string and character literals emptied: what
/// it calls and names, not what it says.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                out.push_str("\"\"");
                i += 1;
            }
            '\'' if chars.get(i + 1) == Some(&'\\') || chars.get(i + 2) == Some(&'\'') => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                out.push_str("' '");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Every top-level function of the server: (file, name) → its text, and its code.
pub type Functions = BTreeMap<(String, String), (String, String)>;

fn functions(sources: &BTreeMap<String, String>) -> Functions {
    let def = regex::Regex::new(r"(?m)^(?:pub(?:\([a-z]+\))? )?(?:async )?fn ([a-z_0-9]+)")
        .expect("regex");
    let mut out = BTreeMap::new();
    for (file, src) in sources {
        for c in def.captures_iter(src) {
            let m = c.get(0).unwrap();
            let item = item_at(src, m.start());
            // The signature stays (its extractors say which rejections `?` converts), less
            // the name it defines.
            let code = code_only(item).replacen(&format!("fn {}", &c[1]), "fn", 1);
            out.insert((file.clone(), c[1].to_string()), (item.to_string(), code));
        }
    }
    out
}

/// `StatusCode::NAME` → its number.
pub fn status_number(name: &str) -> u16 {
    match name {
        "OK" => 200,
        "BAD_REQUEST" => 400,
        "UNAUTHORIZED" => 401,
        "FORBIDDEN" => 403,
        "NOT_FOUND" => 404,
        "METHOD_NOT_ALLOWED" => 405,
        "REQUEST_TIMEOUT" => 408,
        "PAYLOAD_TOO_LARGE" => 413,
        "INTERNAL_SERVER_ERROR" => 500,
        "BAD_GATEWAY" => 502,
        "SERVICE_UNAVAILABLE" => 503,
        "GATEWAY_TIMEOUT" => 504,
        other => panic!("StatusCode::{other}: add it to status_number"),
    }
}

/// What the server's source says about its answers.
pub struct Source {
    sources: BTreeMap<String, String>,
    /// Every top-level function: (file, name) → (its text, its code).
    pub fns: Functions,
}

impl Source {
    pub fn read() -> Source {
        let sources = server_sources();
        let fns = functions(&sources);
        Source { sources, fns }
    }

    /// The code of the top-level `impl` in `error.rs` whose header line starts with `header`.
    fn impl_block(&self, header: &str) -> String {
        let src = &self.sources["error"];
        let at = src
            .find(&format!("\n{header}"))
            .unwrap_or_else(|| panic!("no `{header}` in src/server/error.rs"));
        code_only(item_at(src, at + 1))
    }

    /// The statuses `text` can answer: the `StatusCode`s it names, 400 for
    /// `AppError::bad_request`, what the server functions it calls can answer, and the
    /// `From` conversions its `?` applies (a `JudgeError` from `judging::`, a
    /// `PathRejection`).
    fn statuses(&self, text: &str, seen: &mut BTreeSet<(String, String)>) -> BTreeSet<u16> {
        let named = regex::Regex::new(r"StatusCode::([A-Z_]+)").expect("regex");
        let mut out: BTreeSet<u16> = named
            .captures_iter(text)
            .map(|c| status_number(&c[1]))
            .collect();
        if text.contains("bad_request(") {
            out.insert(400);
        }
        for (mark, error) in [
            ("judging::", "JudgeError"),
            ("PathRejection>", "PathRejection"),
        ] {
            let key = ("error".to_string(), format!("From<{error}>"));
            if text.contains(mark) && seen.insert(key) {
                let block = self.impl_block(&format!("impl From<{error}> for AppError"));
                out.extend(self.statuses(&block, seen));
            }
        }
        for ((file, name), (_, body)) in &self.fns {
            let call =
                regex::Regex::new(&format!(r"(?:^|[^a-z_0-9.:]){name}[(),]")).expect("regex");
            if call.is_match(text) && seen.insert((file.clone(), name.clone())) {
                out.extend(self.statuses(body, seen));
            }
        }
        out
    }

    /// The statuses of function `name` in `file`, and of what it calls.
    fn fn_statuses(&self, file: &str, name: &str) -> BTreeSet<u16> {
        let key = (file.to_string(), name.to_string());
        let (_, body) = self
            .fns
            .get(&key)
            .unwrap_or_else(|| panic!("no fn {name} in src/server/{file}.rs"));
        let mut seen = BTreeSet::from([key]);
        self.statuses(body, &mut seen)
    }

    /// Each route's handler as `endpoint()` in `src/server/mod.rs` names it: (file, fn), or
    /// `None` for an inline closure.
    fn handlers(&self) -> BTreeMap<String, Option<(String, String)>> {
        let (_, endpoint) = &self.fns[&("mod".to_string(), "endpoint".to_string())];
        let arm = regex::Regex::new(r"Route::([A-Za-z]+) => route\.on\((.+)\),").expect("regex");
        arm.captures_iter(endpoint)
            .map(|c| {
                let handler = &c[2];
                let named = handler
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':');
                let target = named.then(|| match handler.rsplit_once("::") {
                    Some((module, name)) => (module.to_string(), name.to_string()),
                    None => ("mod".to_string(), handler.to_string()),
                });
                (c[1].to_string(), target)
            })
            .collect()
    }

    /// Every status a request to `route` can be answered with.
    pub fn route_statuses(&self, route: Route) -> BTreeSet<u16> {
        let handlers = self.handlers();
        let handler = handlers
            .get(&format!("{route:?}"))
            .unwrap_or_else(|| panic!("{route:?} has no arm in endpoint()"));
        let mut out = BTreeSet::from([200]);
        if let Some((file, name)) = handler {
            out.extend(self.fn_statuses(file, name));
        }
        // In front of the handler: the token check of its access…
        match route.access() {
            Access::Public => {}
            Access::Judge => out.extend(self.fn_statuses("mod", "auth")),
            Access::Reader => out.extend(self.fn_statuses("audit", "auth")),
        }
        // …the body reader (a GET's body is never read, so it cannot time out: only a
        // declared oversized one is refused)…
        let mut body = self.fn_statuses("mod", "read_body");
        if route.method() == axum::http::Method::GET {
            body.remove(&408);
        }
        out.extend(body);
        // …and the connection limit, which answers before any routing.
        let refusal = regex::Regex::new(r"HTTP/1\.1 (\d{3}) ").expect("regex");
        for c in refusal.captures_iter(&self.sources["connections"]) {
            out.insert(c[1].parse().unwrap());
        }
        out
    }

    /// Every error code the server can answer (`{"error": {"code"}}`).
    pub fn error_codes(&self) -> BTreeSet<String> {
        let patterns = [
            r#"StatusCode::[A-Z_]+,\s*"([a-z][a-z0-9_]*)""#,
            r#"bad_request\(\s*"([a-z][a-z0-9_]*)""#,
            r#"\bcode: "([a-z][a-z0-9_]*)""#,
            r#""code": "([a-z][a-z0-9_]*)""#,
        ];
        let mut out = BTreeSet::new();
        for src in self.sources.values() {
            for p in patterns {
                let re = regex::Regex::new(p).expect("regex");
                out.extend(re.captures_iter(src).map(|c| c[1].to_string()));
            }
        }
        // Codes chosen by a `match` into a `code` variable (the result store's errors).
        let arm = regex::Regex::new(r#"=> "([a-z][a-z0-9_]*)""#).expect("regex");
        for (text, _) in self
            .fns
            .values()
            .filter(|(t, _)| t.contains("let code = match"))
        {
            out.extend(arm.captures_iter(text).map(|c| c[1].to_string()));
        }
        out
    }
}
