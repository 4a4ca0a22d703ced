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

use crate::expand::{ExpandError, Expansion, expand};
use crate::instruction::{Form, Instruction, Keyword};
use crate::lexer::{LexError, Lexer, LogicalLine};
use crate::position::LineIndex;
use crate::stage::{ExternalRef, RefKind, Stage, StageBase};
use crate::words::{Flag, extract_flags, fields, mount_from, quoted_words, split_keyword};
use crate::{ImageRef, Position};

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

    /// How `name` is bound in a scope; `None` when it is not visible at all.
    fn lookup(&self, scope: ScopeKind, name: &str) -> Option<Binding<'_>> {
        match scope {
            ScopeKind::Global => {
                if let Some(var) = self.global.iter().rev().find(|v| v.name == name) {
                    return Some(Binding::of(var.value.as_deref()));
                }
                if AUTOMATIC_ARGS.contains(&name) {
                    return self.build_args.get(name).map(|v| Binding::Value(v));
                }
                None
            }
            ScopeKind::Stage => {
                let env = self
                    .envs
                    .last()
                    .and_then(|env| env.iter().rev().find(|(n, _)| n == name));
                if let Some((_, value)) = env {
                    return Some(Binding::Value(value));
                }
                self.stage_args
                    .iter()
                    .rev()
                    .find(|v| v.name == name)
                    .map(|v| Binding::of(v.value.as_deref()))
            }
        }
    }

    fn expand_in<'w>(&self, word: &'w str, scope: ScopeKind) -> Result<Expansion<'w>, ExpandError> {
        expand(word, self.escape, &|name| match self.lookup(scope, name) {
            Some(Binding::Value(value)) => Some(value),
            Some(Binding::NoValue) | None => None,
        })
    }

    /// Expands a word that names an image; unset variables and syntax errors are reported.
    fn expand_strict(
        &mut self,
        word: &str,
        anchor: Anchor<'_>,
        scope: ScopeKind,
        context: &str,
    ) -> Option<String> {
        match self.expand_in(word, scope) {
            Ok(expansion) if expansion.unset.is_empty() => Some(expansion.value.into_owned()),
            Ok(expansion) => {
                for unset in expansion.unset {
                    let name = &word[unset.name.clone()];
                    let use_offset = anchor.at(unset.span.start);
                    let use_len = word[unset.span].chars().count();
                    self.undefined(name, use_offset, use_len, scope, context);
                }
                None
            }
            Err(error) => {
                self.expand_error(word, anchor, &error);
                None
            }
        }
    }

    /// Expands a word whose value only refines the analysis (`ARG`/`ENV` values, `COPY`
    /// sources): unset variables become empty, as in Docker.
    fn expand_lenient(
        &mut self,
        word: &str,
        anchor: Anchor<'_>,
        scope: ScopeKind,
    ) -> Option<String> {
        match self.expand_in(word, scope) {
            Ok(expansion) => Some(expansion.value.into_owned()),
            Err(error) => {
                self.expand_error(word, anchor, &error);
                None
            }
        }
    }

    fn expand_error(&mut self, word: &str, anchor: Anchor<'_>, error: &ExpandError) {
        let len = word.chars().count();
        match error {
            ExpandError::UnterminatedQuote { quote, offset: at } => {
                self.error(
                    anchor.at(*at),
                    1,
                    format!("unterminated {quote} quote in `{word}`"),
                );
            }
            ExpandError::MissingBrace { offset: at } => {
                self.error(
                    anchor.at(*at),
                    len - word[..*at].chars().count(),
                    format!("missing `}}` in `{word}`"),
                );
            }
            ExpandError::BadSubstitution { offset: at } => {
                self.error(anchor.at(*at), 2, format!("bad substitution in `{word}`"))
                    .help = Some("write `${NAME}` or `${NAME:-default}`".to_owned());
            }
            ExpandError::UnsupportedModifier {
                modifier,
                offset: at,
            } => {
                self.error(
                    anchor.at(*at),
                    modifier.chars().count(),
                    format!("unsupported substitution `{modifier}` in `{word}`"),
                )
                .help = Some(
                    "supported forms: `${NAME:-default}`, `${NAME-default}`, `${NAME:+alt}`, \
                     `${NAME+alt}`, `${NAME:?message}`, `${NAME#pattern}`, `${NAME%pattern}`"
                        .to_owned(),
                );
            }
            ExpandError::Required {
                name,
                message,
                offset: at,
            } => {
                self.error(
                    anchor.at(*at),
                    len - word[..*at].chars().count(),
                    format!("build argument `{name}`: {message}"),
                )
                .help = Some(format!(
                    "pass a value for `{name}` as a build arg or give its `ARG` a default"
                ));
            }
        }
    }

    fn undefined(
        &mut self,
        name: &str,
        offset: usize,
        len: usize,
        scope: ScopeKind,
        context: &str,
    ) {
        let declared_here = self.lookup(scope, name).is_some();
        let global = self
            .declarations
            .iter()
            .rfind(|d| d.name == name && d.stage.is_none())
            .cloned();
        let current_stage = self.stages.len().checked_sub(1);
        let in_stage = self
            .declarations
            .iter()
            .rfind(|d| {
                d.name == name
                    && d.stage.is_some()
                    && (scope == ScopeKind::Global || d.stage != current_stage)
            })
            .cloned();
        let automatic = AUTOMATIC_ARGS.contains(&name);
        let (message, help) = if declared_here {
            (
                format!("build argument `{name}` used in `{context}` has no value"),
                format!(
                    "give it a default (`ARG {name}=<value>`), pass `{name}` as a build arg, or write `${{{name}:-<default>}}`"
                ),
            )
        } else if automatic {
            (
                format!(
                    "`{name}` used in `{context}` is set by the builder for each platform and has no value here"
                ),
                format!("pass `{name}` as a build arg, or write `${{{name}:-<default>}}`"),
            )
        } else if scope == ScopeKind::Global {
            (
                format!(
                    "build argument `{name}` used in `{context}` is not declared before the first `FROM`"
                ),
                format!("declare it above the first `FROM` with a default: `ARG {name}=<value>`"),
            )
        } else {
            (
                format!(
                    "build argument `{name}` used in `{context}` is not declared in this stage"
                ),
                format!(
                    "declare it in this stage: `ARG {name}` (to use the global value) or `ARG {name}=<value>`"
                ),
            )
        };
        let note = if declared_here {
            self.declarations.iter().rfind(|d| d.name == name && !d.has_value).map(|declaration| {
                format!(
                    "`ARG {name}` is declared at line {} without a default and no build arg sets it",
                    declaration.line
                )
            })
        } else if scope == ScopeKind::Global {
            in_stage.map(|declaration| {
                format!(
                    "`ARG {name}` at line {} is inside a stage; `FROM` only sees ARGs declared before the first `FROM`",
                    declaration.line
                )
            })
        } else {
            global.map(|declaration| {
                format!(
                    "`ARG {name}` at line {} is global; a stage sees a global ARG only after redeclaring it",
                    declaration.line
                )
            })
        };
        let diagnostic = self.error(offset, len, message);
        diagnostic.help = Some(help);
        diagnostic.notes.extend(note);
    }

    fn arg(&mut self, parts: &Parts<'_>) {
        let Parts {
            line,
            rest,
            rest_start,
            ..
        } = *parts;
        let stage = self.stages.len().checked_sub(1);
        let words = quoted_words(rest, self.escape);
        if words.is_empty() {
            let offset = line.source_offset(0);
            self.error(offset, 3, "`ARG` needs a name").help =
                Some("write `ARG <name>` or `ARG <name>=<default>`".to_owned());
            return;
        }
        let scope = if stage.is_some() {
            ScopeKind::Stage
        } else {
            ScopeKind::Global
        };
        for word in words {
            let raw = &rest[word.clone()];
            let offset = line.source_offset(rest_start + word.start);
            let (name, default) = match raw.split_once('=') {
                Some((name, default)) => (name, Some(default)),
                None => (raw, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                self.error(
                    offset,
                    raw.chars().count(),
                    format!("invalid build argument name `{name}`"),
                )
                .help = Some("an ARG name is letters, digits and `_`".to_owned());
                continue;
            }
            let value = if let Some(value) = self.build_args.get(name) {
                Some(value.clone())
            } else if let Some(default) = default {
                let logical = rest_start + word.start + name.len() + 1;
                self.expand_lenient(default, Anchor { line, logical }, scope)
            } else if stage.is_some() {
                self.global
                    .iter()
                    .rev()
                    .find(|v| v.name == name)
                    .and_then(|v| v.value.clone())
            } else {
                None
            };
            self.declarations.push(ArgDeclaration {
                name: name.to_owned(),
                line: self.position(offset).line,
                stage,
                has_value: value.is_some(),
            });
            let var = Var {
                name: name.to_owned(),
                value,
            };
            if stage.is_some() {
                self.stage_args.push(var);
            } else {
                self.global.push(var);
            }
        }
    }

    fn env(&mut self, parts: &Parts<'_>) {
        let Parts {
            line,
            rest,
            rest_start,
            keyword_offset,
            keyword_len,
            ..
        } = *parts;
        let words = quoted_words(rest, self.escape);
        let Some(first) = words.first() else {
            self.error(
                keyword_offset,
                keyword_len,
                "`ENV` needs a name and a value",
            )
            .help = Some("write `ENV <name>=<value>`".to_owned());
            return;
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        if rest[first.clone()].contains('=') {
            for word in words {
                let raw = &rest[word.clone()];
                let offset = line.source_offset(rest_start + word.start);
                let Some((name, value)) = raw.split_once('=') else {
                    self.error(
                        offset,
                        raw.chars().count(),
                        format!("`{raw}` in `ENV` is not `<name>=<value>`"),
                    );
                    continue;
                };
                let anchor = Anchor {
                    line,
                    logical: rest_start + word.start + name.len() + 1,
                };
                if let Some(value) = self.expand_lenient(value, anchor, ScopeKind::Stage) {
                    pairs.push((name.to_owned(), value));
                }
            }
        } else {
            // The legacy form: `ENV NAME value with spaces`.
            let mut parts = fields(rest);
            let name = parts.next().map(|r| &rest[r]).unwrap_or_default();
            let value_start = parts.next().map(|r| r.start);
            match value_start {
                Some(start) => {
                    let anchor = Anchor {
                        line,
                        logical: rest_start + start,
                    };
                    if let Some(value) =
                        self.expand_lenient(&rest[start..], anchor, ScopeKind::Stage)
                    {
                        pairs.push((name.to_owned(), value));
                    }
                }
                None => {
                    self.error(
                        keyword_offset,
                        keyword_len,
                        "`ENV` needs a name and a value",
                    )
                    .help = Some(format!("write `ENV {name}=<value>`"));
                }
            }
        }
        if let Some(env) = self.envs.last_mut() {
            env.extend(pairs);
        }
    }

    fn copy(&mut self, parts: &Parts<'_>) {
        let Parts {
            keyword,
            line,
            args_start,
            rest,
            rest_start,
            form,
            keyword_offset,
            keyword_len,
            ..
        } = *parts;
        let flags = &parts.flags;
        let stage = self.stages.len() - 1;
        let from = flags.iter().rev().find(|f| f.name() == "from");
        if let (Keyword::Copy, Some(flag)) = (keyword, from) {
            let anchor = Anchor {
                line,
                logical: args_start + flag.value_offset(),
            };
            match flag.value() {
                Some(value) if !value.is_empty() => {
                    self.pending_from(RefKind::CopyFrom, value, anchor, stage);
                }
                _ => {
                    let flag_offset = line.source_offset(args_start + flag.offset);
                    self.error(
                        flag_offset,
                        flag.word.chars().count(),
                        "`--from` needs a stage name, stage index or image",
                    )
                    .help = Some(
                        "write `COPY --from=<stage|index|image> <source> <destination>`".to_owned(),
                    );
                }
            }
        }
        let mut sources: Vec<String> = Vec::new();
        match form {
            Some(Form::Exec) => {
                match json_array(rest) {
                    Some(Ok(items)) => sources = items,
                    // Already reported by `form`.
                    _ => return,
                }
            }
            Some(Form::Shell) => {
                for field in fields(rest) {
                    let raw = &rest[field.clone()];
                    if raw.contains('$') {
                        let anchor = Anchor {
                            line,
                            logical: rest_start + field.start,
                        };
                        if let Some(value) = self.expand_lenient(raw, anchor, ScopeKind::Stage) {
                            sources.push(value);
                        }
                    } else {
                        sources.push(raw.to_owned());
                    }
                }
            }
            None => {}
        }
        if sources.len() < 2 {
            self.error(
                keyword_offset,
                keyword_len,
                format!("`{keyword}` needs at least a source and a destination"),
            )
            .help = Some(format!("write `{keyword} <source>... <destination>`"));
            return;
        }
        sources.pop();
        if from.is_none() && sources.iter().any(|s| is_rootfs(s)) {
            self.stages[stage].copies_rootfs = true;
        }
    }

    fn run(&mut self, parts: &Parts<'_>) {
        let Parts {
            line, args_start, ..
        } = *parts;
        let flags = &parts.flags;
        let stage = self.stages.len() - 1;
        for flag in flags.iter().filter(|f| f.name() == "mount") {
            let Some(value) = flag.value() else { continue };
            let Some((from, from_offset)) = mount_from(value) else {
                continue;
            };
            if from.is_empty() {
                continue;
            }
            let logical = args_start + flag.value_offset() + from_offset;
            self.pending_from(RefKind::MountFrom, &from, Anchor { line, logical }, stage);
        }
    }

    fn pending_from(&mut self, kind: RefKind, written: &str, anchor: Anchor<'_>, stage: usize) {
        let context = match kind {
            RefKind::CopyFrom => "COPY --from",
            _ => "RUN --mount from=",
        };
        let Some(resolved) = self.expand_strict(written, anchor, ScopeKind::Stage, context) else {
            return;
        };
        self.refs.push(PendingRef {
            kind,
            written: written.to_owned(),
            resolved,
            stage,
            offset: anchor.at(0),
            image: None,
        });
    }

    /// Turns the references into external ones once all stage names are known; `--from`
    /// values that name a stage (by name or index) are not images.
    fn resolve_refs(&mut self) -> Vec<ExternalRef> {
        let refs = std::mem::take(&mut self.refs);
        let mut external = Vec::with_capacity(refs.len());
        for pending in refs {
            let position = self.position(pending.offset);
            let len = pending.written.chars().count();
            let image = match pending.image {
                Some(image) => image,
                None => {
                    let value = pending.resolved.as_str();
                    let target = self
                        .stages
                        .iter()
                        .position(|s| {
                            s.name
                                .as_deref()
                                .is_some_and(|n| n.eq_ignore_ascii_case(value))
                        })
                        .map(Ok)
                        .or_else(|| {
                            (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                                .then(|| value.parse::<usize>().map_err(|_| ()))
                        });
                    match target {
                        Some(Ok(index)) if index < self.stages.len() => {
                            if index == pending.stage {
                                self.error(
                                    pending.offset,
                                    len,
                                    format!("`{}` refers to its own stage", pending.kind),
                                )
                                .help = Some(
                                    "a stage can only copy from other stages or images".to_owned(),
                                );
                            }
                            continue;
                        }
                        Some(_) => {
                            let note = match self.stages.len() {
                                1 => "the Dockerfile has 1 stage, numbered 0".to_owned(),
                                count => format!(
                                    "the Dockerfile has {count} stages, numbered 0 to {}",
                                    count - 1
                                ),
                            };
                            self.error(
                                pending.offset,
                                len,
                                format!("stage index `{value}` does not exist"),
                            )
                            .notes
                            .push(note);
                            continue;
                        }
                        None if value == "scratch" => continue,
                        None => match ImageRef::parse(value) {
                            Ok(image) => image,
                            Err(error) => {
                                self.invalid_reference(
                                    pending.offset,
                                    &pending.written,
                                    pending.kind,
                                    &error,
                                );
                                continue;
                            }
                        },
                    }
                }
            };
            external.push(ExternalRef {
                kind: pending.kind,
                image,
                written: pending.written,
                stage: pending.stage,
                position,
            });
        }
        external
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
