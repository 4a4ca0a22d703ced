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
//! Every runtime is a real program driven through its CLI; its whole output goes to the log.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use im_oci::Platform;

use crate::process::{ProcessError, Runner, argv};

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
    Process(#[from] ProcessError),
    #[error("`{runtime} load` of {} printed no image name or ID: {output}", archive.display())]
    LoadOutput {
        runtime: &'static str,
        archive: PathBuf,
        output: String,
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
    /// Starts a fresh session on `image`.
    fn session<'a>(&'a self, image: &'a LoadedImage)
    -> Result<Box<dyn Session + 'a>, RuntimeError>;
}

/// Docker, podman or buildah driven through its command line.
#[derive(Debug)]
pub struct CliRuntime {
    kind: RuntimeKind,
    program: PathBuf,
    /// Arguments before the subcommand (`--storage-driver vfs`, `--root DIR`).
    global_args: Vec<OsString>,
    /// Extra arguments of every `run` (podman on hosts without CNI: `--network=host`).
    run_args: Vec<OsString>,
    runner: Runner,
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
            program,
            global_args,
            run_args: Vec::new(),
            runner: Runner::new(env, log),
        }
    }

    /// Adds arguments to every `run` (for example `--network=host`).
    #[must_use]
    pub fn with_run_args(mut self, run_args: Vec<OsString>) -> Self {
        self.run_args = run_args;
        self
    }

    fn args(&self, rest: Vec<OsString>) -> Vec<OsString> {
        let mut all = self.global_args.clone();
        all.extend(rest);
        all
    }

    fn checked(&self, rest: Vec<OsString>) -> Result<String, RuntimeError> {
        Ok(self.runner.checked(&self.program, &self.args(rest))?)
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

    fn exec(&self, rest: Vec<OsString>) -> Result<RunOutput, RuntimeError> {
        let output = self.runner.output(&self.program, &self.args(rest))?;
        Ok(RunOutput {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            exit_code: output.status.code().map_or(-1, i64::from),
        })
    }
}

fn loaded_name(output: &str) -> Option<String> {
    output.lines().rev().find_map(|line| {
        line.strip_prefix("Loaded image ID: ")
            .or_else(|| line.strip_prefix("Loaded image: "))
            .or_else(|| line.strip_prefix("Loaded image(s): "))
            .map(|name| name.split(',').next().unwrap_or(name).trim().to_owned())
    })
}

fn is_oci_archive(archive: &Path) -> bool {
    matches!(
        im_oci::detect_format(archive),
        Ok(im_oci::ImageFormat::OciArchive | im_oci::ImageFormat::OciLayout)
    )
}

/// Writes the image of an OCI archive or layout as a docker-archive (layer blobs copied as
/// stored; Docker decompresses gzip itself) into a temporary file.
fn to_docker_archive(
    archive: &Path,
    platform: Option<&Platform>,
) -> Result<tempfile::NamedTempFile, RuntimeError> {
    let convert = |source: Box<dyn std::error::Error + Send + Sync>| RuntimeError::Convert {
        archive: archive.to_owned(),
        source,
    };
    let options = im_oci::OpenOptions {
        platform: platform.cloned(),
        ..im_oci::OpenOptions::default()
    };
    let image = im_oci::open_image(archive, &options).map_err(|e| convert(Box::new(e)))?;
    let file = tempfile::NamedTempFile::new().map_err(|e| convert(Box::new(e)))?;
    let mut builder = tar::Builder::new(file.as_file());
    let mut append = |name: &str, size: u64, data: &mut dyn std::io::Read| {
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder
            .append_data(&mut header, name, data)
            .map_err(|e| convert(Box::new(e)))
    };
    let config = serde_json::to_vec(image.config()).map_err(|e| convert(Box::new(e)))?;
    let config_name = format!(
        "{}.json",
        im_oci::Digest::of_bytes(im_oci::Algorithm::Sha256, &config).hex()
    );
    append(&config_name, config.len() as u64, &mut config.as_slice())?;
    let mut layers = Vec::new();
    for (i, layer) in image.layers().iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        let size = layer
            .size
            .ok_or_else(|| convert(format!("layer {i} has no size").into()))?;
        let mut blob = image.open_layer_blob(i).map_err(|e| convert(Box::new(e)))?;
        append(&name, size, &mut blob)?;
        layers.push(name);
    }
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": config_name, "RepoTags": null, "Layers": layers}]),
    )
    .map_err(|e| convert(Box::new(e)))?;
    append(
        "manifest.json",
        manifest.len() as u64,
        &mut manifest.as_slice(),
    )?;
    builder.finish().map_err(|e| convert(Box::new(e)))?;
    drop(builder);
    Ok(file)
}

fn archive_transport(archive: &Path) -> String {
    let transport = if is_oci_archive(archive) {
        "oci-archive"
    } else {
        "docker-archive"
    };
    format!("{transport}:{}", archive.display())
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
        let id = match self.kind {
            RuntimeKind::Docker | RuntimeKind::Podman => {
                // Docker 20.10 loads docker-archives only: convert OCI layouts first.
                let converted = if self.kind == RuntimeKind::Docker && is_oci_archive(archive) {
                    Some(to_docker_archive(archive, platform)?)
                } else {
                    None
                };
                let archive = converted
                    .as_ref()
                    .map_or(archive, tempfile::NamedTempFile::path);
                let mut rest = argv(["load", "--input"]);
                rest.push(archive.as_os_str().to_owned());
                let output = self.checked(rest)?;
                loaded_name(&output).ok_or_else(|| RuntimeError::LoadOutput {
                    runtime: self.kind.name(),
                    archive: archive.to_owned(),
                    output: output.trim().to_owned(),
                })?
            }
            RuntimeKind::Buildah => {
                let mut rest = argv(["pull", "--quiet"]);
                if let Some(platform) = platform {
                    rest.extend(argv(["--platform".to_owned(), platform.to_string()]));
                }
                rest.push(archive_transport(archive).into());
                self.checked(rest)?.trim().to_owned()
            }
        };
        // A name of this load's own: concurrent runs may load the same archive, and each
        // removes only its own name when done.
        let name = format!("localhost/{}:latest", Self::unique("image"));
        self.checked(argv(["tag", &id, &name]))?;
        Ok(LoadedImage {
            id: name,
            platform: platform.cloned(),
        })
    }

    fn unload(&self, image: &LoadedImage) -> Result<(), RuntimeError> {
        self.checked(argv(["rmi", &image.id]))?;
        Ok(())
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
        rest.insert(1, "--rm".into());
        rest.push(self.image.clone().into());
        rest.extend(argv(&spec.argv));
        self.runtime.exec(rest)
    }

    fn setup(&mut self, spec: &RunSpec) -> Result<RunOutput, RuntimeError> {
        let name = CliRuntime::unique("setup");
        let mut rest = CliRuntime::run_flags(spec, self.platform.as_ref());
        rest.splice(1..1, self.runtime.run_args.iter().cloned());
        rest.insert(1, "--name".into());
        rest.insert(2, name.clone().into());
        rest.push(self.image.clone().into());
        rest.extend(argv(&spec.argv));
        let output = self.runtime.exec(rest);
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
        self.runtime.exec(rest)
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
    fn reads_the_loaded_image_name() {
        assert_eq!(
            loaded_name("Loaded image: im/app:1.0\n").as_deref(),
            Some("im/app:1.0")
        );
        assert_eq!(
            loaded_name("Loaded image ID: sha256:abc\n").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(
            loaded_name(
                "Getting image source signatures\nLoaded image(s): localhost/a:1,localhost/b:2\n"
            )
            .as_deref(),
            Some("localhost/a:1")
        );
        assert_eq!(loaded_name("nothing"), None);
    }

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
            crate::process::quote(&flags),
            "run --entrypoint '' --platform linux/arm64 --user 1000:1000 --env 'A=has space'"
        );
    }
}
