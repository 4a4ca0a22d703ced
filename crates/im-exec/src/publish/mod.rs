//! Publishing: jobs per image tag, pushing them from `dist/`, the registry side of `build
//! --push` (skip what the registry holds, push after the build), and what each tag did.

pub mod gate;
pub mod jobs;
pub mod ops;
pub mod push;
pub mod report;
pub mod revision;
pub mod sign;

pub use gate::{BuildPush, after_build, before_build, mark_registry_keys, released_tags};
pub use jobs::{TagJob, jobs_from_nodes, published_tag, select_jobs};
pub use push::{local_jobs, publish};
pub use report::{Report, Result_, TagReport, short_digest};
