//! `state.json`: what `start` started (pid and program, or the container), and whether that is
//! still running; and [`ServiceStatus`], what `status` reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::Error;

/// How a service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runner {
    Process,
    Docker,
}

/// What `start` recorded in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub runner: Runner,
    pub addr: String,
    /// The program (process runner) or the docker client (docker runner).
    pub program: PathBuf,
    pub pid: Option<u32>,
    pub container: Option<String>,
}

/// What `status` reports about a service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: &'static str,
    pub running: bool,
    pub address: String,
    /// Started by image-manager (as opposed to something else answering on the address).
    pub managed: bool,
    pub runner: Option<Runner>,
    pub program: Option<String>,
    pub pid: Option<u32>,
    pub container: Option<String>,
    pub data: String,
    pub log: String,
}

impl State {
    /// The state in `dir`, if any (one that cannot be read as state is none).
    pub fn read(dir: &Path) -> Result<Option<State>, Error> {
        let path = dir.join("state.json");
        match fs_err::read_to_string(&path) {
            Ok(text) => Ok(serde_json::from_str(&text).ok()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        let partial = dir.join("state.json.partial");
        fs_err::write(&partial, json)?;
        fs_err::rename(&partial, dir.join("state.json"))?;
        Ok(())
    }

    /// Whether what this describes is still running.
    pub fn alive(&self) -> bool {
        match self.runner {
            Runner::Process => self.pid.is_some_and(|pid| process_is(pid, &self.program)),
            Runner::Docker => self
                .container
                .as_deref()
                .is_some_and(|name| container_running(&self.program, name)),
        }
    }
}

/// Whether `pid` is alive and is `program` (a reused pid or a zombie is not).
fn process_is(pid: u32, program: &Path) -> bool {
    let Ok(cmdline) = fs_err::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let first = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    !first.is_empty() && first == program.as_os_str().as_encoded_bytes()
}

/// Whether the container named `name` is running.
pub(crate) fn container_running(docker: &Path, name: &str) -> bool {
    Command::new(docker)
        .args(["inspect", "--format", "{{.State.Running}}", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
        })
}
