//! Typed reading of a [`Node`] tree that collects every problem instead of stopping at the
//! first one.
//!
//! A [`Reader`] walks one file. Each accessor either returns the value or records a
//! [`Diagnostic`] pointing at the node (with a "did you mean" for unknown keys) and returns
//! `None`, so a caller can keep reading the rest of the file and report everything at once.

use im_diag::{Diagnostic, Diagnostics, did_you_mean};
use indexmap::IndexMap;

use crate::{Node, Source, Span, Style, Value};

/// Reads nodes of one file, collecting diagnostics.
pub struct Reader<'d> {
    pub source: &'d Source,
    pub diagnostics: Diagnostics,
}

/// A mapping whose keys were checked against the known ones.
#[derive(Clone, Copy)]
pub struct Map<'n> {
    entries: &'n [(Node, Node)],
    pub span: Span,
}

impl<'n> Map<'n> {
    /// The value of `key`, when present and not null.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    /// The key node of `key`, for pointing at it.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(k, _)| k.span)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'n Node, &'n Node)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A scalar value with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<'d> Reader<'d> {
    pub fn new(source: &'d Source) -> Self {
        Self {
            source,
            diagnostics: Diagnostics::new(),
        }
    }

    /// Records `diagnostic`.
    pub fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        let mut diagnostic = self.source.error(span, message);
        diagnostic.help = help;
        self.report(diagnostic);
    }

    /// Reads a mapping whose keys must be among `known`. `what` names it in messages
    /// ("an image definition"). Null reads as an empty mapping.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str, known: &[&str]) -> Option<Map<'n>> {
        let entries: &'n [(Node, Node)] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                self.error(
                    node.span,
                    format!(
                        "{what} must be a mapping (`key: value` lines), but this is {}",
                        node.kind()
                    ),
                    None,
                );
                return None;
            }
        };
        for (key, _) in entries {
            let name = key.as_scalar().unwrap_or("~");
            if !known.contains(&name) {
                let help = match did_you_mean(name, known.iter().copied()) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("the keys allowed here are: {}", known.join(", ")),
                };
                self.error(
                    key.span,
                    format!("unknown key `{name}` in {what}"),
                    Some(help),
                );
            }
        }
        Some(Map {
            entries,
            span: node.span,
        })
    }

    /// Reads a mapping with free-form keys (a dictionary such as `versions`).
    pub fn dict<'n>(&mut self, node: &'n Node, what: &str) -> Option<Map<'n>> {
        match &node.value {
            Value::Map(entries) => Some(Map {
                entries,
                span: node.span,
            }),
            Value::Null => Some(Map {
                entries: &[],
                span: node.span,
            }),
            _ => {
                self.error(
                    node.span,
                    format!(
                        "{what} must be a mapping (`key: value` lines), but this is {}",
                        node.kind()
                    ),
                    None,
                );
                None
            }
        }
    }

    /// Reads a single value as text, exactly as written (numbers included).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        if let Some(text) = node.as_scalar() {
            return Some(text.to_owned());
        }
        self.error(
            node.span,
            format!("{what} must be a single value, but this is {}", node.kind()),
            None,
        );
        None
    }

    /// Reads text with its span.
    pub fn spanned_string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        self.string(node, what).map(|value| Spanned {
            value,
            span: node.span,
        })
    }

    /// Reads `true` or `false` (YAML 1.2: `yes`/`no`/`on`/`off` are text, and refused here).
    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        if let Value::Scalar {
            text,
            style: Style::Plain,
        } = &node.value
        {
            match text.as_str() {
                "true" | "True" | "TRUE" => return Some(true),
                "false" | "False" | "FALSE" => return Some(false),
                _ => {}
            }
        }
        let found = node
            .as_scalar()
            .map_or_else(|| node.kind().to_owned(), |text| format!("`{text}`"));
        self.error(
            node.span,
            format!("{what} must be `true` or `false`, but this is {found}"),
            Some("write true or false without quotes".to_owned()),
        );
        None
    }

    /// Reads a list; null reads as empty.
    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            Value::Null => Some(&[]),
            _ => {
                self.error(
                    node.span,
                    format!(
                        "{what} must be a list (`- item` lines), but this is {}",
                        node.kind()
                    ),
                    None,
                );
                None
            }
        }
    }

    /// Reads a list of single values.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Option<Vec<Spanned<String>>> {
        let items = self.list(node, what)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.spanned_string(item, &format!("each entry of {what}")) {
                Some(value) => out.push(value),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Reads a mapping of single values (`versions:`), keeping the file's order.
    pub fn string_dict(
        &mut self,
        node: &Node,
        what: &str,
    ) -> Option<IndexMap<String, Spanned<String>>> {
        let map = self.dict(node, what)?;
        let mut out = IndexMap::new();
        for (key, value) in map.iter() {
            let key = key.as_scalar().unwrap_or("~").to_owned();
            if value.is_null() {
                self.error(
                    value.span,
                    format!("`{key}` in {what} has no value"),
                    Some(format!("write `{key}: <value>`, or remove the line")),
                );
                continue;
            }
            if let Some(text) = self.spanned_string(value, &format!("`{key}` in {what}")) {
                out.insert(key, text);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::{Limits, parse};

    #[test]
    fn unknown_keys_get_a_suggestion_and_all_are_reported() {
        let doc = parse(
            Path::new("images/a/image.yml"),
            "nmae: a\ntagz: []\nfoo: 1\n".into(),
            &Limits::default(),
        )
        .unwrap();
        let mut reader = Reader::new(&doc.source);
        reader.map(
            &doc.root,
            "an image definition",
            &["name", "tags", "variants"],
        );
        let rendered = reader.diagnostics.to_string();
        insta::assert_snapshot!(rendered, @r"
        error: unknown key `nmae` in an image definition
         --> images/a/image.yml:1:1
          |
        1 | nmae: a
          | ^^^^
          = help: did you mean `name`?

        error: unknown key `tagz` in an image definition
         --> images/a/image.yml:2:1
          |
        2 | tagz: []
          | ^^^^
          = help: did you mean `tags`?

        error: unknown key `foo` in an image definition
         --> images/a/image.yml:3:1
          |
        3 | foo: 1
          | ^^^
          = help: the keys allowed here are: name, tags, variants
        ");
    }

    #[test]
    fn bools_are_strict() {
        let doc = parse(
            Path::new("x.yml"),
            "a: true\nb: yes\nc: 'true'\n".into(),
            &Limits::default(),
        )
        .unwrap();
        let mut reader = Reader::new(&doc.source);
        assert_eq!(reader.bool(doc.root.get("a").unwrap(), "`a`"), Some(true));
        assert_eq!(reader.bool(doc.root.get("b").unwrap(), "`b`"), None);
        assert_eq!(reader.bool(doc.root.get("c").unwrap(), "`c`"), None);
        assert_eq!(reader.diagnostics.error_count(), 2);
    }

    #[test]
    fn string_dict_keeps_exact_text_and_order() {
        let doc = parse(
            Path::new("x.yml"),
            "v:\n  python: 3.10\n  node: 24\n".into(),
            &Limits::default(),
        )
        .unwrap();
        let mut reader = Reader::new(&doc.source);
        let dict = reader
            .string_dict(doc.root.get("v").unwrap(), "`versions`")
            .unwrap();
        let pairs: Vec<_> = dict
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(pairs, [("python", "3.10"), ("node", "24")]);
    }
}
