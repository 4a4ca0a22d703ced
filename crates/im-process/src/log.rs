//! Log files of commands. A streamed command writes into a [`Log`] it owns (one per build
//! step), line by line as the output comes; a captured command appends one whole entry to a
//! log file several runners may share ([`append_entry`]). Both write the same shape:
//! `$ <command>`, its output, `# <program> exited: <status>`.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

use crate::command::CommandSpec;

/// An open log file that one command at a time writes into.
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

/// Serialises appends: several runners may share one log file.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// Appends a finished command and its whole output to `path` as one entry. A log that
/// cannot be written does not fail the command (it is a record, not a result).
pub(crate) fn append_entry(path: &Path, spec: &CommandSpec, output: &Output) {
    let mut entry = format!("$ {}\n", spec.display()).into_bytes();
    for stream in [&output.stdout, &output.stderr] {
        entry.extend_from_slice(stream);
        if !stream.is_empty() && !stream.ends_with(b"\n") {
            entry.push(b'\n');
        }
    }
    entry.extend_from_slice(format!("# {} exited: {}\n", spec.name(), output.status).as_bytes());
    let _guard = APPEND_LOCK.lock();
    if let Ok(mut file) = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(&entry);
    }
}
