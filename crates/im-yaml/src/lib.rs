//! YAML documents for configuration files that users write by hand.
//!
//! [`parse`] turns a file's text into a [`Document`]: a tree of [`Node`]s, each with the
//! [`Span`] it came from, so every later error can point at `file:line:col`. It differs from
//! a general YAML loader on purpose:
//!
//! - scalars keep the text exactly as written (`2025.10` stays `2025.10`, `24` stays `24`):
//!   the caller decides what a scalar means, nothing goes through a float;
//! - a mapping with the same key twice is an error naming both lines;
//! - aliases are expanded under a budget ([`Limits::max_nodes`]) so a "billion laughs" file
//!   fails fast, and nesting depth and document size are capped;
//! - `<<` merge keys (a YAML 1.1 habit many users keep) are honoured: the merged mapping's
//!   keys apply unless the mapping sets them itself.
//!
//! [`reader`] holds the typed accessors that collect every problem as an [`im_diag::Diagnostic`].

pub mod reader;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_diag::{Diagnostic, Location};
use saphyr_parser::{Event, Parser, ScalarStyle};

pub use reader::Reader;

/// Limits that keep hostile or broken files from using unbounded time or memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest document accepted, in bytes.
    pub max_bytes: usize,
    /// The deepest nesting of lists and mappings.
    pub max_depth: usize,
    /// How many nodes a document may hold once aliases are expanded.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 200_000,
        }
    }
}

/// Where a node is: 1-based line and column, and how many characters it covers on that line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null`, or nothing at all.
    Null,
    /// Any scalar, with its text exactly as the file wrote it (after YAML unquoting).
    Scalar {
        text: String,
        style: Style,
    },
    Seq(Vec<Node>),
    /// Entries in file order; keys are unique.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar's text, for any scalar other than null.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries of a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v)
    }

    /// How the node's kind is named in error messages ("a mapping", "a list", ...).
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar { .. } => "a single value",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries.iter().map(|(k, v)| k.count() + v.count()).sum(),
            _ => 0,
        }
    }
}

/// The file a document came from: its path as the user sees it and its text.
#[derive(Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// The location of `span` in this file, with the source line as a snippet.
    pub fn location(&self, span: Span) -> Location {
        Location::in_source(
            self.path.clone(),
            &self.text,
            span.line,
            span.column,
            span.len,
        )
    }

    /// An error pointing at `span`.
    pub fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(message).at(self.location(span))
    }

    /// The bytes of this file that hold the scalar `text` written literally where `span`
    /// starts: the scalar for a plain one, the inside of the quotes for a quoted one. `None`
    /// when something else is written there: an alias (`*v`), a block scalar, a quoted scalar
    /// with escapes, a scalar over several lines. An edit replaces exactly these bytes, so the
    /// rest of the file (comments, order, quoting, spacing) stays as it was.
    pub fn literal_range(&self, span: Span, text: &str) -> Option<std::ops::Range<usize>> {
        let line_start = if span.line <= 1 {
            0
        } else {
            self.text
                .match_indices('\n')
                .nth(span.line - 2)
                .map(|(at, _)| at + 1)?
        };
        let line = self.text[line_start..].split('\n').next()?;
        let mut start = line
            .char_indices()
            .map(|(at, _)| at)
            .chain([line.len()])
            .nth(span.column.checked_sub(1)?)?;
        // The span starts at an anchor (`&v 1.0`) or a tag (`!!str 1.0`) written before it.
        while matches!(line.as_bytes().get(start), Some(b'&' | b'!')) {
            let word = line[start..].find([' ', '\t'])?;
            let blank = line[start + word..].len() - line[start + word..].trim_start().len();
            start += word + blank;
        }
        let rest = &line[start..];
        let (offset, len) = match rest.as_bytes().first()? {
            b'"' => {
                let close = rest[1..].find(['"', '\\'])?;
                (rest.as_bytes()[1 + close] == b'"').then_some((1, close))?
            }
            b'\'' => {
                let close = rest[1..].find('\'')?;
                // `''` is an escaped quote: the text differs from what is written.
                (!rest[2 + close..].starts_with('\'')).then_some((1, close))?
            }
            _ => {
                let after = rest.get(text.len()..)?.chars().next();
                let ends = matches!(after, None | Some(' ' | '\t' | '\r' | ',' | ']' | '}'));
                (rest.starts_with(text) && ends).then_some((0, text.len()))?
            }
        };
        (!text.is_empty() && rest[offset..offset + len] == *text)
            .then(|| line_start + start + offset..line_start + start + offset + len)
    }
}

/// A parsed file: its root node (null for an empty file) and its source.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Node,
    pub source: Arc<Source>,
}

/// Parses one YAML document. `path` is how the file is named in errors.
pub fn parse(path: &Path, text: String, limits: &Limits) -> Result<Document, Diagnostic> {
    let source = Arc::new(Source {
        path: path.to_path_buf(),
        text,
    });
    if source.text.len() > limits.max_bytes {
        // Point at where the limit is crossed.
        let mut cut = limits.max_bytes;
        while !source.text.is_char_boundary(cut) {
            cut -= 1;
        }
        let before = &source.text[..cut];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        return Err(Diagnostic::error(format!(
            "this file is {} bytes, more than the {} bytes a configuration file may have",
            source.text.len(),
            limits.max_bytes
        ))
        .at(Location::in_source(path, &source.text, line, column, 1))
        .with_help("split it, or check that the right file is named"));
    }
    let root = Builder::new(&source, limits).build()?;
    Ok(Document { root, source })
}

enum Frame {
    Seq {
        items: Vec<Node>,
        span: Span,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        span: Span,
        anchor: usize,
        merges: Vec<Node>,
    },
}

struct Builder<'s> {
    source: &'s Source,
    limits: &'s Limits,
    anchors: Vec<Option<Node>>,
    nodes: usize,
    stack: Vec<Frame>,
    root: Option<Node>,
    documents: usize,
}

impl<'s> Builder<'s> {
    fn new(source: &'s Source, limits: &'s Limits) -> Self {
        Self {
            source,
            limits,
            anchors: Vec::new(),
            nodes: 0,
            stack: Vec::new(),
            root: None,
            documents: 0,
        }
    }

    fn span_of(span: saphyr_parser::Span) -> Span {
        let (start, end) = (span.start, span.end);
        let len = if end.line() == start.line() {
            end.col().saturating_sub(start.col())
        } else {
            1
        };
        Span {
            line: start.line(),
            column: start.col() + 1,
            len: len.max(1),
        }
    }

    fn build(mut self) -> Result<Node, Diagnostic> {
        let parser = Parser::new_from_str(&self.source.text);
        for event in parser {
            let (event, raw_span) = event.map_err(|error| {
                let marker = error.marker();
                self.source
                    .error(
                        Span {
                            line: marker.line(),
                            column: marker.col() + 1,
                            len: 1,
                        },
                        format!("this is not valid YAML: {}", error.info()),
                    )
                    .with_help("check the indentation and quoting around this place")
            })?;
            let span = Self::span_of(raw_span);
            match event {
                Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(self.source.error(span, "this file holds more than one YAML document (`---`)").with_help(
                            "keep one document per file: remove the second `---` and what follows, or merge them",
                        ));
                    }
                }
                Event::Alias(id) => {
                    let node = self.anchors.get(id).cloned().flatten().ok_or_else(|| {
                        self.source.error(
                            span,
                            "this alias refers to an anchor that is not complete yet",
                        )
                    })?;
                    self.charge(node.count(), span)?;
                    let node = Node { span, ..node };
                    self.push_value(node)?;
                }
                Event::Scalar(text, style, anchor, tag) => {
                    self.charge(1, span)?;
                    let value = scalar_value(&text, style, tag.as_deref());
                    let node = Node { value, span };
                    self.remember(anchor, &node);
                    self.push_value(node)?;
                }
                Event::SequenceStart(anchor, _) => {
                    self.charge(1, span)?;
                    self.enter(span)?;
                    self.stack.push(Frame::Seq {
                        items: Vec::new(),
                        span,
                        anchor,
                    });
                }
                Event::MappingStart(anchor, _) => {
                    self.charge(1, span)?;
                    self.enter(span)?;
                    self.stack.push(Frame::Map {
                        entries: Vec::new(),
                        pending_key: None,
                        span,
                        anchor,
                        merges: Vec::new(),
                    });
                }
                Event::SequenceEnd => {
                    if let Some(Frame::Seq {
                        items,
                        span,
                        anchor,
                    }) = self.stack.pop()
                    {
                        let node = Node {
                            value: Value::Seq(items),
                            span,
                        };
                        self.remember(anchor, &node);
                        self.push_value(node)?;
                    }
                }
                Event::MappingEnd => {
                    if let Some(Frame::Map {
                        mut entries,
                        span,
                        anchor,
                        merges,
                        ..
                    }) = self.stack.pop()
                    {
                        for merged in merges {
                            merge_into(&mut entries, merged, self.source)?;
                        }
                        let node = Node {
                            value: Value::Map(entries),
                            span,
                        };
                        self.remember(anchor, &node);
                        self.push_value(node)?;
                    }
                }
            }
        }
        Ok(self.root.unwrap_or(Node {
            value: Value::Null,
            span: Span {
                line: 1,
                column: 1,
                len: 1,
            },
        }))
    }

    fn enter(&self, span: Span) -> Result<(), Diagnostic> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(self
                .source
                .error(
                    span,
                    format!(
                        "lists and mappings nest deeper than {} levels here",
                        self.limits.max_depth
                    ),
                )
                .with_help("flatten the structure; no configuration here needs this depth"));
        }
        Ok(())
    }

    fn charge(&mut self, count: usize, span: Span) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(count);
        if self.nodes > self.limits.max_nodes {
            return Err(self
                .source
                .error(
                    span,
                    format!(
                        "this document expands to more than {} values (aliases included)",
                        self.limits.max_nodes
                    ),
                )
                .with_help("aliases (`*name`) that repeat other aliases grow exponentially; write the values out or use fewer levels"));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor == 0 {
            return;
        }
        if self.anchors.len() <= anchor {
            self.anchors.resize(anchor + 1, None);
        }
        self.anchors[anchor] = Some(node.clone());
    }

    fn push_value(&mut self, node: Node) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                merges,
                ..
            }) => match pending_key.take() {
                None => {
                    if node.as_scalar().is_none() && !node.is_null() {
                        return Err(self
                            .source
                            .error(
                                node.span,
                                format!(
                                    "a mapping key must be a single value, not {}",
                                    node.kind()
                                ),
                            )
                            .with_help("use a plain word as the key"));
                    }
                    if let Some((first, _)) = entries
                        .iter()
                        .find(|(key, _)| key.as_scalar() == node.as_scalar())
                    {
                        return Err(self
                            .source
                            .error(
                                node.span,
                                format!(
                                    "the key `{}` appears twice in this mapping",
                                    node.as_scalar().unwrap_or("~")
                                ),
                            )
                            .with_note(format!("it was first set on line {}", first.span.line))
                            .with_help(
                                "keep one of them: YAML loaders disagree on which one wins",
                            ));
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    if key.as_scalar() == Some("<<")
                        && matches!(
                            key.value,
                            Value::Scalar {
                                style: Style::Plain,
                                ..
                            }
                        )
                    {
                        merges.push(node);
                    } else {
                        entries.push((key, node));
                    }
                }
            },
        }
        Ok(())
    }
}

/// Applies a `<<` merge: keys of the merged mapping(s) that the mapping does not set itself.
fn merge_into(
    entries: &mut Vec<(Node, Node)>,
    merged: Node,
    source: &Source,
) -> Result<(), Diagnostic> {
    let maps = match merged.value {
        Value::Map(map) => vec![map],
        Value::Seq(items) => items
            .into_iter()
            .map(|item| match item.value {
                Value::Map(map) => Ok(map),
                _ => Err(source.error(item.span, "a `<<` merge list may only hold mappings")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(source
                .error(
                    merged.span,
                    format!(
                        "`<<` merges a mapping into this one, but got {}",
                        merged.kind()
                    ),
                )
                .with_help("write `<<: *anchor` where the anchor names a mapping"));
        }
    };
    for map in maps {
        for (key, value) in map {
            if !entries
                .iter()
                .any(|(existing, _)| existing.as_scalar() == key.as_scalar())
            {
                entries.push((key, value));
            }
        }
    }
    Ok(())
}

fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&saphyr_parser::Tag>) -> Value {
    let style = match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
        _ => Style::Block,
    };
    let explicit_null = tag.is_some_and(|tag| tag.suffix == "null");
    if explicit_null
        || (style == Style::Plain && matches!(text, "" | "~" | "null" | "Null" | "NULL"))
    {
        return Value::Null;
    }
    Value::Scalar {
        text: text.to_owned(),
        style,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Document, Diagnostic> {
        parse(Path::new("image.yml"), text.to_owned(), &Limits::default())
    }

    #[test]
    fn numbers_keep_their_text() {
        let doc = load("name: 2025.10\nnodejs: 24\nv: 1.10\nz: 007\n").unwrap();
        assert_eq!(doc.root.get("name").unwrap().as_scalar(), Some("2025.10"));
        assert_eq!(doc.root.get("nodejs").unwrap().as_scalar(), Some("24"));
        assert_eq!(doc.root.get("v").unwrap().as_scalar(), Some("1.10"));
        assert_eq!(doc.root.get("z").unwrap().as_scalar(), Some("007"));
    }

    #[test]
    fn spans_are_one_based() {
        let doc = load("a: 1\nbb:\n  - x\n").unwrap();
        let bb = doc.root.as_map().unwrap()[1].0.span;
        assert_eq!((bb.line, bb.column, bb.len), (2, 1, 2));
        let x = &doc.root.get("bb").unwrap();
        let Value::Seq(items) = &x.value else {
            panic!()
        };
        assert_eq!((items[0].span.line, items[0].span.column), (3, 5));
    }

    #[test]
    fn duplicate_keys_are_rejected_with_both_lines() {
        let error = load("name: a\ntags: []\nname: b\n").unwrap_err();
        insta::assert_snapshot!(error.to_string(), @r"
        error: the key `name` appears twice in this mapping
         --> image.yml:3:1
          |
        3 | name: b
          | ^^^^
          = note: it was first set on line 1
          = help: keep one of them: YAML loaders disagree on which one wins
        ");
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut previous = "a";
        for name in names {
            let refs = vec![format!("*{previous}"); 9].join(",");
            text.push_str(name);
            text.push_str(&[": &", name, " [", &refs, "]\n"].concat());
            previous = name;
        }
        let started = std::time::Instant::now();
        let error = load(&text).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(error.message.contains("expands to more than"), "{error}");
    }

    #[test]
    fn deep_nesting_is_capped() {
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let error = load(&text).unwrap_err();
        assert!(error.message.contains("nest deeper than 64"), "{error}");
    }

    #[test]
    fn oversized_documents_are_refused() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let error = parse(Path::new("x.yml"), "a: 1\nb: 123456789\n".into(), &limits).unwrap_err();
        assert!(error.message.contains("more than the 10 bytes"), "{error}");
        assert!(error.to_string().contains("--> x.yml:2:6"), "{error}");
    }

    #[test]
    fn aliases_and_merge_keys_expand() {
        let doc = load("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n").unwrap();
        let other = doc.root.get("other").unwrap();
        assert_eq!(other.get("x").unwrap().as_scalar(), Some("1"));
        assert_eq!(other.get("y").unwrap().as_scalar(), Some("3"));
    }

    #[test]
    fn nulls_and_quoted_null() {
        let doc = load("a:\nb: ~\nc: 'null'\n").unwrap();
        assert!(doc.root.get("a").unwrap().is_null());
        assert!(doc.root.get("b").unwrap().is_null());
        assert_eq!(doc.root.get("c").unwrap().as_scalar(), Some("null"));
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        let error = load("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(
            error.message.starts_with("this is not valid YAML"),
            "{error}"
        );
        assert!(error.location.is_some());
    }

    #[test]
    fn second_document_is_an_error() {
        let error = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(
            error.message.contains("more than one YAML document"),
            "{error}"
        );
    }

    #[test]
    fn literal_ranges_cover_the_scalar_text_only() {
        let text = "v: &v 9.9.9\ntags:\n  - 1.2.3   # the release\n  - \"2.0.0\"   # quoted\n  - *v\n  - name: 'é1.0'\n";
        let doc = load(text).unwrap();
        let Value::Seq(tags) = &doc.root.get("tags").unwrap().value else {
            panic!()
        };
        let source = &doc.source;
        let plain = source.literal_range(tags[0].span, "1.2.3").unwrap();
        assert_eq!(&text[plain], "1.2.3");
        let quoted = source.literal_range(tags[1].span, "2.0.0").unwrap();
        assert_eq!(&text[(quoted.start - 1)..=quoted.end], "\"2.0.0\"");
        // An alias is not where its value is written.
        assert_eq!(source.literal_range(tags[2].span, "9.9.9"), None);
        let anchored = doc.root.get("v").unwrap();
        let range = source.literal_range(anchored.span, "9.9.9").unwrap();
        assert_eq!(&text[range], "9.9.9");
        let name = tags[3].get("name").unwrap();
        let multibyte = source.literal_range(name.span, "é1.0").unwrap();
        assert_eq!(&text[multibyte], "é1.0");
    }

    #[test]
    fn empty_file_is_null() {
        assert!(load("").unwrap().root.is_null());
        assert!(load("# only a comment\n").unwrap().root.is_null());
    }
}
