//! Running external programs: argv built element by element, full output to a log file,
//! and errors that say what ran, how it ended and the last lines of its stderr. A program
//! may be given a deadline: past it, its whole process group is killed.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(10);
/// How long to wait for output pipes to close after a killed program is gone (a grandchild
/// outside its process group may hold them).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A program run that could not start or exited badly.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start `{}`", program.display())]
    Spawn {
        program: PathBuf,
        argv: Vec<OsString>,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` exited with {status}{}\n{stderr_tail}", quote(argv), log.as_ref().map(|l| format!(" (full output in {})", l.display())).unwrap_or_default())]
    Failed {
        argv: Vec<OsString>,
        status: String,
        stderr_tail: String,
        log: Option<PathBuf>,
    },
    #[error("`{}` did not finish within {}s and was killed", quote(argv), after.as_secs_f64())]
    TimedOut {
        argv: Vec<OsString>,
        after: Duration,
    },
}

/// Shell-quotes an argv for messages and logs.
pub fn quote(argv: &[OsString]) -> String {
    argv.iter()
        .map(|a| {
            let text = a.to_string_lossy();
            if !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
            {
                text.into_owned()
            } else {
                format!("'{}'", text.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs programs with a fixed environment, appending everything to one log file.
#[derive(Debug)]
pub struct Runner {
    /// Extra environment for every program (e.g. `DOCKER_HOST`).
    pub env: Vec<(OsString, OsString)>,
    pub log: Option<PathBuf>,
}

/// Serialises log writes: several runners may share one log file.
static LOG_LOCK: Mutex<()> = Mutex::new(());

impl Runner {
    pub fn new(env: Vec<(OsString, OsString)>, log: Option<PathBuf>) -> Self {
        Self { env, log }
    }

    /// Runs `program argv...` to completion, capturing stdout and stderr.
    pub fn output(&self, program: &Path, argv: &[OsString]) -> Result<Output, ProcessError> {
        self.output_until(program, argv, None)
    }

    /// Like [`Runner::output`], but kills the program's process group at `deadline`.
    pub fn output_until(
        &self,
        program: &Path,
        argv: &[OsString],
        deadline: Option<Instant>,
    ) -> Result<Output, ProcessError> {
        let started = Instant::now();
        let mut command = Command::new(program);
        command
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let spawn_error = |source| ProcessError::Spawn {
            program: program.to_owned(),
            argv: argv.to_vec(),
            source,
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let waited = wait_until(&mut child, deadline).map_err(spawn_error)?;
        // A killed program's pipes close when the group is gone; a stray grandchild may keep
        // them open, so its output is given up after a grace period.
        let grace = if waited.is_some() {
            None
        } else {
            Some(DRAIN_GRACE)
        };
        let output = Output {
            status: match waited {
                Some(status) => status,
                None => child.wait().map_err(spawn_error)?,
            },
            stdout: collect(&stdout, grace),
            stderr: collect(&stderr, grace),
        };
        self.record(program, argv, &output);
        if waited.is_none() {
            let mut full = vec![program.as_os_str().to_owned()];
            full.extend(argv.iter().cloned());
            return Err(ProcessError::TimedOut {
                argv: full,
                after: started.elapsed(),
            });
        }
        Ok(output)
    }

    /// Runs and requires exit status 0; returns stdout.
    pub fn checked(&self, program: &Path, argv: &[OsString]) -> Result<String, ProcessError> {
        let output = self.output(program, argv)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let mut full = vec![program.as_os_str().to_owned()];
        full.extend(argv.iter().cloned());
        Err(ProcessError::Failed {
            argv: full,
            status: output.status.to_string(),
            stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), 10),
            log: self.log.clone(),
        })
    }

    fn record(&self, program: &Path, argv: &[OsString], output: &Output) {
        let Some(log) = &self.log else { return };
        let _guard = LOG_LOCK.lock();
        if let Ok(mut file) = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let mut full = vec![program.as_os_str().to_owned()];
            full.extend(argv.iter().cloned());
            let mut entry = format!("$ {}\n# {}\n", quote(&full), output.status).into_bytes();
            entry.extend_from_slice(&output.stdout);
            entry.extend_from_slice(&output.stderr);
            entry.push(b'\n');
            let _ = file.write_all(&entry);
        }
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (send, receive) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = send.send(bytes);
        });
    }
    receive
}

fn collect(output: &mpsc::Receiver<Vec<u8>>, grace: Option<Duration>) -> Vec<u8> {
    match grace {
        Some(grace) => output.recv_timeout(grace).unwrap_or_default(),
        None => output.recv().unwrap_or_default(),
    }
}

/// Waits for `child`; at `deadline` kills its process group and returns `None`.
fn wait_until(
    child: &mut Child,
    deadline: Option<Instant>,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let Some(deadline) = deadline else {
        return child.wait().map(Some);
    };
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            if let Some(pid) = rustix::process::Pid::from_raw(child.id().cast_signed()) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            return Ok(None);
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Builds an argv from string-like parts.
pub fn argv<I, S>(parts: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    parts.into_iter().map(|p| p.as_ref().to_owned()).collect()
}
