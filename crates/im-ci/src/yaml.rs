//! A small YAML writer for generated pipelines: block mappings and sequences, keys in the
//! order given, every string double-quoted with JSON escapes (valid YAML, never read as a
//! number, a boolean or a comment). Same input, same bytes.

use std::fmt::Write as _;

/// A YAML value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Yaml {
    Str(String),
    /// Written as is: a number, `true`, or an expression a provider needs bare.
    Raw(String),
    List(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    pub fn str(text: impl Into<String>) -> Self {
        Self::Str(text.into())
    }

    pub fn strs<I, S>(items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
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
pub struct Map(Vec<(String, Yaml)>);

impl Map {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: Yaml) -> Self {
        self.0.push((key.into(), value));
        self
    }

    pub fn push(&mut self, key: impl Into<String>, value: Yaml) {
        self.0.push((key.into(), value));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn build(self) -> Yaml {
        Yaml::Map(self.0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    /// After `key:` on the same line.
    MapValue,
    /// After `- ` on the same line.
    ListItem,
}

fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key bare when it is a plain word, else quoted.
fn key(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '.')
        && !matches!(
            text,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain { text.to_owned() } else { quote(text) }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_value(out: &mut String, value: &Yaml, depth: usize, context: Context) {
    match value {
        Yaml::Str(text) => {
            out.push(' ');
            out.push_str(&quote(text));
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
                out.push_str(&key(name));
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
}
