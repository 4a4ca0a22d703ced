//! From the instruction stream to stages and image references: what each instruction means
//! for dependency analysis, with every problem collected as a diagnostic.
//!
//! Variable scopes follow BuildKit: a `FROM` sees the `ARG`s declared before the first `FROM`
//! (with their defaults, overridden by caller-supplied build args) and the automatic platform
//! arguments when the caller supplies them; inside a stage, `COPY --from` and
//! `RUN --mount=from=` see the stage's own `ENV` (inherited from a parent stage) and then the
//! `ARG`s the stage declares (a redeclared global `ARG NAME` takes the global value). Build args
//! that no `ARG` declares are invisible, as in Docker.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use im_diag::{Diagnostic, Diagnostics, Location, did_you_mean};

use crate::instruction::{Form, Instruction, Keyword};
use crate::lexer::{LexError, Lexer, LogicalLine};
use crate::position::LineIndex;
use crate::stage::{ExternalRef, RefKind, Stage, StageBase};
use crate::words::{Flag, extract_flags, fields, split_keyword};
use crate::{ImageRef, Position};

mod refs;
mod scope;

/// The arguments BuildKit sets by itself, per build and target platform.
const AUTOMATIC_ARGS: [&str; 8] = [
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
];

/// What parsing found, handed to [`crate::Dockerfile`].
pub(crate) struct Parsed {
    pub syntax: Option<String>,
    pub escape: char,
    pub instructions: Vec<Instruction>,
    pub stages: Vec<Stage>,
    pub external_refs: Vec<ExternalRef>,
    pub line_index: LineIndex,
}

/// A declared variable and its value (`None`: declared without a value).
#[derive(Debug, Clone)]
struct Var {
    name: String,
    value: Option<String>,
}

/// Where an `ARG` is declared, for the hints of "undefined" diagnostics.
#[derive(Debug, Clone)]
struct ArgDeclaration {
    name: String,
    line: usize,
    stage: Option<usize>,
    has_value: bool,
}

/// An image reference in order of appearance; `COPY --from` and mount `from=` values are
/// resolved once every stage name is known.
struct PendingRef {
    kind: RefKind,
    written: String,
    resolved: String,
    stage: usize,
    offset: usize,
    image: Option<ImageRef>,
}

struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
    build_args: &'a BTreeMap<String, String>,
    escape: char,
    index: LineIndex,
    diagnostics: Vec<(usize, Diagnostic)>,
    instructions: Vec<Instruction>,
    stages: Vec<Stage>,
    refs: Vec<PendingRef>,
    global: Vec<Var>,
    stage_args: Vec<Var>,
    /// `ENV` values per stage (a child stage starts with its parent's).
    envs: Vec<Vec<(String, String)>>,
    declarations: Vec<ArgDeclaration>,
}

/// A visible variable: with a value, or declared without one.
#[derive(Debug, Clone, Copy)]
enum Binding<'a> {
    Value(&'a str),
    NoValue,
}

impl<'a> Binding<'a> {
    fn of(value: Option<&'a str>) -> Self {
        value.map_or(Binding::NoValue, Binding::Value)
    }
}

/// One instruction taken apart: the pieces its handler needs. Offsets `*_start` are bytes in
/// the logical line; `keyword_offset` is a byte in the file.
struct Parts<'l> {
    keyword: Keyword,
    line: &'l LogicalLine,
    keyword_offset: usize,
    keyword_len: usize,
    position: Position,
    /// Builder flags; their offsets are relative to `args_start`.
    flags: Vec<Flag<'l>>,
    args_start: usize,
    /// The arguments after the flags, trailing whitespace removed.
    rest: &'l str,
    rest_start: usize,
    form: Option<Form>,
}

/// Where a word starts in a logical line, to map places inside it back to the file even when
/// the word continues on the next physical line.
#[derive(Clone, Copy)]
struct Anchor<'l> {
    line: &'l LogicalLine,
    logical: usize,
}

impl Anchor<'_> {
    /// The file offset of byte `delta` of the word.
    fn at(self, delta: usize) -> usize {
        self.line.source_offset(self.logical + delta)
    }
}

/// Which variables a word sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    Global,
    Stage,
}

pub(crate) fn parse(
    path: &Path,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Parsed, Diagnostics> {
    let mut parser = Parser {
        path,
        text,
        build_args,
        escape: '\\',
        index: LineIndex::new(text),
        diagnostics: Vec::new(),
        instructions: Vec::new(),
        stages: Vec::new(),
        refs: Vec::new(),
        global: Vec::new(),
        stage_args: Vec::new(),
        envs: Vec::new(),
        declarations: Vec::new(),
    };
    let mut lexer = Lexer::new(text);
    let mut line = LogicalLine::default();
    while lexer.next_line(&mut line) {
        parser.escape = lexer.escape();
        parser.instruction(&line);
    }
    for error in lexer.take_errors() {
        parser.lex_error(error);
    }
    let syntax = lexer.syntax().map(str::to_owned);
    let external_refs = parser.resolve_refs();
    if parser.stages.is_empty() && parser.diagnostics.is_empty() {
        parser.diagnostics.push((
            0,
            Diagnostic::error("the Dockerfile has no `FROM` instruction")
                .at(Location::file(path))
                .with_help("start a build stage with `FROM <image>[:<tag>] [AS <name>]`"),
        ));
    }
    if !parser.diagnostics.is_empty() {
        parser.diagnostics.sort_by_key(|(offset, _)| *offset);
        let mut diagnostics = Diagnostics::new();
        for (_, diagnostic) in parser.diagnostics {
            diagnostics.push(diagnostic);
        }
        return Err(diagnostics);
    }
    Ok(Parsed {
        syntax,
        escape: parser.escape,
        instructions: parser.instructions,
        stages: parser.stages,
        external_refs,
        line_index: parser.index,
    })
}

impl Parser<'_> {
    fn position(&self, offset: usize) -> Position {
        self.index.position(self.text, offset)
    }

    fn location(&self, offset: usize, len: usize) -> Location {
        let position = self.position(offset);
        Location::in_source(self.path, self.text, position.line, position.column, len)
    }

    fn error(&mut self, offset: usize, len: usize, message: impl Into<String>) -> &mut Diagnostic {
        let diagnostic = Diagnostic::error(message).at(self.location(offset, len));
        self.diagnostics.push((offset, diagnostic));
        &mut self.diagnostics.last_mut().expect("just pushed").1
    }

    fn lex_error(&mut self, error: LexError) {
        match error {
            LexError::InvalidEscape { value, offset, len } => {
                self.error(
                    offset,
                    len,
                    format!("invalid escape character `{value}` in the `escape` directive"),
                )
                .help = Some("the escape character is `\\` (the default) or a backtick".to_owned());
            }
            LexError::DuplicateDirective { name, offset, len } => {
                self.error(
                    offset,
                    len,
                    format!("the `{name}` parser directive is given twice"),
                )
                .help = Some("keep one of them".to_owned());
            }
            LexError::UnterminatedHeredoc { name, offset, len } => {
                self.error(offset, len, format!("heredoc `{name}` is never terminated"))
                    .help = Some(format!(
                    "end the heredoc with a line that is exactly `{name}` (for `<<-{name}`, leading tabs are allowed)"
                ));
            }
        }
    }

    fn instruction(&mut self, line: &LogicalLine) {
        let Some((keyword_range, args_start)) = split_keyword(&line.text) else {
            return;
        };
        let keyword_text = &line.text[keyword_range.clone()];
        let keyword_offset = line.source_offset(keyword_range.start);
        let keyword_len = keyword_text.chars().count();
        let Some(keyword) = Keyword::parse(keyword_text) else {
            let upper = keyword_text.to_ascii_uppercase();
            let suggestion = did_you_mean(&upper, Keyword::ALL.map(Keyword::as_str));
            let diagnostic = self.error(
                keyword_offset,
                keyword_len,
                format!("unknown instruction `{keyword_text}`"),
            );
            match suggestion {
                Some(known) => diagnostic.help = Some(format!("did you mean `{known}`?")),
                None => {
                    let all: Vec<_> = Keyword::ALL.iter().map(|k| k.as_str()).collect();
                    diagnostic
                        .notes
                        .push(format!("Dockerfile instructions are {}", all.join(", ")));
                }
            }
            return;
        };
        if self.stages.is_empty() && !matches!(keyword, Keyword::Arg | Keyword::From) {
            self.error(
                keyword_offset,
                keyword_len,
                format!("`{keyword}` comes before the first `FROM`"),
            )
            .help = Some(
                "only `ARG` (for values the `FROM` lines use) may come before the first `FROM`; \
                 move this instruction below a `FROM`"
                    .to_owned(),
            );
            return;
        }
        let args = &line.text[args_start..];
        let (flags, rest_start) = extract_flags(args);
        let rest_start = args_start + rest_start;
        let rest = line.text[rest_start..].trim_end();
        let position = self.position(keyword_offset);
        let form = match keyword {
            Keyword::Run
            | Keyword::Cmd
            | Keyword::Entrypoint
            | Keyword::Copy
            | Keyword::Add
            | Keyword::Volume => self.form(rest, line, rest_start),
            _ => None,
        };
        let parts = Parts {
            keyword,
            line,
            keyword_offset,
            keyword_len,
            position,
            flags,
            args_start,
            rest,
            rest_start,
            form,
        };
        match keyword {
            Keyword::From => self.from(&parts, self.instructions.len()),
            Keyword::Arg => self.arg(&parts),
            Keyword::Env => self.env(&parts),
            Keyword::Copy | Keyword::Add => self.copy(&parts),
            Keyword::Run => self.run(&parts),
            _ => {}
        }
        self.instructions.push(Instruction {
            keyword,
            position,
            end_line: line.end_line,
            span: line.span.clone(),
            stage: self.stages.len().checked_sub(1),
            form,
            heredocs: line.heredocs.clone(),
        });
    }

    /// Exec form when the arguments are a JSON array of strings (Docker reads the first JSON
    /// value and ignores what follows); a JSON array with other values is an error; anything
    /// else is the shell form.
    fn form(&mut self, rest: &str, line: &LogicalLine, rest_start: usize) -> Option<Form> {
        if rest.is_empty() {
            return None;
        }
        if !rest.starts_with('[') {
            return Some(Form::Shell);
        }
        match json_array(rest) {
            Some(Ok(_)) => Some(Form::Exec),
            Some(Err(())) => {
                let offset = line.source_offset(rest_start);
                self.error(
                    offset,
                    rest.chars().count(),
                    "the exec form must be a JSON array of strings",
                )
                .help = Some("quote every element: `[\"executable\", \"arg\"]`".to_owned());
                Some(Form::Exec)
            }
            None => Some(Form::Shell),
        }
    }

    fn from(&mut self, parts: &Parts<'_>, instruction: usize) {
        let Parts {
            line,
            args_start,
            rest,
            rest_start,
            position,
            ..
        } = *parts;
        let flags = &parts.flags;
        let index = self.stages.len();
        let platform = flags
            .iter()
            .rev()
            .find(|f| f.name() == "platform")
            .and_then(|f| f.value().map(str::to_owned));
        for flag in flags.iter().filter(|f| f.name() != "platform") {
            let offset = line.source_offset(args_start + flag.offset);
            self.error(
                offset,
                flag.word.chars().count(),
                format!("unknown flag `--{}` for `FROM`", flag.name()),
            )
            .help = Some("`FROM` takes only `--platform=<platform>`".to_owned());
        }
        let words: Vec<Range<usize>> = fields(rest)
            .map(|r| r.start + rest_start..r.end + rest_start)
            .collect();
        let mut stage = Stage {
            index,
            name: None,
            written: String::new(),
            resolved: String::new(),
            base: StageBase::Scratch,
            platform,
            position,
            base_position: position,
            instruction,
            copies_rootfs: false,
        };
        match words.as_slice() {
            [] => {
                let offset = line.source_offset(0);
                self.error(offset, 4, "`FROM` needs an image").help = Some(
                    "write `FROM <image>[:<tag>] [AS <name>]`, for example `FROM debian:bookworm`"
                        .to_owned(),
                );
            }
            [_] => {}
            [_, as_word, name] if line.text[as_word.clone()].eq_ignore_ascii_case("as") => {
                stage.name = Some(line.text[name.clone()].to_owned());
                self.check_stage_name(&line.text[name.clone()], line.source_offset(name.start));
            }
            [_, extra @ ..] => {
                let offset = line.source_offset(extra[0].start);
                let len = line.text[extra[0].start..].trim_end().chars().count();
                self.error(
                    offset,
                    len,
                    "`FROM` takes an image and optionally `AS <name>`",
                )
                .help = Some(
                    "write `FROM <image>[:<tag>] [AS <name>]`; stage names cannot contain spaces"
                        .to_owned(),
                );
            }
        }
        if let Some(image) = words.first() {
            self.stage_base(&mut stage, line, image.clone());
        }
        // A new stage: its own ARGs; ENV inherited from a parent stage.
        self.stage_args.clear();
        let env = match stage.base {
            StageBase::Stage(parent) => self.envs[parent].clone(),
            _ => Vec::new(),
        };
        self.envs.push(env);
        self.stages.push(stage);
    }

    fn check_stage_name(&mut self, name: &str, offset: usize) {
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            self.error(offset, name.chars().count(), format!("invalid stage name `{name}`"))
                .help = Some("a stage name starts with a letter and contains only letters, digits, `-`, `_` and `.`".to_owned());
            return;
        }
        let earlier = self.stages.iter().find_map(|s| {
            s.name
                .as_deref()
                .filter(|n| n.eq_ignore_ascii_case(name))
                .map(|n| (n.to_owned(), s.position.line))
        });
        if let Some((earlier, line)) = earlier {
            self.error(
                offset,
                name.chars().count(),
                format!("duplicate stage name `{name}`"),
            )
            .notes
            .push(format!(
                "stage `{earlier}` is defined at line {line} (stage names are case-insensitive)"
            ));
        }
    }

    fn stage_base(&mut self, stage: &mut Stage, line: &LogicalLine, image: Range<usize>) {
        let written = &line.text[image.clone()];
        let offset = line.source_offset(image.start);
        written.clone_into(&mut stage.written);
        stage.base_position = self.position(offset);
        let anchor = Anchor {
            line,
            logical: image.start,
        };
        let Some(resolved) = self.expand_strict(written, anchor, ScopeKind::Global, "FROM") else {
            return;
        };
        stage.resolved.clone_from(&resolved);
        if resolved == "scratch" {
            stage.base = StageBase::Scratch;
            return;
        }
        if let Some(parent) = self.stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&resolved))
        }) {
            stage.base = StageBase::Stage(parent);
            return;
        }
        match ImageRef::parse(&resolved) {
            Ok(reference) => {
                stage.base = StageBase::Image(reference.clone());
                self.refs.push(PendingRef {
                    kind: RefKind::From,
                    written: written.to_owned(),
                    resolved,
                    stage: stage.index,
                    offset,
                    image: Some(reference),
                });
            }
            Err(error) => self.invalid_reference(offset, written, RefKind::From, &error),
        }
    }

    fn invalid_reference(
        &mut self,
        offset: usize,
        written: &str,
        kind: RefKind,
        error: &crate::ImageRefError,
    ) {
        let diagnostic = self.error(
            offset,
            written.chars().count(),
            format!("invalid image reference in `{kind}`: {error}"),
        );
        diagnostic.help = Some("an image reference is `[registry[:port]/]path[:tag][@digest]`, for example `registry.example:5000/team/python:3.13`".to_owned());
    }
}

/// Docker's exec-form test: `Some(Ok(strings))` for a JSON array of strings, `Some(Err(()))` for
/// a JSON array with other values, `None` when the text does not start with a JSON value.
fn json_array(text: &str) -> Option<Result<Vec<String>, ()>> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Vec<serde_json::Value>>();
    let values = stream.next()?.ok()?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(()),
        })
        .collect::<Result<Vec<_>, ()>>()
        .into()
}

/// `rootfs`, `rootfs/`, `./rootfs`, `./rootfs/` and `rootfs/.` all copy the overlay folder.
fn is_rootfs(source: &str) -> bool {
    let mut path = source;
    while let Some(rest) = path.strip_prefix("./") {
        path = rest;
    }
    let path = path.trim_end_matches('/');
    let path = path
        .strip_suffix("/.")
        .unwrap_or(path)
        .trim_end_matches('/');
    path == "rootfs"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_sources() {
        for yes in [
            "rootfs",
            "rootfs/",
            "./rootfs",
            "./rootfs/",
            "rootfs/.",
            "rootfs//",
        ] {
            assert!(is_rootfs(yes), "{yes}");
        }
        for no in [
            "rootfs/etc",
            "rootfs2",
            "/rootfs",
            "other/rootfs",
            "rootfs*",
            ".",
        ] {
            assert!(!is_rootfs(no), "{no}");
        }
    }

    #[test]
    fn json_arrays() {
        assert_eq!(
            json_array(r#"["a", "b"]"#),
            Some(Ok(vec!["a".into(), "b".into()]))
        );
        assert_eq!(json_array(r#"["a", 1]"#), Some(Err(())));
        assert_eq!(json_array("[a]"), None);
        assert_eq!(json_array("{}"), None);
    }
}
