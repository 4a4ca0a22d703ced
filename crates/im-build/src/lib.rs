//! The execution layer of `image-manager build`: what runs one plan step and what
//! schedules many.
//!
//! The plan is computed elsewhere and handed here as data ([`BuildStep`]). A [`Builder`]
//! turns a step into a [`StepPlan`] (files to prepare, exact argv and environment of
//! every command, where the tool leaves the image) as a pure function, so plans can be
//! printed and snapshot-tested without a daemon; [`execute_step`] carries a plan out with
//! the process [`runner`], writing the step's OCI archive atomically; the [`scheduler`]
//! runs a DAG of steps on worker threads.
//!
//! # How a dependent image finds the parent that was just built
//!
//! No registry is involved, and several builds (two platforms of one tag, or two tags on
//! one parent) may run at once, so a parent is never made visible under a shared name in
//! a shared store. Instead every step builds from a copy of its Dockerfile (in the step's
//! work directory) whose references to managed parents are rewritten
//! ([`rewrite::rewrite_parents`]):
//!
//! - **buildah, podman**: `FROM base:1` becomes `FROM oci-archive:/abs/base/linux-arm64/image.tar`
//!   (also in `COPY --from` and `RUN --mount=from=`). Both tools read the archive through
//!   the containers/image transport, so the parent is exactly the file the plan names, for
//!   exactly that platform, with no name in any store to race on. The result is committed
//!   straight to `oci-archive:<work>/image.tar` (`-t` accepts a transport), so nothing is
//!   tagged in the store either.
//! - **docker** (buildx, engine BuildKit, classic): Docker 20.10 can neither read nor
//!   write OCI archives, so each parent archive is converted natively to a docker-archive
//!   whose only tag is unique to the consuming step
//!   (`localhost/im-build/<node>-<hash of the output path>:<platform>-parent-<n>`) and
//!   `docker load`ed; the Dockerfile copy names that tag. The build is tagged with another
//!   step-unique name, `docker save`d and converted back to an OCI archive natively; the
//!   step's tags are removed afterwards. Engine BuildKit also checks that a local image's
//!   platform matches `--platform`.
//! - **buildkit** (`buildctl`): no rewrite; each parent archive is unpacked to an OCI
//!   layout directory and passed as a named context
//!   (`--oci-layout parent0=DIR --opt context:base:1=oci-layout://parent0@sha256:…`), and
//!   the result is exported with `--output type=oci`. This needs the parent's manifest
//!   digest, which is why [`Builder::plan`] takes the parents' digests.
//!
//! Outputs are written to the work directory and renamed into place only when complete,
//! so an interrupted build never leaves a complete-looking `image.tar`.

pub mod atomic;
pub mod backend;
pub mod command;
pub mod detect;
pub mod docker_archive;
pub mod execute;
pub mod layout;
pub mod oci_archive;
pub mod platform;
pub mod progress;
pub mod rewrite;
pub mod runner;
pub mod scheduler;
pub mod step;

pub use backend::{
    Builder, BuilderKind, BuilderSettings, Prepare, StepPlan, ToolOutput, builder_for,
};
pub use command::CommandSpec;
pub use detect::{BackendChoice, DetectError, DockerFlavor, SystemLookup, ToolLookup, detect};
pub use execute::{BuildError, BuildOutput, execute_step};
pub use layout::{MultiPlatformLayout, write_multi_platform_layout};
pub use oci_archive::{ArchiveError, ArchiveImage, OciArchive};
pub use platform::{Platform, PlatformParseError, PlatformSupportError};
pub use runner::{CancelToken, RunError, run};
pub use scheduler::{Dag, DagError, Event, NodeOutcome, ScheduleOptions, schedule};
pub use step::{BuildStep, Parent, PullPolicy};
