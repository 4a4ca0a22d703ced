//! Jinja2's `wordwrap` filter: each line wrapped by Python's `textwrap` with the options
//! Jinja2 uses (tabs and whitespace kept, whitespace at line breaks dropped, long words and
//! hyphenated words broken unless told otherwise), the lines joined by `wrapstring`.
//!
//! This is a port of `textwrap.TextWrapper._split` (its word-separator regular expression,
//! which needs look-behind, is written out by hand) and `_wrap_chunks`.

use minijinja::value::{Rest, ValueOrKwargs};

use super::{opt, python_args};
use minijinja::{Error, ErrorKind, Value};

/// Python's `textwrap` whitespace: ASCII only.
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Python's `\w`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python's `[^\d\W]`: a word character that is not a digit.
fn is_letter(c: char) -> bool {
    is_word(c) && !c.is_numeric()
}

/// `[\w!"'&.,?]`: what may precede an em-dash.
fn is_word_punct(c: char) -> bool {
    is_word(c) || matches!(c, '!' | '"' | '\'' | '&' | '.' | ',' | '?')
}

/// `-{2,}\w` at `i`.
fn em_dash_at(chars: &[char], i: usize) -> bool {
    let dashes = chars[i..].iter().take_while(|&&c| c == '-').count();
    dashes >= 2 && chars.get(i + dashes).is_some_and(|&c| is_word(c))
}

/// `textwrap`'s chunks: whitespace runs, words, and word parts after hyphens.
fn split_chunks(chars: &[char], break_on_hyphens: bool) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let end = if is_space(chars[i]) {
            i + chars[i..].iter().take_while(|&&c| is_space(c)).count()
        } else if !break_on_hyphens {
            i + chars[i..].iter().take_while(|&&c| !is_space(c)).count()
        } else if i > 0 && is_word_punct(chars[i - 1]) && em_dash_at(chars, i) {
            i + chars[i..].iter().take_while(|&&c| c == '-').count()
        } else {
            word_end(chars, i)
        };
        chunks.push(chars[i..end].iter().collect());
        i = end;
    }
    chunks
}

/// The end of the lazy `\S+?` word alternative starting at `start`.
fn word_end(chars: &[char], start: usize) -> usize {
    let at = |i: usize| chars.get(i).copied();
    let letter = |i: Option<usize>| i.and_then(at).is_some_and(is_letter);
    let mut k = start + 1;
    loop {
        // Hyphenated word: a `-` at k, after two letters or letter-hyphen-letter, and
        // followed by letter, optional hyphen, letter.
        if at(k) == Some('-') {
            let after = k + 1;
            let behind = (letter(k.checked_sub(2)) && letter(k.checked_sub(1)))
                || (letter(k.checked_sub(3))
                    && at(k.wrapping_sub(2)) == Some('-')
                    && letter(k.checked_sub(1)));
            let ahead = letter(Some(after))
                && (letter(Some(after + 1))
                    || (at(after + 1) == Some('-') && letter(Some(after + 2))));
            if behind && ahead {
                return after;
            }
        }
        // End of the word.
        if at(k).is_none_or(is_space) {
            return k;
        }
        // Before an em-dash.
        if is_word_punct(chars[k - 1]) && em_dash_at(chars, k) {
            return k;
        }
        k += 1;
    }
}

/// `textwrap.wrap(text, width, ...)` with Jinja2's options.
fn wrap(text: &str, width: usize, break_long_words: bool, break_on_hyphens: bool) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut chunks: Vec<Vec<char>> = split_chunks(&chars, break_on_hyphens)
        .into_iter()
        .map(|c| c.chars().collect())
        .collect();
    chunks.reverse();
    let blank = |chunk: &[char]| chunk.iter().all(|&c| c.is_whitespace());
    let mut lines = Vec::new();
    while !chunks.is_empty() {
        let mut line: Vec<Vec<char>> = Vec::new();
        let mut len = 0;
        if !lines.is_empty() && chunks.last().is_some_and(|c| blank(c)) {
            chunks.pop();
        }
        while let Some(chunk) = chunks.last() {
            if len + chunk.len() <= width {
                len += chunk.len();
                line.push(chunks.pop().expect("a chunk"));
            } else {
                break;
            }
        }
        if chunks.last().is_some_and(|c| c.len() > width) {
            let space_left = if width < 1 { 1 } else { width - len };
            if break_long_words {
                let chunk = chunks.last_mut().expect("a chunk");
                let mut end = space_left;
                if break_on_hyphens && chunk.len() > space_left {
                    let hyphen = chunk[..space_left].iter().rposition(|&c| c == '-');
                    if let Some(hyphen) = hyphen.filter(|&h| h > 0)
                        && chunk[..hyphen].iter().any(|&c| c != '-')
                    {
                        end = hyphen + 1;
                    }
                }
                let rest = chunk.split_off(end);
                line.push(std::mem::replace(chunk, rest));
            } else if line.is_empty() {
                line.push(chunks.pop().expect("a chunk"));
            }
        }
        if line.last().is_some_and(|c| blank(c)) {
            line.pop();
        }
        if !line.is_empty() {
            lines.push(line.concat().into_iter().collect());
        }
    }
    lines
}

/// Python's `str.splitlines()`.
pub(super) fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let breaks = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if breaks {
            lines.push(&text[start..i]);
            start = i + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|&(_, next)| next == '\n') {
                chars.next();
                start += 1;
            }
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// `wordwrap(width=79, break_long_words=true, wrapstring="\n", break_on_hyphens=true)`.
pub fn wordwrap(value: &Value, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let args = python_args(
        "wordwrap",
        args,
        &[
            "width",
            "break_long_words",
            "wrapstring",
            "break_on_hyphens",
        ],
    )?;
    let width = opt::<i64>(args[0].as_ref())?.unwrap_or(79);
    let break_long_words = args[1].as_ref().is_none_or(Value::is_true);
    let wrapstring = args[2]
        .as_ref()
        .map_or_else(|| "\n".to_owned(), ToString::to_string);
    let break_on_hyphens = args[3].as_ref().is_none_or(Value::is_true);
    let width = usize::try_from(width)
        .ok()
        .filter(|&w| w > 0)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("invalid width {width} (must be > 0)"),
            )
        })?;
    let text = value.to_string();
    let lines: Vec<String> = split_lines(&text)
        .into_iter()
        .map(|line| wrap(line, width, break_long_words, break_on_hyphens).join(&wrapstring))
        .collect();
    Ok(lines.join(&wrapstring))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_textwrap_regex() {
        let chars: Vec<char> = "a well-known e-mail -- ok".chars().collect();
        assert_eq!(
            split_chunks(&chars, true),
            [
                "a", " ", "well-", "known", " ", "e-mail", " ", "--", " ", "ok"
            ]
        );
        let chars: Vec<char> = "wait--what".chars().collect();
        assert_eq!(split_chunks(&chars, true), ["wait", "--", "what"]);
    }

    #[test]
    fn wraps_like_python() {
        assert_eq!(
            wrap("the quick brown fox jumps", 10, true, true),
            ["the quick", "brown fox", "jumps"]
        );
        assert_eq!(wrap("abcdefghij", 4, true, true), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("abcdefghij", 4, false, true), ["abcdefghij"]);
        assert_eq!(split_lines("a\r\nb\n\nc\n"), ["a", "b", "", "c"]);
    }
}
