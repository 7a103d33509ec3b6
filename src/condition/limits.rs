//! What a condition may be made of, checked on its text before the expr-lang parser sees it,
//! so that compiling and evaluating it takes bounded time, stack and memory.
//!
//! The parser backtracks over nested indexing (`a[a[a[0]]]`: 15 levels take seconds) and
//! recurses once per level of brackets (10 000 parentheses overflow the stack), so nesting is
//! limited to [`MAX_NESTING`]. A handful of constructs build values far larger than the text
//! that asks for them — a range `1..1e9`, `repeat`, and doubling through `let`, `reduce` or a
//! pipe (`x | map({[#, #]}) | flatten() | …`): gigabytes from a hundred characters. None of
//! them is needed to judge a measurement (Argo's documented conditions use none), so they are
//! refused. What remains grows with the text's length, and with the result's size to the
//! power of the nesting of predicates (`all(result, {any(result, {…})})`), which
//! [`MAX_NESTING`] bounds.
//!
//! All of this was found by the `condition` fuzz target (fuzz/, ci/fuzz.sh).

use super::ConditionError;

/// The deepest nesting of brackets (`(`, `[`, `{`) a condition may have; a real condition
/// nests two or three.
pub const MAX_NESTING: usize = 8;

/// Names that build values larger than their text: `let` and `reduce` can double a value per
/// step, `repeat` multiplies a string.
const REFUSED_NAMES: [&str; 3] = ["let", "reduce", "repeat"];

enum State {
    Code,
    Quoted(char),
    LineComment,
    BlockComment,
}

/// Refuse an expression nested deeper than [`MAX_NESTING`] or using a construct that builds
/// unbounded values. String literals and comments are skipped as expr-lang's grammar reads
/// them (a line break ends a quoted string there, as an error).
pub(super) fn check(expression: &str) -> Result<(), ConditionError> {
    let refuse = |what: &str| {
        Err(ConditionError(format!(
            "{what} is not supported in a condition: it can build a value far larger than its \
             text"
        )))
    };
    let mut state = State::Code;
    let mut depth = 0usize;
    let mut word = String::new();
    let mut previous = ' ';
    let mut chars = expression.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Quoted(q) => match c {
                '\\' if q != '`' => {
                    chars.next();
                }
                '\n' | '\r' if q != '`' => state = State::Code,
                c if c == q => state = State::Code,
                _ => {}
            },
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
            }
            State::BlockComment => {
                if c == '*' && chars.peek() == Some(&'/') {
                    chars.next();
                    state = State::Code;
                }
            }
            State::Code => {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '#') {
                    // A name, unless it is a member (`result.repeat`).
                    if word.is_empty() && previous == '.' {
                        word.push('.');
                    }
                    word.push(c);
                    if !chars
                        .peek()
                        .is_some_and(|n| n.is_ascii_alphanumeric() || matches!(n, '_' | '$'))
                    {
                        if REFUSED_NAMES.contains(&word.as_str()) {
                            return refuse(&format!("`{word}`"));
                        }
                        word.clear();
                    }
                } else {
                    match c {
                        '"' | '\'' | '`' => state = State::Quoted(c),
                        '/' if chars.peek() == Some(&'/') => state = State::LineComment,
                        '/' if chars.peek() == Some(&'*') => {
                            chars.next();
                            state = State::BlockComment;
                        }
                        '.' if chars.peek() == Some(&'.') => return refuse("a range (`..`)"),
                        '|' if chars.peek() == Some(&'|') => {
                            chars.next();
                        }
                        '|' => return refuse("a pipe (`|`)"),
                        '(' | '[' | '{' => {
                            depth += 1;
                            if depth > MAX_NESTING {
                                return Err(ConditionError(format!(
                                    "brackets nested deeper than {MAX_NESTING} levels"
                                )));
                            }
                        }
                        ')' | ']' | '}' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                }
            }
        }
        if !c.is_whitespace() {
            previous = c;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(e: &str) -> String {
        check(e).expect_err(e).0
    }

    #[test]
    fn argo_conditions_pass() {
        for e in [
            "result[0] >= 0.95",
            "len(result) > 0 && !isNaN(result[0]) && (result[0] < 0.5 || result[1] < 0.5)",
            "all(result, {# < 5}) and any(result, {# > 1})",
            r#"result.verdict == "pass" || result.items[0].name == 'a[[[[[[[[[[b'"#,
            "default(result, 0) < 0.05 // a comment with .. and | and let",
            "result.repeat == 1 && result.let > 0",
            "1.5 > 0.5 ? true : false",
        ] {
            assert_eq!(check(e), Ok(()), "{e}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let e = format!("{}1{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(check(&e), Ok(()));
        let e = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(refused(&e), "brackets nested deeper than 8 levels");
        // Closing brackets inside a string or a comment do not hide real nesting.
        let e = format!("{}{}", r#"f("]]]]]]]]]", "#.repeat(9), "a[".repeat(9));
        assert!(refused(&e).starts_with("brackets nested"));
        let e = format!("1 // \"\n{}", "a[".repeat(9));
        assert!(refused(&e).starts_with("brackets nested"));
    }

    #[test]
    fn constructs_that_build_large_values_are_refused() {
        for (e, what) in [
            ("len(1..100000000) > 0", "a range (`..`)"),
            (
                r#"len(repeat(repeat("x", 100000), 100000)) > 0"#,
                "`repeat`",
            ),
            ("let a = [1, 1]; len(a) > 0", "`let`"),
            (
                r#"len(reduce([1, 1, 1], #acc + #acc, "x")) > 0"#,
                "`reduce`",
            ),
            (
                "len(result | map({[#, #]}) | flatten()) > 0",
                "a pipe (`|`)",
            ),
        ] {
            assert_eq!(
                refused(e),
                format!(
                    "{what} is not supported in a condition: it can build a value far larger \
                     than its text"
                ),
                "{e}"
            );
        }
    }
}
