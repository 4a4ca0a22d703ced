//! Writing files so that nothing is ever half-written: a temp file in the same folder, then
//! a rename. Files whose content did not change are not touched.

use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The mode of every folder written into `dist/`, whatever the umask of whoever ran
/// `generate`: `COPY rootfs/ /` carries folder modes into images, so builds must not depend
/// on it. (Files keep the mode of their source.)
pub const FOLDER_MODE: u32 = 0o755;

/// Gives the folder `path` [`FOLDER_MODE`] unless it has it. Returns whether it changed.
pub fn set_folder_mode(path: &Path) -> io::Result<bool> {
    let mode = fs_err::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if mode == FOLDER_MODE {
        return Ok(false);
    }
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(FOLDER_MODE))?;
    Ok(true)
}

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
    // Never blocks on a FIFO or follows a link someone left in `dist/`: anything but a
    // regular file with the same content is replaced.
    match im_input::read_bytes_nofollow(path) {
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

/// A folder addressed by a descriptor: entries are created (or looked up) relative to it, so
/// the kernel walks a short relative path instead of the whole path from the project root for
/// each of the hundreds of thousands of entries a large project has.
pub struct OpenDir {
    fd: rustix::fd::OwnedFd,
    path: PathBuf,
}

impl OpenDir {
    /// Opens the existing folder `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| with_path(&errno.into(), "opening", path))?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `relative` is a regular file (symlinks are not followed).
    pub fn is_file(&self, relative: &Path) -> bool {
        rustix::fs::statat(&self.fd, relative, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok_and(
            |stat| {
                rustix::fs::FileType::from_raw_mode(stat.st_mode)
                    == rustix::fs::FileType::RegularFile
            },
        )
    }

    fn fail(&self, error: rustix::io::Errno, what: &str, relative: &Path) -> io::Error {
        with_path(&error.into(), what, &self.path.join(relative))
    }

    /// Creates the folder `relative`, whose parent exists, with [`FOLDER_MODE`] (set after
    /// creation, since `mkdir` applies the umask).
    pub fn mkdir(&self, relative: &Path) -> io::Result<()> {
        let mode = rustix::fs::Mode::from_raw_mode(FOLDER_MODE);
        rustix::fs::mkdirat(&self.fd, relative, mode)
            .map_err(|e| self.fail(e, "creating folder", relative))?;
        // Only a umask that takes bits of FOLDER_MODE away needs the second call: a cold
        // generate makes 300,000 folders, and a chmod each cost 20 % of its time.
        if umask_strips(FOLDER_MODE) {
            rustix::fs::chmodat(&self.fd, relative, mode, rustix::fs::AtFlags::empty())
                .map_err(|e| self.fail(e, "setting the mode of", relative))?;
        }
        Ok(())
    }

    /// Creates the file `relative`, which must not exist, with `content`; with `mode` and
    /// `mtime` (seconds, nanoseconds) set exactly when given (without a mode, the umask applies
    /// as for any new file).
    pub fn write_new(
        &self,
        relative: &Path,
        content: &[u8],
        mode: Option<u32>,
        mtime: Option<(i64, i64)>,
    ) -> io::Result<()> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::openat(
            &self.fd,
            relative,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode.unwrap_or(0o666)),
        )
        .map_err(|e| self.fail(e, "creating", relative))?;
        let mut rest = content;
        while !rest.is_empty() {
            match rustix::io::write(&fd, rest) {
                Ok(0) => return Err(self.fail(rustix::io::Errno::IO, "writing", relative)),
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(self.fail(e, "writing", relative)),
            }
        }
        if let Some(mode) = mode {
            // The umask may have taken bits away at creation.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| self.fail(e, "setting the mode of", relative))?;
        }
        if let Some((seconds, nanos)) = mtime {
            let times = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_OMIT,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: seconds,
                    tv_nsec: nanos,
                },
            };
            rustix::fs::futimens(&fd, &times)
                .map_err(|e| self.fail(e, "setting the time of", relative))?;
        }
        Ok(())
    }

    /// Makes `relative` a hard link to the existing file `existing`.
    pub fn hard_link(&self, existing: &Path, relative: &Path) -> io::Result<()> {
        rustix::fs::linkat(
            rustix::fs::CWD,
            existing,
            &self.fd,
            relative,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(|e| self.fail(e, "linking", relative))
    }

    /// Creates the symlink `relative` pointing at `target`.
    pub fn symlink(&self, target: &Path, relative: &Path) -> io::Result<()> {
        rustix::fs::symlinkat(target, &self.fd, relative)
            .map_err(|e| self.fail(e, "creating symlink", relative))
    }
}

fn with_path(error: &io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{error} ({what} {})", path.display()))
}

/// Whether the process's umask takes any bit of `mode` away. The umask is read once, from
/// `/proc/self/status` (setting it to read it back would race with other threads creating
/// files); when it cannot be read, assume it does.
fn umask_strips(mode: u32) -> bool {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    let umask = UMASK.get_or_init(|| {
        let status = fs_err::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    });
    umask.is_none_or(|umask| umask & mode != 0)
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
