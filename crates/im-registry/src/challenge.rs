//! Parsing `WWW-Authenticate` challenges (RFC 7235): the scheme and its parameters, with
//! quoted strings and several challenges in one header.

use std::collections::BTreeMap;

/// One authentication challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scheme, lowercased (`bearer`, `basic`).
    pub(crate) scheme: String,
    /// Parameters with lowercased names (`realm`, `service`, `scope`, `error`).
    pub(crate) params: BTreeMap<String, String>,
}

/// Parses every challenge in a header value; malformed trailing parts are dropped.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut lexer = Lexer {
        bytes: header.as_bytes(),
        pos: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        lexer.skip_separators();
        let Some(word) = lexer.token() else { break };
        lexer.skip_spaces();
        if lexer.peek() == Some(b'=') && !challenges.is_empty() {
            // A parameter of the current challenge.
            lexer.pos += 1;
            lexer.skip_spaces();
            let Some(value) = lexer.value() else { break };
            if let Some(current) = challenges.last_mut() {
                current.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            challenges.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
            // The first parameter follows the scheme without a comma.
            lexer.skip_spaces();
            let save = lexer.pos;
            if let Some(name) = lexer.token() {
                lexer.skip_spaces();
                if lexer.peek() == Some(b'=') {
                    lexer.pos += 1;
                    lexer.skip_spaces();
                    let Some(value) = lexer.value() else { break };
                    if let Some(current) = challenges.last_mut() {
                        current.params.insert(name.to_ascii_lowercase(), value);
                    }
                } else {
                    lexer.pos = save;
                }
            }
        }
    }
    challenges
}

struct Lexer<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b) {
                self.pos += 1;
            } else {
                break;
            }
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.bytes[start..self.pos]).into())
    }

    fn value(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return self.token();
        }
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into()),
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        out.push(escaped);
                        self.pos += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer_challenge() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/debian:pull");
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse_challenges(
            r#"Basic realm="Registry Realm", Bearer realm="https://x/t", error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        assert_eq!(c[1].params["error"], "insufficient_scope");
    }

    #[test]
    fn escapes_and_tokens() {
        let c = parse_challenges(r#"Bearer realm="a\"b", service=plain"#);
        assert_eq!(c[0].params["realm"], "a\"b");
        assert_eq!(c[0].params["service"], "plain");
        assert!(parse_challenges("").is_empty());
        assert_eq!(parse_challenges("Negotiate")[0].scheme, "negotiate");
    }
}
