//! The `cst` driver: runs the real container-structure-test binary and reads its JSON report,
//! for users who want exactly its behaviour.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use im_oci::Platform;
use serde::Deserialize;

use crate::report::{Failure, TestKind, TestResult};
use im_process::{CommandSpec, Run, RunError, argv, tail};

/// Which container-structure-test driver to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CstBackend {
    /// `--driver docker`: the image must be loaded into the daemon (`image` is its name).
    Docker,
    /// `--driver tar`: `image` is the tar path.
    Tar,
}

/// How to call container-structure-test.
#[derive(Debug)]
pub struct CstDriver {
    pub program: PathBuf,
    pub backend: CstBackend,
    /// The environment of every run (with the program: the spec each run starts from).
    tool: CommandSpec,
    /// Receives every run and its output.
    log: Option<PathBuf>,
}

/// container-structure-test failed to produce a report.
#[derive(Debug, thiserror::Error)]
pub enum CstError {
    #[error(transparent)]
    Process(#[from] RunError),
    #[error("container-structure-test printed no JSON report (exit {status}): {stderr_tail}")]
    NoReport { status: String, stderr_tail: String },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CstReport {
    #[serde(default)]
    results: Vec<CstResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CstResult {
    name: String,
    pass: bool,
    #[serde(default)]
    errors: Vec<String>,
    #[serde(default)]
    duration: u64,
    #[serde(default)]
    stdout: Option<String>,
    #[serde(default)]
    stderr: Option<String>,
}

/// Splits container-structure-test's `Kind: name` result names.
fn kind_and_name(full: &str) -> (TestKind, String) {
    for kind in [
        TestKind::Command,
        TestKind::FileExistence,
        TestKind::FileContent,
        TestKind::Metadata,
        TestKind::License,
    ] {
        if let Some(rest) = full.strip_prefix(kind.label()) {
            return (kind, rest.strip_prefix(": ").unwrap_or(rest).to_owned());
        }
    }
    (TestKind::Command, full.to_owned())
}

impl CstDriver {
    /// `env` is given to the program (for example `DOCKER_HOST`); `log` gets its output.
    pub fn new(
        program: PathBuf,
        backend: CstBackend,
        env: Vec<(OsString, OsString)>,
        log: Option<PathBuf>,
    ) -> Self {
        Self {
            tool: CommandSpec::new(&program).envs(env),
            program,
            backend,
            log,
        }
    }

    /// Runs `config` against `image` (a tar path for [`CstBackend::Tar`], a daemon image
    /// name for [`CstBackend::Docker`]).
    pub fn run(
        &self,
        config: &Path,
        image: &str,
        platform: Option<&Platform>,
    ) -> Result<Vec<TestResult>, CstError> {
        let driver = match self.backend {
            CstBackend::Docker => "docker",
            CstBackend::Tar => "tar",
        };
        let mut args = argv([
            "test",
            "--driver",
            driver,
            "--output",
            "json",
            "--no-color",
            "--image",
            image,
            "--config",
        ]);
        args.push(config.as_os_str().to_owned());
        if let Some(platform) = platform {
            args.extend(argv(["--platform".to_owned(), platform.to_string()]));
        }
        let command = self.tool.clone().args(args);
        let output = Run::new(&command).capture(self.log.as_deref())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = stdout
            .lines()
            .find_map(|line| serde_json::from_str::<CstReport>(line.trim()).ok())
            .ok_or_else(|| CstError::NoReport {
                status: output.status.to_string(),
                stderr_tail: tail(&String::from_utf8_lossy(&output.stderr), 10),
            })?;
        Ok(report
            .results
            .into_iter()
            .map(|r| {
                let (kind, name) = kind_and_name(&r.name);
                let mut result = TestResult::new(kind, &name);
                result.pass = r.pass;
                result.duration = Duration::from_nanos(r.duration);
                result.failures = r.errors.into_iter().map(Failure::new).collect();
                result.stdout = r.stdout;
                result.stderr = r.stderr;
                result
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_names_split_into_kind_and_name() {
        assert_eq!(
            kind_and_name("File Existence Test: sh"),
            (TestKind::FileExistence, "sh".into())
        );
        assert_eq!(
            kind_and_name("Metadata Test"),
            (TestKind::Metadata, String::new())
        );
        assert_eq!(
            TestResult::new(TestKind::Metadata, "").name,
            "Metadata Test",
            "named as container-structure-test names it"
        );
        assert_eq!(
            kind_and_name("Command Test: a: b"),
            (TestKind::Command, "a: b".into())
        );
    }
}
