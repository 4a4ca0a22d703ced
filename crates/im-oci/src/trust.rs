//! Blob digests recorded when an archive was written, trusted while the archive is still
//! that very file.
//!
//! Whoever writes an archive and knows its blobs' digests (a build that just exported the
//! image) calls [`record`]: it writes a small sidecar, `.<name>.digests.json` next to the
//! archive, holding the digests and the archive's identity (device, inode, size, modification
//! and change times, to the nanosecond). [`trusted`] returns those digests only while the
//! archive's identity is unchanged; any write, replacement or `touch` changes its change
//! time, and then nothing is trusted and every blob is verified again. Trust is as strong as
//! the folder the archive lives in: whoever may write there may write the sidecar too, as
//! they may rewrite the build ledger.
//!
//! A trusted layer is not hashed when read, and an uncompressed one is indexed by seeking
//! over file bodies ([`crate::Image::filesystem`]); its tar headers, paths, links and
//! limits are checked exactly as for any other layer.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

const MAX_SIDECAR_BYTES: u64 = 1 << 20;

/// What makes a file the same file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    fn of(path: &Path) -> io::Result<Self> {
        let meta = fs_err::metadata(path)?;
        Ok(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    archive: Identity,
    digests: Vec<String>,
}

/// The sidecar of `archive`: `.<file name>.digests.json` in the same folder.
pub fn sidecar(archive: &Path) -> PathBuf {
    let name = archive
        .file_name()
        .map_or_else(|| "archive".into(), |n| n.to_string_lossy().into_owned());
    archive.with_file_name(format!(".{name}.digests.json"))
}

/// Records that `archive`, as it is now, holds blobs with these `digests`. Written under a
/// temporary name and renamed, so a reader never sees half a record.
pub fn record(archive: &Path, digests: &[Digest]) -> io::Result<()> {
    let record = Record {
        archive: Identity::of(archive)?,
        digests: digests.iter().map(ToString::to_string).collect(),
    };
    let path = sidecar(archive);
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    fs_err::write(
        &partial,
        serde_json::to_vec(&record).map_err(io::Error::other)?,
    )?;
    fs_err::rename(&partial, &path)
}

/// The digests recorded for `archive`, if it is still the file they were recorded for;
/// empty otherwise (no sidecar, an unreadable one, or a changed archive).
pub fn trusted(archive: &Path) -> BTreeSet<Digest> {
    let load = || -> Option<BTreeSet<Digest>> {
        let path = sidecar(archive);
        // Only a small regular file: a FIFO or a device here must not block or flood us.
        let meta = fs_err::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_SIDECAR_BYTES {
            return None;
        }
        let bytes = fs_err::read(&path).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        (Identity::of(archive).ok()? == record.archive).then(|| {
            record
                .digests
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect()
        })
    };
    load().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    #[test]
    fn digests_are_trusted_until_the_archive_changes() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.tar");
        fs_err::write(&archive, b"first").unwrap();
        let digest = Digest::of_bytes(Algorithm::Sha256, b"layer");
        assert!(trusted(&archive).is_empty(), "nothing recorded yet");
        record(&archive, std::slice::from_ref(&digest)).unwrap();
        assert_eq!(trusted(&archive), BTreeSet::from([digest.clone()]));

        // Same size, same modification time, rewritten in place: the change time moves.
        let mtime = fs_err::metadata(&archive).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs_err::write(&archive, b"other").unwrap();
        fs_err::File::options()
            .write(true)
            .open(&archive)
            .unwrap()
            .file()
            .set_modified(mtime)
            .unwrap();
        assert!(
            trusted(&archive).is_empty(),
            "a rewritten archive is verified again"
        );

        record(&archive, std::slice::from_ref(&digest)).unwrap();
        let replacement = dir.path().join("new.tar");
        fs_err::write(&replacement, b"other").unwrap();
        fs_err::rename(&replacement, &archive).unwrap();
        assert!(
            trusted(&archive).is_empty(),
            "a replaced archive is verified again"
        );
    }

    #[test]
    fn a_sidecar_that_is_not_a_regular_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.tar");
        fs_err::write(&archive, b"x").unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(sidecar(&archive))
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            trusted(&archive).is_empty(),
            "returns at once, trusting nothing"
        );
    }

    #[test]
    fn a_garbled_sidecar_trusts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.tar");
        fs_err::write(&archive, b"x").unwrap();
        fs_err::write(sidecar(&archive), b"{not json").unwrap();
        assert!(trusted(&archive).is_empty());
    }
}
