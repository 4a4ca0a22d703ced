//! Diagnostics a user can act on.
//!
//! Every problem found in a user's input (a YAML file, a template, a Dockerfile) becomes a
//! [`Diagnostic`]: a one-line message, the place it points at (`file:line:col` plus the source
//! line with a caret under the offending text), an optional `help` that says how to fix it, and
//! notes. Checks collect diagnostics into a [`Diagnostics`] list so a user sees every problem at
//! once instead of fixing them one run at a time.
//!
//! Rendering is plain text (no colour): the binary's printer decides about colour.
//!
//! [`Secret`] is the one credential type: whatever prints or serialises it shows `***`.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod secret;

pub use secret::Secret;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A place in a source file. Lines and columns count from 1; columns count characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The path as the user should see it (usually relative to the project root).
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// How many characters to underline (at least one is shown).
    pub len: usize,
    /// The text of `line`, without its newline, when known.
    pub snippet: Option<String>,
}

impl Location {
    /// A location without a snippet (the source text is not at hand).
    pub fn new(path: impl Into<PathBuf>, line: usize, column: usize) -> Self {
        Self {
            path: path.into(),
            line,
            column,
            len: 1,
            snippet: None,
        }
    }

    /// A location whose snippet is taken from `source` (the whole file's text).
    pub fn in_source(
        path: impl Into<PathBuf>,
        source: &str,
        line: usize,
        column: usize,
        len: usize,
    ) -> Self {
        let snippet = line
            .checked_sub(1)
            .and_then(|index| source.lines().nth(index))
            .map(|text| text.trim_end_matches('\r').to_owned());
        Self {
            path: path.into(),
            line,
            column,
            len: len.max(1),
            snippet,
        }
    }

    /// A location pointing at a whole file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            line: 0,
            column: 0,
            len: 0,
            snippet: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = shown_path(&self.path);
        if self.line == 0 {
            write!(f, "{path}")
        } else {
            write!(f, "{path}:{}:{}", self.line, self.column)
        }
    }
}

/// `text` with control characters other than tab escaped (`\n` for a newline).
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// How a path is shown in a diagnostic: control characters (a newline in a file name)
/// escaped so the diagnostic keeps its shape, and a path longer than 200 characters cut in
/// the middle.
pub fn shown_path(path: &Path) -> String {
    let escaped = one_line(&path.to_string_lossy());
    let count = escaped.chars().count();
    if count <= 200 {
        return escaped;
    }
    let head: String = escaped.chars().take(120).collect();
    let tail: String = escaped.chars().skip(count - 60).collect();
    format!("{head}...{tail}")
}

/// One problem, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub location: Option<Location>,
    pub help: Option<String>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            location: None,
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message)
        }
    }

    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    #[must_use]
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// Renders like
    ///
    /// ```text
    /// error: unknown key `tagz` in an image definition
    ///   --> images/python/image.yml:3:1
    ///    |
    ///  3 | tagz:
    ///    | ^^^^
    ///    = help: did you mean `tags`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        // A message is one line: a value quoted from the input (a name holding a newline)
        // must not break the shape a reader (or a tool) relies on.
        write!(f, "{label}: {}", one_line(&self.message))?;
        let mut gutter = 1;
        if let Some(location) = &self.location {
            gutter = location.line.to_string().len().max(1);
            write!(f, "\n{:gutter$}--> {location}", "")?;
            if let Some(snippet) = &location.snippet {
                let (shown, caret_offset, carets) =
                    snippet_window(snippet, location.column, location.len);
                write!(f, "\n{:gutter$} |", "")?;
                write!(f, "\n{:>gutter$} | {shown}", location.line)?;
                write!(
                    f,
                    "\n{:gutter$} | {}{}",
                    "",
                    " ".repeat(caret_offset),
                    "^".repeat(carets)
                )?;
            }
        }
        for note in &self.notes {
            write!(f, "\n{:gutter$} = note: {note}", "")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{:gutter$} = help: {help}", "")?;
        }
        Ok(())
    }
}

/// The most characters of a source line a diagnostic shows: a longer line is cut to a window
/// around the column, with `...` where text was left out.
const MAX_SHOWN: usize = 120;
/// How much of a cut line is shown before the column.
const SHOWN_BEFORE: usize = 40;

/// The part of `snippet` to show (tabs as four spaces), how many columns the caret is
/// indented, and how many carets to draw. Columns past the end of the line point just after
/// it. Padding is built with `repeat`: a width in a format string is limited to 65,535.
fn snippet_window(snippet: &str, column: usize, len: usize) -> (String, usize, usize) {
    let chars: Vec<char> = snippet.chars().collect();
    let index = column.saturating_sub(1).min(chars.len());
    let (start, end) = if chars.len() <= MAX_SHOWN {
        (0, chars.len())
    } else {
        let start = index.saturating_sub(SHOWN_BEFORE);
        let start = start.min(chars.len().saturating_sub(MAX_SHOWN));
        (start, (start + MAX_SHOWN).min(chars.len()))
    };
    let width = |c: &char| if *c == '\t' { 4 } else { 1 };
    let mut shown = String::new();
    let mut caret_offset = 0;
    if start > 0 {
        shown.push_str("...");
        caret_offset += 3;
    }
    for c in &chars[start..end] {
        if *c == '\t' {
            shown.push_str("    ");
        } else {
            shown.push(*c);
        }
    }
    caret_offset += chars[start..index].iter().map(width).sum::<usize>();
    if end < chars.len() {
        shown.push_str("...");
    }
    // Underline at most to the end of what is shown (one caret past the end of a line).
    let room = end.saturating_sub(index).max(1);
    (shown, caret_offset, len.clamp(1, room))
}

impl std::error::Error for Diagnostic {}

/// Every problem found by a check, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<Diagnostic> {
        self.0
    }

    /// Splits off the warnings, keeping the errors (if any) as the `Err` side.
    pub fn into_result(self) -> Result<Vec<Diagnostic>, Diagnostics> {
        if self.has_errors() {
            Err(self)
        } else {
            Ok(self.0)
        }
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Self(vec![diagnostic])
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// An error and its causes on one line: `outer: cause: root cause`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The closest of `candidates` to `word`, if any is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// Shows `path` relative to `root` when it lies inside it.
pub fn display_path(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
pub fn xml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_snippet_caret_and_help() {
        let source = "name: python\ntagz:\n  - name: 3.13\n";
        let diagnostic = Diagnostic::error("unknown key `tagz` in an image definition")
            .at(Location::in_source(
                "images/python/image.yml",
                source,
                2,
                1,
                4,
            ))
            .with_help("did you mean `tags`?");
        assert_eq!(
            diagnostic.to_string(),
            "error: unknown key `tagz` in an image definition\n \
             --> images/python/image.yml:2:1\n  |\n2 | tagz:\n  | ^^^^\n  = help: did you mean `tags`?"
        );
    }

    #[test]
    fn caret_follows_tabs_and_column() {
        let source = "\tFROM  base\n";
        let diagnostic =
            Diagnostic::error("x").at(Location::in_source("Dockerfile", source, 1, 8, 4));
        let text = diagnostic.to_string();
        assert!(
            text.ends_with("1 |     FROM  base\n  |           ^^^^"),
            "{text}"
        );
    }

    #[test]
    fn an_error_past_column_65535_renders_a_window_of_the_line() {
        // A width in a format string is limited to 65,535: this used to panic.
        let source = format!("{}: 1\n", "k".repeat(70_000));
        let diagnostic =
            Diagnostic::error("x").at(Location::in_source("image.yml", &source, 1, 70_001, 1));
        let text = diagnostic.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[3].starts_with("1 | ...kkk"), "{text}");
        assert!(lines[3].ends_with("k: 1"), "{text}");
        assert!(lines[3].len() < 200, "the line is cut: {}", lines[3].len());
        let caret = lines[4].find('^').unwrap();
        assert_eq!(&lines[3][caret..=caret], ":", "{text}");
        // A long underline and a column past the end stay within the shown text.
        let long = Diagnostic::error("x").at(Location::in_source("f", &source, 1, 5, 100_000));
        assert!(long.to_string().lines().all(|l| l.len() < 200));
        let past = Diagnostic::error("x").at(Location::in_source("f", "ab\n", 1, 70_000, 1));
        assert!(past.to_string().ends_with("1 | ab\n  |   ^"), "{past}");
    }

    #[test]
    fn paths_with_newlines_or_great_length_keep_the_shape_of_a_diagnostic() {
        let odd = format!("images/a\nb/{}", "k".repeat(1_000));
        let text = Diagnostic::error("`a\nb` is not a managed image")
            .at(Location::file(&odd))
            .to_string();
        assert!(text.starts_with("error: `a\\nb` is not"), "{text}");
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("images/a\\nb/kkk"), "{text}");
        assert!(text.len() < 300, "{text}");
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        let keys = ["tags", "variants", "versions", "variables"];
        assert_eq!(did_you_mean("tagz", keys), Some("tags"));
        assert_eq!(did_you_mean("variabels", keys), Some("variables"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }

    #[test]
    fn diagnostics_result_keeps_warnings_apart() {
        let mut all = Diagnostics::new();
        all.push(Diagnostic::warning("w"));
        assert_eq!(all.clone().into_result().unwrap().len(), 1);
        all.push(Diagnostic::error("e"));
        assert_eq!(all.into_result().unwrap_err().error_count(), 1);
    }
}
