//! The one place that writes to the terminal.
//!
//! stdout is data (what `--format json` promises scripts); stderr is for people: status lines,
//! warnings and errors. `--quiet` silences everything on stderr but errors; colour follows
//! `--color`, `NO_COLOR`, `FORCE_COLOR` and whether stderr is a terminal.

use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

use im_diag::{Diagnostic, Severity};

use crate::cli::{ColorChoice, GlobalArgs};
use crate::env_vars;

const BOLD_RED: &str = "\x1b[1;31m";
const BOLD_YELLOW: &str = "\x1b[1;33m";
const BOLD_GREEN: &str = "\x1b[1;32m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

#[derive(Debug, Clone)]
pub struct Printer {
    quiet: bool,
    color: bool,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        let color = match global.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                if env_vars::is_set(env_vars::NO_COLOR) {
                    false
                } else if std::env::var(env_vars::FORCE_COLOR).is_ok_and(|v| v != "0") {
                    true
                } else {
                    io::stderr().is_terminal()
                }
            }
        };
        Self {
            quiet: global.quiet,
            color,
        }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// Data for scripts and pipes, on stdout. A closed pipe is not an error (`| head`).
    #[allow(clippy::unused_self)] // data goes through the printer like everything else
    pub fn data(&self, text: impl Display) -> io::Result<()> {
        let mut out = io::stdout().lock();
        match writeln!(out, "{text}").and_then(|()| out.flush()) {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// Data as pretty JSON on stdout, streamed (a 60,000-node plan is hundreds of MB).
    #[allow(clippy::unused_self)] // data goes through the printer like everything else
    pub fn json(&self, value: &impl serde::Serialize) -> io::Result<()> {
        let mut out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        match written {
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }

    /// A status line for people: `  Generated 12 tags ...` with the verb in bold green.
    pub fn status(&self, verb: &str, message: impl Display) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "{}", self.status_line(verb, message));
        }
    }

    /// The text of a status line, for live displays that print it themselves.
    pub fn status_line(&self, verb: &str, message: impl Display) -> String {
        let style = if matches!(verb, "Failed" | "Cancelled") {
            BOLD_RED
        } else {
            BOLD_GREEN
        };
        format!("{} {message}", self.paint(style, &format!("{verb:>12}")))
    }

    /// Whether live progress may be drawn (not `--quiet`).
    pub fn is_interactive(&self) -> bool {
        !self.quiet
    }

    /// A plain line for people.
    pub fn info(&self, message: impl Display) {
        if !self.quiet {
            let _ = writeln!(io::stderr(), "{message}");
        }
    }

    pub fn diagnostic(&self, diagnostic: &Diagnostic) {
        if self.quiet && diagnostic.severity == Severity::Warning {
            return;
        }
        let text = diagnostic.to_string();
        let text = if self.color {
            let (label, style) = match diagnostic.severity {
                Severity::Error => ("error", BOLD_RED),
                Severity::Warning => ("warning", BOLD_YELLOW),
            };
            let rest = text.strip_prefix(label).unwrap_or(&text);
            match rest.split_once('\n') {
                Some((first, tail)) => format!(
                    "{}{}\n{tail}",
                    self.paint(style, label),
                    self.paint(BOLD, first)
                ),
                None => format!("{}{}", self.paint(style, label), self.paint(BOLD, rest)),
            }
        } else {
            text
        };
        let _ = writeln!(io::stderr(), "{text}\n");
    }

    pub fn diagnostics<'a>(&self, diagnostics: impl IntoIterator<Item = &'a Diagnostic>) {
        for diagnostic in diagnostics {
            self.diagnostic(diagnostic);
        }
    }

    /// An error that is not a diagnostic (I/O and the like).
    pub fn error(&self, message: impl Display) {
        let label = self.paint(BOLD_RED, "error");
        let _ = writeln!(io::stderr(), "{label}: {message}");
    }
}

/// What the executors below the binary report goes through the printer.
impl im_exec::Reporter for Printer {
    fn status(&self, verb: &str, message: &str) {
        Printer::status(self, verb, message);
    }

    fn warning(&self, diagnostic: &Diagnostic) {
        self.diagnostic(diagnostic);
    }

    fn error(&self, message: &str) {
        Printer::error(self, message);
    }
}
