//! The process runner: spawns one external command in its own process group, copies its
//! full stdout and stderr to the step's log file, passes every output line to a callback
//! (for progress), and on cancellation signals the whole group (SIGTERM, then SIGKILL
//! after half a second). A failure names the command, its shell-quoted argv, its exit
//! status, the last lines of its stderr and the log's path.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::command::CommandSpec;

/// How many stderr lines an error keeps.
pub const STDERR_TAIL_LINES: usize = 20;
const POLL: Duration = Duration::from_millis(20);
const TERM_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for pipes to close after the command exited (a daemonised grandchild
/// may keep them open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A shared flag that asks running work to stop. Cloning shares the flag.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// An open build log.
pub struct Log {
    path: PathBuf,
    file: fs_err::File,
}

impl Log {
    /// Creates (truncates) the log file, and its directory if needed.
    pub fn create(path: &Path) -> io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        Ok(Log {
            path: path.to_owned(),
            file: fs_err::File::create(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.file.write_all(b"\n")
    }
}

/// A command that failed, was cancelled, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start `{program}`\n  command: {argv}\n  full log: {}", log.display())]
    Spawn {
        program: String,
        argv: String,
        log: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "`{program}` failed ({status})\n  command: {argv}{tail}\n  full log: {}",
        log.display(),
        tail = Tail(stderr_tail)
    )]
    Failed {
        program: String,
        argv: String,
        status: String,
        stderr_tail: Vec<String>,
        log: PathBuf,
    },
    #[error("`{program}` was cancelled\n  full log: {}", log.display())]
    Cancelled {
        program: String,
        argv: String,
        log: PathBuf,
    },
    #[error("cannot write the build log {}", log.display())]
    Log {
        log: PathBuf,
        #[source]
        source: io::Error,
    },
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

enum Msg {
    Line { stderr: bool, text: String },
    Eof,
}

/// Runs `spec` to completion. Every output line goes to `log` and to `on_line`.
pub fn run(
    spec: &CommandSpec,
    log: &mut Log,
    cancel: &CancelToken,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), RunError> {
    let program = spec.name();
    let argv = spec.display();
    let log_err = |log: &Log, source| RunError::Log {
        log: log.path.clone(),
        source,
    };
    tracing::debug!(command = %argv, "running");
    log.line(&format!("$ {argv}"))
        .map_err(|e| log_err(log, e))?;
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled {
            program,
            argv,
            log: log.path.clone(),
        });
    }
    let mut child = Command::new(&spec.program)
        .args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.clone(),
            argv: argv.clone(),
            log: log.path.clone(),
            source,
        })?;
    let pid = rustix::process::Pid::from_child(&child);

    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    spawn_reader(stdout, false, tx.clone());
    spawn_reader(stderr, true, tx);

    let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL_LINES);
    let mut open_streams = 2;
    let mut status: Option<ExitStatus> = None;
    let mut exited_at: Option<Instant> = None;
    let mut term_sent: Option<Instant> = None;
    let mut kill_sent = false;
    let mut log_error = None;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(Msg::Line { stderr, text }) => {
                if log_error.is_none() {
                    log_error = log.line(&text).err();
                }
                on_line(&text);
                if stderr {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text);
                }
            }
            Ok(Msg::Eof) => open_streams -= 1,
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if cancel.is_cancelled() && status.is_none() {
            match term_sent {
                None => {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::TERM);
                    term_sent = Some(Instant::now());
                }
                Some(at) if !kill_sent && at.elapsed() >= TERM_GRACE => {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                    kill_sent = true;
                }
                Some(_) => {}
            }
        }
        if status.is_none() {
            status = child.try_wait().ok().flatten();
            if status.is_some() {
                exited_at = Some(Instant::now());
                if term_sent.is_some() {
                    // Leftovers of the group (a RUN step's processes) go too.
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
            }
        }
        if exited_at.is_some_and(|at| open_streams == 0 || at.elapsed() >= DRAIN_GRACE) {
            break;
        }
    }
    let status = status.expect("the loop ends only after the child exited");
    let footer = format!("# {program} exited: {status}");
    if let Some(e) = log_error.or_else(|| log.line(&footer).err()) {
        return Err(log_err(log, e));
    }
    if term_sent.is_some() {
        return Err(RunError::Cancelled {
            program,
            argv,
            log: log.path.clone(),
        });
    }
    if status.success() {
        Ok(())
    } else {
        Err(RunError::Failed {
            program,
            argv,
            status: status.to_string(),
            stderr_tail: tail.into(),
            log: log.path.clone(),
        })
    }
}

fn spawn_reader(stream: impl Read + Send + 'static, stderr: bool, tx: mpsc::Sender<Msg>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let text = text.trim_end_matches(['\n', '\r']).to_owned();
                    if tx.send(Msg::Line { stderr, text }).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> CommandSpec {
        CommandSpec::new("/bin/sh").arg("-c").arg(script)
    }

    #[test]
    fn output_goes_to_the_log_and_the_callback() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("build.log")).unwrap();
        let mut lines = Vec::new();
        run(
            &sh("echo out; echo err >&2; printf 'no newline'").env("X", "1"),
            &mut log,
            &CancelToken::new(),
            &mut |l| lines.push(l.to_owned()),
        )
        .unwrap();
        lines.sort();
        assert_eq!(lines, ["err", "no newline", "out"]);
        let text = fs_err::read_to_string(dir.path().join("build.log")).unwrap();
        assert!(
            text.starts_with("$ X=1 /bin/sh -c \"echo out; echo err >&2; printf 'no newline'\"\n"),
            "{text}"
        );
        assert!(text.contains("out\n") && text.contains("err\n"));
    }

    #[test]
    fn a_failure_names_command_status_stderr_tail_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("build.log");
        let mut log = Log::create(&log_path).unwrap();
        let err = run(
            &sh("for i in $(seq 1 30); do echo line$i >&2; done; echo quiet; exit 3"),
            &mut log,
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap_err();
        let RunError::Failed {
            stderr_tail,
            status,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(stderr_tail.len(), STDERR_TAIL_LINES);
        assert_eq!(stderr_tail.first().unwrap(), "line11");
        assert_eq!(stderr_tail.last().unwrap(), "line30");
        assert_eq!(status, "exit status: 3");
        let message = err.to_string();
        assert!(
            message.starts_with("`sh` failed (exit status: 3)\n  command: /bin/sh -c "),
            "{message}"
        );
        assert!(message.contains("\n    | line30\n"), "{message}");
        assert!(
            message.ends_with(&format!("full log: {}", log_path.display())),
            "{message}"
        );
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("build.log")).unwrap();
        let err = run(
            &CommandSpec::new("/nonexistent/builder"),
            &mut log,
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }), "{err:?}");
    }

    #[test]
    fn cancellation_kills_the_whole_process_group_within_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("build.log")).unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The shell ignores SIGTERM, so only SIGKILL stops it; its grandchild must die too.
        let script = format!(
            "trap '' TERM; sleep 60 & echo $! > {}; echo started; wait",
            pidfile.display()
        );
        let cancel = CancelToken::new();
        let started = Instant::now();
        let canceller = cancel.clone();
        let mut cancelled_at = None;
        let err = run(&sh(&script), &mut log, &cancel, &mut |line| {
            if line == "started" {
                canceller.cancel();
                cancelled_at = Some(Instant::now());
            }
        })
        .unwrap_err();
        assert!(matches!(err, RunError::Cancelled { .. }), "{err:?}");
        let took = cancelled_at.unwrap().elapsed();
        assert!(took < Duration::from_secs(1), "took {took:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = fs_err::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Reaped by init or a zombie at most: no longer running.
        thread::sleep(Duration::from_millis(100));
        let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("X");
        assert!(
            matches!(state, "X" | "Z" | ""),
            "grandchild {pid} still {state}"
        );
    }

    #[test]
    fn an_already_cancelled_token_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let mut log = Log::create(&dir.path().join("build.log")).unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = run(
            &sh(&format!("touch {}", marker.display())),
            &mut log,
            &cancel,
            &mut |_| {},
        )
        .unwrap_err();
        assert!(matches!(err, RunError::Cancelled { .. }));
        assert!(!marker.exists());
    }
}
