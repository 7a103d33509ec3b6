//! Template arguments: resolving values and substituting `{{args.NAME}}`.
//!
//! Argo substitutes args into the JSON text of a metric with Go's `strconv.Quote` escaping, which
//! keeps the *JSON* of the metric intact but lets a value containing `"` end a PromQL label
//! matcher early (`service="{{args.svc}}"` with `svc = x"} or vector(1) #` becomes a different
//! query). We substitute field by field instead, and escape by where the placeholder sits:
//!
//! * inside a PromQL string literal (`"…"`, `'…'`) the value is escaped as a PromQL string, so
//!   it can never end the literal; inside a raw `` `…` `` literal a backtick is refused;
//! * inside a JSON string literal of a web `body`, the value is JSON-escaped;
//! * everywhere else the value is inserted as is, as Argo does (`[{{args.window}}]`).

use std::collections::BTreeMap;

use super::argo::Argument;

/// Where a string being substituted will be interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Plain text (conditions, URLs, header values, durations).
    Plain,
    /// A PromQL query.
    PromQl,
    /// JSON text (a web provider's raw `body`).
    JsonText,
}

/// Why args could not be resolved or substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A declared arg has no value and none was given.
    #[error("argument {0:?} was not supplied: pass --arg {0}=VALUE")]
    NotSupplied(String),
    /// The arg's value comes from a Kubernetes Secret.
    #[error(
        "argument {name:?} comes from Secret {secret:?} key {key:?} (valueFrom.secretKeyRef), \
         which cannot be read outside the cluster: pass --arg {name}=VALUE"
    )]
    Secret {
        /// Arg name.
        name: String,
        /// Secret name.
        secret: String,
        /// Secret key.
        key: String,
    },
    /// The arg's value comes from a field of the Rollout.
    #[error(
        "argument {name:?} comes from the Rollout field {path:?} (valueFrom.fieldRef), \
         which is only known inside the cluster: pass --arg {name}=VALUE"
    )]
    FieldRef {
        /// Arg name.
        name: String,
        /// Field path.
        path: String,
    },
    /// `--arg` named an arg the template does not declare.
    #[error("argument {name:?} is not declared by the template (declared: {declared})")]
    Undeclared {
        /// The given name.
        name: String,
        /// The declared names, comma-separated.
        declared: String,
    },
    /// A placeholder names no known arg.
    #[error("failed to resolve {{{{{0}}}}}")]
    Unresolved(String),
    /// `{{` with no closing `}}`.
    #[error("unterminated placeholder starting {0:?}")]
    Unterminated(String),
    /// A value cannot be placed inside a raw PromQL string.
    #[error("argument {0:?} contains a backtick and is used inside a `raw` PromQL string")]
    Backtick(String),
}

/// Resolve every declared arg: the given value, else the template default.
pub fn resolve(
    declared: &[Argument],
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ArgError> {
    for name in given.keys() {
        if !declared.iter().any(|a| &a.name == name) {
            let names: Vec<&str> = declared.iter().map(|a| a.name.as_str()).collect();
            return Err(ArgError::Undeclared {
                name: name.clone(),
                declared: if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
            });
        }
    }
    let mut out = BTreeMap::new();
    for arg in declared {
        let value = match (given.get(&arg.name), &arg.value, &arg.value_from) {
            (Some(v), _, _) => v.clone(),
            (None, Some(v), _) => v.clone(),
            (None, None, Some(from)) => {
                if let Some(s) = &from.secret_key_ref {
                    return Err(ArgError::Secret {
                        name: arg.name.clone(),
                        secret: s.name.clone(),
                        key: s.key.clone(),
                    });
                }
                if let Some(f) = &from.field_ref {
                    return Err(ArgError::FieldRef {
                        name: arg.name.clone(),
                        path: f.field_path.clone(),
                    });
                }
                return Err(ArgError::NotSupplied(arg.name.clone()));
            }
            (None, None, None) => return Err(ArgError::NotSupplied(arg.name.clone())),
        };
        out.insert(arg.name.clone(), value);
    }
    Ok(out)
}

/// Replace every `{{ args.NAME }}` in `text`, escaping values for `syntax`.
pub fn substitute(
    text: &str,
    args: &BTreeMap<String, String>,
    syntax: Syntax,
) -> Result<String, ArgError> {
    substitute_with(
        text,
        &|tag| tag.strip_prefix("args.").and_then(|n| args.get(n)).cloned(),
        syntax,
    )
}

/// Replace every `{{ TAG }}` in `text` by `lookup(TAG)`, escaping values for `syntax`; a tag
/// the lookup does not know is an error.
pub fn substitute_with(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    syntax: Syntax,
) -> Result<String, ArgError> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut lexer = Lexer::new(syntax);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let (before, after) = rest.split_at(open);
        lexer.feed(before);
        out.push_str(before);
        let Some(close) = after.find("}}") else {
            return Err(ArgError::Unterminated(after.chars().take(30).collect()));
        };
        let tag = after[2..close].trim();
        let value = lookup(tag).ok_or_else(|| ArgError::Unresolved(after[2..close].to_string()))?;
        out.push_str(&escape(&value, lexer.state, tag)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the lexer is: outside any literal, or inside one opened by the given quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Str(char),
    Comment,
}

struct Lexer {
    syntax: Syntax,
    state: State,
    escaped: bool,
}

impl Lexer {
    fn new(syntax: Syntax) -> Self {
        Lexer {
            syntax,
            state: State::Code,
            escaped: false,
        }
    }

    fn feed(&mut self, text: &str) {
        if self.syntax == Syntax::Plain {
            return;
        }
        for c in text.chars() {
            match self.state {
                State::Code => match c {
                    '"' => self.state = State::Str('"'),
                    '\'' | '`' if self.syntax == Syntax::PromQl => self.state = State::Str(c),
                    '#' if self.syntax == Syntax::PromQl => self.state = State::Comment,
                    _ => {}
                },
                State::Comment => {
                    if c == '\n' {
                        self.state = State::Code;
                    }
                }
                State::Str(q) => {
                    if self.escaped {
                        self.escaped = false;
                    } else if c == '\\' && q != '`' {
                        self.escaped = true;
                    } else if c == q {
                        self.state = State::Code;
                    }
                }
            }
        }
    }
}

fn escape(value: &str, state: State, tag: &str) -> Result<String, ArgError> {
    match state {
        State::Code | State::Comment => Ok(value.to_string()),
        State::Str('`') => {
            if value.contains('`') {
                Err(ArgError::Backtick(tag.to_string()))
            } else {
                Ok(value.to_string())
            }
        }
        State::Str(quote) => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn whitespace_tolerant_placeholders() {
        let a = args(&[("svc", "checkout")]);
        let out = substitute(
            "{{args.svc}} {{ args.svc }}{{  args.svc}}",
            &a,
            Syntax::Plain,
        );
        assert_eq!(out.unwrap(), "checkout checkoutcheckout");
    }

    #[test]
    fn unresolved_names_the_placeholder() {
        let err = substitute("x {{ args.nope }}", &args(&[]), Syntax::Plain).unwrap_err();
        assert_eq!(err.to_string(), "failed to resolve {{ args.nope }}");
        let err = substitute("{{args.a", &args(&[("a", "1")]), Syntax::Plain).unwrap_err();
        assert!(matches!(err, ArgError::Unterminated(_)));
    }

    #[test]
    fn promql_string_literals_cannot_be_broken() {
        let evil = r#"x"} or vector(1) or up{a=""#;
        let a = args(&[("svc", evil), ("w", "5m")]);
        let q = r#"sum(rate(req{service="{{args.svc}}"}[{{args.w}}]))"#;
        let out = substitute(q, &a, Syntax::PromQl).unwrap();
        assert_eq!(
            out,
            r#"sum(rate(req{service="x\"} or vector(1) or up{a=\""}[5m]))"#
        );
        // Single-quoted literal: escape the single quote and backslashes.
        let a = args(&[("svc", r"a'b\c")]);
        let out = substitute("up{job='{{args.svc}}'}", &a, Syntax::PromQl).unwrap();
        assert_eq!(out, r"up{job='a\'b\\c'}");
        // Raw literal: a backtick is refused.
        let a = args(&[("svc", "a`b")]);
        let err = substitute("up{job=`{{args.svc}}`}", &a, Syntax::PromQl).unwrap_err();
        assert!(matches!(err, ArgError::Backtick(_)));
    }

    #[test]
    fn escaped_quotes_in_the_template_do_not_confuse_the_lexer() {
        let a = args(&[("v", "\"")]);
        let q = r#"up{a="x\"y", b="{{args.v}}"}"#;
        assert_eq!(
            substitute(q, &a, Syntax::PromQl).unwrap(),
            r#"up{a="x\"y", b="\""}"#
        );
    }

    #[test]
    fn json_body_strings_stay_json() {
        let a = args(&[("n", "a\"b\nc")]);
        let body = r#"{"name": "{{args.n}}"}"#;
        let out = substitute(body, &a, Syntax::JsonText).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["name"], "a\"b\nc");
    }

    #[test]
    fn resolve_reports_missing_secret_and_undeclared() {
        let declared: Vec<Argument> = serde_json::from_str(
            r#"[{"name":"svc"},{"name":"ns","value":"prod"},
                {"name":"key","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]"#,
        )
        .unwrap();
        let err = resolve(&declared, &args(&[("svc", "a")])).unwrap_err();
        assert!(err.to_string().contains("secretKeyRef"), "{err}");
        let ok = resolve(&declared, &args(&[("svc", "a"), ("key", "x")])).unwrap();
        assert_eq!(ok["ns"], "prod");
        let err = resolve(&declared, &args(&[("key", "x")])).unwrap_err();
        assert_eq!(err, ArgError::NotSupplied("svc".into()));
        let err = resolve(
            &declared,
            &args(&[("svc", "a"), ("key", "x"), ("typo", "1")]),
        );
        assert!(matches!(err, Err(ArgError::Undeclared { .. })));
    }
}
