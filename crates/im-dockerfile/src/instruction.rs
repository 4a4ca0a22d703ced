//! One Dockerfile instruction as read from the text: its keyword, where it is, which stage it
//! belongs to, its argument form and its heredocs.

use std::fmt;
use std::ops::Range;

use crate::Position;

/// The instructions Docker knows. Names are case-insensitive in a Dockerfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
}

impl Keyword {
    pub const ALL: [Keyword; 18] = [
        Keyword::Add,
        Keyword::Arg,
        Keyword::Cmd,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Env,
        Keyword::Expose,
        Keyword::From,
        Keyword::Healthcheck,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Onbuild,
        Keyword::Run,
        Keyword::Shell,
        Keyword::Stopsignal,
        Keyword::User,
        Keyword::Volume,
        Keyword::Workdir,
    ];

    /// The keyword in upper case, as conventionally written.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Add => "ADD",
            Keyword::Arg => "ARG",
            Keyword::Cmd => "CMD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Env => "ENV",
            Keyword::Expose => "EXPOSE",
            Keyword::From => "FROM",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Run => "RUN",
            Keyword::Shell => "SHELL",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::User => "USER",
            Keyword::Volume => "VOLUME",
            Keyword::Workdir => "WORKDIR",
        }
    }

    /// Recognises a keyword in any letter case.
    pub fn parse(word: &str) -> Option<Keyword> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether Docker reads heredocs (`<<EOF`) for this instruction.
    pub fn takes_heredocs(self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an instruction's arguments are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// A JSON array of strings: `RUN ["apt-get", "update"]` (the exec form).
    Exec,
    /// Plain text: `RUN apt-get update` (the shell form).
    Shell,
}

/// A here-document attached to a `RUN`, `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word without quotes (`EOF`).
    pub name: String,
    /// `<<-EOF`: leading tabs are stripped (also from the terminator line).
    pub chomp: bool,
    /// Whether variables in the body are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// The body's bytes in the Dockerfile text, terminator line excluded.
    pub body: Range<usize>,
}

/// One instruction, with its place in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub keyword: Keyword,
    /// Where the keyword starts.
    pub position: Position,
    /// The last line the instruction uses (continuation lines and heredoc bodies included).
    pub end_line: usize,
    /// The instruction's bytes in the Dockerfile text: from the start of its first line to the
    /// end of its last line, line ending included.
    pub span: Range<usize>,
    /// The stage it belongs to; `None` for `ARG`s before the first `FROM`.
    pub stage: Option<usize>,
    /// Exec or shell form, for the instructions that accept both (`RUN`, `CMD`, `ENTRYPOINT`,
    /// `COPY`, `ADD`, `VOLUME`); `None` for the others and for empty arguments.
    pub form: Option<Form>,
    pub heredocs: Vec<Heredoc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive_and_round_trip() {
        assert_eq!(Keyword::parse("from"), Some(Keyword::From));
        assert_eq!(Keyword::parse("HealthCheck"), Some(Keyword::Healthcheck));
        assert_eq!(Keyword::parse("FROMM"), None);
        for keyword in Keyword::ALL {
            assert_eq!(Keyword::parse(keyword.as_str()), Some(keyword));
        }
        assert!(Keyword::Copy.takes_heredocs() && !Keyword::From.takes_heredocs());
    }
}
