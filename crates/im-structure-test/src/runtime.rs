//! Container runtimes that run command tests: Docker, podman and buildah behind one trait.
//!
//! Command tests run the way container-structure-test's docker driver runs them: the image's
//! entrypoint is cleared and the test's `command` + `args` run as the container's command, with
//! the image's user, working directory and environment, plus the config's global and the
//! test's own `envVars` (their values expanded against the image's environment). `setup`
//! commands change the container the test then runs in; Docker and podman do it by committing
//! a new image after each setup command, buildah by running them in the same working
//! container. A foreign platform runs under qemu (`--platform`).
//!
//! An image is loaded under a name of its own ([`crate::archive::unique_name`]) and removed
//! by that name, so the runtime's store ends as it began: no user tag is added, re-pointed or
//! removed. Loads and removals take turns (buildah's and podman's stores fail now and then
//! when two land at once); sessions run side by side. [`Runtime::probe`] starts a trivial
//! container, to tell a runtime that cannot run containers here from failing tests.
//!
//! Every runtime is a real program driven through its CLI; its whole output goes to the log.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use im_oci::Platform;

use crate::archive::{docker_archive, probe_archive, unique_name};
use im_process::{CommandSpec, Run, RunError, argv, tail};

/// Which runtime a [`CliRuntime`] drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Docker,
    Podman,
    Buildah,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
            Self::Buildah => "buildah",
        }
    }
}

/// How one command runs inside the image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSpec {
    pub argv: Vec<String>,
    /// Extra environment (`KEY`, `value`) on top of the image's.
    pub env: Vec<(String, String)>,
    /// Overrides the image's user.
    pub user: Option<String>,
    pub privileged: bool,
    pub capabilities: Vec<String>,
    pub bind_mounts: Vec<String>,
    pub env_file: Option<PathBuf>,
    /// When the command is killed (and [`RunError::TimedOut`] returned).
    pub deadline: Option<Instant>,
}

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i64,
}

/// A runtime failure (not a test failure: the command could not be run at all).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Process(#[from] RunError),
    #[error(
        "{runtime} cannot run containers here: its probe container exited with {exit_code}: {stderr_tail}"
    )]
    Unusable {
        runtime: &'static str,
        exit_code: i64,
        stderr_tail: String,
    },
    #[error("cannot convert {} to a docker-archive for Docker", archive.display())]
    Convert {
        archive: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An image made available to a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The name or ID the runtime knows it by.
    pub id: String,
    pub platform: Option<Platform>,
}

/// A session in which one command test runs (after its setup commands).
pub trait Session {
    /// Runs one command; a non-zero exit is an output, not an error.
    fn run(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError>;
    /// Runs a setup command whose changes later commands see.
    fn setup(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError>;
    /// Removes everything the session made.
    fn close(self: Box<Self>) -> Result<(), RuntimeError>;
}

/// A container runtime.
pub trait Runtime: Send + Sync {
    fn kind(&self) -> RuntimeKind;
    /// Loads a docker-archive or OCI archive tar.
    fn load(
        &self,
        archive: &Path,
        platform: Option<&Platform>,
    ) -> Result<LoadedImage, RuntimeError>;
    /// Removes a loaded image.
    fn unload(&self, image: &LoadedImage) -> Result<(), RuntimeError>;
    /// Starts a trivial container (and removes it): an error says why this runtime cannot
    /// run containers here. Hosts without a probe program pass.
    fn probe(&self) -> Result<(), RuntimeError>;
    /// Starts a fresh session on `image`.
    fn session<'a>(&'a self, image: &'a LoadedImage)
    -> Result<Box<dyn Session + 'a>, RuntimeError>;
}

/// Docker, podman or buildah driven through its command line.
#[derive(Debug)]
pub struct CliRuntime {
    kind: RuntimeKind,
    /// The program, the arguments before the subcommand (`--storage-driver vfs`, `--root
    /// DIR`) and the environment of every invocation: each command starts from it.
    tool: CommandSpec,
    /// Extra arguments of every `run` (podman on hosts without CNI: `--network=host`).
    run_args: Vec<OsString>,
    /// Receives every command and its output.
    log: Option<PathBuf>,
    /// Held while an image is added to or removed from the store.
    store: Mutex<()>,
}

impl CliRuntime {
    /// `env` is added to every invocation (for example `DOCKER_HOST`); `log` receives every
    /// command and its output.
    pub fn new(
        kind: RuntimeKind,
        program: PathBuf,
        global_args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        log: Option<PathBuf>,
    ) -> Self {
        Self {
            kind,
            tool: CommandSpec::new(program).args(global_args).envs(env),
            run_args: Vec::new(),
            log,
            store: Mutex::new(()),
        }
    }

    /// Adds arguments to every `run` (for example `--network=host`).
    #[must_use]
    pub fn with_run_args(mut self, run_args: Vec<OsString>) -> Self {
        self.run_args = run_args;
        self
    }

    fn checked(&self, rest: Vec<OsString>) -> Result<String, RuntimeError> {
        let command = self.tool.clone().args(rest);
        Ok(Run::new(&command).checked(self.log.as_deref())?)
    }

    /// A container name no other session of this process (of any runtime) uses.
    fn unique(what: &str) -> String {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        format!(
            "im-st-{what}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// `docker run`/`podman run` flags for a spec (without the image and argv).
    fn run_flags(spec: &RunSpec, platform: Option<&Platform>) -> Vec<OsString> {
        let mut out = argv(["run", "--entrypoint", ""]);
        if let Some(platform) = platform {
            out.extend(argv(["--platform".to_owned(), platform.to_string()]));
        }
        if let Some(user) = &spec.user {
            out.extend(argv(["--user", user]));
        }
        if spec.privileged {
            out.push("--privileged".into());
        }
        for capability in &spec.capabilities {
            out.extend(argv(["--cap-add", capability]));
        }
        for mount in &spec.bind_mounts {
            out.extend(argv(["--volume", mount]));
        }
        if let Some(file) = &spec.env_file {
            out.push("--env-file".into());
            out.push(file.clone().into_os_string());
        }
        for (key, value) in &spec.env {
            out.push("--env".into());
            out.push(format!("{key}={value}").into());
        }
        out
    }

    /// Loads a docker-archive whose only name is `name`.
    fn load_named(
        &self,
        archive: &Path,
        name: &str,
        platform: Option<&Platform>,
    ) -> Result<LoadedImage, RuntimeError> {
        let _store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rest = match self.kind {
            RuntimeKind::Docker | RuntimeKind::Podman => {
                let mut rest = argv(["load", "--input"]);
                rest.push(archive.as_os_str().to_owned());
                rest
            }
            RuntimeKind::Buildah => {
                let mut rest = argv(["pull", "--quiet"]);
                if let Some(platform) = platform {
                    rest.extend(argv(["--platform".to_owned(), platform.to_string()]));
                }
                rest.push(format!("docker-archive:{}", archive.display()).into());
                rest
            }
        };
        self.checked(rest)?;
        Ok(LoadedImage {
            id: name.to_owned(),
            platform: platform.cloned(),
        })
    }

    fn exec(
        &self,
        rest: Vec<OsString>,
        deadline: Option<Instant>,
    ) -> Result<RunOutput, RuntimeError> {
        let command = self.tool.clone().args(rest);
        let output = Run::new(&command)
            .deadline(deadline)
            .capture(self.log.as_deref())?;
        Ok(RunOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            exit_code: output.status.code().map_or(-1, i64::from),
        })
    }
}

impl Runtime for CliRuntime {
    fn kind(&self) -> RuntimeKind {
        self.kind
    }

    fn load(
        &self,
        archive: &Path,
        platform: Option<&Platform>,
    ) -> Result<LoadedImage, RuntimeError> {
        let name = unique_name();
        let named = docker_archive(archive, platform, &name)?;
        self.load_named(named.path(), &name, platform)
    }

    fn unload(&self, image: &LoadedImage) -> Result<(), RuntimeError> {
        let _store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.checked(argv(["rmi", &image.id]))?;
        Ok(())
    }

    fn probe(&self) -> Result<(), RuntimeError> {
        let name = unique_name();
        let Some(archive) = probe_archive(&name)? else {
            return Ok(());
        };
        let image = self.load_named(archive.path(), &name, None)?;
        let outcome = self.session(&image).and_then(|mut session| {
            let output = session.run(&RunSpec {
                argv: vec!["/probe".to_owned()],
                ..RunSpec::default()
            });
            session.close().and(output)
        });
        let removed = self.unload(&image);
        let output = outcome?;
        removed?;
        if output.exit_code == 0 {
            Ok(())
        } else {
            Err(RuntimeError::Unusable {
                runtime: self.kind.name(),
                exit_code: output.exit_code,
                stderr_tail: tail(output.stderr.trim(), 5),
            })
        }
    }

    fn session<'a>(
        &'a self,
        image: &'a LoadedImage,
    ) -> Result<Box<dyn Session + 'a>, RuntimeError> {
        match self.kind {
            RuntimeKind::Docker | RuntimeKind::Podman => Ok(Box::new(CommitSession {
                runtime: self,
                image: image.id.clone(),
                platform: image.platform.clone(),
                made: Vec::new(),
            })),
            RuntimeKind::Buildah => {
                let name = Self::unique("ctr");
                self.checked(argv(["from", "--pull-never", "--name", &name, &image.id]))?;
                Ok(Box::new(BuildahSession {
                    runtime: self,
                    container: name,
                }))
            }
        }
    }
}

/// Docker/podman: each command in a fresh container of the current image; setup commits.
struct CommitSession<'a> {
    runtime: &'a CliRuntime,
    image: String,
    platform: Option<Platform>,
    made: Vec<String>,
}

impl Session for CommitSession<'_> {
    fn run(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError> {
        let mut rest = CliRuntime::run_flags(spec, self.platform.as_ref());
        rest.splice(1..1, self.runtime.run_args.iter().cloned());
        let name = CliRuntime::unique("run");
        rest.splice(1..1, argv(["--rm", "--name", &name]));
        rest.push(self.image.clone().into());
        rest.extend(argv(&spec.argv));
        let output = self.runtime.exec(rest, spec.deadline);
        if output.is_err() {
            // Killing the client leaves a timed-out container running: remove it.
            let _ = self.runtime.checked(argv(["rm", "--force", &name]));
        }
        output
    }

    fn setup(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError> {
        let name = CliRuntime::unique("setup");
        let mut rest = CliRuntime::run_flags(spec, self.platform.as_ref());
        rest.splice(1..1, self.runtime.run_args.iter().cloned());
        rest.insert(1, "--name".into());
        rest.insert(2, name.clone().into());
        rest.push(self.image.clone().into());
        rest.extend(argv(&spec.argv));
        let output = self.runtime.exec(rest, spec.deadline);
        let committed = self.runtime.checked(argv(["commit", &name]));
        let removed = self.runtime.checked(argv(["rm", "--force", &name]));
        let output = output?;
        let id = committed?.trim().to_owned();
        removed?;
        self.made.push(id.clone());
        self.image = id;
        Ok(output)
    }

    fn close(self: Box<Self>) -> Result<(), RuntimeError> {
        for id in self.made.iter().rev() {
            self.runtime.checked(argv(["rmi", "--force", id]))?;
        }
        Ok(())
    }
}

/// buildah: one working container; every command runs in it, so setup changes persist.
struct BuildahSession<'a> {
    runtime: &'a CliRuntime,
    container: String,
}

impl BuildahSession<'_> {
    fn command(&self, spec: &RunSpec) -> Result<RunOutput, RuntimeError> {
        let mut rest = argv(["run", "--isolation", "chroot"]);
        if let Some(user) = &spec.user {
            rest.extend(argv(["--user", user]));
        }
        for (key, value) in &spec.env {
            rest.push("--env".into());
            rest.push(format!("{key}={value}").into());
        }
        for mount in &spec.bind_mounts {
            rest.extend(argv(["--volume", mount]));
        }
        for capability in &spec.capabilities {
            rest.extend(argv(["--cap-add", capability]));
        }
        rest.push(self.container.clone().into());
        rest.push("--".into());
        rest.extend(argv(&spec.argv));
        self.runtime.exec(rest, spec.deadline)
    }
}

impl Session for BuildahSession<'_> {
    fn run(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError> {
        self.command(spec)
    }

    fn setup(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError> {
        self.command(spec)
    }

    fn close(self: Box<Self>) -> Result<(), RuntimeError> {
        self.runtime.checked(argv(["rm", &self.container]))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_are_built_element_by_element() {
        let spec = RunSpec {
            argv: vec!["sh".into(), "-c".into(), "echo $A".into()],
            env: vec![("A".into(), "has space".into())],
            user: Some("1000:1000".into()),
            ..RunSpec::default()
        };
        let flags = CliRuntime::run_flags(&spec, Some(&"linux/arm64".parse().unwrap()));
        assert_eq!(
            CommandSpec::new("docker").args(flags).display(),
            "docker run --entrypoint '' --platform linux/arm64 --user 1000:1000 --env 'A=has space'"
        );
    }
}
