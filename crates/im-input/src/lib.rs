//! Reading a project's input files — settings, image definitions, templates, rootfs files,
//! test configs — so that a hostile or broken input fails with an error that names the path
//! and the fix, never with a hang, a leak or a silently dropped file:
//!
//! - a file is opened with `O_NONBLOCK` and checked through the opened descriptor (`fstat`):
//!   a FIFO, socket, device or folder is refused without blocking in `open`, and what is read
//!   is exactly what was checked (no window between a `stat` and the `open`);
//! - [`Confined`] follows symlinks only to files inside the project: it checks the real path
//!   of the opened descriptor (`/proc/self/fd`), so a link to `/etc/passwd` is refused before
//!   a byte of it is read, whatever chain of links leads there;
//! - text inputs are read up to [`MAX_BYTES`] and must be UTF-8; both errors point at the
//!   line and column where the limit is crossed or the first invalid byte sits.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use im_diag::{Diagnostic, Location};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// The largest text input (a settings file, a definition, a template, a test config).
pub const MAX_BYTES: usize = 4 * 1024 * 1024;

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("does not exist")]
    Missing,
    #[error("is {kind}, not a regular file")]
    NotRegular { kind: &'static str },
    #[error("is a symlink loop (or a chain of too many links)")]
    Loop,
    #[error("is a link to {}, which does not exist", target.display())]
    BrokenLink { target: PathBuf },
    #[error("is a link to {}, outside the project", real.display())]
    Outside { real: PathBuf },
    #[error("is larger than {limit} bytes")]
    TooLarge { limit: usize, at: Position },
    #[error("is not valid UTF-8")]
    InvalidUtf8 { at: Position },
    #[error("cannot be read")]
    Io(#[source] io::Error),
}

/// A place in a file that failed a check, with the text of its line (lossy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    pub snippet: String,
}

impl Position {
    /// The line and column (counting characters) of byte `offset` in `bytes`.
    fn of(bytes: &[u8], offset: usize) -> Self {
        let offset = offset.min(bytes.len());
        let line_start = bytes[..offset]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line_end = bytes[offset..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| offset + i);
        // An error path: a plain count is fast enough.
        #[allow(clippy::naive_bytecount)]
        let line = 1 + bytes[..line_start].iter().filter(|&&b| b == b'\n').count();
        let column = 1 + String::from_utf8_lossy(&bytes[line_start..offset])
            .chars()
            .count();
        let snippet = String::from_utf8_lossy(&bytes[line_start..line_end])
            .trim_end_matches('\r')
            .to_owned();
        Self {
            line,
            column,
            snippet,
        }
    }
}

impl InputError {
    fn from_errno(errno: Errno) -> Self {
        match errno {
            Errno::NOENT | Errno::NOTDIR => InputError::Missing,
            Errno::LOOP => InputError::Loop,
            other => InputError::Io(other.into()),
        }
    }

    /// Whether the file is simply not there (optional inputs are skipped then).
    pub fn is_missing(&self) -> bool {
        matches!(self, InputError::Missing)
    }

    /// The error as a diagnostic about `display` (the path as the user should see it).
    pub fn diagnostic(&self, display: &Path) -> Diagnostic {
        let shown = im_diag::shown_path(display);
        match self {
            InputError::Missing => Diagnostic::error(format!("`{shown}` does not exist"))
                .at(Location::file(display))
                .with_help("create it, or fix the name that points at it"),
            InputError::NotRegular { kind } => Diagnostic::error(format!(
                "`{shown}` is {kind}; image-manager reads only regular files"
            ))
            .at(Location::file(display))
            .with_help("replace it with a regular file"),
            InputError::Loop => Diagnostic::error(format!(
                "`{shown}` is a symlink loop (or a chain of too many links)"
            ))
            .at(Location::file(display))
            .with_help(
                "point the link at a regular file inside the project, or replace it with the file",
            ),
            InputError::BrokenLink { target } => Diagnostic::error(format!(
                "`{shown}` is a link to `{}`, which does not exist",
                im_diag::shown_path(target)
            ))
            .at(Location::file(display))
            .with_help("fix the link, or replace it with the file"),
            InputError::Outside { real } => Diagnostic::error(format!(
                "`{shown}` is a link to `{}`, outside the project; it was not read",
                im_diag::shown_path(real)
            ))
            .at(Location::file(display))
            .with_help("copy the file into the project, or link to a file inside it"),
            InputError::TooLarge { limit, at } => Diagnostic::error(format!(
                "this file is larger than the {limit} bytes an input file may have"
            ))
            .at(at.location(display))
            .with_note(format!("the limit is crossed at line {}", at.line))
            .with_help("split it, or check that the right file is named"),
            InputError::InvalidUtf8 { at } => {
                Diagnostic::error("this file is not valid UTF-8 (the first invalid byte is marked)")
                    .at(at.location(display))
                    .with_help("save the file as UTF-8")
            }
            InputError::Io(error) => Diagnostic::error(format!("cannot read `{shown}`: {error}"))
                .at(Location::file(display))
                .with_help("check the file's permissions"),
        }
    }
}

impl Position {
    fn location(&self, display: &Path) -> Location {
        let mut location = Location::new(display, self.line, self.column);
        location.snippet = Some(self.snippet.clone());
        location
    }
}

fn kind_of(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Directory => "a folder",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        FileType::Symlink => "a symlink",
        _ => "not a regular file",
    }
}

/// Opens `path` for reading without blocking and checks, on the opened descriptor, that it is
/// a regular file. `follow`: whether a final symlink is followed.
fn open_regular(path: &Path, follow: bool) -> Result<(OwnedFd, u64), InputError> {
    let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|errno| {
        // O_NOFOLLOW on a symlink fails with ELOOP: say what it is.
        if !follow && errno == Errno::LOOP {
            InputError::NotRegular { kind: "a symlink" }
        } else if let (Errno::NOENT, Ok(target)) = (errno, fs_err::read_link(path)) {
            InputError::BrokenLink { target }
        } else {
            InputError::from_errno(errno)
        }
    })?;
    let stat = rustix::fs::fstat(&fd).map_err(InputError::from_errno)?;
    let file_type = FileType::from_raw_mode(stat.st_mode);
    if file_type != FileType::RegularFile {
        return Err(InputError::NotRegular {
            kind: kind_of(file_type),
        });
    }
    Ok((fd, u64::try_from(stat.st_size).unwrap_or(0)))
}

/// Reads at most `limit + 1` bytes (or everything when `limit` is `None`), straight into the
/// result: room for the size `fstat` gave and one byte more, to see the end (or that the file
/// grew) without a second read buffer.
fn read_all(fd: impl AsFd, size: u64, limit: Option<usize>) -> Result<Vec<u8>, InputError> {
    let cap = limit.map_or(usize::MAX, |l| l.saturating_add(1));
    let hint = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut out = Vec::with_capacity(hint.min(cap));
    while out.len() < cap {
        if out.len() == out.capacity() {
            // Exact, so a read never goes past `cap`.
            out.reserve_exact((64 * 1024).min(cap - out.len()));
        }
        match rustix::io::read(&fd, rustix::buffer::spare_capacity(&mut out)) {
            Ok(0) => break,
            Ok(_) | Err(Errno::INTR) => {}
            Err(errno) => return Err(InputError::Io(errno.into())),
        }
    }
    Ok(out)
}

/// Checks the size limit and UTF-8 of a text input's bytes.
fn into_text(bytes: Vec<u8>, limit: usize) -> Result<String, InputError> {
    if bytes.len() > limit {
        return Err(InputError::TooLarge {
            limit,
            at: Position::of(&bytes, limit),
        });
    }
    String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        InputError::InvalidUtf8 {
            at: Position::of(error.as_bytes(), offset),
        }
    })
}

/// Reads a text input anywhere on the system (a `--config` file the user named): a regular
/// file, at most [`MAX_BYTES`], UTF-8. Symlinks are followed.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    let (fd, size) = open_regular(path, true)?;
    into_text(read_all(fd, size, Some(MAX_BYTES))?, MAX_BYTES)
}

/// Reads a file found by walking a folder without following links (a rootfs file): it must
/// still be a regular file, not a symlink, when it is opened. No size limit, any bytes.
pub fn read_bytes_nofollow(path: &Path) -> Result<Vec<u8>, InputError> {
    let (fd, size) = open_regular(path, false)?;
    read_all(fd, size, None)
}

/// Reads input files of one project: symlinks are followed only to files inside it.
#[derive(Debug, Clone)]
pub struct Confined {
    /// The project root with every symlink resolved.
    real_root: PathBuf,
}

impl Confined {
    /// For the project at `root`. If `root` cannot be resolved (it does not exist), it is
    /// taken as written: real paths never start with an unresolved path, so that refuses
    /// more, never less.
    pub fn new(root: &Path) -> Self {
        Self {
            real_root: fs_err::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    /// Reads a text input of the project: a regular file whose real path is inside the
    /// project, at most [`MAX_BYTES`], UTF-8.
    pub fn read_text(&self, path: &Path) -> Result<String, InputError> {
        let (fd, size) = open_regular(path, true)?;
        self.check_inside(path, &fd)?;
        into_text(read_all(fd, size, Some(MAX_BYTES))?, MAX_BYTES)
    }

    /// Whether there is something at `path` that [`Confined::read_text`] should look at: any
    /// entry but a folder, without following links or opening it. Discovery uses this, so a
    /// FIFO or a broken link is reported when it is read instead of being passed over.
    pub fn is_candidate(path: &Path) -> bool {
        fs_err::symlink_metadata(path).is_ok_and(|meta| !meta.is_dir())
    }

    /// Whether the opened `fd` (reached through `path`) is inside the project.
    fn check_inside(&self, path: &Path, fd: &OwnedFd) -> Result<(), InputError> {
        let real = match fs_err::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
            Ok(real) => real,
            // No /proc: resolve the name, and check it still names the opened file.
            Err(_) => {
                let real = fs_err::canonicalize(path).map_err(InputError::Io)?;
                let named = fs_err::metadata(&real).map_err(InputError::Io)?;
                let opened = rustix::fs::fstat(fd).map_err(InputError::from_errno)?;
                if named.dev() != opened.st_dev || named.ino() != opened.st_ino {
                    return Err(InputError::Io(io::Error::other(
                        "the file changed while it was opened",
                    )));
                }
                real
            }
        };
        if real.starts_with(&self.real_root) {
            Ok(())
        } else {
            Err(InputError::Outside { real })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    use super::*;

    fn project() -> (tempfile::TempDir, Confined) {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("images/a")).unwrap();
        let confined = Confined::new(dir.path());
        (dir, confined)
    }

    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }

    #[test]
    fn a_fifo_is_refused_at_once_instead_of_blocking() {
        let (dir, confined) = project();
        let fifo = dir.path().join("images/a/image.yml");
        mkfifo(&fifo);
        let started = Instant::now();
        let error = confined.read_text(&fifo).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            matches!(error, InputError::NotRegular { kind } if kind.contains("FIFO")),
            "{error:?}"
        );
        assert!(matches!(
            read_text(&fifo),
            Err(InputError::NotRegular { .. })
        ));
        let message = error
            .diagnostic(Path::new("images/a/image.yml"))
            .to_string();
        assert!(
            message.contains("`images/a/image.yml` is a FIFO"),
            "{message}"
        );
        assert!(message.contains("help: replace it"), "{message}");
    }

    #[test]
    fn links_inside_the_project_are_followed_and_the_rest_refused() {
        let (dir, confined) = project();
        let root = dir.path();
        fs_err::write(root.join("images/shared.yml"), "tags: [1]\n").unwrap();
        symlink("../shared.yml", root.join("images/a/inside.yml")).unwrap();
        assert_eq!(
            confined
                .read_text(&root.join("images/a/inside.yml"))
                .unwrap(),
            "tags: [1]\n"
        );
        symlink("/etc/passwd", root.join("images/a/passwd.yml")).unwrap();
        let error = confined
            .read_text(&root.join("images/a/passwd.yml"))
            .unwrap_err();
        assert!(
            matches!(&error, InputError::Outside { real } if real == Path::new("/etc/passwd")),
            "{error:?}"
        );
        let message = error
            .diagnostic(Path::new("images/a/passwd.yml"))
            .to_string();
        assert!(
            !message.contains("root:"),
            "no line of the target: {message}"
        );
        // Through a chain: inside → outside.
        symlink("passwd.yml", root.join("images/a/chain.yml")).unwrap();
        assert!(matches!(
            confined.read_text(&root.join("images/a/chain.yml")),
            Err(InputError::Outside { .. })
        ));
        symlink("loop.yml", root.join("images/a/loop.yml")).unwrap();
        assert!(matches!(
            confined.read_text(&root.join("images/a/loop.yml")),
            Err(InputError::Loop)
        ));
        symlink("nowhere", root.join("images/a/broken.yml")).unwrap();
        assert!(matches!(
            confined.read_text(&root.join("images/a/broken.yml")),
            Err(InputError::BrokenLink { target }) if target == Path::new("nowhere")
        ));
        assert!(Confined::is_candidate(&root.join("images/a/broken.yml")));
        assert!(!Confined::is_candidate(&root.join("images/a")));
        assert!(matches!(
            confined.read_text(&root.join("images/a")),
            Err(InputError::NotRegular { kind: "a folder" })
        ));
    }

    #[test]
    fn invalid_utf8_and_oversized_files_point_at_a_line() {
        let (dir, confined) = project();
        let path = dir.path().join("images/a/image.yml");
        fs_err::write(&path, b"tags: [1]\nname: ab\xffc\n").unwrap();
        let error = confined.read_text(&path).unwrap_err();
        let message = error.diagnostic(Path::new("image.yml")).to_string();
        assert!(message.contains("--> image.yml:2:9"), "{message}");
        assert!(message.contains("2 | name: ab\u{fffd}c"), "{message}");

        let mut big = b"tags: [1]\n".to_vec();
        big.extend(std::iter::repeat_n(b'#', MAX_BYTES));
        fs_err::write(&path, &big).unwrap();
        let error = confined.read_text(&path).unwrap_err();
        let message = error.diagnostic(Path::new("image.yml")).to_string();
        assert!(
            message.contains(&format!("--> image.yml:2:{}", MAX_BYTES - 10 + 1)),
            "{}",
            &message[..300]
        );
        assert!(message.len() < 2_000, "the snippet is cut");
    }

    #[test]
    fn rootfs_files_must_stay_regular_files() {
        let (dir, _) = project();
        let file = dir.path().join("f");
        fs_err::write(&file, b"\x00\x01").unwrap();
        assert_eq!(read_bytes_nofollow(&file).unwrap(), b"\x00\x01");
        symlink("f", dir.path().join("link")).unwrap();
        assert!(matches!(
            read_bytes_nofollow(&dir.path().join("link")),
            Err(InputError::NotRegular { kind: "a symlink" })
        ));
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        assert!(matches!(
            read_bytes_nofollow(&fifo),
            Err(InputError::NotRegular { .. })
        ));
    }
}
