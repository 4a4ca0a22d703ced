//! CI pipelines from the image graph (`image-manager generate-ci`): one job per node whose
//! `needs` are exactly its parents' jobs, then per image tag a manifest, a test and a promote
//! job, as a GitLab CI file or a GitHub Actions workflow; for graphs too large to commit that
//! way, a small pipeline whose first job generates the jobs at pipeline time (a GitLab child
//! pipeline, GitHub matrices per graph level). Pure: the binary hands in the tags and
//! settings, and writes what comes back. Same input, same bytes. [`template`] is what a
//! custom pipeline template sees.

pub mod dynamic;
pub mod graph;
pub mod levels;
pub mod pipeline;
pub mod provider;
pub mod template;
pub mod yaml;

pub use graph::{Job, JobGraph, JobKind, NodeEntry, Options, Tag, job_graph};
pub use pipeline::{Generated, Limit, Request, Shape, generate};
pub use provider::{Provider, Settings, github, gitlab};
