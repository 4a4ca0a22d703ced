//! Writing files so that nothing is ever half-written: a temp file in the same folder, then
//! a rename. Files whose content did not change are not touched.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A hidden temp name next to `path`, unique within this process.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp-{}-{unique}", std::process::id()))
}

/// Writes `content` to `path` atomically, with `mode` and `mtime` when given.
pub fn write_atomic(
    path: &Path,
    content: &[u8],
    mode: Option<u32>,
    mtime: Option<(i64, i64)>,
) -> io::Result<()> {
    let temp = temp_name(path);
    let result = (|| {
        let mut file = fs_err::File::create(&temp)?;
        file.write_all(content)?;
        if let Some(mode) = mode {
            file.file()
                .set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        if let Some((seconds, nanos)) = mtime {
            let time =
                filetime::FileTime::from_unix_time(seconds, u32::try_from(nanos).unwrap_or(0));
            filetime::set_file_handle_times(file.file(), None, Some(time))?;
        }
        drop(file);
        fs_err::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    result
}

/// Writes `content` unless `path` already holds exactly it. Returns whether it wrote.
pub fn write_if_changed(path: &Path, content: &[u8]) -> io::Result<bool> {
    match fs_err::read(path) {
        Ok(existing) if existing == content => return Ok(false),
        _ => {}
    }
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    write_atomic(path, content, None, None)?;
    Ok(true)
}

/// Removes `path` if it is there. Returns whether it removed something.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs_err::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs_err::remove_dir_all(path).map(|()| true),
        Ok(_) => fs_err::remove_file(path).map(|()| true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_when_changed_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/Dockerfile");
        assert!(write_if_changed(&path, b"FROM a\n").unwrap());
        assert!(!write_if_changed(&path, b"FROM a\n").unwrap());
        assert!(write_if_changed(&path, b"FROM b\n").unwrap());
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "FROM b\n");
        let names: Vec<_> = fs_err::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["Dockerfile"]);
    }
}
