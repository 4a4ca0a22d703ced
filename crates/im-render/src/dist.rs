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
use crate::layout::STAMP_FILE;
pub use crate::layout::{DOCKERIGNORE, INDEX_FILE};
use crate::output::{OpenDir, remove_if_exists, temp_name, write_if_changed};
use crate::rootfs::ContentCache;
use crate::stamp;

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
    /// The external repository of a `source:` image, at the commit it builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<IndexUpstream>,
}

/// A `source:` image's repository in `dist/index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexUpstream {
    pub git: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// `branch`, `tag` or `commit`.
    pub kind: String,
    pub commit: String,
    /// The build context, a folder of the repository.
    pub context: String,
    /// The patches applied, in order.
    pub patches: Vec<String>,
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

/// What a generate writes per tag: `name/tag` → [`stamp::output_hash`].
pub type Written = BTreeMap<String, String>;

/// What the last full generate wrote (from its stamp) and what this one is about to write:
/// a tag whose two hashes are equal is left alone.
#[derive(Debug, Clone, Copy)]
pub struct Unchanged<'a> {
    pub before: &'a Written,
    pub now: &'a Written,
}

impl Unchanged<'_> {
    fn contains(&self, tag: &str) -> bool {
        self.before
            .get(tag)
            .is_some_and(|hash| self.now.get(tag) == Some(hash))
    }
}

fn write_tag(
    dist: &Path,
    rendered: &RenderedTag,
    cache: &ContentCache,
    unchanged: Option<Unchanged<'_>>,
) -> io::Result<usize> {
    let dir = tag_dir(dist, &rendered.image, &rendered.tag);
    if fs_err::symlink_metadata(&dir).is_err() {
        return write_new_tag(&dir, rendered, cache);
    }
    // Exactly this content was written here by the last full generate, and the folder is
    // still there: nothing to compare.
    if unchanged.is_some_and(|u| u.contains(&format!("{}/{}", rendered.image, rendered.tag)))
        && dir.join("Dockerfile").is_file()
    {
        return Ok(0);
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

/// The [`ContentCache`] key of the generated `.dockerignore`, the same in every tag folder
/// (relative, so it never equals a rootfs source, which is an absolute path).
const DOCKERIGNORE_KEY: &str = ".dockerignore";

/// Files written into a staged folder, `(source, path relative to the staged folder)`:
/// published at their final paths once the folder is renamed into place.
type Copies = Vec<(PathBuf, PathBuf)>;

/// Writes one tag's files into the empty folder `dir` (`relative` to the staged folder).
fn fill_new_tag(
    dir: &Path,
    rendered: &RenderedTag,
    cache: &ContentCache,
    relative: &Path,
) -> io::Result<(usize, Copies)> {
    let dir = OpenDir::open(dir)?;
    dir.write_new(
        Path::new("Dockerfile"),
        rendered.dockerfile.as_bytes(),
        None,
        None,
    )?;
    let ignore = Path::new(".dockerignore");
    let mut copies = Copies::new();
    if !cache.link(Path::new(DOCKERIGNORE_KEY), &dir, ignore) {
        dir.write_new(ignore, DOCKERIGNORE.as_bytes(), None, None)?;
        cache.publish([(PathBuf::from(DOCKERIGNORE_KEY), dir.path().join(ignore))]);
        copies.push((PathBuf::from(DOCKERIGNORE_KEY), relative.join(ignore)));
    }
    let mut written = 2;
    if let Some((text, _)) = &rendered.test {
        dir.write_new(Path::new("test.yml"), text.as_bytes(), None, None)?;
        written += 1;
    }
    let rootfs = Path::new("rootfs");
    let (count, rootfs_copies) = rendered.overlay.write_fresh(&dir, rootfs, cache)?;
    written += count;
    let rootfs = relative.join(rootfs);
    copies.extend(
        rootfs_copies
            .into_iter()
            .map(|(source, path)| (source, rootfs.join(path))),
    );
    Ok((written, copies))
}

/// Removes the staging folders (`.<name>.new-<pid>`) in `dir` that runs which were killed
/// left behind: their process is gone. A concurrent run's folder is left alone.
fn remove_abandoned_staging(dir: &Path) -> io::Result<()> {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.strip_prefix('.'))
            .and_then(|name| name.rsplit_once(".new-"))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            remove_if_exists(&entry.path())?;
        }
    }
    Ok(())
}

/// Makes a hidden staging folder `.<name>.new-<pid>` next to `dir`.
fn staging_dir(dir: &Path) -> io::Result<PathBuf> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = dir.with_file_name(format!(".{name}.new-{}", std::process::id()));
    if let Err(error) = fs_err::create_dir(&staging) {
        if error.kind() != io::ErrorKind::AlreadyExists {
            return Err(error);
        }
        // Left behind by an earlier run that was killed and had the same process id.
        remove_if_exists(&staging)?;
        fs_err::create_dir(&staging)?;
    }
    Ok(staging)
}

/// Fills a staging folder for `dir` with `fill` and renames it into place in one step, so
/// the folder appears complete or not at all; on failure the staging folder is removed.
fn stage<T, F>(dir: &Path, cache: &ContentCache, fill: F) -> io::Result<T>
where
    F: FnOnce(&Path) -> io::Result<(T, Copies)>,
{
    let staging = staging_dir(dir)?;
    let result = fill(&staging).and_then(|(written, copies)| {
        fs_err::rename(&staging, dir)?;
        cache.publish(
            copies
                .into_iter()
                .map(|(source, relative)| (source, dir.join(relative))),
        );
        Ok(written)
    });
    if result.is_err() {
        let _ = remove_if_exists(&staging);
    }
    result
}

/// A tag folder that does not exist yet (in an image folder that does) is staged next to
/// its final place with plain writes and renamed into place.
fn write_new_tag(dir: &Path, rendered: &RenderedTag, cache: &ContentCache) -> io::Result<usize> {
    stage(dir, cache, |staging| {
        fill_new_tag(staging, rendered, cache, Path::new(""))
    })
}

/// An image folder that does not exist yet is staged whole (its tags in parallel) and
/// renamed into place once: one rename for all its tags. Returns what each tag wrote.
fn write_new_image(
    dir: &Path,
    tags: &[RenderedTag],
    cache: &ContentCache,
) -> io::Result<Vec<usize>> {
    stage(dir, cache, |staging| {
        let filled: Vec<(usize, Copies)> = tags
            .par_iter()
            .map(|tag| {
                let relative = Path::new(&tag.tag);
                let tag_dir = staging.join(relative);
                fs_err::create_dir(&tag_dir)?;
                fill_new_tag(&tag_dir, tag, cache, relative)
            })
            .collect::<io::Result<_>>()?;
        let (written, copies): (Vec<usize>, Vec<Copies>) = filled.into_iter().unzip();
        Ok((written, copies.into_iter().flatten().collect()))
    })
}

/// Writes the tags of one image (all of `tags` have the same image). Returns per tag how
/// many files it wrote.
fn write_image(
    dist: &Path,
    tags: &[RenderedTag],
    cache: &ContentCache,
    unchanged: Option<Unchanged<'_>>,
) -> io::Result<Vec<usize>> {
    let Some(first) = tags.first() else {
        return Ok(Vec::new());
    };
    let dir = dist.join(&first.image);
    match fs_err::symlink_metadata(&dir) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => write_new_image(&dir, tags, cache),
        _ => {
            fs_err::create_dir_all(&dir)?;
            tags.par_iter()
                .map(|tag| write_tag(dist, tag, cache, unchanged))
                .collect()
        }
    }
}

/// Writes every rendered tag and the index into `dist`. The generate stamp is removed first
/// (the caller records a new one when it wrote everything a generate writes);
/// `unchanged` leaves alone the tags whose output is the same as the stamp said. The index is made (`index`) and serialized while the tags are written, and put
/// in place last.
pub fn write<F>(
    dist: &Path,
    rendered: &[RenderedTag],
    index: F,
    unchanged: Option<Unchanged<'_>>,
) -> io::Result<WriteReport>
where
    F: FnOnce() -> Index + Send,
{
    fs_err::create_dir_all(dist)?;
    // No stamp: the last write did not finish (or nothing was ever written). If it was
    // killed, its staging folders are still here.
    if !dist.join(STAMP_FILE).exists() {
        remove_abandoned_staging(dist)?;
        for image in rendered.chunk_by(|a, b| a.image == b.image) {
            remove_abandoned_staging(&dist.join(&image[0].image))?;
        }
    }
    stamp::clear(dist)?;
    let index_path = dist.join(INDEX_FILE);
    let cache = ContentCache::default();
    // `rendered` keeps each image's tags together.
    let images: Vec<&[RenderedTag]> = rendered.chunk_by(|a, b| a.image == b.image).collect();
    let (per_image, staged) = rayon::join(
        || {
            images
                .par_iter()
                .map(|tags| write_image(dist, tags, &cache, unchanged))
                .collect::<io::Result<Vec<Vec<usize>>>>()
        },
        || stage_index(&index_path, &index()),
    );
    let (per_image, (previous, index_temp)) = match (per_image, staged) {
        (Ok(written), Ok(staged)) => (written, staged),
        (written, staged) => {
            if let Ok((_, Some(temp))) = &staged {
                let _ = fs_err::remove_file(temp);
            }
            return Err(written
                .err()
                .or(staged.err())
                .expect("one of the two failed"));
        }
    };
    let counts: Vec<usize> = per_image.into_iter().flatten().collect();
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
    if let Some(temp) = index_temp {
        fs_err::rename(&temp, &index_path)?;
        report.written += 1;
    }
    Ok(report)
}

/// Reads the previous index at `path` (what it lists is what a write may remove) and writes
/// the new one to a temp file next to it, unless it is the same. Returns the previous index
/// and the temp file to rename into place. A large project's index is tens of megabytes: a
/// new one is streamed to its file rather than built in memory.
fn stage_index(path: &Path, index: &Index) -> io::Result<(Option<Index>, Option<PathBuf>)> {
    use std::io::Write as _;
    let existing = im_input::read_bytes_nofollow(path).ok();
    let previous = existing
        .as_deref()
        .and_then(|bytes| serde_json::from_slice::<Index>(bytes).ok());
    let temp = temp_name(path);
    let result = (|| {
        if let Some(existing) = &existing {
            let mut json = Vec::with_capacity(existing.len() + 4096);
            serde_json::to_writer_pretty(&mut json, index).map_err(io::Error::other)?;
            json.push(b'\n');
            if json == *existing {
                return Ok(None);
            }
            fs_err::write(&temp, &json)?;
            return Ok(Some(temp.clone()));
        }
        let mut out = io::BufWriter::with_capacity(256 * 1024, fs_err::File::create(&temp)?);
        serde_json::to_writer_pretty(&mut out, index).map_err(io::Error::other)?;
        out.write_all(b"\n")?;
        out.into_inner().map_err(io::IntoInnerError::into_error)?;
        Ok(Some(temp.clone()))
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    result.map(|temp| (previous, temp))
}
