//! rootfs overlays: `<parent>/rootfs` → `<image dir>/rootfs` → `<image dir>/<variant>/rootfs`.
//!
//! Later layers win file by file; a file replaces a folder of the same path and the other way
//! round. Symlinks are kept as symlinks and never followed; empty folders are no content;
//! device nodes, FIFOs and sockets are refused. [`Overlay::sync`] makes a destination folder
//! equal to the overlay, touching only what differs, and never writes outside it. Files keep
//! their source's mode; folders get [`crate::output::FOLDER_MODE`] whatever the umask, since
//! `COPY rootfs/ /` carries them into images.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use im_diag::{Diagnostic, Location};
use serde::Serialize;

use crate::output::{OpenDir, set_folder_mode, temp_name, write_atomic};

/// One entry of the merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A folder (kept so a later folder can replace an earlier file).
    Dir,
    File {
        source: PathBuf,
        size: u64,
        mode: u32,
        mtime: i64,
        mtime_nsec: i64,
    },
    Symlink {
        target: PathBuf,
    },
}

/// The merged rootfs of one tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overlay {
    /// The layer folders that exist, in order.
    pub layers: Vec<PathBuf>,
    #[serde(skip)]
    pub entries: BTreeMap<PathBuf, Entry>,
    /// [`Overlay::identity`], computed once.
    #[serde(skip)]
    identity: std::sync::OnceLock<String>,
}

/// The entries of one layer folder, sorted by path, and its warnings.
type LayerEntries = std::sync::Arc<(Vec<(PathBuf, Entry)>, Vec<Diagnostic>)>;

/// Layer folders read once per run (see [`Overlay::collect_with`]).
#[derive(Default)]
pub struct LayerCache {
    read: std::sync::Mutex<std::collections::HashMap<PathBuf, Option<LayerEntries>>>,
}

impl LayerCache {
    /// The entries of `layer`, or `None` when it does not exist.
    fn read(
        &self,
        layer: &Path,
        display: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<Option<LayerEntries>, Diagnostic> {
        if let Some(known) = self.read.lock().expect("layer cache lock").get(layer) {
            return Ok(known.clone());
        }
        let mut warnings = Vec::new();
        let read = read_layer(layer, display, &mut warnings)?
            .map(|entries| std::sync::Arc::new((entries, warnings)));
        self.read
            .lock()
            .expect("layer cache lock")
            .insert(layer.to_path_buf(), read.clone());
        Ok(read)
    }
}

/// Reads one layer folder: `None` when it does not exist.
fn read_layer(
    layer: &Path,
    display: &dyn Fn(&Path) -> PathBuf,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Option<Vec<(PathBuf, Entry)>>, Diagnostic> {
    match fs_err::symlink_metadata(layer) {
        Ok(meta) if meta.is_dir() => {}
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Diagnostic::error("a rootfs folder may not be a symlink")
                .at(Location::file(display(layer)))
                .with_help("make it a real folder; symlinks inside it are fine"));
        }
        Ok(_) => {
            return Err(
                Diagnostic::error("`rootfs` must be a folder").at(Location::file(display(layer)))
            );
        }
        Err(_) => return Ok(None),
    }
    let mut entries = Vec::new();
    let walker = walkdir::WalkDir::new(layer)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walker {
        let entry = entry.map_err(|error| {
            Diagnostic::error(format!("cannot read the rootfs: {error}"))
                .at(Location::file(display(layer)))
        })?;
        let relative = entry
            .path()
            .strip_prefix(layer)
            .unwrap_or(entry.path())
            .to_path_buf();
        let file_type = entry.file_type();
        let value = if file_type.is_dir() {
            Entry::Dir
        } else if file_type.is_symlink() {
            let target = fs_err::read_link(entry.path()).map_err(|error| {
                Diagnostic::error(error.to_string()).at(Location::file(display(entry.path())))
            })?;
            Entry::Symlink { target }
        } else if file_type.is_file() {
            let meta = entry.metadata().map_err(|error| {
                Diagnostic::error(format!("cannot read the rootfs: {error}"))
                    .at(Location::file(display(entry.path())))
            })?;
            let name = entry.file_name().to_string_lossy();
            if is_sensitive(&name) {
                warnings.push(
                    Diagnostic::warning(format!(
                        "`{name}` looks like a secret and will be copied into the image"
                    ))
                    .at(Location::file(display(entry.path())))
                    .with_help("remove it from the rootfs, or pass it at build time as a secret"),
                );
            }
            Entry::File {
                source: entry.path().to_path_buf(),
                size: meta.len(),
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
                mtime_nsec: meta.mtime_nsec(),
            }
        } else {
            return Err(Diagnostic::error(
                "rootfs may hold only files, folders and symlinks; this is a device, FIFO or socket",
            )
            .at(Location::file(display(entry.path())))
            .with_help("remove it, and create it in the Dockerfile with RUN if the image needs it"));
        };
        entries.push((relative, value));
    }
    Ok(Some(entries))
}

/// File names that should not end up in an image.
fn is_sensitive(name: &str) -> bool {
    matches!(
        name,
        ".env" | "id_rsa" | "id_ed25519" | "id_ecdsa" | "id_dsa"
    ) || [".key", ".pem", ".p12", ".pfx"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

impl Overlay {
    /// A hash of what the overlay writes: each entry's path and kind; for files the source's
    /// path, size, mode and modification time (what a copy in `dist/` is made to match); for
    /// symlinks the target. Computed once (the overlay is shared by many tags).
    pub fn identity(&self) -> &str {
        self.identity.get_or_init(|| {
            use sha2::{Digest, Sha256};
            let mut hasher = Sha256::new();
            let mut field = |bytes: &[u8]| {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            };
            for (relative, entry) in &self.entries {
                field(relative.as_os_str().as_encoded_bytes());
                match entry {
                    Entry::Dir => field(b"dir"),
                    Entry::File {
                        source,
                        size,
                        mode,
                        mtime,
                        mtime_nsec,
                    } => {
                        field(b"file");
                        field(source.as_os_str().as_encoded_bytes());
                        field(&size.to_le_bytes());
                        field(&mode.to_le_bytes());
                        field(&mtime.to_le_bytes());
                        field(&mtime_nsec.to_le_bytes());
                    }
                    Entry::Symlink { target } => {
                        field(b"symlink");
                        field(target.as_os_str().as_encoded_bytes());
                    }
                }
            }
            hex::encode(hasher.finalize())
        })
    }

    /// Whether there is anything to copy (a file or a symlink).
    pub fn has_content(&self) -> bool {
        self.entries
            .values()
            .any(|entry| !matches!(entry, Entry::Dir))
    }

    /// Merges the layer folders that exist. `display` maps a path to how the user sees it.
    /// Returns the overlay and warnings about sensitive files.
    pub fn collect(
        layers: &[PathBuf],
        display: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<(Self, Vec<Diagnostic>), Diagnostic> {
        Self::collect_with(layers, display, &LayerCache::default())
    }

    /// [`Overlay::collect`], reading each layer folder once per `cache`: many tags share the
    /// same layers (every tag of a definition, every image of a group folder). Every overlay
    /// that uses a layer returns its warnings.
    pub fn collect_with(
        layers: &[PathBuf],
        display: &dyn Fn(&Path) -> PathBuf,
        cache: &LayerCache,
    ) -> Result<(Self, Vec<Diagnostic>), Diagnostic> {
        let mut overlay = Overlay::default();
        let mut warnings = Vec::new();
        for layer in layers {
            let Some(read) = cache.read(layer, display)? else {
                continue;
            };
            overlay.layers.push(layer.clone());
            let (entries, found) = &*read;
            warnings.extend(found.iter().cloned());
            for (relative, entry) in entries {
                overlay.insert(relative.clone(), entry.clone());
            }
        }
        Ok((overlay, warnings))
    }
    fn insert(&mut self, path: PathBuf, entry: Entry) {
        if !matches!(entry, Entry::Dir) {
            // A file or symlink replaces a folder and everything in it.
            let inside: Vec<PathBuf> = self
                .entries
                .range(path.clone()..)
                .map(|(p, _)| p.clone())
                .take_while(|p| p.starts_with(&path))
                .collect();
            for old in inside {
                self.entries.remove(&old);
            }
        }
        // A path below a file or symlink replaces it (folders never go through symlinks).
        let mut ancestor = path.parent();
        while let Some(dir) = ancestor.filter(|d| !d.as_os_str().is_empty()) {
            if matches!(
                self.entries.get(dir),
                Some(Entry::File { .. } | Entry::Symlink { .. })
            ) {
                self.entries.insert(dir.to_path_buf(), Entry::Dir);
            }
            ancestor = dir.parent();
        }
        self.entries.insert(path, entry);
    }

    /// Makes `dest` hold exactly this overlay's content. Returns how many entries changed.
    pub fn sync(&self, dest: &Path) -> io::Result<usize> {
        let mut changed = 0;
        if !self.has_content() {
            if fs_err::symlink_metadata(dest).is_ok() {
                remove_any(dest)?;
                changed += 1;
            }
            return Ok(changed);
        }
        // Which folders are needed: the parents of every file and symlink.
        let mut needed_dirs = std::collections::BTreeSet::new();
        for (path, entry) in &self.entries {
            if !matches!(entry, Entry::Dir) {
                let mut parent = path.parent();
                while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
                    needed_dirs.insert(dir.to_path_buf());
                    parent = dir.parent();
                }
            }
        }
        // Remove what should not be there (deepest first).
        if let Ok(meta) = fs_err::symlink_metadata(dest) {
            if meta.is_dir() {
                let existing: Vec<(PathBuf, std::fs::FileType)> = walkdir::WalkDir::new(dest)
                    .follow_links(false)
                    .min_depth(1)
                    .contents_first(true)
                    .into_iter()
                    .filter_map(Result::ok)
                    .map(|e| {
                        (
                            e.path()
                                .strip_prefix(dest)
                                .unwrap_or(e.path())
                                .to_path_buf(),
                            e.file_type(),
                        )
                    })
                    .collect();
                for (relative, file_type) in existing {
                    let keep = match self.entries.get(&relative) {
                        Some(Entry::File { .. }) => file_type.is_file(),
                        Some(Entry::Symlink { .. }) => file_type.is_symlink(),
                        _ => file_type.is_dir() && needed_dirs.contains(&relative),
                    };
                    if !keep {
                        remove_any(&dest.join(&relative))?;
                        changed += 1;
                    }
                }
            } else {
                remove_any(dest)?;
            }
        }
        fs_err::create_dir_all(dest)?;
        changed += usize::from(set_folder_mode(dest)?);
        for dir in &needed_dirs {
            let path = dest.join(dir);
            if fs_err::symlink_metadata(&path).is_err() {
                fs_err::create_dir(&path)?;
            }
            changed += usize::from(set_folder_mode(&path)?);
        }
        for (relative, entry) in &self.entries {
            debug_assert!(
                relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
            );
            let path = dest.join(relative);
            match entry {
                Entry::Dir => {}
                Entry::File {
                    source,
                    size,
                    mode,
                    mtime,
                    mtime_nsec,
                } => {
                    if let Ok(meta) = fs_err::symlink_metadata(&path)
                        && meta.is_file()
                        && meta.len() == *size
                        && meta.mode() & 0o7777 == *mode
                        && meta.mtime() == *mtime
                        && meta.mtime_nsec() == *mtime_nsec
                    {
                        continue;
                    }
                    let content = read_source(source)?;
                    write_atomic(&path, &content, Some(*mode), Some((*mtime, *mtime_nsec)))?;
                    changed += 1;
                }
                Entry::Symlink { target } => {
                    if fs_err::read_link(&path).is_ok_and(|existing| existing == *target) {
                        continue;
                    }
                    let temp = temp_name(&path);
                    std::os::unix::fs::symlink(target, &temp).map_err(|error| {
                        io::Error::new(
                            error.kind(),
                            format!("{error} (creating symlink {})", temp.display()),
                        )
                    })?;
                    fs_err::rename(&temp, &path)?;
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
}

/// Reads a rootfs source file, which must still be a regular file (not a FIFO that would
/// block, not a symlink swapped in since the layer was read).
fn read_source(path: &Path) -> io::Result<Vec<u8>> {
    im_input::read_bytes_nofollow(path).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} {error}", path.display()),
        )
    })
}

fn remove_any(path: &Path) -> io::Result<()> {
    let meta = fs_err::symlink_metadata(path)?;
    if meta.is_dir() {
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}

/// What one `generate` run shares between tags: source file contents read once, and the
/// files already written into `dist/`, which later tags hard-link instead of writing another
/// copy (one `link` instead of open, write, chmod, utime and close).
///
/// Two paths of one tag never share an inode (the key is the source file, and a tag's rootfs
/// holds each source at most once), so a build context never sees a hardlink. Files in
/// `dist/` are only ever replaced by rename, never rewritten in place, so a change to one
/// tag's copy cannot reach another tag.
#[derive(Default)]
pub struct ContentCache {
    known: std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<Vec<u8>>>>,
    linkable: std::sync::Mutex<std::collections::HashMap<PathBuf, PathBuf>>,
}

impl ContentCache {
    fn read(&self, path: &Path) -> io::Result<std::sync::Arc<Vec<u8>>> {
        if let Some(content) = self.known.lock().expect("content cache lock").get(path) {
            return Ok(content.clone());
        }
        let content = std::sync::Arc::new(read_source(path)?);
        self.known
            .lock()
            .expect("content cache lock")
            .insert(path.to_path_buf(), content.clone());
        Ok(content)
    }

    /// Hard-links `relative` in `dir` to the copy of `key` written earlier in this run.
    /// False when there is none or linking failed (another file system, too many links, the
    /// copy is gone): the caller then writes the file itself.
    pub fn link(&self, key: &Path, dir: &OpenDir, relative: &Path) -> bool {
        let existing = self
            .linkable
            .lock()
            .expect("content cache lock")
            .get(key)
            .cloned();
        existing.is_some_and(|existing| dir.hard_link(&existing, relative).is_ok())
    }

    /// Records that `path` (its final place in `dist/`) holds `key`'s content, mode and time.
    pub fn publish(&self, entries: impl IntoIterator<Item = (PathBuf, PathBuf)>) {
        self.linkable
            .lock()
            .expect("content cache lock")
            .extend(entries);
    }
}

impl Overlay {
    /// Writes the overlay into `dest` inside `dir` (a fresh tag folder being staged; `dest`
    /// must not exist yet): no comparisons and no per-file renames, since the whole folder
    /// is renamed into place afterwards. Files another tag already wrote are hard-linked
    /// from its copy.
    ///
    /// Returns how many entries it wrote and, for [`ContentCache::publish`] once the folder
    /// is in its final place, the `(source, path relative to dest)` of the files it wrote
    /// (published at their staged path meanwhile: a link made from there before the rename
    /// stays valid, one tried after it fails and writes a copy instead).
    pub fn write_fresh(
        &self,
        dir: &OpenDir,
        dest: &Path,
        cache: &ContentCache,
    ) -> io::Result<(usize, Vec<(PathBuf, PathBuf)>)> {
        let mut copies = Vec::new();
        if !self.has_content() {
            return Ok((0, copies));
        }
        dir.mkdir(dest)?;
        let mut made = std::collections::BTreeSet::new();
        let mut written = 0;
        for (relative, entry) in &self.entries {
            if matches!(entry, Entry::Dir) {
                continue;
            }
            // Parents first (the map is sorted, so a folder's files follow it).
            let mut missing = Vec::new();
            let mut parent = relative.parent();
            while let Some(folder) =
                parent.filter(|d| !d.as_os_str().is_empty() && !made.contains(*d))
            {
                missing.push(folder.to_path_buf());
                parent = folder.parent();
            }
            for folder in missing.into_iter().rev() {
                dir.mkdir(&dest.join(&folder))?;
                made.insert(folder);
            }
            let path = dest.join(relative);
            written += 1;
            match entry {
                Entry::Dir => {}
                Entry::File { source, .. } if cache.link(source, dir, &path) => {}
                Entry::File {
                    source,
                    mode,
                    mtime,
                    mtime_nsec,
                    ..
                } => {
                    let content = cache.read(source)?;
                    dir.write_new(&path, &content, Some(*mode), Some((*mtime, *mtime_nsec)))?;
                    // Other tags may link to it at once; the caller publishes the final
                    // path again once the folder is renamed into place.
                    cache.publish([(source.clone(), dir.path().join(&path))]);
                    copies.push((source.clone(), relative.clone()));
                }
                Entry::Symlink { target } => dir.symlink(target, &path)?,
            }
        }
        Ok((written, copies))
    }
}

/// The permission bits of a file as `rwx` text, for reports.
pub fn mode_string(mode: u32) -> String {
    let perms = std::fs::Permissions::from_mode(mode);
    format!("{:o}", perms.mode() & 0o7777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }

    fn tree(dir: &Path) -> Vec<String> {
        walkdir::WalkDir::new(dir)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                if e.file_type().is_symlink() {
                    format!(
                        "{rel} -> {}",
                        fs_err::read_link(e.path()).unwrap().display()
                    )
                } else if e.file_type().is_dir() {
                    format!("{rel}/")
                } else {
                    format!("{rel} = {}", fs_err::read_to_string(e.path()).unwrap())
                }
            })
            .collect()
    }

    #[test]
    fn later_layers_win_and_symlinks_stay_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        write(&a.join("etc/motd"), "from a");
        write(&a.join("etc/keep"), "kept");
        write(&a.join("opt/x"), "file becomes dir");
        write(&b.join("etc/motd"), "from b");
        write(&b.join("opt/x/inner"), "inner");
        fs_err::create_dir_all(b.join("empty/dir")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", b.join("link")).unwrap();
        let (overlay, warnings) =
            Overlay::collect(&[a, b, dir.path().join("missing")], &|p| p.to_path_buf()).unwrap();
        assert!(warnings.is_empty());
        assert!(overlay.has_content());
        let dest = dir.path().join("dist/rootfs");
        assert_eq!(overlay.sync(&dest).unwrap(), 4);
        assert_eq!(
            tree(&dest),
            [
                "etc/",
                "etc/keep = kept",
                "etc/motd = from b",
                "link -> /etc/passwd",
                "opt/",
                "opt/x/",
                "opt/x/inner = inner"
            ]
        );
        assert_eq!(
            overlay.sync(&dest).unwrap(),
            0,
            "a second sync changes nothing"
        );
    }

    #[test]
    fn stale_entries_are_removed_and_empty_overlays_remove_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("rootfs");
        write(&layer.join("a/one"), "1");
        let (overlay, _) =
            Overlay::collect(std::slice::from_ref(&layer), &|p| p.to_path_buf()).unwrap();
        let dest = dir.path().join("out");
        write(&dest.join("a/stale"), "old");
        write(&dest.join("b/c"), "old");
        overlay.sync(&dest).unwrap();
        assert_eq!(tree(&dest), ["a/", "a/one = 1"]);
        fs_err::remove_file(layer.join("a/one")).unwrap();
        let (empty, _) = Overlay::collect(&[layer], &|p| p.to_path_buf()).unwrap();
        assert!(!empty.has_content(), "empty folders are no content");
        empty.sync(&dest).unwrap();
        assert!(!dest.exists());
    }

    #[test]
    fn sensitive_files_warn_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("rootfs");
        write(&layer.join("root/.ssh/id_rsa"), "key");
        write(&layer.join("certs/server.pem"), "pem");
        let (_, warnings) =
            Overlay::collect(std::slice::from_ref(&layer), &|p| p.to_path_buf()).unwrap();
        assert_eq!(warnings.len(), 2);
        let status = std::process::Command::new("mkfifo")
            .arg(layer.join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        let error = Overlay::collect(&[layer], &|p| p.to_path_buf()).unwrap_err();
        assert!(error.message.contains("device, FIFO or socket"), "{error}");
    }
}
