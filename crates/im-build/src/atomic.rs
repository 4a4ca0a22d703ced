//! Atomic file creation: content goes to a temp file in the destination's directory and
//! is renamed over the destination only once complete, so a reader (or a later run after
//! an interruption) never sees a partial file under the final name.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why an atomic write failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}")]
pub struct AtomicWriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Creates `dest` from what `write` writes. On error the temp file is removed and `dest`
/// is left as it was.
pub fn write_atomically<T, E>(
    dest: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<AtomicWriteError>,
{
    let err = |source| AtomicWriteError {
        path: dest.to_owned(),
        source,
    };
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(err)?;
    let name = dest
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(err)?;
    let value = {
        let mut out = BufWriter::new(temp.as_file());
        let value = write(&mut out)?;
        out.flush().map_err(err)?;
        value
    };
    temp.as_file().sync_all().map_err(err)?;
    temp.persist(dest).map_err(|e| err(e.error))?;
    Ok(value)
}

/// Moves a finished file into place (same file system), replacing `dest`.
pub fn rename_into_place(from: &Path, dest: &Path) -> Result<(), AtomicWriteError> {
    fs_err::rename(from, dest).map_err(|source| AtomicWriteError {
        path: dest.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_neither_the_destination_nor_a_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.tar");
        let r: Result<(), AtomicWriteError> = write_atomically(&dest, |out| {
            out.write_all(b"partial").unwrap();
            Err(AtomicWriteError {
                path: dest.clone(),
                source: io::Error::other("interrupted"),
            })
        });
        assert!(r.is_err());
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_complete_write_replaces_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("image.tar");
        fs_err::write(&dest, b"old").unwrap();
        write_atomically::<_, AtomicWriteError>(&dest, |out| {
            out.write_all(b"new").map_err(|source| AtomicWriteError {
                path: dest.clone(),
                source,
            })
        })
        .unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), b"new");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }
}
