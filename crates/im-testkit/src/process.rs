//! Running a helper command and failing loudly: a panic that names the command, its argv,
//! its exit status and the last lines of its stderr.

use std::ffi::OsStr;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// How many trailing stderr lines a failure message shows.
const STDERR_TAIL_LINES: usize = 20;

/// Runs `cmd` to completion and returns its stdout; panics unless it exits 0.
pub fn run(cmd: &mut Command) -> String {
    run_with_stdin(cmd, &[])
}

/// Like [`run`], writing `stdin` to the command's standard input (for secrets, which
/// must never be in an argv).
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> String {
    let output = output_with_stdin(cmd, stdin);
    assert!(output.status.success(), "{}", failure_message(cmd, &output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `cmd` to completion with `stdin` and returns its output whatever its exit status;
/// panics only when it cannot be started.
pub fn output_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", describe(cmd)));
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // Write from a thread so a command that does not read its stdin cannot deadlock us.
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A command that exits without reading closes the pipe: that is not our failure.
        let _ = pipe.write_all(&stdin);
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("cannot wait for {}: {err}", describe(cmd)));
    writer.join().expect("the stdin writer does not panic");
    output
}

/// The message a failed command panics with.
pub(crate) fn failure_message(cmd: &Command, output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    format!(
        "{} failed ({}); last stderr lines:\n{tail}",
        describe(cmd),
        output.status
    )
}

/// The program and its argv, each argument quoted.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut text = quote(cmd.get_program());
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&quote(arg));
    }
    text
}

fn quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,%".contains(c));
    if plain {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_quotes_arguments_that_need_it() {
        let mut cmd = Command::new("echo");
        cmd.args(["plain", "with space", "it's", ""]);
        assert_eq!(describe(&cmd), r"echo plain 'with space' 'it'\''s' ''");
    }

    #[test]
    fn run_returns_stdout_and_feeds_stdin() {
        assert_eq!(
            run_with_stdin(&mut Command::new("cat"), b"hello\n"),
            "hello\n"
        );
    }

    #[test]
    #[should_panic(
        expected = "sh -c 'echo oops >&2; exit 3' failed (exit status: 3); last stderr lines:\noops"
    )]
    fn a_failed_command_panics_with_argv_status_and_stderr() {
        run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"]));
    }
}
