//! The generate stamp: a fingerprint of every input `generate` reads, kept in `dist/` so a
//! rerun with nothing changed can stop after a few thousand `stat` calls instead of rendering
//! and comparing every output.
//!
//! The fingerprint covers `.image-manager.yml`, everything under `images/` and `templates/`
//! (path, type, size, modification and change times in nanoseconds, inode, mode, symlink
//! target and, for links, the same of the file they reach — the identity git's index
//! trusts), and a caller-supplied string (the binary's version, `--snapshot-id`, the expanded settings). The stamp also lists the tag folders it
//! produced; if any of them lost its Dockerfile, the stamp is not current. The stamp is
//! removed before any write to `dist/` starts (`dist::write` does it) and recorded
//! only after a full `generate` finished, so an interrupted generate, or a `build` that
//! rendered with other settings, always leads to a full run.
//!
//! Per tag folder the stamp keeps a hash of what was written there ([`output_hash`]): when
//! one template changes, the next generate renders everything but leaves alone, without
//! reading them, the folders whose content is the same as when the stamp was recorded.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use crate::layout::STAMP_FILE;
use crate::layout::{DOCKERIGNORE, INDEX_FILE};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub fingerprint: String,
    pub images: usize,
    /// `name/tag` of every tag folder written → [`output_hash`] of its content.
    pub tags: BTreeMap<String, String>,
    /// Some image follows a branch of an external repository (`source:`): an input the
    /// fingerprint cannot see, so the stamp never says "nothing changed" (its tag hashes
    /// still spare unchanged folders).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub follows_branches: bool,
}

/// A hash of everything generate writes into a tag's folder: the Dockerfile, the test config,
/// and the rootfs overlay ([`crate::rootfs::Overlay::identity`]).
pub fn output_hash(rendered: &crate::RenderedTag) -> String {
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"image-manager tag output v1");
    field(DOCKERIGNORE.as_bytes());
    field(rendered.dockerfile.as_bytes());
    match &rendered.test {
        Some((text, _)) => field(text.as_bytes()),
        None => field(b"(no test config)"),
    }
    if rendered.overlay.has_content() {
        field(rendered.overlay.identity().as_bytes());
    }
    // 128 bits: the stamp holds one per tag.
    hex::encode(&hasher.finalize()[..16])
}

/// The fingerprint of the project's inputs at `root`.
pub fn fingerprint(root: &Path, extra: &str) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(extra.as_bytes());
    hasher.update(b"\0");
    let mut add = |relative: &str, meta: &std::fs::Metadata, target: Option<&Path>| {
        let line = format!(
            "{relative}\0{:o}\0{}\0{}.{}\0{}.{}\0{}\0{}\n",
            meta.mode(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
            meta.ino(),
            target.map(|t| t.display().to_string()).unwrap_or_default()
        );
        hasher.update(line.as_bytes());
    };
    let settings = root.join(im_project::settings::SETTINGS_FILE);
    if let Ok(meta) = fs_err::symlink_metadata(&settings) {
        add(im_project::settings::SETTINGS_FILE, &meta, None);
    }
    if let Ok(meta) = fs_err::metadata(&settings) {
        add("\0->", &meta, None);
    }
    for folder in [im_project::model::IMAGES_DIR, "templates"] {
        let base = root.join(folder);
        if !base.exists() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(io::Error::other)?;
            let meta = entry.metadata().map_err(io::Error::other)?;
            let target = if entry.file_type().is_symlink() {
                Some(fs_err::read_link(entry.path())?)
            } else {
                None
            };
            let relative = entry
                .path()
                .strip_prefix(root)
                .unwrap_or(entry.path())
                .to_string_lossy()
                .into_owned();
            add(&relative, &meta, target.as_deref());
            // A followed link (an `image.yml` or a template) is read through: its target counts.
            if target.is_some()
                && let Ok(followed) = fs_err::metadata(entry.path())
            {
                add(&format!("{relative}\0->"), &followed, None);
            }
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `name/tag` → [`output_hash`] of every rendered tag, for [`Stamp::tags`].
pub fn outputs(rendered: &[crate::RenderedTag]) -> BTreeMap<String, String> {
    use rayon::prelude::*;
    rendered
        .par_iter()
        .map(|tag| (format!("{}/{}", tag.image, tag.tag), output_hash(tag)))
        .collect()
}

/// The stamp in `dist`, whatever its fingerprint, if there is a readable one.
pub fn read(dist: &Path) -> Option<Stamp> {
    let text = fs_err::read_to_string(dist.join(STAMP_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The stamp in `dist`, if it matches `fingerprint` and every tag folder it lists still has
/// its Dockerfile.
pub fn current(dist: &Path, fingerprint: &str) -> Option<Stamp> {
    read(dist).filter(|stamp| stamp.is_current(dist, fingerprint))
}

impl Stamp {
    /// Whether it matches `fingerprint` and every tag folder it lists in `dist` still has its
    /// Dockerfile (and the index is there).
    pub fn is_current(&self, dist: &Path, fingerprint: &str) -> bool {
        self.fingerprint == fingerprint
            && !self.follows_branches
            && dist.join(INDEX_FILE).is_file()
            && self
                .tags
                .keys()
                .all(|tag| dist.join(tag).join("Dockerfile").is_file())
    }
}

/// Removes the stamp (before any write to `dist/`).
pub fn clear(dist: &Path) -> io::Result<()> {
    crate::output::remove_if_exists(&dist.join(STAMP_FILE)).map(|_| ())
}

/// Records the stamp (after a full write finished).
pub fn record(dist: &Path, stamp: &Stamp) -> io::Result<()> {
    let json = serde_json::to_vec(stamp).map_err(io::Error::other)?;
    crate::output::write_atomic(&dist.join(STAMP_FILE), &json, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_every_input_and_the_stamp_checks_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("images/a/rootfs")).unwrap();
        fs_err::write(root.join("images/a/image.yml"), "tags: [1]\n").unwrap();
        let first = fingerprint(root, "v1").unwrap();
        assert_eq!(fingerprint(root, "v1").unwrap(), first);
        assert_ne!(
            fingerprint(root, "v2").unwrap(),
            first,
            "the extra string counts"
        );
        fs_err::write(root.join("images/a/rootfs/new"), "x").unwrap();
        let second = fingerprint(root, "v1").unwrap();
        assert_ne!(second, first, "a new rootfs file counts");
        fs_err::write(root.join("images/a/image.yml"), "tags: [2]\n").unwrap();
        assert_ne!(
            fingerprint(root, "v1").unwrap(),
            second,
            "an edit counts, even of the same size"
        );

        let dist = root.join("dist");
        fs_err::create_dir_all(dist.join("a/1")).unwrap();
        fs_err::write(dist.join("a/1/Dockerfile"), "FROM x\n").unwrap();
        fs_err::write(dist.join("index.json"), "{}").unwrap();
        let stamp = Stamp {
            fingerprint: "f".into(),
            images: 1,
            tags: BTreeMap::from([("a/1".into(), "h".into())]),
            follows_branches: false,
        };
        record(&dist, &stamp).unwrap();
        assert_eq!(current(&dist, "f"), Some(stamp));
        assert_eq!(current(&dist, "g"), None);
        fs_err::remove_file(dist.join("a/1/Dockerfile")).unwrap();
        assert_eq!(current(&dist, "f"), None, "a deleted output makes it stale");
        clear(&dist).unwrap();
        assert!(!dist.join(STAMP_FILE).exists());
    }

    #[test]
    fn an_edit_to_the_file_a_link_reaches_counts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs_err::create_dir_all(root.join("images/a")).unwrap();
        fs_err::write(root.join("shared.yml"), "tags: [1]\n").unwrap();
        std::os::unix::fs::symlink("../../shared.yml", root.join("images/a/image.yml")).unwrap();
        let first = fingerprint(root, "v1").unwrap();
        fs_err::write(root.join("shared.yml"), "tags: [2]\n").unwrap();
        assert_ne!(fingerprint(root, "v1").unwrap(), first);
    }
}
