//! Variables while parsing: which `ARG`s and `ENV`s a word sees (BuildKit's scopes), `ARG`
//! and `ENV` instructions, expansion, and the "undefined variable" diagnostics with their
//! hints.

use crate::expand::{ExpandError, Expansion, expand};
use crate::words::{fields, quoted_words};

use super::{AUTOMATIC_ARGS, Anchor, ArgDeclaration, Binding, Parser, Parts, ScopeKind, Var};

impl Parser<'_> {
    /// How `name` is bound in a scope; `None` when it is not visible at all.
    pub(super) fn lookup(&self, scope: ScopeKind, name: &str) -> Option<Binding<'_>> {
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

    pub(super) fn expand_in<'w>(
        &self,
        word: &'w str,
        scope: ScopeKind,
    ) -> Result<Expansion<'w>, ExpandError> {
        expand(word, self.escape, &|name| match self.lookup(scope, name) {
            Some(Binding::Value(value)) => Some(value),
            Some(Binding::NoValue) | None => None,
        })
    }

    /// Expands a word that names an image; unset variables and syntax errors are reported.
    pub(super) fn expand_strict(
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
    pub(super) fn expand_lenient(
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

    pub(super) fn expand_error(&mut self, word: &str, anchor: Anchor<'_>, error: &ExpandError) {
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

    pub(super) fn undefined(
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

    pub(super) fn arg(&mut self, parts: &Parts<'_>) {
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

    pub(super) fn env(&mut self, parts: &Parts<'_>) {
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
}
