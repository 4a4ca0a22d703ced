//! The execution layer of `image-manager build`: what runs one plan step and what
//! schedules many.
//!
//! The plan is computed elsewhere and handed here as data ([`BuildStep`]). A [`Builder`]
//! turns a step into a [`StepPlan`] (files to prepare, exact argv and environment of
//! every command, where the tool leaves the image) as a pure function, so plans can be
//! printed and snapshot-tested without a daemon; [`execute_step`] carries a plan out with
//! the process runner ([`im_process`]), writing the step's OCI archive atomically; the [`scheduler`]
//! runs a DAG of steps on worker threads.
//!
//! # How a dependent image finds the parent that was just built
//!
//! No registry is involved, and several builds (two platforms of one tag, or two tags on
//! one parent) run at once against one image store, so a parent is never made visible
//! under a name another build could move. Every step builds from a copy of its
//! Dockerfile (in the step's work directory) whose references to parents (managed images and
//! pulled external bases, both as archives)
//! (`FROM`, `COPY --from`, `RUN --mount=from=`, also through `ARG`s) are rewritten
//! ([`rewrite::rewrite_parents`]) to a name unique to the step:
//! `localhost/im-build/<node>-<hash of the output path>:<platform>-parent-<n>`. Where a
//! builder records that name in the image (history, base annotations), the finished image
//! is rewritten to name the parent as the Dockerfile does (`parent_names`), so the name
//! never makes a digest depend on the folder.
//!
//! - **buildah, podman**: each parent's OCI archive is converted natively to a
//!   docker-archive whose only tag is that name and pulled (`buildah pull
//!   docker-archive:…`); the build runs with `--pull=never` and is committed straight to
//!   `oci-archive:<work>/image.tar` (`-t` accepts a transport). The step's names are
//!   removed afterwards. Rejected alternative: `FROM oci-archive:/…/image.tar` works in
//!   buildah 1.28, but libimage names the pulled image after the archive's
//!   `org.opencontainers.image.ref.name` (`localhost/base:1` for both platforms) and then
//!   looks it up by that name, so two platforms built at once race; the end-to-end test
//!   caught podman failing with "locating pulled image localhost/base:1 … image not known".
//! - **docker** (buildx, engine BuildKit, classic): the same docker-archive is `docker
//!   load`ed (Docker 20.10 cannot load OCI archives); the build is tagged with another
//!   step-unique name, `docker save`d and converted back to an OCI archive natively. The
//!   engine's BuildKit also checks that a local image's platform matches `--platform`;
//!   the classic builder does not, which the unique names make moot.
//! - **buildkit** (`buildctl`): no rewrite and no store; each parent archive is unpacked to
//!   an OCI layout directory and passed as a named context
//!   (`--oci-layout parent0=DIR --opt context:base:1=oci-layout://parent0@sha256:…`), and
//!   the result is exported with `--output type=oci`. The named context needs the
//!   parent's manifest digest, which is why [`Builder::plan`] takes the parents' digests.
//!
//! Outputs are written to the work directory and renamed into place only when complete,
//! so an interrupted build never leaves a complete-looking `image.tar`.

pub mod archive_write;
pub mod atomic;
pub mod backend;
pub mod binfmt;
pub mod cache;
pub mod detect;
pub mod docker_archive;
pub mod execute;
pub mod layout;
pub mod leftovers;
mod parent_names;
pub mod progress;
pub mod rewrite;
pub mod scheduler;
pub mod settings;
pub mod step;

/// The process runner is `im_process`'s; `crate::command` stays a path to its commands.
pub use im_process::command;
pub use im_process::{CancelToken, CommandSpec, RunError, run};

pub use archive_write::ArchiveError;
pub use backend::{
    Builder, BuilderKind, BuilderSettings, Prepare, StepPlan, ToolOutput, builder_for,
};
pub use binfmt::{PlatformSupportError, check_runnable};
pub use cache::{CacheError, S3Credentials, StepCache};
pub use detect::{DetectError, SystemLookup, ToolLookup, detect};
pub use execute::{BuildError, BuildOutput, execute_step};
pub use im_oci::{ArchiveImage, OciArchive};
pub use im_oci::{Platform, PlatformParseError};
pub use layout::{MultiPlatformLayout, write_multi_platform_layout};
pub use scheduler::{Dag, DagError, Event, NodeOutcome, ScheduleOptions, schedule};
pub use settings::{BackendChoice, DockerFlavor};
pub use step::{BuildStep, Parent, PullPolicy};
