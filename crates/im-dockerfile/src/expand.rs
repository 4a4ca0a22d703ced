//! Variable substitution in one Dockerfile word, as BuildKit's shell lexer does it.
//!
//! Handles `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`,
//! `${NAME+word}`, `${NAME:?message}`, `${NAME?message}`, prefix/suffix removal
//! (`${NAME#pattern}`, `##`, `%`, `%%`, with `*` and `?` wildcards), single and double quotes
//! and the escape character (`\` or the backtick chosen by `# escape=`). Quotes and escapes are
//! removed from the result, as in Docker.
//!
//! Unlike Docker, which silently substitutes an empty string, every use of an unset variable
//! that has no fallback is reported back (with its place in the word) so the caller can say
//! which build argument is missing. A fallback that is not taken is not evaluated for that
//! purpose: `${A:-$B}` with `A` set does not report `B`.

use std::borrow::Cow;
use std::ops::Range;

/// The expanded word and the unset variables it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expansion<'a> {
    pub value: Cow<'a, str>,
    pub unset: Vec<UnsetUse>,
}

/// A use of an unset variable without a fallback: the name's range and the whole use's range
/// (`$NAME` or `${NAME...}`), both in the raw word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnsetUse {
    pub name: Range<usize>,
    pub span: Range<usize>,
}

/// Why a word could not be expanded at all. Offsets are bytes in the raw word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    UnterminatedQuote {
        quote: char,
        offset: usize,
    },
    MissingBrace {
        offset: usize,
    },
    BadSubstitution {
        offset: usize,
    },
    UnsupportedModifier {
        modifier: String,
        offset: usize,
    },
    Required {
        name: String,
        message: String,
        offset: usize,
    },
}

/// Expands `raw` with `lookup` giving the value of a variable (`None` when unset).
pub(crate) fn expand<'a, 'v>(
    raw: &'a str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<&'v str>,
) -> Result<Expansion<'a>, ExpandError> {
    if !raw.contains(['$', '\'', '"', escape]) {
        return Ok(Expansion {
            value: Cow::Borrowed(raw),
            unset: Vec::new(),
        });
    }
    let mut lexer = Lexer {
        raw,
        pos: 0,
        escape,
        lookup,
        unset: Vec::new(),
    };
    let value = lexer.word(None)?;
    Ok(Expansion {
        value: Cow::Owned(value),
        unset: lexer.unset,
    })
}

struct Lexer<'a, 'l, 'v> {
    raw: &'a str,
    pos: usize,
    escape: char,
    lookup: &'l dyn Fn(&str) -> Option<&'v str>,
    unset: Vec<UnsetUse>,
}

impl<'v> Lexer<'_, '_, 'v> {
    fn peek(&self) -> Option<char> {
        self.raw[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Reads up to `stop` (consumed) or the end; a missing `stop` is an error.
    fn word(&mut self, stop: Option<(char, usize)>) -> Result<String, ExpandError> {
        let mut out = String::new();
        while let Some(c) = self.bump() {
            match c {
                _ if stop.is_some_and(|(s, _)| s == c) => return Ok(out),
                '\'' => self.single_quoted(&mut out)?,
                '"' => self.double_quoted(&mut out)?,
                '$' => self.dollar(&mut out)?,
                _ if c == self.escape => {
                    if let Some(next) = self.bump() {
                        out.push(next);
                    }
                }
                _ => out.push(c),
            }
        }
        match stop {
            Some((_, offset)) => Err(ExpandError::MissingBrace { offset }),
            None => Ok(out),
        }
    }

    fn single_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let offset = self.pos - 1;
        while let Some(c) = self.bump() {
            if c == '\'' {
                return Ok(());
            }
            out.push(c);
        }
        Err(ExpandError::UnterminatedQuote {
            quote: '\'',
            offset,
        })
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let offset = self.pos - 1;
        while let Some(c) = self.bump() {
            match c {
                '"' => return Ok(()),
                '$' => self.dollar(out)?,
                _ if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.bump();
                        out.push(next);
                    }
                    Some(_) => out.push(c),
                    None => {}
                },
                _ => out.push(c),
            }
        }
        Err(ExpandError::UnterminatedQuote { quote: '"', offset })
    }

    fn name(&mut self) -> Range<usize> {
        let start = self.pos;
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        } else {
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                self.bump();
            }
        }
        start..self.pos
    }

    fn get(&self, name: &Range<usize>) -> Option<&'v str> {
        (self.lookup)(&self.raw[name.clone()])
    }

    /// After a `$`.
    fn dollar(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let start = self.pos - 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                out.push('$');
            } else if let Some(value) = self.get(&name) {
                out.push_str(value);
            } else {
                self.unset.push(UnsetUse {
                    name,
                    span: start..self.pos,
                });
            }
            return Ok(());
        }
        self.bump();
        match self.peek() {
            None => return Err(ExpandError::MissingBrace { offset: start }),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution { offset: start }),
            Some(_) => {}
        }
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError::BadSubstitution { offset: start });
        }
        let value = self.get(&name);
        let modifier_at = self.pos;
        match self.bump() {
            None => Err(ExpandError::MissingBrace { offset: start }),
            Some('}') => {
                match value {
                    Some(value) => out.push_str(value),
                    None => self.unset.push(UnsetUse {
                        name,
                        span: start..self.pos,
                    }),
                }
                Ok(())
            }
            Some(':') => match self.bump() {
                Some(m @ ('-' | '+' | '?')) => self.fallback(m, true, name, value, start, out),
                None => Err(ExpandError::MissingBrace { offset: start }),
                Some(other) => Err(ExpandError::UnsupportedModifier {
                    modifier: format!(":{other}"),
                    offset: modifier_at,
                }),
            },
            Some(m @ ('-' | '+' | '?')) => self.fallback(m, false, name, value, start, out),
            Some(m @ ('#' | '%')) => {
                let longest = self.peek() == Some(m);
                if longest {
                    self.bump();
                }
                let pattern = self.word(Some(('}', start)))?;
                match value {
                    Some(value) => out.push_str(trim_pattern(value, &pattern, m == '#', longest)),
                    None => self.unset.push(UnsetUse {
                        name,
                        span: start..self.pos,
                    }),
                }
                Ok(())
            }
            Some(other) => Err(ExpandError::UnsupportedModifier {
                modifier: other.to_string(),
                offset: modifier_at,
            }),
        }
    }

    /// `${NAME-word}`, `${NAME+word}`, `${NAME?word}` and their `:` forms (which also treat an
    /// empty value as unset).
    fn fallback(
        &mut self,
        modifier: char,
        null_is_unset: bool,
        name: Range<usize>,
        value: Option<&'v str>,
        start: usize,
        out: &mut String,
    ) -> Result<(), ExpandError> {
        let unset_before = self.unset.len();
        let word = self.word(Some(('}', start)))?;
        let usable = value.filter(|v| !(null_is_unset && v.is_empty()));
        let word_used = match modifier {
            '-' => usable.is_none(),
            '+' => usable.is_some(),
            _ => false,
        };
        if !word_used {
            self.unset.truncate(unset_before);
        }
        match (modifier, usable) {
            ('-', None) | ('+', Some(_)) => out.push_str(&word),
            ('-' | '?', Some(value)) => out.push_str(value),
            ('?', None) => {
                let message = if !word.is_empty() {
                    word
                } else if value.is_some() {
                    "is not allowed to be empty".to_owned()
                } else {
                    "is not allowed to be unset".to_owned()
                };
                return Err(ExpandError::Required {
                    name: self.raw[name].to_owned(),
                    message,
                    offset: start,
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// Removes the shortest or longest prefix (`#`) or suffix (`%`) of `value` matching `pattern`.
fn trim_pattern<'s>(value: &'s str, pattern: &str, prefix: bool, longest: bool) -> &'s str {
    let mut cuts: Vec<usize> = value
        .char_indices()
        .map(|(i, _)| i)
        .chain([value.len()])
        .collect();
    // Shortest prefix: cut points ascending; shortest suffix: descending.
    if prefix == longest {
        cuts.reverse();
    }
    for cut in cuts {
        if prefix && glob_match(pattern, &value[..cut]) {
            return &value[cut..];
        }
        if !prefix && glob_match(pattern, &value[cut..]) {
            return &value[..cut];
        }
    }
    value
}

/// Shell pattern matching with `*` and `?` (no bracket expressions).
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<&'static str> {
        match name {
            "GO" => Some("1.23"),
            "EMPTY" => Some(""),
            "IMG" => Some("golang"),
            "V" => Some("3.13.1-slim"),
            _ => None,
        }
    }

    fn ok(raw: &str) -> String {
        let expansion = expand(raw, '\\', &vars).unwrap();
        assert!(expansion.unset.is_empty(), "{raw}: {:?}", expansion.unset);
        expansion.value.into_owned()
    }

    fn unset_names(raw: &str) -> Vec<String> {
        let expansion = expand(raw, '\\', &vars).unwrap();
        expansion
            .unset
            .iter()
            .map(|u| raw[u.name.clone()].to_owned())
            .collect()
    }

    #[test]
    fn plain_and_braced_variables() {
        assert_eq!(ok("$IMG:${GO}"), "golang:1.23");
        assert_eq!(ok("${IMG}-$GO-x"), "golang-1.23-x");
        assert_eq!(ok("a$"), "a$");
        assert_eq!(ok("a$-b"), "a$-b");
    }

    #[test]
    fn words_without_specials_are_borrowed() {
        assert!(matches!(
            expand("python:3.13", '\\', &vars).unwrap().value,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn defaults_and_alternatives() {
        assert_eq!(ok("golang:${MISSING:-1.22}"), "golang:1.22");
        assert_eq!(ok("golang:${GO:-1.22}"), "golang:1.23");
        assert_eq!(ok("x${EMPTY:-d}"), "xd");
        assert_eq!(ok("x${EMPTY-d}"), "x");
        assert_eq!(ok("x${MISSING-d}"), "xd");
        assert_eq!(ok("x${GO:+-alt}"), "x-alt");
        assert_eq!(ok("x${MISSING:+-alt}"), "x");
        assert_eq!(ok("x${EMPTY:+alt}"), "x");
        assert_eq!(ok("x${EMPTY+alt}"), "xalt");
        assert_eq!(ok("${MISSING:-${IMG}}"), "golang");
    }

    #[test]
    fn unset_uses_are_reported_with_their_names() {
        assert_eq!(unset_names("golang:${NOPE}"), ["NOPE"]);
        assert_eq!(unset_names("$A/$B:${GO}"), ["A", "B"]);
        assert_eq!(unset_names("${MISSING:-$ALSO}"), ["ALSO"]);
        // A fallback that is not taken does not count.
        assert!(unset_names("${GO:-$ALSO}").is_empty());
        let expansion = expand("x:${NOPE}", '\\', &vars).unwrap();
        assert_eq!(expansion.unset[0].span, 2..9);
    }

    #[test]
    fn required_variables_fail_with_their_message() {
        assert_eq!(
            expand("${MISSING:?set it}", '\\', &vars),
            Err(ExpandError::Required {
                name: "MISSING".into(),
                message: "set it".into(),
                offset: 0
            })
        );
        assert!(matches!(
            expand("${EMPTY:?}", '\\', &vars),
            Err(ExpandError::Required { message, .. }) if message == "is not allowed to be empty"
        ));
        assert_eq!(ok("${GO?x}"), "1.23");
    }

    #[test]
    fn quotes_and_escapes_are_removed() {
        assert_eq!(ok(r#""$IMG":'$GO'"#), "golang:$GO");
        assert_eq!(ok(r"\$GO"), "$GO");
        assert_eq!(ok(r#""a\"b\c""#), r#"a"b\c"#);
        assert_eq!(expand("`$GO", '`', &vars).unwrap().value, "$GO");
        assert_eq!(expand(r"c:\x", '`', &vars).unwrap().value, r"c:\x");
    }

    #[test]
    fn prefix_and_suffix_removal() {
        assert_eq!(ok("${V%%.*}"), "3");
        assert_eq!(ok("${V%.*}"), "3.13");
        assert_eq!(ok("${V#*.}"), "13.1-slim");
        assert_eq!(ok("${V##*.}"), "1-slim");
        assert_eq!(ok("${V%-slim}"), "3.13.1");
        assert_eq!(ok("${V#nomatch}"), "3.13.1-slim");
        assert_eq!(ok("${V%?????}"), "3.13.1");
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            expand("${GO", '\\', &vars),
            Err(ExpandError::MissingBrace { offset: 0 })
        );
        assert_eq!(
            expand("a${:-x}", '\\', &vars),
            Err(ExpandError::BadSubstitution { offset: 1 })
        );
        assert_eq!(
            expand("'abc", '\\', &vars),
            Err(ExpandError::UnterminatedQuote {
                quote: '\'',
                offset: 0
            })
        );
        assert!(matches!(
            expand("${GO/1/2}", '\\', &vars),
            Err(ExpandError::UnsupportedModifier { modifier, offset: 4 }) if modifier == "/"
        ));
        assert!(matches!(
            expand("${GO:=2}", '\\', &vars),
            Err(ExpandError::UnsupportedModifier { modifier, .. }) if modifier == ":="
        ));
    }

    #[test]
    fn glob_matching() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*.*", "1.2"));
        assert!(!glob_match("*.x", "1.2"));
    }
}
