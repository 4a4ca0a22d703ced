//! Just enough of the shell's grammar to find the words of simple commands in a `RUN` line or
//! a here-document: words with their byte ranges in the Dockerfile text, split into simple
//! commands at `&&`, `||`, `;`, `|`, `&`, parentheses and (outside joined `RUN` lines) newlines.
//!
//! A word remembers whether it expands anything (`$VAR`, `$(...)`, backquotes, globs), because
//! such a word cannot be pinned: its value is only known when the shell runs.

use std::ops::Range;

/// One shell word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word after quote removal (`"curl"` → `curl`).
    pub value: String,
    /// Its bytes in the scanned text, quotes included.
    pub range: Range<usize>,
    /// It expands something, so its value is not known before the shell runs.
    pub dynamic: bool,
}

/// How the scanned text continues lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A `RUN` instruction in shell form: `escape` + newline joins lines, so the shell sees
    /// one line; lines starting with `#` inside it are Dockerfile comments and dropped.
    Instruction { escape: char },
    /// A here-document body: the shell reads it as it is.
    Script,
}

/// The simple commands of `text[range]`, each a list of words.
pub fn commands(text: &str, range: Range<usize>, mode: Mode) -> Vec<Vec<Word>> {
    let mut scanner = Scanner {
        text,
        pos: range.start,
        end: range.end,
        mode,
        commands: Vec::new(),
        current: Vec::new(),
    };
    scanner.run();
    scanner.commands
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    end: usize,
    mode: Mode,
    commands: Vec<Vec<Word>>,
    current: Vec<Word>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..self.end].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn finish_command(&mut self) {
        if !self.current.is_empty() {
            self.commands.push(std::mem::take(&mut self.current));
        }
    }

    /// At a line continuation (`escape` + optional spaces + newline): skips it and any
    /// Dockerfile comment lines after it.
    fn continuation(&mut self) -> bool {
        let Mode::Instruction { escape } = self.mode else {
            return false;
        };
        if self.peek() != Some(escape) {
            return false;
        }
        let rest = &self.text[self.pos + escape.len_utf8()..self.end];
        let trimmed = rest.trim_start_matches([' ', '\t', '\r']);
        if !(trimmed.starts_with('\n') || trimmed.is_empty()) {
            return false;
        }
        self.pos = self.end - trimmed.len();
        if self.peek() == Some('\n') {
            self.pos += 1;
        }
        // Comment lines and empty lines inside a continued instruction are dropped.
        loop {
            let line_end = self.text[self.pos..self.end]
                .find('\n')
                .map_or(self.end, |i| self.pos + i + 1);
            let line = self.text[self.pos..line_end].trim_start();
            if line.starts_with('#') || (line.is_empty() && line_end < self.end) {
                self.pos = line_end;
            } else {
                break;
            }
        }
        true
    }

    fn run(&mut self) {
        while self.pos < self.end {
            if self.continuation() {
                continue;
            }
            let c = self.peek().expect("not at the end");
            match c {
                ' ' | '\t' | '\r' => {
                    self.bump();
                }
                '\\' if self.text[self.pos + 1..self.end].starts_with('\n') => {
                    // The shell's own line continuation.
                    self.pos += 2;
                }
                '\n' => {
                    self.bump();
                    self.finish_command();
                }
                '#' => {
                    // A comment: to the end of the line the shell sees.
                    let stop = match self.mode {
                        Mode::Script => self.text[self.pos..self.end]
                            .find('\n')
                            .map_or(self.end, |i| self.pos + i),
                        Mode::Instruction { .. } => self.end,
                    };
                    self.pos = stop;
                }
                ';' | '&' | '|' | '(' | ')' => {
                    self.bump();
                    if matches!((c, self.peek()), ('&', Some('&')) | ('|', Some('|'))) {
                        self.bump();
                    }
                    self.finish_command();
                }
                _ => self.word(),
            }
        }
        self.finish_command();
    }

    /// Reads one word (quotes, escapes and expansions inside it).
    fn word(&mut self) {
        let start = self.pos;
        let mut value = String::new();
        let mut dynamic = false;
        while self.pos < self.end {
            if self.continuation() {
                // `cu\<newline>rl` is `curl` to the shell; a word split like that is rare
                // enough to just end here.
                break;
            }
            let c = self.peek().expect("not at the end");
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '(' | ')' => break,
                '\'' => {
                    self.bump();
                    while let Some(q) = self.bump() {
                        if q == '\'' {
                            break;
                        }
                        value.push(q);
                    }
                }
                '"' => {
                    self.bump();
                    while let Some(q) = self.bump() {
                        match q {
                            '"' => break,
                            '\\' => {
                                if let Some(next) = self.bump() {
                                    value.push(next);
                                }
                            }
                            '$' | '`' => {
                                dynamic = true;
                                value.push(q);
                            }
                            _ => value.push(q),
                        }
                    }
                }
                '\\' => {
                    self.bump();
                    match self.bump() {
                        // A line continuation ends the word, as it does after a space.
                        Some('\n') => break,
                        Some(next) => value.push(next),
                        None => {}
                    }
                }
                '$' => {
                    dynamic = true;
                    self.bump();
                    value.push('$');
                    if self.peek() == Some('(') {
                        self.skip_balanced('(', ')', &mut value);
                    } else if self.peek() == Some('{') {
                        self.skip_balanced('{', '}', &mut value);
                    }
                }
                '`' => {
                    dynamic = true;
                    self.bump();
                    value.push('`');
                    while let Some(q) = self.bump() {
                        value.push(q);
                        if q == '`' {
                            break;
                        }
                    }
                }
                '*' | '?' | '[' => {
                    dynamic = true;
                    self.bump();
                    value.push(c);
                }
                _ => {
                    self.bump();
                    value.push(c);
                }
            }
        }
        if self.pos > start {
            self.current.push(Word {
                value,
                range: start..self.pos,
                dynamic,
            });
        }
    }

    /// Skips a `$( ... )` or `${ ... }` with nesting, adding it to `value`.
    fn skip_balanced(&mut self, open: char, close: char, value: &mut String) {
        let mut depth = 0usize;
        while let Some(c) = self.bump() {
            value.push(c);
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str, mode: Mode) -> Vec<Vec<String>> {
        commands(text, 0..text.len(), mode)
            .into_iter()
            .map(|words| words.into_iter().map(|w| w.value).collect())
            .collect()
    }

    const RUN: Mode = Mode::Instruction { escape: '\\' };

    #[test]
    fn splits_simple_commands_at_operators() {
        assert_eq!(
            values(
                "apt-get update && apt-get install -y curl; echo a|wc -l",
                RUN
            ),
            vec![
                vec!["apt-get", "update"],
                vec!["apt-get", "install", "-y", "curl"],
                vec!["echo", "a"],
                vec!["wc", "-l"],
            ]
        );
    }

    #[test]
    fn joins_continued_lines_and_drops_comment_lines() {
        let text = "apt-get install -y \\\n    curl \\\n# a comment\n    jq \\\n\n    wget\n";
        assert_eq!(
            values(text, RUN),
            vec![vec!["apt-get", "install", "-y", "curl", "jq", "wget"]]
        );
        let backtick = "apt-get install -y `\n    curl\n";
        assert_eq!(
            values(backtick, Mode::Instruction { escape: '`' }),
            vec![vec!["apt-get", "install", "-y", "curl"]]
        );
    }

    #[test]
    fn quotes_and_ranges() {
        let text = r#"apk add "curl" 'jq' b\ c"#;
        let words = &commands(text, 0..text.len(), RUN)[0];
        assert_eq!(words[2].value, "curl");
        assert_eq!(&text[words[2].range.clone()], "\"curl\"");
        assert_eq!(words[3].value, "jq");
        assert_eq!(words[4].value, "b c");
        assert!(words.iter().all(|w| !w.dynamic));
    }

    #[test]
    fn expansions_are_dynamic() {
        let text = "apt-get install $PKGS \"${X}\" $(cat list) lib* `echo a b`";
        let words = &commands(text, 0..text.len(), RUN)[0];
        assert_eq!(words.len(), 7, "{words:?}");
        assert!(words[2..].iter().all(|w| w.dynamic), "{words:?}");
    }

    #[test]
    fn comments_end_the_joined_line_in_run_but_a_line_in_scripts() {
        assert_eq!(
            values("apt-get install curl # and \\\n jq\n", RUN),
            vec![vec!["apt-get", "install", "curl"]]
        );
        assert_eq!(
            values("apk add curl # a\napk add jq\n", Mode::Script),
            vec![vec!["apk", "add", "curl"], vec!["apk", "add", "jq"]]
        );
    }
}
