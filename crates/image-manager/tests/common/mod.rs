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

    /// The run, which must have exited 0 (else a panic shows `args` and both outputs).
    pub fn succeeded(self, args: &[&str]) -> Self {
        assert_eq!(
            self.status, 0,
            "image-manager {args:?}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
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
