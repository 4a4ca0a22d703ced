//! Splitting an instruction's text into words the way Docker's Dockerfile parser does.
//!
//! Docker uses several different splitters, and which one applies depends on the instruction:
//! the keyword is split off at the first run of `[ \t\v\f\r]`; builder flags (`--from=x`,
//! `--mount=...`) are taken from the front with their own quoting rules (backslash only, never
//! the `# escape=` character); `FROM`, `COPY` and `ADD` split their arguments on whitespace
//! without quoting; `ARG` and `ENV` split with quotes and the escape character kept in the
//! words. Every function here returns byte ranges into its input (or borrows from it), so the
//! caller can point diagnostics at the exact text and nothing is copied unless quoting forces it.

use std::borrow::Cow;
use std::ops::Range;

/// The whitespace Docker's `reWhitespace` (`[\t\v\f\r ]+`) matches.
pub(crate) fn is_docker_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{0b}' | '\u{0c}' | '\r')
}

/// Splits a logical line into its keyword and the offset where the arguments start.
///
/// Returns `None` for a line that holds only whitespace.
pub(crate) fn split_keyword(line: &str) -> Option<(Range<usize>, usize)> {
    let start = line.len() - line.trim_start().len();
    if start == line.len() {
        return None;
    }
    let end = line[start..]
        .find(is_docker_space)
        .map_or(line.len(), |i| start + i);
    let rest = line[end..]
        .find(|c: char| !c.is_whitespace())
        .map_or(line.len(), |i| end + i);
    Some((start..end, rest))
}

/// Whitespace-separated fields (Docker's `parseStringsWhitespaceDelimited`), as ranges.
pub(crate) fn fields(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let start = pos + text[pos..].find(|c: char| !is_docker_space(c) && c != '\n')?;
        let end = text[start..]
            .find(|c: char| is_docker_space(c) || c == '\n')
            .map_or(text.len(), |i| start + i);
        pos = end;
        Some(start..end)
    })
}

/// One builder flag word from the front of an instruction (`--from=build`), unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flag<'a> {
    /// The word without quotes or backslashes, including its leading `--`.
    pub word: Cow<'a, str>,
    /// Where the word starts in the text given to [`extract_flags`].
    pub offset: usize,
}

impl Flag<'_> {
    /// The flag's name (between `--` and `=`).
    pub fn name(&self) -> &str {
        let body = self.word.strip_prefix("--").unwrap_or(&self.word);
        body.split_once('=').map_or(body, |(name, _)| name)
    }

    /// The value after `=`, if any.
    pub fn value(&self) -> Option<&str> {
        self.word.split_once('=').map(|(_, value)| value)
    }

    /// Where the value starts in the text given to [`extract_flags`] (exact unless the word
    /// was quoted).
    pub fn value_offset(&self) -> usize {
        self.offset + self.word.find('=').map_or(self.word.len(), |i| i + 1)
    }
}

/// Takes the leading `--flag[=value]` words off `text` (Docker's `extractBuilderFlags`).
///
/// Returns the flags and the offset in `text` where the remaining arguments start (`text.len()`
/// when every word was a flag). A lone `--` ends the flags and is dropped.
pub(crate) fn extract_flags(text: &str) -> (Vec<Flag<'_>>, usize) {
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < text.len() && text[pos..].starts_with(char::is_whitespace) {
            pos += text[pos..].chars().next().map_or(1, char::len_utf8);
        }
        if pos >= text.len() {
            return (flags, text.len());
        }
        if !text[pos..].starts_with("--") {
            return (flags, pos);
        }
        let start = pos;
        // Fast path: no quotes or backslashes in the word, so it can be borrowed.
        let end = text[start..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| start + i);
        let raw = &text[start..end];
        let word: Cow<'_, str> = if raw.contains(['"', '\'', '\\']) {
            let (word, word_end) = unquote_flag_word(text, start);
            pos = word_end;
            Cow::Owned(word)
        } else {
            pos = end;
            Cow::Borrowed(raw)
        };
        if word == "--" {
            let rest = text[pos..]
                .find(|c: char| !c.is_whitespace())
                .map_or(text.len(), |i| pos + i);
            return (flags, rest);
        }
        flags.push(Flag {
            word,
            offset: start,
        });
    }
}

/// Reads one flag word with `'`/`"` quotes and backslash escapes, returning it and its end.
fn unquote_flag_word(text: &str, start: usize) -> (String, usize) {
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return (word, start + i),
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ if c == '\\' => {
                if let Some((_, next)) = chars.next() {
                    word.push(next);
                }
            }
            _ => word.push(c),
        }
    }
    (word, text.len())
}

/// Words as Docker's `parseWords` finds them (used by `ARG` and `ENV`): whitespace outside
/// quotes separates words; quotes and escape characters stay in the words.
pub(crate) fn quoted_words(text: &str, escape: char) -> Vec<Range<usize>> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == escape && q != '\'' {
                chars.next();
            }
            continue;
        }
        if c.is_whitespace() {
            if let Some(start) = start.take() {
                words.push(start..i);
            }
            continue;
        }
        start.get_or_insert(i);
        if c == '"' || c == '\'' {
            quote = Some(c);
        } else if c == escape {
            chars.next();
        }
    }
    if let Some(start) = start {
        words.push(start..text.len());
    }
    words
}

/// The `from=` value of a `--mount` flag's comma-separated (CSV) fields, with its offset in
/// `value`. Keys are case-insensitive, as in BuildKit.
pub(crate) fn mount_from(value: &str) -> Option<(Cow<'_, str>, usize)> {
    let mut pos = 0;
    let mut found = None;
    while pos <= value.len() {
        let (field, next) = csv_field(value, pos);
        let key_end = field
            .find('=')
            .filter(|&eq| field[..eq].eq_ignore_ascii_case("from"));
        if let Some(eq) = key_end {
            let offset = pos + eq + 1 + usize::from(value[pos..].starts_with('"'));
            found = Some((cut_cow(field, eq + 1), offset));
        }
        match next {
            Some(next) => pos = next,
            None => break,
        }
    }
    found
}

fn cut_cow(field: Cow<'_, str>, from: usize) -> Cow<'_, str> {
    match field {
        Cow::Borrowed(s) => Cow::Borrowed(&s[from..]),
        Cow::Owned(s) => Cow::Owned(s[from..].to_owned()),
    }
}

/// One CSV field starting at `pos` and where the next one starts (after the comma).
fn csv_field(text: &str, pos: usize) -> (Cow<'_, str>, Option<usize>) {
    let rest = &text[pos..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut field = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().is_some_and(|&(_, n)| n == '"') {
                    chars.next();
                    field.push('"');
                    continue;
                }
                let after = pos + 1 + i + 1;
                let next = text[after..].find(',').map(|j| after + j + 1);
                return (Cow::Owned(field), next);
            }
            field.push(c);
        }
        return (Cow::Owned(field), None);
    }
    match rest.find(',') {
        Some(i) => (Cow::Borrowed(&rest[..i]), Some(pos + i + 1)),
        None => (Cow::Borrowed(rest), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slices(text: &str, ranges: impl IntoIterator<Item = Range<usize>>) -> Vec<&str> {
        ranges.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn keyword_is_split_at_docker_whitespace() {
        let line = "  copy\t--from=x a b";
        let (keyword, rest) = split_keyword(line).unwrap();
        assert_eq!(&line[keyword], "copy");
        assert_eq!(&line[rest..], "--from=x a b");
        assert_eq!(split_keyword("   "), None);
        let (keyword, rest) = split_keyword("CMD").unwrap();
        assert_eq!((keyword, rest), (0..3, 3));
    }

    #[test]
    fn fields_collapse_whitespace() {
        let text = "a  b\t c ";
        assert_eq!(slices(text, fields(text)), ["a", "b", "c"]);
        assert!(fields("   ").next().is_none());
    }

    #[test]
    fn flags_are_taken_from_the_front_only() {
        let text = "--from=build --chown=1:1 src --not-a-flag /dst";
        let (flags, rest) = extract_flags(text);
        let names: Vec<_> = flags.iter().map(Flag::name).collect();
        assert_eq!(names, ["from", "chown"]);
        assert_eq!(flags[0].value(), Some("build"));
        assert_eq!(&text[flags[0].value_offset()..][..5], "build");
        assert_eq!(&text[rest..], "src --not-a-flag /dst");
    }

    #[test]
    fn flags_unquote_and_end_at_double_dash() {
        let (flags, rest) = extract_flags(r#"--from="my image" --link -- --x y"#);
        assert_eq!(flags[0].value(), Some("my image"));
        assert_eq!(flags[1].name(), "link");
        assert_eq!(flags[1].value(), None);
        assert_eq!(flags.len(), 2);
        assert_eq!(&r#"--from="my image" --link -- --x y"#[rest..], "--x y");
        let (flags, rest) = extract_flags("--platform=linux/amd64");
        assert_eq!((flags.len(), rest), (1, 22));
    }

    #[test]
    fn quoted_words_keep_quotes_and_escapes() {
        let text = r#"A="x y" B=\"z C='p q'"#;
        assert_eq!(
            slices(text, quoted_words(text, '\\')),
            [r#"A="x y""#, r#"B=\"z"#, "C='p q'"]
        );
        let text = "A=`\" B";
        assert_eq!(slices(text, quoted_words(text, '`')), ["A=`\"", "B"]);
    }

    #[test]
    fn mount_from_reads_csv_fields() {
        let (from, offset) = mount_from("type=bind,FROM=builder,source=/x").unwrap();
        assert_eq!((from.as_ref(), offset), ("builder", 15));
        let (from, _) = mount_from(r#"type=cache,"from=a,b",target=/c"#).unwrap();
        assert_eq!(from, "a,b");
        assert_eq!(mount_from("type=cache,target=/root/.cache"), None);
        assert_eq!(mount_from("type=secret,id=x,source=y"), None);
    }
}
