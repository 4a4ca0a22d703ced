//! hadolint's findings of Dockerfiles linted before, so a Dockerfile is linted once until it,
//! hadolint or the project's `.hadolint.yaml` changes: `<dist>/.lint-cache.json`, keyed by
//! the SHA-256 of hadolint's version, the configuration's bytes and the Dockerfile's bytes.
//! A cache that cannot be read (missing, from another version, damaged) is empty; one that
//! cannot be written is a warning, never a failed lint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use im_lint::HadolintFinding;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The cache file's name in `dist/`.
pub const FILE: &str = ".lint-cache.json";
/// The format of the file; another one is not read.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize, Default)]
struct Stored {
    format: u32,
    entries: BTreeMap<String, Vec<HadolintFinding>>,
}

/// The findings known for Dockerfiles, and those found in this run.
pub struct Cache {
    path: PathBuf,
    /// Hashed before every Dockerfile: hadolint's version and configuration.
    salt: Vec<u8>,
    entries: BTreeMap<String, Vec<HadolintFinding>>,
}

impl Cache {
    /// The cache in `dist` for hadolint `version` with the configuration `config` (its bytes).
    pub fn load(dist: &Path, version: &str, config: Option<&[u8]>) -> Cache {
        let path = dist.join(FILE);
        let entries = fs_err::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
            .filter(|stored| stored.format == FORMAT)
            .map(|stored| stored.entries)
            .unwrap_or_default();
        let mut salt = Vec::new();
        for part in [version.as_bytes(), config.unwrap_or(b"(no configuration)")] {
            salt.extend_from_slice(&(part.len() as u64).to_le_bytes());
            salt.extend_from_slice(part);
        }
        Cache {
            path,
            salt,
            entries,
        }
    }

    /// The key of a Dockerfile's text.
    pub fn key(&self, dockerfile: &str) -> String {
        let mut hash = Sha256::new();
        hash.update(&self.salt);
        hash.update(dockerfile.as_bytes());
        format!("{:x}", hash.finalize())
    }

    pub fn get(&self, key: &str) -> Option<&Vec<HadolintFinding>> {
        self.entries.get(key)
    }

    /// Writes the cache with `found` added; with `prune`, only the entries of `keep` stay
    /// (a run over every tag knows every Dockerfile that still exists).
    pub fn save(
        mut self,
        found: impl IntoIterator<Item = (String, Vec<HadolintFinding>)>,
        prune: Option<&[String]>,
    ) -> std::io::Result<()> {
        self.entries.extend(found);
        if let Some(keep) = prune {
            let keep: std::collections::HashSet<&String> = keep.iter().collect();
            self.entries.retain(|key, _| keep.contains(key));
        }
        let stored = Stored {
            format: FORMAT,
            entries: self.entries,
        };
        let bytes = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            fs_err::create_dir_all(dir)?;
        }
        im_render::output::write_atomic(&self.path, &bytes, None, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> HadolintFinding {
        HadolintFinding {
            code: "DL3008".into(),
            level: im_lint::Level::Warning,
            message: "pin".into(),
            file: PathBuf::new(),
            line: 2,
            column: Some(1),
        }
    }

    #[test]
    fn findings_come_back_for_the_same_dockerfile_hadolint_and_configuration_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::load(dir.path(), "2.15.1", None);
        let key = cache.key("FROM a\n");
        assert!(cache.get(&key).is_none());
        cache.save([(key.clone(), vec![finding()])], None).unwrap();
        let cache = Cache::load(dir.path(), "2.15.1", None);
        assert_eq!(cache.get(&key), Some(&vec![finding()]));
        assert_ne!(cache.key("FROM b\n"), key);
        assert_ne!(Cache::load(dir.path(), "2.16.0", None).key("FROM a\n"), key);
        assert_ne!(
            Cache::load(dir.path(), "2.15.1", Some(b"ignored: [DL3008]")).key("FROM a\n"),
            key
        );
    }

    #[test]
    fn a_damaged_cache_is_empty_and_pruning_keeps_what_is_used() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(FILE), "{not json").unwrap();
        let cache = Cache::load(dir.path(), "1", None);
        let (a, b) = (cache.key("a"), cache.key("b"));
        cache
            .save(
                [(a.clone(), vec![]), (b.clone(), vec![finding()])],
                Some(std::slice::from_ref(&b)),
            )
            .unwrap();
        let cache = Cache::load(dir.path(), "1", None);
        assert!(cache.get(&a).is_none());
        assert!(cache.get(&b).is_some());
    }
}
