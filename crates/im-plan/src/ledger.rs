//! The build ledger, `dist/ledger.json`: per node and platform, the key it was built with,
//! the output's digest, when, and how long it took.
//!
//! It is rewritten atomically after every finished node, so an interrupted build leaves it
//! consistent: a node is only recorded once its output is complete.
//!
//! What each key is made of ([`KeyInputs`]) is kept out of the ledger, in one small file per
//! key under `dist/.build-inputs/` ([`record_inputs`], [`load_inputs`]): a plan only needs
//! it to explain a key that changed, and a ledger that repeated every node's context and
//! labels would make every plan of a large project parse tens of megabytes first. The files
//! are named by the key, so they are written once and never rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::key::KeyInputs;
use crate::plan::PlanNode;

pub const LEDGER_FILE: &str = "ledger.json";
/// The folder of the key inputs files, in `dist/`.
pub const INPUTS_DIR: &str = ".build-inputs";
const LEDGER_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub key: String,
    /// The builder kind of that build (a later `push` computes the same keys with it).
    #[serde(default)]
    pub builder: String,
    /// The build args of that build.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// The output manifest's digest.
    pub digest: String,
    /// External bases the build started from: the reference as written → the digest of the
    /// image it used for this platform.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bases: BTreeMap<String, String>,
    /// The output path, relative to `dist/`.
    pub output: String,
    /// Seconds since the epoch.
    pub built_at: i64,
    pub duration_ms: u64,
    /// Why this build happened (the plan's reasons, as people read them), for `report`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl LedgerEntry {
    /// The entry for `node` once its image (manifest `digest`) is in place, built (taking
    /// `duration`) or fetched from a registry (zero).
    pub fn new(node: &PlanNode, digest: String, duration: std::time::Duration) -> Self {
        LedgerEntry {
            key: node.key.clone(),
            builder: node.inputs.builder.clone(),
            build_args: node.inputs.build_args.clone(),
            digest,
            bases: node
                .inputs
                .externals
                .iter()
                .filter_map(|(reference, digest)| Some((reference.clone(), digest.clone()?)))
                .collect(),
            output: node.output.display().to_string(),
            built_at: now(),
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            reasons: node.reasons.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    pub version: u32,
    /// `image:tag linux/amd64` → entry.
    pub nodes: BTreeMap<String, LedgerEntry>,
    /// `image:tag linux/amd64` → its builds that failed since it last succeeded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, Failure>,
}

/// Builds of a node that failed in a row with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The key the builds failed with; a build with another key starts counting again.
    pub key: String,
    pub count: u32,
    /// When the last one failed (seconds since the epoch).
    pub failed_at: i64,
    /// The end of its error.
    pub error: String,
}

/// The longest back-off, so a node that keeps failing is still tried about once a week.
const MAX_BACKOFF_HOURS: u32 = 128;

impl Failure {
    /// Until when scheduled runs leave the node alone: 2^count hours after the last failure
    /// (1 failure: 2 hours, 3: 8 hours, ... at most 128 hours), as Docker Official Images
    /// back off from images that keep failing.
    pub fn backoff_until(&self) -> i64 {
        let hours = 2_u32
            .checked_pow(self.count)
            .unwrap_or(MAX_BACKOFF_HOURS)
            .min(MAX_BACKOFF_HOURS);
        self.failed_at + i64::from(hours) * 3600
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
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
            failures: BTreeMap::new(),
        }
    }

    /// Records that building `node` failed with `error` (counting on from an earlier failure
    /// with the same key), and saves the ledger.
    pub fn record_failure(
        &mut self,
        dist: &Path,
        node: &PlanNode,
        error: &str,
    ) -> Result<(), LedgerError> {
        let name = entry_name(&node.id.to_string(), &node.platform.to_string());
        let count = self
            .failures
            .get(&name)
            .filter(|failure| failure.key == node.key)
            .map_or(1, |failure| failure.count.saturating_add(1));
        // The end of the error is what says why; keep the ledger small.
        let error: String = {
            let lines: Vec<&str> = error.lines().collect();
            lines[lines.len().saturating_sub(5)..].join("\n")
        };
        self.failures.insert(
            name,
            Failure {
                key: node.key.clone(),
                count,
                failed_at: now(),
                error,
            },
        );
        self.save(dist)
    }

    /// The failures of `node` on `platform` that back off a scheduled build with `key` now:
    /// the time it may be tried again, if that is later than `now`.
    pub fn backing_off(&self, node: &str, platform: &str, key: &str, now: i64) -> Option<i64> {
        self.failures
            .get(&entry_name(node, platform))
            .filter(|failure| failure.key == key)
            .map(Failure::backoff_until)
            .filter(|until| *until > now)
    }

    /// Removes the key inputs files of keys no entry has any more.
    pub fn prune_inputs(&self, dist: &Path) -> Result<(), LedgerError> {
        let dir = dist.join(INPUTS_DIR);
        let keep: std::collections::HashSet<String> = self
            .nodes
            .values()
            .map(|entry| inputs_file_name(&entry.key))
            .collect();
        let entries = match fs_err::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(LedgerError::Write(error)),
        };
        for entry in entries {
            let entry = entry.map_err(LedgerError::Write)?;
            if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                fs_err::remove_file(entry.path()).map_err(LedgerError::Write)?;
            }
        }
        Ok(())
    }

    /// Writes the ledger atomically.
    /// Records `node` as in place with manifest `digest` (built in `duration`, or fetched:
    /// zero): its key inputs first, then its entry, and saves the ledger at once so an
    /// interrupted run keeps it.
    pub fn record(
        &mut self,
        dist: &Path,
        node: &PlanNode,
        digest: &str,
        duration: std::time::Duration,
    ) -> Result<(), LedgerError> {
        record_inputs(dist, &node.key, &node.inputs)?;
        let name = entry_name(&node.id.to_string(), &node.platform.to_string());
        self.failures.remove(&name);
        self.nodes
            .insert(name, LedgerEntry::new(node, digest.to_owned(), duration));
        self.save(dist)
    }

    pub fn save(&self, dist: &Path) -> Result<(), LedgerError> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| LedgerError::Write(std::io::Error::other(e)))?;
        json.push(b'\n');
        fs_err::create_dir_all(dist).map_err(LedgerError::Write)?;
        im_render::output::write_atomic(&Self::path(dist), &json, None, None)
            .map_err(LedgerError::Write)
    }
}

/// `sha256:<hex>` → `sha256-<hex>.json`.
fn inputs_file_name(key: &str) -> String {
    format!("{}.json", key.replace(':', "-"))
}

/// Records what `key` is made of, unless it is recorded already (the file is named by the
/// key, so an existing one holds exactly these inputs).
pub fn record_inputs(dist: &Path, key: &str, inputs: &KeyInputs) -> Result<(), LedgerError> {
    let dir = dist.join(INPUTS_DIR);
    let path = dir.join(inputs_file_name(key));
    if path.is_file() {
        return Ok(());
    }
    let mut json = serde_json::to_vec_pretty(inputs)
        .map_err(|e| LedgerError::Write(std::io::Error::other(e)))?;
    json.push(b'\n');
    fs_err::create_dir_all(&dir).map_err(LedgerError::Write)?;
    im_render::output::write_atomic(&path, &json, None, None).map_err(LedgerError::Write)
}

/// What `key` was made of, if it was recorded and is readable.
pub fn load_inputs(dist: &Path, key: &str) -> Option<KeyInputs> {
    let text = fs_err::read_to_string(dist.join(INPUTS_DIR).join(inputs_file_name(key))).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ledger with `a:1` on linux/amd64 built with `key`.
    fn one_entry(key: &str) -> Ledger {
        let mut ledger = Ledger::empty();
        ledger.nodes.insert(
            entry_name("a:1", "linux/amd64"),
            LedgerEntry {
                key: key.into(),
                builder: "buildah".into(),
                build_args: BTreeMap::new(),
                digest: "sha256:d".into(),
                bases: BTreeMap::from([("debian:12".into(), "sha256:b".into())]),
                output: "a/1/linux-amd64/image.tar".into(),
                built_at: 1,
                duration_ms: 2,
                reasons: vec![],
            },
        );
        ledger
    }

    #[test]
    fn round_trips_and_ignores_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Ledger::load(dir.path()).unwrap(), Ledger::empty());
        let ledger = one_entry("sha256:k");
        ledger.save(dir.path()).unwrap();
        assert_eq!(Ledger::load(dir.path()).unwrap(), ledger);
        fs_err::write(Ledger::path(dir.path()), "{broken").unwrap();
        assert!(matches!(
            Ledger::load(dir.path()),
            Err(LedgerError::Corrupt { .. })
        ));
    }

    #[test]
    fn failures_count_per_key_and_back_off_two_to_the_n_hours() {
        let failure = |count| Failure {
            key: "sha256:k".into(),
            count,
            failed_at: 1_000,
            error: "boom".into(),
        };
        assert_eq!(failure(1).backoff_until(), 1_000 + 2 * 3600);
        assert_eq!(failure(3).backoff_until(), 1_000 + 8 * 3600);
        assert_eq!(failure(40).backoff_until(), 1_000 + 128 * 3600);
        let mut ledger = Ledger::empty();
        ledger
            .failures
            .insert(entry_name("a:1", "linux/amd64"), failure(2));
        let until = 1_000 + 4 * 3600;
        assert_eq!(
            ledger.backing_off("a:1", "linux/amd64", "sha256:k", 2_000),
            Some(until)
        );
        // Another key (an input changed) or the time passed: no back-off.
        assert_eq!(
            ledger.backing_off("a:1", "linux/amd64", "sha256:other", 2_000),
            None
        );
        assert_eq!(
            ledger.backing_off("a:1", "linux/amd64", "sha256:k", until),
            None
        );
        // An old ledger without failures still reads.
        let old: Ledger = serde_json::from_str(r#"{"version":1,"nodes":{}}"#).unwrap();
        assert!(old.failures.is_empty());
    }

    #[test]
    fn key_inputs_are_kept_per_key_and_pruned_with_their_entries() {
        let dir = tempfile::tempdir().unwrap();
        let inputs = KeyInputs {
            dockerfile: "d1".into(),
            ..KeyInputs::default()
        };
        assert_eq!(load_inputs(dir.path(), "sha256:k1"), None);
        record_inputs(dir.path(), "sha256:k1", &inputs).unwrap();
        record_inputs(dir.path(), "sha256:k2", &KeyInputs::default()).unwrap();
        assert_eq!(load_inputs(dir.path(), "sha256:k1"), Some(inputs));
        let ledger = one_entry("sha256:k1");
        ledger.prune_inputs(dir.path()).unwrap();
        assert!(load_inputs(dir.path(), "sha256:k1").is_some());
        assert_eq!(load_inputs(dir.path(), "sha256:k2"), None);
    }

    #[test]
    fn a_ledger_that_still_holds_inputs_is_read() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(
            Ledger::path(dir.path()),
            r#"{"version":1,"nodes":{"a:1 linux/amd64":{"key":"sha256:k","inputs":{"dockerfile":"x"},"digest":"sha256:d","output":"o","built_at":1,"duration_ms":2}}}"#,
        )
        .unwrap();
        let ledger = Ledger::load(dir.path()).unwrap();
        assert_eq!(ledger.nodes["a:1 linux/amd64"].key, "sha256:k");
    }
}
