//! Running git: non-interactive, bounded in time, errors that keep git's own message.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use im_process::{CommandSpec, Run, RunError};

/// How long one git command may take (a fetch of a large repository included).
pub const DEADLINE: Duration = Duration::from_secs(600);

/// `git args` in `dir` (when given) with `env`; its stdout. git never prompts: a repository
/// that needs credentials the user has not set up fails instead of hanging a CI job.
pub fn run<S: AsRef<OsStr>>(
    dir: Option<&Path>,
    args: &[S],
    env: &[(&str, &OsStr)],
) -> Result<String, RunError> {
    let mut command = CommandSpec::new("git")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("GCM_INTERACTIVE", "never");
    if let Some(dir) = dir {
        command = command.arg("-C").arg(dir);
    }
    command = command.args(args.iter().map(|arg| arg.as_ref().to_os_string()));
    for (key, value) in env {
        command = command.env(*key, *value);
    }
    Run::new(&command)
        .deadline(Some(Instant::now() + DEADLINE))
        .checked(None)
}

/// git's own message from a failed run: the last stderr line that says something, for
/// errors shown at a line of `image.yml`.
pub fn message(error: &RunError) -> String {
    match error {
        RunError::Failed { stderr_tail, .. } => stderr_tail
            .iter()
            .rev()
            .map(|line| line.trim())
            .find(|line| !line.is_empty())
            .map_or_else(
                || error.to_string(),
                |line| {
                    line.trim_start_matches("fatal: ")
                        .trim_start_matches("error: ")
                        .to_owned()
                },
            ),
        other => other.to_string(),
    }
}
