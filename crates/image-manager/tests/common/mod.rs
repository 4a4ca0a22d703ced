//! What the end-to-end test files of the `image-manager` binary share.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::Path;

/// What one run of the binary gave.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What one finished run gave.
    pub fn of(output: &std::process::Output) -> Self {
        Self {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Writes `text` to `path`, making its folder first.
pub fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// `text` as JSON; the text is shown if it is not.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

/// Runs the binary on the project at `root` with `args` and exactly the extra `env`.
pub fn run_cli(
    root: &Path,
    args: &[&str],
    env: &std::collections::BTreeMap<String, String>,
) -> Run {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(root)
        .args(args)
        .envs(env)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    Run::of(&output)
}

/// `run` when it succeeded; a panic showing both streams otherwise.
pub fn succeeded(run: Run, args: &[&str]) -> Run {
    assert_eq!(
        run.status, 0,
        "image-manager {args:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run
}
