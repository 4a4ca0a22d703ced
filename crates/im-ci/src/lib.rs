//! CI pipelines from the image graph (`image-manager generate-ci`): one job per node whose
//! `needs` are exactly its parents' jobs, then per image tag a manifest, a test and a promote
//! job, as a GitLab CI file or a GitHub Actions workflow. Pure: the binary hands in the tags
//! and settings, and writes what comes back. Same input, same bytes. [`template`] is what a
//! custom pipeline template sees.

pub mod graph;
pub mod provider;
pub mod template;
pub mod yaml;

pub use graph::{Job, JobGraph, JobKind, Options, Tag, job_graph};
pub use provider::{Provider, Settings, github, gitlab};
