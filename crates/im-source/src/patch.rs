//! Patch files applied to a checkout with `git apply`. When a hunk does not apply, the error
//! points at that hunk's `@@` line in the patch file (git names the file and the line the hunk
//! expected); a file the patch expects and the checkout lacks points at its `---` line.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use im_diag::{Diagnostic, Location};

use crate::git;

/// A patch file as read.
#[derive(Debug, Clone)]
pub struct Patch {
    /// Absolute.
    pub path: PathBuf,
    /// As shown to the user (relative to the project).
    pub display: String,
    pub text: String,
}

/// A patch that did not apply.
#[derive(Debug, thiserror::Error)]
#[error("{display}: {message}")]
pub struct PatchError {
    pub display: String,
    pub text: String,
    /// The patch file's line of the hunk (or file header) that failed, when git named one.
    pub line: Option<usize>,
    /// git's words.
    pub message: String,
}

impl PatchError {
    /// The error at the failing hunk of the patch file.
    pub fn diagnostic(&self) -> Diagnostic {
        let diagnostic = Diagnostic::error(format!("the patch does not apply: {}", self.message))
            .with_help("refresh the patch against the upstream commit (`git format-patch` in a clone at that commit), or pin `ref:` to the commit it was written for");
        match self.line {
            Some(line) => {
                let len = self
                    .text
                    .lines()
                    .nth(line - 1)
                    .map_or(1, |l| l.chars().count());
                diagnostic.at(Location::in_source(
                    Path::new(&self.display),
                    &self.text,
                    line,
                    1,
                    len,
                ))
            }
            None => diagnostic.at(Location::file(Path::new(&self.display))),
        }
    }
}

/// Applies `patch` to the files under `tree` (`git_dir` is any repository: `git apply`
/// without `--index` only reads and writes the work tree, and naming one keeps git from
/// taking a repository around `tree` as the root paths are relative to).
pub fn apply(git_dir: &Path, tree: &Path, patch: &Patch) -> Result<(), PatchError> {
    let git_dir_arg = prefixed("--git-dir=", git_dir);
    let work_tree = prefixed("--work-tree=", tree);
    let args: [&OsStr; 6] = [
        &git_dir_arg,
        &work_tree,
        OsStr::new("apply"),
        OsStr::new("--whitespace=nowarn"),
        OsStr::new("--"),
        patch.path.as_os_str(),
    ];
    git::run(Some(tree), &args, &[]).map(drop).map_err(|error| {
        let stderr = match &error {
            im_process::RunError::Failed { stderr_tail, .. } => stderr_tail.join("\n"),
            other => other.to_string(),
        };
        let (line, message) = failure(&patch.text, &stderr);
        PatchError {
            display: patch.display.clone(),
            text: patch.text.clone(),
            line,
            message: message.unwrap_or_else(|| git::message(&error)),
        }
    })
}

fn prefixed(flag: &str, path: &Path) -> std::ffi::OsString {
    let mut arg = std::ffi::OsString::from(flag);
    arg.push(path.as_os_str());
    arg
}

/// From `git apply`'s stderr: the patch line of what failed, and what to say.
fn failure(text: &str, stderr: &str) -> (Option<usize>, Option<String>) {
    for line in stderr.lines() {
        let line = line.trim().trim_start_matches("error: ");
        if let Some(place) = line.strip_prefix("patch failed: ")
            && let Some((file, at)) = place.rsplit_once(':')
            && let Ok(at) = at.parse::<usize>()
        {
            return (
                hunk_line(text, file, at),
                Some(format!(
                    "the hunk at {file}:{at} does not match the upstream file"
                )),
            );
        }
        if let Some(file) = line
            .strip_suffix(": No such file or directory")
            .or_else(|| line.strip_suffix(": does not exist in index"))
        {
            return (
                file_line(text, file),
                Some(format!("{file} does not exist in the upstream repository")),
            );
        }
        if let Some(file) = line.strip_suffix(": already exists in working directory") {
            return (
                file_line(text, file),
                Some(format!("{file} already exists upstream")),
            );
        }
    }
    (None, None)
}

/// The paths a `--- a/x` / `+++ b/x` line names, without the `a/` / `b/` prefix.
fn header_path(line: &str) -> Option<&str> {
    let path = line
        .strip_prefix("--- ")
        .or_else(|| line.strip_prefix("+++ "))?;
    let path = path.split('\t').next().unwrap_or(path).trim_end();
    Some(
        path.strip_prefix("a/")
            .or_else(|| path.strip_prefix("b/"))
            .unwrap_or(path),
    )
}

/// The line (1-based) of the hunk of `file` whose old range starts at `start`; else the
/// file's first hunk.
pub fn hunk_line(text: &str, file: &str, start: usize) -> Option<usize> {
    let mut current: Option<&str> = None;
    let mut first = None;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with("--- ") || line.starts_with("+++ ") {
            if let Some(path) = header_path(line).filter(|p| *p != "/dev/null") {
                current = Some(path);
            }
            continue;
        }
        if current == Some(file)
            && let Some(range) = line.strip_prefix("@@ -")
        {
            first.get_or_insert(index + 1);
            let old = range.split([',', ' ']).next().unwrap_or_default();
            if old.parse::<usize>().ok() == Some(start) {
                return Some(index + 1);
            }
        }
    }
    first.or_else(|| file_line(text, file))
}

/// The line (1-based) of the `---` header that names `file`.
fn file_line(text: &str, file: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.starts_with("--- ") && header_path(line) == Some(file))
        .or_else(|| {
            text.lines()
                .position(|line| line.starts_with("+++ ") && header_path(line) == Some(file))
        })
        .map(|index| index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "From 1 Mon Sep 17 00:00:00 2001\nSubject: fix\n---\n\
diff --git a/app.txt b/app.txt\n--- a/app.txt\n+++ b/app.txt\n@@ -1,2 +1,2 @@\n-a\n+b\n c\n@@ -10,2 +10,2 @@\n-x\n+y\n z\n\
diff --git a/other b/other\n--- a/other\n+++ b/other\n@@ -3 +3 @@\n-q\n+r\n";

    #[test]
    fn failing_hunks_are_found_by_file_and_start() {
        assert_eq!(hunk_line(PATCH, "app.txt", 10), Some(11));
        assert_eq!(hunk_line(PATCH, "app.txt", 1), Some(7));
        assert_eq!(hunk_line(PATCH, "other", 3), Some(18));
        let (line, message) = failure(
            PATCH,
            "error: patch failed: app.txt:10\nerror: app.txt: patch does not apply",
        );
        assert_eq!(line, Some(11));
        assert!(message.unwrap().contains("app.txt:10"));
        let (line, _) = failure(PATCH, "error: other: No such file or directory");
        assert_eq!(line, Some(16));
    }
}
