//! The `dist/` folder: `dist/<name>/<tag>/{Dockerfile,test.yml,rootfs/}` and `dist/index.json`.
//!
//! [`write`] writes only what changed, removes the folders of tags that no longer exist (as
//! listed by the previous `index.json`, so nothing it did not create is ever removed), and
//! writes `index.json` last.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::RenderedTag;
use crate::output::{remove_if_exists, write_if_changed};
use crate::rootfs::ContentCache;

/// The name of the index file in `dist/`.
pub const INDEX_FILE: &str = "index.json";

/// The `.dockerignore` written into every tag folder: only the Dockerfile and the rootfs are
/// build inputs (the test config and build outputs live next to them).
pub const DOCKERIGNORE: &str = "# Written by image-manager: only the Dockerfile and rootfs/ are build inputs.\n*\n!Dockerfile\n!rootfs\n";

/// Where each generated file came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TagSources {
    pub definition: String,
    pub dockerfile: String,
    /// `template` or `verbatim`.
    pub dockerfile_kind: String,
    pub test: Option<String>,
    pub rootfs: Vec<String>,
    pub rootfs_injected: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexTag {
    pub name: String,
    pub variant: Option<String>,
    pub base_tag: Option<String>,
    pub aliases: Vec<String>,
    pub platforms: Vec<String>,
    /// `dist/<name>/<tag>` relative to the project root.
    pub dir: String,
    /// Managed `image:tag` nodes this tag is built from.
    pub depends_on: Vec<String>,
    /// Unmanaged image references this tag uses.
    pub external: Vec<String>,
    pub sources: TagSources,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexImage {
    pub name: String,
    pub definitions: Vec<String>,
    pub aliases: BTreeMap<String, String>,
    pub tags: Vec<IndexTag>,
}

/// `dist/index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Index {
    pub version: u32,
    pub images: Vec<IndexImage>,
    /// `[from, to]`: `to` is built from `from`.
    pub edges: Vec<[String; 2]>,
    /// External base reference → the nodes that use it.
    pub external_bases: BTreeMap<String, Vec<String>>,
    /// Every node in build order.
    pub order: Vec<String>,
    pub snapshot_id: Option<String>,
}

/// What [`write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriteReport {
    /// Files written because they were new or changed.
    pub written: usize,
    /// Tags whose outputs were all up to date.
    pub unchanged_tags: usize,
    /// Tag folders removed because their tag no longer exists.
    pub removed: Vec<String>,
}

/// The folder of one tag.
pub fn tag_dir(dist: &Path, image: &str, tag: &str) -> PathBuf {
    dist.join(image).join(tag)
}

/// Reads the previous index, if there is a readable one.
pub fn read_index(dist: &Path) -> Option<Index> {
    let text = fs_err::read_to_string(dist.join(INDEX_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_tag(dist: &Path, rendered: &RenderedTag, cache: &ContentCache) -> io::Result<usize> {
    let dir = tag_dir(dist, &rendered.image, &rendered.tag);
    if fs_err::symlink_metadata(&dir).is_err() {
        return write_new_tag(&dir, rendered, cache);
    }
    let mut written = usize::from(write_if_changed(
        &dir.join("Dockerfile"),
        rendered.dockerfile.as_bytes(),
    )?);
    written += usize::from(write_if_changed(
        &dir.join(".dockerignore"),
        DOCKERIGNORE.as_bytes(),
    )?);
    written += match &rendered.test {
        Some((text, _)) => usize::from(write_if_changed(&dir.join("test.yml"), text.as_bytes())?),
        None => usize::from(remove_if_exists(&dir.join("test.yml"))?),
    };
    written += rendered.overlay.sync(&dir.join("rootfs"))?;
    Ok(written)
}

/// A tag folder that does not exist yet is staged next to its final place with plain writes
/// and renamed into place in one step: it either appears complete or not at all.
fn write_new_tag(dir: &Path, rendered: &RenderedTag, cache: &ContentCache) -> io::Result<usize> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.with_file_name(format!(".{name}.new-{}", std::process::id()));
    remove_if_exists(&staging)?;
    if let Some(parent) = staging.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let result = (|| {
        fs_err::create_dir(&staging)?;
        fs_err::write(staging.join("Dockerfile"), rendered.dockerfile.as_bytes())?;
        fs_err::write(staging.join(".dockerignore"), DOCKERIGNORE.as_bytes())?;
        let mut written = 2;
        if let Some((text, _)) = &rendered.test {
            fs_err::write(staging.join("test.yml"), text.as_bytes())?;
            written += 1;
        }
        written += rendered
            .overlay
            .write_fresh(&staging.join("rootfs"), cache)?;
        fs_err::rename(&staging, dir)?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = remove_if_exists(&staging);
    }
    result
}

/// Writes every rendered tag and the index into `dist`.
pub fn write(dist: &Path, rendered: &[RenderedTag], index: &Index) -> io::Result<WriteReport> {
    let previous = read_index(dist);
    fs_err::create_dir_all(dist)?;
    let cache = ContentCache::default();
    let counts: Vec<usize> = rendered
        .par_iter()
        .map(|tag| write_tag(dist, tag, &cache))
        .collect::<io::Result<_>>()?;
    let mut report = WriteReport {
        written: counts.iter().sum(),
        unchanged_tags: counts.iter().filter(|&&n| n == 0).count(),
        removed: Vec::new(),
    };
    if let Some(previous) = previous {
        let current: BTreeSet<(&str, &str)> = rendered
            .iter()
            .map(|t| (t.image.as_str(), t.tag.as_str()))
            .collect();
        for image in &previous.images {
            for tag in &image.tags {
                if !current.contains(&(image.name.as_str(), tag.name.as_str()))
                    && remove_if_exists(&tag_dir(dist, &image.name, &tag.name))?
                {
                    report.removed.push(format!("{}:{}", image.name, tag.name));
                }
            }
            let image_dir = dist.join(&image.name);
            if fs_err::read_dir(&image_dir).is_ok_and(|mut entries| entries.next().is_none()) {
                fs_err::remove_dir(&image_dir)?;
            }
        }
    }
    let mut json = serde_json::to_vec_pretty(index).map_err(io::Error::other)?;
    json.push(b'\n');
    report.written += usize::from(write_if_changed(&dist.join(INDEX_FILE), &json)?);
    Ok(report)
}
