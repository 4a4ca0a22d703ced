//! `RunError`: how a command failed, said the way a user can act on it: the command, its
//! shell-quoted argv, its exit status, the last lines of its stderr and where the full log is.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// How many stderr lines an error keeps.
pub const STDERR_TAIL_LINES: usize = 20;

/// A command that failed, was cancelled or killed at its deadline, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start `{program}`\n  command: {argv}{}", FullLog(log.as_ref()))]
    Spawn {
        program: String,
        argv: String,
        log: Option<PathBuf>,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{program}` failed ({status})\n  command: {argv}{tail}{}",
        FullLog(log.as_ref()),
        tail = Tail(stderr_tail)
    )]
    Failed {
        program: String,
        argv: String,
        status: String,
        stderr_tail: Vec<String>,
        log: Option<PathBuf>,
    },
    #[error("`{program}` was cancelled{}", FullLog(log.as_ref()))]
    Cancelled {
        program: String,
        argv: String,
        log: Option<PathBuf>,
    },
    #[error("`{argv}` did not finish within {}s and was killed", after.as_secs_f64())]
    TimedOut {
        program: String,
        argv: String,
        after: Duration,
    },
    #[error("cannot write the log {}", log.display())]
    Log {
        log: PathBuf,
        #[source]
        source: io::Error,
    },
}

struct FullLog<'a>(Option<&'a PathBuf>);

impl fmt::Display for FullLog<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(log) => write!(f, "\n  full log: {}", log.display()),
            None => Ok(()),
        }
    }
}

struct Tail<'a>(&'a [String]);

impl fmt::Display for Tail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "\n  last lines of stderr:")?;
        for line in self.0 {
            write!(f, "\n    | {line}")?;
        }
        Ok(())
    }
}

/// The last `n` lines of `text`, joined by newlines.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
