//! Content-addressed build keys.
//!
//! A node's key is the SHA-256 of its [`KeyInputs`]: the rendered Dockerfile, every file of
//! its build context that `.dockerignore` admits (path, mode, content or symlink target), the
//! build args and the labels that do not change from run to run, the target platform, the
//! builder kind, the keys of its managed parents (so a changed base changes every descendant's
//! key), and the external bases with their pinned digests when known. The inputs are kept in
//! the ledger so a later plan can say *which* input changed.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;

use im_render::rootfs::{Entry, Overlay};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bumped when the meaning of a key changes, so old ledgers never match.
pub const KEY_FORMAT: u32 = 1;

/// Everything a build key is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInputs {
    /// SHA-256 of the Dockerfile text (before a `packages.lock` pinned it).
    pub dockerfile: String,
    /// What the image's `packages.lock` pinned: package → version, `FROM <base>` → digest.
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub pins: Arc<BTreeMap<String, String>>,
    /// An image built from an external repository (`source:`): `git`, `commit`, `context`
    /// and `patch <file>` → its hash. The commit and patches stand for the whole context.
    #[serde(default, skip_serializing_if = "is_empty_map")]
    pub source: Arc<BTreeMap<String, String>>,
    /// Context path → `sha256:<hex> <mode>` or `symlink:<target>`.
    /// Shared by every platform of a tag (and serialized as a plain map).
    pub context: Arc<BTreeMap<String, String>>,
    pub build_args: BTreeMap<String, String>,
    pub labels: Arc<BTreeMap<String, String>>,
    pub platform: String,
    pub builder: String,
    /// Managed parent node → its key for the same platform.
    pub parents: BTreeMap<String, String>,
    /// External base reference → its pinned digest, if known.
    pub externals: BTreeMap<String, Option<String>>,
}

fn is_empty_map(map: &Arc<BTreeMap<String, String>>) -> bool {
    map.is_empty()
}

impl KeyInputs {
    /// The key: `sha256:<hex>` over the canonical JSON of the inputs, in two levels so the
    /// part shared by every platform of a tag is hashed once ([`KeyInputs::tag_hash`]).
    pub fn key(&self) -> String {
        self.key_with(&self.tag_hash())
    }

    /// The hash of the inputs that are the same for every platform of a tag: Dockerfile,
    /// context, build args and labels.
    pub fn tag_hash(&self) -> String {
        #[derive(Serialize)]
        struct TagPart<'a> {
            dockerfile: &'a str,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            pins: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            source: &'a BTreeMap<String, String>,
            context: &'a BTreeMap<String, String>,
            build_args: &'a BTreeMap<String, String>,
            labels: &'a BTreeMap<String, String>,
        }
        let part = TagPart {
            dockerfile: &self.dockerfile,
            pins: &self.pins,
            source: &self.source,
            context: &self.context,
            build_args: &self.build_args,
            labels: &self.labels,
        };
        sha256_hex(&serde_json::to_vec(&part).expect("key inputs serialize"))
    }

    /// The key from a [`KeyInputs::tag_hash`] computed earlier and the per-node inputs.
    pub fn key_with(&self, tag_hash: &str) -> String {
        #[derive(Serialize)]
        struct NodePart<'a> {
            tag: &'a str,
            platform: &'a str,
            builder: &'a str,
            parents: &'a BTreeMap<String, String>,
            externals: &'a BTreeMap<String, Option<String>>,
        }
        let part = NodePart {
            tag: tag_hash,
            platform: &self.platform,
            builder: &self.builder,
            parents: &self.parents,
            externals: &self.externals,
        };
        let mut hasher = Sha256::new();
        hasher.update(format!("image-manager build key v{KEY_FORMAT}\n"));
        hasher.update(serde_json::to_vec(&part).expect("key inputs serialize"));
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Hashes file contents once per run, keyed by the file's identity and change time, so the
/// same rootfs file shared by many tags is read once.
#[derive(Default)]
pub struct HashCache {
    known: Mutex<HashMap<FileIdentity, String>>,
}

/// Device, inode, size and modification time: a file whose identity is the same has the same
/// content for the length of one run.
type FileIdentity = (u64, u64, u64, i64, i64);

impl HashCache {
    pub fn file(&self, path: &Path) -> std::io::Result<String> {
        let meta = fs_err::metadata(path)?;
        let id = (
            meta.dev(),
            meta.ino(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec(),
        );
        if let Some(hash) = self.known.lock().expect("hash cache lock").get(&id) {
            return Ok(hash.clone());
        }
        let hash = sha256_hex(&fs_err::read(path)?);
        self.known
            .lock()
            .expect("hash cache lock")
            .insert(id, hash.clone());
        Ok(hash)
    }
}

/// `.dockerignore` rules with Docker's semantics: patterns are matched against the path and
/// every parent folder, the last matching pattern wins, `!` re-includes.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    rules: Vec<(globset::GlobMatcher, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pattern) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let pattern = pattern.trim_start_matches('/').trim_end_matches('/');
            let pattern = pattern.strip_prefix("./").unwrap_or(pattern);
            if let Ok(glob) = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
            {
                rules.push((glob.compile_matcher(), exclude));
            }
        }
        Self { rules }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for (glob, exclude) in &self.rules {
            let mut candidate = Some(path);
            let mut matched = false;
            while let Some(current) = candidate {
                if glob.is_match(current) {
                    matched = true;
                    break;
                }
                candidate = current.rsplit_once('/').map(|(parent, _)| parent);
            }
            if matched {
                excluded = *exclude;
            }
        }
        excluded
    }
}

pub use im_render::dist::DOCKERIGNORE as GENERATED_DOCKERIGNORE;

/// The build context of a rendered tag as key inputs: its rootfs overlay (what generate
/// writes to `dist/<name>/<tag>/rootfs/`), filtered by the generated `.dockerignore`.
pub fn overlay_inputs(
    overlay: &Overlay,
    ignore: &DockerIgnore,
    cache: &HashCache,
) -> std::io::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if !overlay.has_content() {
        return Ok(out);
    }
    for (relative, entry) in &overlay.entries {
        let path = format!("rootfs/{}", relative.to_string_lossy());
        if ignore.excludes(&path) {
            continue;
        }
        let value = match entry {
            Entry::Dir => continue,
            Entry::File { source, mode, .. } => format!("sha256:{} {mode:o}", cache.file(source)?),
            Entry::Symlink { target } => format!("symlink:{}", target.display()),
        };
        out.insert(path, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_last_match_wins_and_parents_count() {
        let ignore = DockerIgnore::parse(GENERATED_DOCKERIGNORE);
        assert!(ignore.excludes("test.yml"));
        assert!(ignore.excludes("image.tar"));
        assert!(ignore.excludes("linux-amd64/image.tar"));
        assert!(!ignore.excludes("Dockerfile"));
        assert!(!ignore.excludes("rootfs/etc/motd"));
        let custom = DockerIgnore::parse("*.log\n!keep.log\nbuild/\n");
        assert!(custom.excludes("a.log"));
        assert!(!custom.excludes("keep.log"));
        assert!(custom.excludes("build/x/y"));
        assert!(!custom.excludes("src/a.rs"));
    }

    #[test]
    fn overlay_inputs_see_content_mode_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("rootfs");
        fs_err::create_dir_all(layer.join("etc")).unwrap();
        fs_err::write(layer.join("etc/a"), "one").unwrap();
        std::os::unix::fs::symlink("/x", layer.join("link")).unwrap();
        let show = |p: &Path| p.to_path_buf();
        let ignore = DockerIgnore::parse(GENERATED_DOCKERIGNORE);
        let (overlay, _) = Overlay::collect(std::slice::from_ref(&layer), &show).unwrap();
        let first = overlay_inputs(&overlay, &ignore, &HashCache::default()).unwrap();
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            ["rootfs/etc/a", "rootfs/link"]
        );
        assert_eq!(first["rootfs/link"], "symlink:/x");
        assert!(
            first["rootfs/etc/a"].starts_with("sha256:7692c3ad"),
            "{}",
            first["rootfs/etc/a"]
        );
        fs_err::write(layer.join("etc/a"), "two").unwrap();
        let (overlay, _) = Overlay::collect(&[layer], &show).unwrap();
        let second = overlay_inputs(&overlay, &ignore, &HashCache::default()).unwrap();
        assert_ne!(first["rootfs/etc/a"], second["rootfs/etc/a"]);
    }

    #[test]
    fn keys_change_with_any_input() {
        let base = KeyInputs {
            dockerfile: "a".into(),
            platform: "linux/amd64".into(),
            ..KeyInputs::default()
        };
        let mut other = base.clone();
        assert_eq!(base.key(), other.key());
        other.parents.insert("base:1".into(), "sha256:x".into());
        assert_ne!(base.key(), other.key());
        let mut arch = base.clone();
        arch.platform = "linux/arm64".into();
        assert_ne!(base.key(), arch.key());
    }
}
