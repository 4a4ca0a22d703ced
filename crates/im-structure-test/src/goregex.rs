//! Regular expressions with Go's `regexp` (RE2) semantics, as container-structure-test uses.
//!
//! Rust's `regex` crate is the same family (RE2 syntax, no backreferences, linear time) and
//! matches the same way: unanchored search, `^`/`$` at the ends of the whole text unless
//! `(?m)` is given (so `^hi$` does not match `"hi\n"` in either). The differences, handled here:
//!
//! - Go's `\d`, `\w`, `\s` and `\b` are ASCII-only; Rust's are Unicode. They are rewritten to
//!   their ASCII forms (`(?-u:\d)`, or `[:digit:]` inside a class).
//! - Go's `\s` is `[\t\n\f\r ]`; Rust's ASCII `\s` also has `\v` (vertical tab). Not rewritten:
//!   a `\v` in test output is the only place the two could disagree.
//! - Text that is not valid UTF-8 is matched after replacing invalid sequences with U+FFFD;
//!   Go replaces each invalid byte, so a pattern counting bytes of invalid UTF-8 could differ.
//! - A pattern that does not compile makes the check fail, as in container-structure-test.

use regex::Regex;

/// Compiles `pattern` with Go semantics.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&rewrite(pattern))
}

/// Rewrites Go-only-ASCII Perl classes into Rust's ASCII forms.
fn rewrite(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let ascii = match (in_class, next) {
                    (false, 'd' | 'D' | 'w' | 'W' | 's' | 'S' | 'b' | 'B') => {
                        Some(format!("(?-u:\\{next})"))
                    }
                    (true, 'd') => Some("[:digit:]".to_owned()),
                    (true, 'D') => Some("[:^digit:]".to_owned()),
                    (true, 'w') => Some("[:word:]".to_owned()),
                    (true, 'W') => Some("[:^word:]".to_owned()),
                    (true, 's') => Some("[:space:]".to_owned()),
                    (true, 'S') => Some("[:^space:]".to_owned()),
                    _ => None,
                };
                match ascii {
                    Some(text) => out.push_str(&text),
                    None => {
                        out.push('\\');
                        out.push(next);
                    }
                }
                class_start = false;
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                continue;
            }
            '[' if in_class && chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:] inside a bracket expression.
                out.push('[');
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == ']' {
                        break;
                    }
                }
                class_start = false;
            }
            ']' if in_class && !class_start => {
                in_class = false;
                out.push(']');
            }
            _ => {
                out.push(c);
                class_start = false;
            }
        }
        if c != '[' {
            class_start = false;
        }
    }
    out
}

/// container-structure-test's `CompileAndRunRegex`: true when `text` matching `pattern`
/// equals `should_match`; a pattern that does not compile is always false.
pub fn check(pattern: &str, text: &str, should_match: bool) -> bool {
    compile(pattern).is_ok_and(|re| re.is_match(text) == should_match)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_whole_text_without_multiline() {
        assert!(!check("^hi$", "hi\n", true));
        assert!(check("^hi$", "hi", true));
        assert!(check("(?m)^hi$", "x\nhi\n", true));
        assert!(check("hi", "oh hi there", true));
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert!(
            !check(r"^\d$", "٣", true),
            "Arabic-Indic digit is not \\d in Go"
        );
        assert!(check(r"^[\d]+$", "123", true));
        assert!(!check(r"^[\d]+$", "١٢", true));
        assert!(!check(r"^\w+$", "é", true));
        assert!(check(r"^[^\s]+$", "abc", true));
        assert!(check(r"\bword\b", "a word here", true));
        assert!(check(r"^[]a]+$", "]a", true), "a leading ] is literal");
        assert!(check(r"^[[:alpha:]\d]+$", "a1", true));
    }

    #[test]
    fn invalid_patterns_fail_both_ways() {
        assert!(!check("(", "(", true));
        assert!(!check("(", "x", false));
    }
}
