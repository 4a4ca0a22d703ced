//! A parsed Dockerfile: its instructions, stages and external image references, and the one
//! edit image-manager makes (injecting the rootfs `COPY` after the final `FROM`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use im_diag::{Diagnostics, Location};

use crate::Position;
use crate::instruction::Instruction;
use crate::parser;
use crate::position::LineIndex;
use crate::stage::{ExternalRef, Stage};

/// A Dockerfile read for dependency analysis. It owns its text, so edits keep every other byte.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    path: PathBuf,
    text: String,
    syntax: Option<String>,
    escape: char,
    instructions: Vec<Instruction>,
    stages: Vec<Stage>,
    external_refs: Vec<ExternalRef>,
    line_index: LineIndex,
}

impl Dockerfile {
    /// Parses `text`; `path` is only used to show where problems are. `build_args` override the
    /// defaults of the `ARG`s that declare them (undeclared ones are ignored, as in Docker;
    /// the automatic platform arguments such as `TARGETARCH` count as declared for `FROM`).
    ///
    /// Every problem found is returned, in file order, not just the first.
    pub fn parse(
        path: impl Into<PathBuf>,
        text: impl Into<String>,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Self, Diagnostics> {
        let path = path.into();
        let text = text.into();
        let parsed = parser::parse(&path, &text, build_args)?;
        Ok(Self {
            path,
            text,
            syntax: parsed.syntax,
            escape: parsed.escape,
            instructions: parsed.instructions,
            stages: parsed.stages,
            external_refs: parsed.external_refs,
            line_index: parsed.line_index,
        })
    }

    /// The path given to [`Dockerfile::parse`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `# syntax=` parser directive, if any.
    pub fn syntax(&self) -> Option<&str> {
        self.syntax.as_deref()
    }

    /// The escape character: `\` unless `# escape=` chose `` ` ``.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Every instruction in file order (heredoc bodies are part of their instruction).
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// The text of one instruction, continuation lines and heredoc bodies included.
    pub fn source(&self, instruction: &Instruction) -> &str {
        &self.text[instruction.span.clone()]
    }

    /// The stages in order; there is at least one.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The last stage: the one that becomes the image.
    pub fn final_stage(&self) -> &Stage {
        self.stages
            .last()
            .expect("parse rejects a Dockerfile without FROM")
    }

    /// Every reference to an image outside this Dockerfile, in file order.
    pub fn external_refs(&self) -> &[ExternalRef] {
        &self.external_refs
    }

    /// Whether the final stage already copies the `rootfs/` overlay from the build context.
    pub fn copies_rootfs(&self) -> bool {
        self.final_stage().copies_rootfs
    }

    /// The text with `line` inserted right after the final stage's `FROM` instruction (after
    /// its continuation lines). Every other byte is kept; the new line ends with the same line
    /// ending as the `FROM` line (when the `FROM` is the file's unterminated last line, the
    /// file's first line ending, or `\n`). A trailing line ending on `line` is ignored.
    ///
    /// A `FROM` whose last line ends with the escape character at the end of the file has no
    /// place for a new instruction; the result then continues that `FROM`.
    pub fn inject_after_final_from(&self, line: &str) -> String {
        let from = &self.instructions[self.final_stage().instruction];
        let at = from.span.end;
        let before = &self.text[..at];
        let line = line.trim_end_matches(['\r', '\n']);
        let eol = if before.ends_with("\r\n") {
            "\r\n"
        } else if before.ends_with('\n') {
            "\n"
        } else {
            self.text.find('\n').map_or("\n", |i| {
                if self.text[..i].ends_with('\r') {
                    "\r\n"
                } else {
                    "\n"
                }
            })
        };
        let mut out = String::with_capacity(self.text.len() + line.len() + eol.len());
        out.push_str(before);
        if before.ends_with('\n') || before.is_empty() {
            out.push_str(line);
            out.push_str(eol);
        } else {
            out.push_str(eol);
            out.push_str(line);
        }
        out.push_str(&self.text[at..]);
        out
    }

    /// A diagnostic location for `len` characters at `position` (with the source line).
    pub fn location(&self, position: Position, len: usize) -> Location {
        Location::in_source(&self.path, &self.text, position.line, position.column, len)
    }

    /// The position of a byte offset in [`Dockerfile::text`].
    pub fn position_of(&self, offset: usize) -> Position {
        self.line_index.position(&self.text, offset)
    }
}

#[cfg(test)]
mod tests;
