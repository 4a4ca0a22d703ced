//! A small YAML writer for generated pipelines: block mappings and sequences, keys in the
//! order given, every string double-quoted with JSON escapes (valid YAML, never read as a
//! number, a boolean or a comment). Same input, same bytes.
//!
//! A pipeline of 180,000 jobs is tens of MB, so it is never one tree: a [`Document`] writes
//! each entry (one job) into one buffer as soon as it is made, and values borrow the job's
//! strings instead of copying them.

use std::borrow::Cow;
use std::fmt::Write as _;

use rayon::prelude::*;

/// A YAML value; its strings are borrowed where they can be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Yaml<'a> {
    Str(Cow<'a, str>),
    /// Written as is: a number, `true`, or an expression a provider needs bare.
    Raw(Cow<'a, str>),
    List(Vec<Yaml<'a>>),
    Map(Vec<(Cow<'a, str>, Yaml<'a>)>),
}

impl<'a> Yaml<'a> {
    pub fn str(text: impl Into<Cow<'a, str>>) -> Self {
        Self::Str(text.into())
    }

    pub fn strs<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Cow<'a, str>>,
    {
        Self::List(items.into_iter().map(|s| Self::Str(s.into())).collect())
    }

    /// The document, ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self, 0, Context::Top);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// A mapping in the order entries are pushed.
#[derive(Clone, Debug, Default)]
pub struct Map<'a>(Vec<(Cow<'a, str>, Yaml<'a>)>);

impl<'a> Map<'a> {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    #[must_use]
    pub fn with(mut self, key: impl Into<Cow<'a, str>>, value: Yaml<'a>) -> Self {
        self.0.push((key.into(), value));
        self
    }

    pub fn push(&mut self, key: impl Into<Cow<'a, str>>, value: Yaml<'a>) {
        self.0.push((key.into(), value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn build(self) -> Yaml<'a> {
        Yaml::Map(self.0)
    }
}

/// A block mapping written entry by entry into one buffer: the same bytes as
/// [`Yaml::render`] of the whole mapping, without holding it.
pub struct Document {
    out: String,
    /// About how many bytes an entry of [`Document::entries`] takes.
    entry_bytes: usize,
}

/// Entries [`Document::entries`] writes on one thread at a time.
const CHUNK: usize = 1024;

impl Document {
    /// A document starting with `header` as `#` comment lines, for `entries` entries of about
    /// `entry_bytes` bytes each (a guess to size the buffer; it grows past it).
    pub fn new(header: &str, entries: usize, entry_bytes: usize) -> Self {
        let mut out = String::with_capacity(entries.saturating_mul(entry_bytes));
        for line in header.lines() {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str("# ");
                out.push_str(line);
                out.push('\n');
            }
        }
        Self { out, entry_bytes }
    }

    /// `key: value` at `depth` (0: top level).
    pub fn entry(&mut self, depth: usize, key: &str, value: &Yaml<'_>) {
        write_entry(&mut self.out, depth, key, value);
    }

    /// One entry per item at `depth`, `entry` giving its key and value: made and written on
    /// every core, a chunk of items at a time, then appended in order (the same bytes as
    /// [`Document::entry`] for each). A batch of chunks at a time, so their buffers are reused
    /// instead of holding the document twice.
    pub fn entries<'a, T, F>(&mut self, depth: usize, items: &'a [T], entry: F)
    where
        T: Sync,
        F: Fn(&'a T) -> (&'a str, Yaml<'a>) + Sync,
    {
        let threads = rayon::current_num_threads().max(1);
        for batch in items.chunks(CHUNK * threads * 4) {
            let written: Vec<String> = batch
                .par_chunks(CHUNK)
                .map(|chunk| {
                    let mut out = String::with_capacity(chunk.len() * self.entry_bytes);
                    for item in chunk {
                        let (key, value) = entry(item);
                        write_entry(&mut out, depth, key, &value);
                    }
                    out
                })
                .collect();
            for text in written {
                self.out.push_str(&text);
            }
        }
    }

    /// `key:` at `depth` for a mapping whose entries follow (at `depth + 1`, through
    /// [`Document::entry`]); `empty`: it has none, written `key: {}`.
    pub fn open(&mut self, depth: usize, key: &str, empty: bool) {
        indent(&mut self.out, depth);
        write_key(&mut self.out, key);
        self.out.push_str(if empty { ": {}\n" } else { ":\n" });
    }

    /// The text, ending in a newline.
    pub fn finish(mut self) -> String {
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        self.out
    }
}

fn write_entry(out: &mut String, depth: usize, key: &str, value: &Yaml<'_>) {
    indent(out, depth);
    write_key(out, key);
    out.push(':');
    write_value(out, value, depth + 1, Context::MapValue);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    /// After `key:` on the same line.
    MapValue,
    /// After `- ` on the same line.
    ListItem,
}

/// `text` double-quoted with JSON escapes. Every character escaped is ASCII, so the bytes
/// between escapes are copied in runs.
fn write_quoted(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut run = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\t' => "\\t",
            b'\r' => "\\r",
            0..0x20 | 0x7f => "",
            _ => continue,
        };
        out.push_str(&text[run..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        run = at + 1;
    }
    out.push_str(&text[run..]);
    out.push('"');
}

/// A key bare when it is a plain word, else quoted.
fn write_key(out: &mut String, text: &str) {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '.')
        && !matches!(
            text,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        out.push_str(text);
    } else {
        write_quoted(out, text);
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, value: &Yaml<'_>, depth: usize, context: Context) {
    match value {
        Yaml::Str(text) => {
            out.push(' ');
            write_quoted(out, text);
            out.push('\n');
        }
        Yaml::Raw(text) => {
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
        Yaml::List(items) if items.is_empty() => out.push_str(" []\n"),
        Yaml::Map(entries) if entries.is_empty() => out.push_str(" {}\n"),
        Yaml::List(items) => {
            if context != Context::Top {
                out.push('\n');
            }
            for item in items {
                indent(out, depth);
                out.push('-');
                write_value(out, item, depth + 1, Context::ListItem);
            }
        }
        Yaml::Map(entries) => {
            let mut first = true;
            if context == Context::MapValue {
                out.push('\n');
            }
            for (name, item) in entries {
                if first && context == Context::ListItem {
                    out.push(' ');
                } else {
                    indent(out, depth);
                }
                first = false;
                write_key(out, name);
                out.push(':');
                write_value(out, item, depth + 1, Context::MapValue);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_are_block_yaml_with_quoted_strings() {
        let doc = Map::new()
            .with("stages", Yaml::strs(["build"]))
            .with(
                "build app:1 linux/amd64",
                Map::new()
                    .with("needs", Yaml::List(Vec::new()))
                    .with("script", Yaml::strs(["echo \"a\" # not a comment", "yes"]))
                    .with(
                        "rules",
                        Yaml::List(vec![Map::new().with("if", Yaml::str("$X")).build()]),
                    )
                    .with("retry", Yaml::Raw("2".into()))
                    .build(),
            )
            .build();
        assert_eq!(
            doc.render(),
            "stages:\n  - \"build\"\n\"build app:1 linux/amd64\":\n  needs: []\n  script:\n    - \"echo \\\"a\\\" # not a comment\"\n    - \"yes\"\n  rules:\n    - if: \"$X\"\n  retry: 2\n"
        );
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_control_characters_only() {
        let mut out = String::new();
        write_quoted(&mut out, "é\"\\\n\t\r\u{1}\u{7f}ü");
        assert_eq!(out, "\"é\\\"\\\\\\n\\t\\r\\u0001\\u007fü\"");
    }

    #[test]
    fn a_document_written_entry_by_entry_is_the_mapping_rendered_whole() {
        let job = Map::new()
            .with("needs", Yaml::strs(["a", "b"]))
            .with(
                "steps",
                Yaml::List(vec![
                    Map::new()
                        .with("uses", Yaml::str("x"))
                        .with("run", Yaml::str("y"))
                        .build(),
                ]),
            )
            .build();
        let whole = Map::new()
            .with("name", Yaml::str("images"))
            .with("on", Map::new().with("push", Map::new().build()).build())
            .with(
                "jobs",
                Map::new()
                    .with("one", job.clone())
                    .with("two: 2", job.clone())
                    .build(),
            )
            .with("empty", Map::new().build())
            .build();
        let mut doc = Document::new("made\n\nby a test", 0, 0);
        doc.entry(0, "name", &Yaml::str("images"));
        doc.entry(
            0,
            "on",
            &Map::new().with("push", Map::new().build()).build(),
        );
        doc.open(0, "jobs", false);
        let keys = ["one", "two: 2"];
        doc.entries(1, &keys, |key| (*key, job.clone()));
        doc.open(0, "empty", true);
        assert_eq!(
            doc.finish(),
            format!("# made\n#\n# by a test\n{}", whole.render())
        );
    }
}
