//! What a builder is configured with, shared by detection and the backends: the
//! [`BuilderKind`]s, each tool's settings ([`BuilderSettings`]), and the [`BackendChoice`]
//! detection makes (with the [`DockerFlavor`] the docker backend builds with).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::command::CommandSpec;

/// The four builder tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderKind {
    Buildah,
    Docker,
    Buildkit,
    Podman,
}

impl BuilderKind {
    pub const ALL: [BuilderKind; 4] = [Self::Buildah, Self::Docker, Self::Buildkit, Self::Podman];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buildah => "buildah",
            Self::Docker => "docker",
            Self::Buildkit => "buildkit",
            Self::Podman => "podman",
        }
    }
}

impl fmt::Display for BuilderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown builder name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown builder `{0}` (expected buildah, docker, buildkit or podman)")]
pub struct UnknownBuilder(pub String);

impl FromStr for BuilderKind {
    type Err = UnknownBuilder;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownBuilder(s.to_owned()))
    }
}

/// Settings of the containers-storage tools (buildah, podman).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainersToolSettings {
    /// The program (a name looked up in `PATH`, or a path).
    pub program: PathBuf,
    /// `--storage-driver` (`vfs` works everywhere, including nested in containers).
    pub storage_driver: Option<String>,
    /// `--root` and `--runroot` of the image store, if not the tool's default.
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
    /// `--isolation` of `RUN` steps (`chroot` needs no runtime setup).
    pub isolation: String,
}

impl ContainersToolSettings {
    fn new(program: &str) -> Self {
        ContainersToolSettings {
            program: program.into(),
            storage_driver: Some("vfs".to_owned()),
            root: None,
            runroot: None,
            isolation: "chroot".to_owned(),
        }
    }

    /// The tool's global flags (before the subcommand).
    pub(crate) fn global_args(&self, mut cmd: CommandSpec) -> CommandSpec {
        if let Some(driver) = &self.storage_driver {
            cmd = cmd.flag("--storage-driver", driver);
        }
        if let Some(root) = &self.root {
            cmd = cmd.flag("--root", root);
        }
        if let Some(runroot) = &self.runroot {
            cmd = cmd.flag("--runroot", runroot);
        }
        cmd
    }
}

/// Docker Engine settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerSettings {
    /// The client: `docker`, looked up in `PATH`, or a path. What it can do is probed:
    /// Debian's 20.10 client drives the engine's BuildKit; a newer client without buildx
    /// refuses BuildKit builds and only has the classic builder.
    pub program: PathBuf,
    /// `DOCKER_HOST` for every command, if set.
    pub host: Option<String>,
    /// Whether to build with BuildKit (`DOCKER_BUILDKIT`, or `buildkit:` of the `builder:`
    /// setting): `Some(false)` is the classic builder, `Some(true)` buildx or the engine's
    /// BuildKit; `None` takes the best the client can do.
    pub buildkit: Option<bool>,
    /// Exactly how to build, with no probing (for tests that drive one flavor).
    pub flavor: Option<DockerFlavor>,
}

/// BuildKit (`buildctl`) settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildkitSettings {
    pub program: PathBuf,
    /// `--addr` (the value of `BUILDKIT_HOST`), if set.
    pub addr: Option<String>,
}

/// Everything any backend needs, as the binary read it from `.image-manager.yml` and the
/// environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuilderSettings {
    /// The requested builder (`--builder`, `builder:`); `None` detects one.
    pub kind: Option<BuilderKind>,
    pub buildah: ContainersToolSettings,
    pub podman: ContainersToolSettings,
    pub docker: DockerSettings,
    pub buildkit: BuildkitSettings,
}

impl Default for BuilderSettings {
    fn default() -> Self {
        BuilderSettings {
            kind: None,
            buildah: ContainersToolSettings::new("buildah"),
            podman: ContainersToolSettings::new("podman"),
            docker: DockerSettings {
                program: "docker".into(),
                host: None,
                buildkit: None,
                flavor: None,
            },
            buildkit: BuildkitSettings {
                program: "buildctl".into(),
                addr: None,
            },
        }
    }
}

/// How the docker backend builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DockerFlavor {
    /// `docker buildx build --load`.
    Buildx,
    /// `docker build` with `DOCKER_BUILDKIT=1` (the engine's built-in BuildKit).
    #[serde(rename = "buildkit")]
    BuildKit,
    /// `docker build` with `DOCKER_BUILDKIT=0`.
    Classic,
}

impl fmt::Display for DockerFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Buildx => "buildx",
            Self::BuildKit => "engine BuildKit",
            Self::Classic => "classic builder",
        })
    }
}

/// The chosen builder and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendChoice {
    pub kind: BuilderKind,
    /// The program found (`/usr/bin/buildah`), which the builder runs.
    pub program: PathBuf,
    /// For docker: how it builds.
    pub docker_flavor: Option<DockerFlavor>,
    /// One sentence for `-v`: `buildah found at /usr/bin/buildah (the default on Linux)`.
    pub reason: String,
}
