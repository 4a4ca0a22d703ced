//! The private Docker daemon `scripts/setup` started, and the client that talks to it.
//!
//! Tests use Debian's `/usr/bin/docker` (20.10, `IM_TEST_DOCKER_BIN`): the newer client in
//! `/usr/local/bin` refuses BuildKit builds. The daemon listens on `DOCKER_HOST`, a socket
//! of its own, so tests never touch a machine-wide daemon.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::process;
use crate::settings;

/// The private dockerd and the client binary to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEnv {
    host: String,
    bin: PathBuf,
}

/// The daemon `scripts/setup` started, checked once per process with `docker info`.
///
/// Panics with "scripts/setup should have installed/started ..." when the settings are
/// missing or the daemon does not answer.
pub fn docker() -> DockerEnv {
    static CHECKED: OnceLock<DockerEnv> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let env = DockerEnv {
                host: settings::required("DOCKER_HOST", "dockerd"),
                bin: settings::required_executable("IM_TEST_DOCKER_BIN", "docker.io"),
            };
            let mut cmd = env.command();
            cmd.args(["info", "--format", "{{.ServerVersion}}"]);
            let output = process::output_with_stdin(&mut cmd, &[]);
            assert!(
                output.status.success(),
                "dockerd at {} does not answer: scripts/setup should have started dockerd\n{}",
                env.host,
                process::failure_message(&cmd, &output)
            );
            env
        })
        .clone()
}

impl DockerEnv {
    /// The daemon's address, e.g. `unix:///run/image-manager-test/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The Docker client binary (Debian's 20.10 client).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// A `docker` command aimed at the private daemon (`DOCKER_HOST` set; BuildKit left to
    /// the caller: set `DOCKER_BUILDKIT=1` for BuildKit builds).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("DOCKER_HOST", &self.host);
        cmd
    }

    /// Runs `docker ARGS...` and returns its stdout; panics unless it exits 0.
    pub fn run<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        process::run(self.command().args(args))
    }
}
