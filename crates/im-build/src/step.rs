//! `BuildStep`: one image tag for one platform, as the plan hands it to a builder. Plain
//! data, serialisable for `plan --format json`; the plan decides every field, the
//! builders only read them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use im_oci::Platform;

use crate::cache::StepCache;

/// One build: an image tag for one platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStep {
    /// The node's id in the plan, e.g. `python:3.13.7`.
    pub node: String,
    pub platform: Platform,
    /// The build context directory (absolute).
    pub context_dir: PathBuf,
    /// The Dockerfile to build (absolute; need not lie inside the context).
    pub dockerfile: PathBuf,
    /// The local image reference the build produces, e.g. `python:3.13.7`; recorded as
    /// the output archive's `org.opencontainers.image.ref.name`.
    pub image: String,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// The images this build starts from or copies from: managed parents (their archives in
    /// `dist/`) and external bases (pulled by image-manager into its cache, pinned by digest).
    pub parents: Vec<Parent>,
    /// Where the OCI archive goes: `dist/<name>/<tag>/<os>-<arch>/image.tar` (absolute).
    pub output: PathBuf,
    /// The build's full log (absolute).
    pub log: PathBuf,
    /// Seconds since the epoch for image and file timestamps, for reproducible builds.
    pub source_date_epoch: Option<i64>,
    pub no_cache: bool,
    pub pull: PullPolicy,
    /// The shared layer cache the build reads and writes, if any (never part of a key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<StepCache>,
}

/// A parent image of a build: a managed image or an external base, always as an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The reference exactly as the Dockerfile's `FROM`, `COPY --from` or
    /// `RUN --mount=from=` names it (after `ARG` substitution), e.g. `base:1`.
    pub reference: String,
    /// The parent's image for this build's platform: an OCI archive (absolute), the managed
    /// parent's build output or the pulled external base.
    pub archive: PathBuf,
}

/// When a builder may pull images from a registry itself. Only `never` exists: every image a
/// build starts from reaches the builder as an archive — managed parents from `dist/`,
/// external bases pulled by image-manager's registry client at the digest the plan resolved
/// (with the project's credentials, mirrors and `insecure` rules) — so a tag that moves
/// between plan and build cannot slip in and no builder needs registry credentials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    #[default]
    Never,
}

impl BuildStep {
    /// The directory a builder may use for this step's scratch files (rewritten
    /// Dockerfile, converted parents, the archive being written). It sits next to the
    /// output so the finished archive is renamed into place on the same file system, and
    /// it is removed when the step ends.
    pub fn work_dir(&self) -> PathBuf {
        self.output_dir().join(".im-build")
    }

    /// The directory that holds the output archive.
    pub fn output_dir(&self) -> &Path {
        self.output.parent().unwrap_or_else(|| Path::new("/"))
    }

    /// A display name for logs and progress: `python:3.13.7 (linux/arm64)`.
    pub fn display_name(&self) -> String {
        format!("{} ({})", self.node, self.platform)
    }
}
