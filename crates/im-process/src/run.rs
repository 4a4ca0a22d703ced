//! The runner: spawns one command in its own process group with stdin closed, reads its
//! stdout and stderr on threads of their own, and stops it when asked: on cancellation the
//! whole group gets SIGTERM, then SIGKILL after half a second; at a deadline it gets SIGKILL
//! at once. After the command exits its pipes get two seconds to close (a daemonised
//! grandchild may hold them open).
//!
//! The output goes one of two ways: [`Run::stream`] passes every line to the step's [`Log`]
//! and to a callback as it comes (builds, for progress); [`Run::capture`] keeps stdout and
//! stderr whole and appends them to a shared log when the command ends (runtimes, tools
//! whose output is parsed).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use crate::cancel::CancelToken;
use crate::command::CommandSpec;
use crate::error::{RunError, STDERR_TAIL_LINES};
use crate::log::{Log, append_entry};

const POLL: Duration = Duration::from_millis(20);
const TERM_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for pipes to close after the command exited.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// One command about to run, and what may stop it.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    spec: &'a CommandSpec,
    cancel: Option<&'a CancelToken>,
    deadline: Option<Instant>,
}

/// How a supervised command ended.
enum Ending {
    Exited,
    Cancelled,
    TimedOut,
}

struct Finished {
    status: ExitStatus,
    ending: Ending,
}

enum Msg {
    /// One line of output, with its newline if it had one.
    Line {
        stderr: bool,
        bytes: Vec<u8>,
    },
    Eof,
}

/// Runs `spec` to completion, streaming: every output line goes to `log` and to `on_line`.
pub fn run(
    spec: &CommandSpec,
    log: &mut Log,
    cancel: &CancelToken,
    on_line: &mut dyn FnMut(&str),
) -> Result<(), RunError> {
    Run::new(spec).cancel(cancel).stream(log, on_line)
}

impl<'a> Run<'a> {
    pub fn new(spec: &'a CommandSpec) -> Self {
        Run {
            spec,
            cancel: None,
            deadline: None,
        }
    }

    /// Stops the command (its whole process group) when `token` is cancelled.
    #[must_use]
    pub fn cancel(mut self, token: &'a CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Kills the command (its whole process group) at `deadline`.
    #[must_use]
    pub fn deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(CancelToken::is_cancelled)
    }

    /// Runs to completion; every output line goes to `log` (after a `$ <command>` line) and
    /// to `on_line`. A non-zero exit is [`RunError::Failed`] with the last lines of stderr.
    pub fn stream(self, log: &mut Log, on_line: &mut dyn FnMut(&str)) -> Result<(), RunError> {
        let program = self.spec.name();
        let argv = self.spec.display();
        let log_err = |log: &Log, source| RunError::Log {
            log: log.path().to_owned(),
            source,
        };
        tracing::debug!(command = %argv, "running");
        log.line(&format!("$ {argv}"))
            .map_err(|e| log_err(log, e))?;
        if self.cancelled() {
            return Err(RunError::Cancelled {
                program,
                argv,
                log: Some(log.path().to_owned()),
            });
        }
        let started = Instant::now();
        let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL_LINES);
        let mut log_error = None;
        let finished = self
            .supervise(&mut |stderr, bytes| {
                let text = String::from_utf8_lossy(&bytes);
                let text = text.trim_end_matches(['\n', '\r']);
                if log_error.is_none() {
                    log_error = log.line(text).err();
                }
                on_line(text);
                if stderr {
                    if tail.len() == STDERR_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(text.to_owned());
                }
            })
            .map_err(|source| RunError::Spawn {
                program: program.clone(),
                argv: argv.clone(),
                log: Some(log.path().to_owned()),
                source,
            })?;
        let footer = format!("# {program} exited: {}", finished.status);
        if let Some(e) = log_error.or_else(|| log.line(&footer).err()) {
            return Err(log_err(log, e));
        }
        let log = Some(log.path().to_owned());
        match finished.ending {
            Ending::Cancelled => Err(RunError::Cancelled { program, argv, log }),
            Ending::TimedOut => Err(RunError::TimedOut {
                program,
                argv,
                after: started.elapsed(),
            }),
            Ending::Exited if finished.status.success() => Ok(()),
            Ending::Exited => Err(RunError::Failed {
                program,
                argv,
                status: finished.status.to_string(),
                stderr_tail: tail.into(),
                log,
            }),
        }
    }

    /// Runs to completion, keeping stdout and stderr whole; the command and its output are
    /// appended to `log` as one entry. A non-zero exit is an output, not an error.
    pub fn capture(self, log: Option<&Path>) -> Result<Output, RunError> {
        let program = self.spec.name();
        let argv = self.spec.display();
        tracing::debug!(command = %argv, "running");
        if self.cancelled() {
            return Err(RunError::Cancelled {
                program,
                argv,
                log: log.map(Path::to_owned),
            });
        }
        let started = Instant::now();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let finished = self
            .supervise(&mut |is_stderr, bytes| {
                if is_stderr {
                    stderr.extend_from_slice(&bytes);
                } else {
                    stdout.extend_from_slice(&bytes);
                }
            })
            .map_err(|source| RunError::Spawn {
                program: program.clone(),
                argv: argv.clone(),
                log: log.map(Path::to_owned),
                source,
            })?;
        let output = Output {
            status: finished.status,
            stdout,
            stderr,
        };
        if let Some(log) = log {
            append_entry(log, self.spec, &output);
        }
        match finished.ending {
            Ending::Exited => Ok(output),
            Ending::Cancelled => Err(RunError::Cancelled {
                program,
                argv,
                log: log.map(Path::to_owned),
            }),
            Ending::TimedOut => Err(RunError::TimedOut {
                program,
                argv,
                after: started.elapsed(),
            }),
        }
    }

    /// Like [`Run::capture`], but requires exit status 0; returns stdout.
    pub fn checked(self, log: Option<&Path>) -> Result<String, RunError> {
        let output = self.capture(log)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        Err(RunError::Failed {
            program: self.spec.name(),
            argv: self.spec.display(),
            status: output.status.to_string(),
            stderr_tail: lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..]
                .iter()
                .map(|&line| line.to_owned())
                .collect(),
            log: log.map(Path::to_owned),
        })
    }

    /// Spawns the command and passes each output line to `on_line` (`true` for stderr) until
    /// it has exited and its pipes closed (or the drain grace passed).
    fn supervise(&self, on_line: &mut dyn FnMut(bool, Vec<u8>)) -> std::io::Result<Finished> {
        let spec = self.spec;
        let mut child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(&spec.env)
            .envs(
                spec.secret_env
                    .iter()
                    .map(|(key, value)| (key, value.expose())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let pid = Pid::from_child(&child);

        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        spawn_reader(stdout, false, tx.clone());
        spawn_reader(stderr, true, tx);

        let mut open_streams = 2;
        let mut status: Option<ExitStatus> = None;
        let mut exited_at: Option<Instant> = None;
        let mut term_sent: Option<Instant> = None;
        let mut kill_sent = false;
        let mut timed_out = false;
        // Once both pipes are closed the child is usually exiting: look for its status soon
        // (1 ms, doubling up to POLL) rather than a whole POLL later, which cost every build
        // command about 10 ms.
        let mut reaping = Duration::from_millis(1);
        loop {
            let wait = match self.deadline {
                Some(deadline) if status.is_none() && !timed_out => {
                    POLL.min(deadline.saturating_duration_since(Instant::now()))
                }
                _ => POLL,
            };
            match rx.recv_timeout(wait) {
                Ok(Msg::Line { stderr, bytes }) => on_line(stderr, bytes),
                Ok(Msg::Eof) => open_streams -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both readers are done; the command still runs with its pipes closed.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    thread::sleep(reaping.min(wait));
                    reaping = (reaping * 2).min(POLL);
                }
            }
            if status.is_none() {
                if self.cancelled() {
                    match term_sent {
                        None => {
                            let _ = kill_process_group(pid, Signal::TERM);
                            term_sent = Some(Instant::now());
                        }
                        Some(at) if !kill_sent && at.elapsed() >= TERM_GRACE => {
                            let _ = kill_process_group(pid, Signal::KILL);
                            kill_sent = true;
                        }
                        Some(_) => {}
                    }
                }
                status = child.try_wait().ok().flatten();
                if status.is_some() {
                    exited_at = Some(Instant::now());
                    if term_sent.is_some() || timed_out {
                        // Leftovers of the group (a RUN step's processes) go too.
                        let _ = kill_process_group(pid, Signal::KILL);
                    }
                } else if term_sent.is_none()
                    && !timed_out
                    && self.deadline.is_some_and(|d| Instant::now() >= d)
                {
                    let _ = kill_process_group(pid, Signal::KILL);
                    timed_out = true;
                }
            }
            if exited_at.is_some_and(|at| open_streams == 0 || at.elapsed() >= DRAIN_GRACE) {
                break;
            }
        }
        Ok(Finished {
            status: status.expect("the loop ends only after the child exited"),
            ending: if term_sent.is_some() {
                Ending::Cancelled
            } else if timed_out {
                Ending::TimedOut
            } else {
                Ending::Exited
            },
        })
    }
}

fn spawn_reader(stream: impl Read + Send + 'static, stderr: bool, tx: mpsc::Sender<Msg>) {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        loop {
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(Msg::Line { stderr, bytes }).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = tx.send(Msg::Eof);
    });
}
