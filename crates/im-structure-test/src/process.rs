//! Running external programs: argv built element by element, full output to a log file,
//! and errors that say what ran, how it ended and the last lines of its stderr.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

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
        let mut command = Command::new(program);
        command
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let output = command.output().map_err(|source| ProcessError::Spawn {
            program: program.to_owned(),
            argv: argv.to_vec(),
            source,
        })?;
        self.record(program, argv, &output);
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

/// Builds an argv from string-like parts.
pub fn argv<I, S>(parts: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    parts.into_iter().map(|p| p.as_ref().to_owned()).collect()
}
