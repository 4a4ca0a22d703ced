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

/// Writes `text` to `path`, making its folder first.
pub fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

/// `text` as JSON; the text is shown if it is not.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}
