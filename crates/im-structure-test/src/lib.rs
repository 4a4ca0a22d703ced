//! container-structure-test–compatible image tests, daemonless where possible.
//!
//! [`load_config`] reads a test file strictly (unknown keys are errors with `file:line`).
//! [`run_suite`] / [`run_all`] test images with a [`Driver`]: file, content, metadata and
//! license tests natively on the image's flattened filesystem ([`im_oci`]), command tests
//! through a real [`Runtime`] (Docker, podman, buildah), or everything through the real
//! container-structure-test ([`CstDriver`]). Results come back as a [`Report`], which writes
//! JSON ([`Report::to_json`]) and JUnit XML ([`Report::to_junit`]).
//!
//! Regex, environment-substitution and permission-string rules are container-structure-
//! test's (Go's); see [`goregex`], [`expand`] and [`filemode`] for where they differ.

pub mod archive;
pub mod command;
pub mod config;
pub mod cst;
pub mod expand;
pub mod filemode;
pub mod goregex;
pub mod metadata;
pub mod native;
pub mod report;
pub mod runtime;
pub mod suite;

pub use config::{ConfigError, TestConfig, load_config, parse_config};
pub use cst::{CstBackend, CstDriver};
pub use report::{Failure, ImageReport, Report, TestKind, TestResult};
pub use runtime::{CliRuntime, Runtime, RuntimeKind};
pub use suite::{
    DEFAULT_COMMAND_TIMEOUT, Driver, ImageSource, Job, SuiteOptions, Target, run_all, run_suite,
};
