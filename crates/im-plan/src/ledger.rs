//! The build ledger, `dist/ledger.json`: per node and platform, the key and inputs it was
//! built with, the output's digest, when, and how long it took.
//!
//! It is rewritten atomically after every finished node, so an interrupted build leaves it
//! consistent: a node is only recorded once its output is complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::key::KeyInputs;

pub const LEDGER_FILE: &str = "ledger.json";
const LEDGER_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub key: String,
    pub inputs: KeyInputs,
    /// The output manifest's digest.
    pub digest: String,
    /// The output path, relative to `dist/`.
    pub output: String,
    /// Seconds since the epoch.
    pub built_at: i64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    /// `image:tag linux/amd64` → entry.
    pub nodes: BTreeMap<String, LedgerEntry>,
}

/// The ledger's name for a node on a platform.
pub fn entry_name(node: &str, platform: &str) -> String {
    format!("{node} {platform}")
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read the build ledger")]
    Read(#[source] std::io::Error),
    #[error("the build ledger {path} is not valid JSON (delete it to rebuild everything)")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write the build ledger")]
    Write(#[source] std::io::Error),
}

impl Ledger {
    pub fn path(dist: &Path) -> PathBuf {
        dist.join(LEDGER_FILE)
    }

    /// Reads the ledger; a missing one is empty, one of another version is ignored.
    pub fn load(dist: &Path) -> Result<Self, LedgerError> {
        let path = Self::path(dist);
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(error) => return Err(LedgerError::Read(error)),
        };
        let ledger: Ledger =
            serde_json::from_str(&text).map_err(|source| LedgerError::Corrupt { path, source })?;
        Ok(if ledger.version == LEDGER_VERSION {
            ledger
        } else {
            Self::empty()
        })
    }

    pub fn empty() -> Self {
        Self {
            version: LEDGER_VERSION,
            nodes: BTreeMap::new(),
        }
    }

    /// Writes the ledger atomically.
    pub fn save(&self, dist: &Path) -> Result<(), LedgerError> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| LedgerError::Write(std::io::Error::other(e)))?;
        json.push(b'\n');
        fs_err::create_dir_all(dist).map_err(LedgerError::Write)?;
        im_render::output::write_atomic(&Self::path(dist), &json, None, None)
            .map_err(LedgerError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ledger::load(dir.path()).unwrap(), Ledger::empty());
        let mut ledger = Ledger::empty();
        ledger.nodes.insert(
            entry_name("a:1", "linux/amd64"),
            LedgerEntry {
                key: "sha256:k".into(),
                inputs: KeyInputs::default(),
                digest: "sha256:d".into(),
                output: "a/1/linux-amd64/image.tar".into(),
                built_at: 1,
                duration_ms: 2,
            },
        );
        ledger.save(dir.path()).unwrap();
        assert_eq!(Ledger::load(dir.path()).unwrap(), ledger);
        fs_err::write(Ledger::path(dir.path()), "{broken").unwrap();
        assert!(matches!(
            Ledger::load(dir.path()),
            Err(LedgerError::Corrupt { .. })
        ));
    }
}
