//! The instruction stream: turns Dockerfile text into logical lines the way Docker's parser
//! (BuildKit `frontend/dockerfile/parser`) does.
//!
//! - Parser directives (`# syntax=`, `# escape=`, `# check=`) are read from the top until the
//!   first line that is not one (a blank line, another comment or an instruction). `escape`
//!   chooses `\` or `` ` `` as the escape and line-continuation character.
//! - A line whose first non-blank character is `#` is a comment, also between continuation
//!   lines, where blank lines are skipped as well.
//! - A line ending with the escape character (spaces and tabs may follow it) continues on the
//!   next line; the pieces are joined without a separator, as Docker does.
//! - For `RUN`, `COPY` and `ADD`, every word of the form `[n]<<[-]WORD` starts a heredoc; the
//!   following lines up to a line equal to `WORD` (leading tabs removed for `<<-`) are its body
//!   and are not instructions.
//!
//! The joined text is kept in a reused buffer together with the source offset of each joined
//! piece, so any place in it maps back to a line and column of the file.

use std::ops::Range;

use crate::instruction::{Heredoc, Keyword};
use crate::words::{quoted_words, split_keyword};

/// A piece of a logical line: `logical` bytes into the joined text start at `source` in the
/// file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub logical: usize,
    pub source: usize,
}

/// One instruction's joined text and where it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogicalLine {
    pub text: String,
    pub segments: Vec<Segment>,
    /// First and last line numbers (from 1).
    pub line: usize,
    pub end_line: usize,
    /// From the start of the first line to the end of the last one, line ending included.
    pub span: Range<usize>,
    pub heredocs: Vec<Heredoc>,
}

impl LogicalLine {
    /// The file offset of byte `offset` of the joined text.
    pub fn source_offset(&self, offset: usize) -> usize {
        let index = self
            .segments
            .partition_point(|s| s.logical <= offset)
            .max(1)
            - 1;
        let segment = self.segments[index];
        segment.source + (offset - segment.logical)
    }
}

/// Problems the stream itself can have. Offsets are bytes in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LexError {
    InvalidEscape {
        value: String,
        offset: usize,
        len: usize,
    },
    DuplicateDirective {
        name: String,
        offset: usize,
        len: usize,
    },
    UnterminatedHeredoc {
        name: String,
        offset: usize,
        len: usize,
    },
}

/// A line of the file: its content without the line ending, and where the next one starts.
#[derive(Debug, Clone, Copy)]
struct Physical {
    number: usize,
    start: usize,
    content_end: usize,
    end: usize,
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    escape: char,
    directives_done: bool,
    seen: [bool; 3],
    syntax: Option<String>,
    errors: Vec<LexError>,
}

const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            pos: 0,
            line: 0,
            escape: '\\',
            directives_done: false,
            seen: [false; 3],
            syntax: None,
            errors: Vec::new(),
        }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    pub fn syntax(&self) -> Option<&str> {
        self.syntax.as_deref()
    }

    pub fn take_errors(&mut self) -> Vec<LexError> {
        std::mem::take(&mut self.errors)
    }

    fn next_physical(&mut self) -> Option<Physical> {
        if self.pos >= self.text.len() {
            return None;
        }
        let start = self.pos;
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i + 1);
        let content_end = start + self.text[start..end].trim_end_matches(['\r', '\n']).len();
        self.pos = end;
        self.line += 1;
        Some(Physical {
            number: self.line,
            start,
            content_end,
            end,
        })
    }

    /// The line's content; the byte-order mark is not part of the first line.
    fn content(&self, line: Physical) -> (usize, &'a str) {
        let mut start = line.start;
        if start == 0 && self.text.starts_with('\u{feff}') {
            start = '\u{feff}'.len_utf8().min(line.content_end);
        }
        (start, &self.text[start..line.content_end])
    }

    /// Reads the next instruction into `out`; `false` at the end of the file.
    pub fn next_line(&mut self, out: &mut LogicalLine) -> bool {
        loop {
            let Some(first) = self.next_physical() else {
                return false;
            };
            let (content_start, content) = self.content(first);
            let trimmed = content.trim_start();
            let trimmed_start = content_start + (content.len() - trimmed.len());
            self.directive(trimmed, trimmed_start);
            if trimmed.starts_with('#') {
                continue;
            }
            let (piece, mut continued) = self.trim_continuation(trimmed);
            if !continued && piece.is_empty() {
                continue;
            }
            out.text.clear();
            out.segments.clear();
            out.heredocs.clear();
            out.line = first.number;
            out.span = first.start..first.end;
            out.segments.push(Segment {
                logical: 0,
                source: trimmed_start,
            });
            out.text.push_str(piece);
            let mut last = first;
            while continued {
                let Some(next) = self.next_physical() else {
                    break;
                };
                last = next;
                let (start, content) = self.content(next);
                self.directive(content, start);
                let inner = content.trim_start();
                if inner.starts_with('#') || inner.is_empty() {
                    continue;
                }
                let (piece, more) = self.trim_continuation(content);
                out.segments.push(Segment {
                    logical: out.text.len(),
                    source: start,
                });
                out.text.push_str(piece);
                continued = more;
            }
            out.end_line = last.number;
            out.span.end = last.end;
            self.heredocs(out);
            return true;
        }
    }

    /// Docker's `\<escape>[ \t]*$`: strips the continuation character and what follows it.
    fn trim_continuation<'s>(&self, line: &'s str) -> (&'s str, bool) {
        let body = line.trim_end_matches([' ', '\t']);
        match body.strip_suffix(self.escape) {
            Some(piece) => (piece, true),
            None => (line, false),
        }
    }

    /// Docker's directive rule: `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$` with a
    /// known name, in the lines before anything else.
    fn directive(&mut self, line: &str, offset: usize) {
        if self.directives_done {
            return;
        }
        let parsed = line.strip_prefix('#').and_then(|rest| {
            let rest = rest.trim_start_matches([' ', '\t']);
            let name_len = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            let name = &rest[..name_len];
            if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return None;
            }
            let after = rest[name_len..]
                .trim_start_matches([' ', '\t'])
                .strip_prefix('=')?;
            let value = after.trim_matches([' ', '\t']);
            let value_offset = offset
                + (line.len() - after.len())
                + (after.len() - after.trim_start_matches([' ', '\t']).len());
            (!value.is_empty()).then_some((name, value, value_offset))
        });
        let Some((name, value, value_offset)) = parsed else {
            self.directives_done = true;
            return;
        };
        let Some(index) = DIRECTIVES.iter().position(|d| d.eq_ignore_ascii_case(name)) else {
            self.directives_done = true;
            return;
        };
        if std::mem::replace(&mut self.seen[index], true) {
            self.errors.push(LexError::DuplicateDirective {
                name: DIRECTIVES[index].to_owned(),
                offset,
                len: line.chars().count(),
            });
            return;
        }
        match DIRECTIVES[index] {
            "escape" => match value {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => self.errors.push(LexError::InvalidEscape {
                    value: value.to_owned(),
                    offset: value_offset,
                    len: value.chars().count(),
                }),
            },
            "syntax" => self.syntax = Some(value.to_owned()),
            _ => {}
        }
    }

    /// Finds the heredocs a `RUN`/`COPY`/`ADD` line opens and consumes their bodies.
    fn heredocs(&mut self, out: &mut LogicalLine) {
        if !out.text.contains("<<") {
            return;
        }
        let Some((keyword, _)) = split_keyword(&out.text) else {
            return;
        };
        if !Keyword::parse(&out.text[keyword]).is_some_and(Keyword::takes_heredocs) {
            return;
        }
        for word in quoted_words(&out.text, '\\') {
            let Some((name, chomp, expand)) = heredoc_word(&out.text[word.clone()]) else {
                continue;
            };
            let body_start = self.pos;
            let mut body_end = body_start;
            let mut terminated = false;
            while let Some(line) = self.next_physical() {
                out.end_line = line.number;
                out.span.end = line.end;
                let mut candidate = &self.text[line.start..line.content_end];
                if chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == name {
                    terminated = true;
                    break;
                }
                body_end = line.end;
            }
            if !terminated {
                self.errors.push(LexError::UnterminatedHeredoc {
                    name: name.clone(),
                    offset: out.source_offset(word.start),
                    len: word.len(),
                });
            }
            out.heredocs.push(Heredoc {
                name,
                chomp,
                expand,
                body: body_start..body_end,
            });
        }
    }
}

/// BuildKit's `^(\d*)<<(-?)([^<]*)$` on a raw word, then the delimiter without quotes.
fn heredoc_word(word: &str) -> Option<(String, bool, bool)> {
    let rest = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let mut name = String::with_capacity(rest.len());
    let mut quote = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None | Some('"'), '\\') => name.extend(chars.next()),
            _ => name.push(c),
        }
    }
    let expand = !rest.contains(['\'', '"']);
    (!name.is_empty()).then_some((name, chomp, expand))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> (Vec<(String, usize, usize)>, Vec<LexError>, char) {
        let mut lexer = Lexer::new(text);
        let mut out = LogicalLine::default();
        let mut result = Vec::new();
        while lexer.next_line(&mut out) {
            result.push((out.text.clone(), out.line, out.end_line));
        }
        let escape = lexer.escape();
        (result, lexer.take_errors(), escape)
    }

    fn texts(text: &str) -> Vec<String> {
        lines(text).0.into_iter().map(|(t, _, _)| t).collect()
    }

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let (result, errors, _) = lines("# a comment\n\n  FROM a\n   # indented comment\nRUN x\n");
        assert_eq!(
            result,
            [("FROM a".to_owned(), 3, 3), ("RUN x".to_owned(), 5, 5)]
        );
        assert!(errors.is_empty());
    }

    #[test]
    fn continuations_join_without_separator_and_skip_comments_and_blanks() {
        let text = "RUN apt-get update \\\n# comment inside\n\n    && apt-get install -y \\  \n  curl\nCMD x\n";
        let (result, _, _) = lines(text);
        assert_eq!(
            result[0],
            (
                "RUN apt-get update     && apt-get install -y   curl".to_owned(),
                1,
                5
            )
        );
        assert_eq!(result[1].1, 6);
    }

    #[test]
    fn a_comment_ending_with_the_escape_does_not_continue() {
        assert_eq!(texts("# note \\\nFROM a\n"), ["FROM a"]);
    }

    #[test]
    fn continuation_at_end_of_file() {
        assert_eq!(texts("FROM a \\"), ["FROM a "]);
        assert_eq!(texts("FROM a \\\n"), ["FROM a "]);
    }

    #[test]
    fn crlf_line_endings() {
        let (result, _, _) = lines("FROM a \\\r\n  AS b\r\nRUN x\r\n");
        assert_eq!(result[0].0, "FROM a   AS b");
        assert_eq!(result[1], ("RUN x".to_owned(), 3, 3));
    }

    #[test]
    fn backtick_escape_directive() {
        let text = "# escape=`\nFROM windows\nCOPY a c:\\\nRUN dir c:\\ `\n  /s\n";
        let (result, errors, escape) = lines(text);
        assert_eq!(escape, '`');
        assert!(errors.is_empty());
        let texts: Vec<_> = result.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(texts, ["FROM windows", "COPY a c:\\", "RUN dir c:\\   /s"]);
    }

    #[test]
    fn directives_only_count_at_the_top() {
        let mut lexer = Lexer::new("# syntax=docker/dockerfile:1.7\n# Escape = `\nFROM a `\n b\n");
        let mut out = LogicalLine::default();
        assert!(lexer.next_line(&mut out));
        assert_eq!(out.text, "FROM a  b");
        assert_eq!(lexer.syntax(), Some("docker/dockerfile:1.7"));
        // After a blank line or another comment, `# escape=` is just a comment.
        assert_eq!(lines("\n# escape=`\nFROM a\n").2, '\\');
        assert_eq!(lines("# hello\n# escape=`\nFROM a\n").2, '\\');
        assert_eq!(lines("# unknown=x\n# escape=`\nFROM a\n").2, '\\');
        assert_eq!(lines("FROM a\n# escape=`\n").2, '\\');
    }

    #[test]
    fn directive_errors() {
        let (_, errors, _) = lines("# escape=x\nFROM a\n");
        assert_eq!(
            errors,
            [LexError::InvalidEscape {
                value: "x".into(),
                offset: 9,
                len: 1
            }]
        );
        let (_, errors, _) = lines("# syntax=a\n# syntax=b\nFROM a\n");
        assert!(
            matches!(&errors[..], [LexError::DuplicateDirective { name, offset: 11, .. }] if name == "syntax")
        );
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let (result, _, escape) = lines("\u{feff}# escape=`\nFROM a `\n  AS b\n");
        assert_eq!(escape, '`');
        assert_eq!(result[0].0, "FROM a   AS b");
    }

    #[test]
    fn heredoc_bodies_are_not_instructions() {
        let text =
            "FROM a\nRUN <<EOF\nFROM x\nEOF\nCOPY <<-'END' /f\n\tFROM y\n\tEND\nRUN echo done\n";
        let mut lexer = Lexer::new(text);
        let mut out = LogicalLine::default();
        let mut seen = Vec::new();
        while lexer.next_line(&mut out) {
            seen.push((out.text.clone(), out.heredocs.clone(), out.end_line));
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].0, "RUN <<EOF");
        assert_eq!(seen[1].2, 4);
        let heredoc = &seen[1].1[0];
        assert_eq!(
            (heredoc.name.as_str(), heredoc.chomp, heredoc.expand),
            ("EOF", false, true)
        );
        assert_eq!(&text[heredoc.body.clone()], "FROM x\n");
        let heredoc = &seen[2].1[0];
        assert_eq!(
            (heredoc.name.as_str(), heredoc.chomp, heredoc.expand),
            ("END", true, false)
        );
        assert_eq!(&text[heredoc.body.clone()], "\tFROM y\n");
        assert_eq!(seen[3].0, "RUN echo done");
    }

    #[test]
    fn several_heredocs_on_one_line_and_after_a_continuation() {
        let text = "RUN \\\n  python3 - <<\"A\" 3<<B\nprint(1)\nA\nb\nB\nCMD x\n";
        let mut lexer = Lexer::new(text);
        let mut out = LogicalLine::default();
        assert!(lexer.next_line(&mut out));
        let names: Vec<_> = out.heredocs.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["A", "B"]);
        assert_eq!(out.end_line, 6);
        assert!(lexer.next_line(&mut out));
        assert_eq!(out.text, "CMD x");
    }

    #[test]
    fn heredoc_like_words_that_are_not_heredocs() {
        // Quoted, here-strings, other instructions.
        let text = "RUN echo \"<<EOF\" <<<x a<<b\nLABEL x=<<EOF\nFROM a\n";
        assert_eq!(texts(text).len(), 3);
        assert_eq!(heredoc_word("<<EOF"), Some(("EOF".into(), false, true)));
        assert_eq!(
            heredoc_word("2<<-E\"O\"F"),
            Some(("EOF".into(), true, false))
        );
        assert_eq!(heredoc_word("<<"), None);
        assert_eq!(heredoc_word("<<<x"), None);
    }

    #[test]
    fn unterminated_heredoc_is_reported() {
        let (result, errors, _) = lines("FROM a\nRUN cat <<EOF\nFROM b\n");
        assert_eq!(result.len(), 2);
        assert_eq!(
            errors,
            [LexError::UnterminatedHeredoc {
                name: "EOF".into(),
                offset: 15,
                len: 5
            }]
        );
    }

    #[test]
    fn segments_map_back_to_the_file() {
        let text = "  FROM a \\\n   AS b\n";
        let mut lexer = Lexer::new(text);
        let mut out = LogicalLine::default();
        assert!(lexer.next_line(&mut out));
        let b = out.text.find('b').unwrap();
        assert_eq!(&text[out.source_offset(b)..][..1], "b");
        assert_eq!(out.source_offset(0), 2);
        assert_eq!(out.span, 0..text.len());
    }
}
