//! `dist/bases.json`: what each external base reference resolved to the last time a
//! registry was asked. Offline plans read it instead of the registry; `build` rewrites it
//! after resolving. Written atomically (a temporary file renamed over the old one).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BaseError;

/// The record's file name inside `dist/`.
pub const RECORD_FILE: &str = "bases.json";

/// What one reference, as the Dockerfile writes it, resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The reference in full (`docker.io/library/debian:bookworm-slim`).
    pub canonical: String,
    /// The repository it was read from: a mirror's, or the reference's own.
    pub source: String,
    /// The digest the tag pointed at (an index or a single image's manifest).
    pub digest: String,
    /// Platform (`linux/amd64`) → the digest of that platform's image manifest.
    pub platforms: BTreeMap<String, String>,
    /// When the registry answered (seconds since the epoch).
    pub resolved_at: i64,
}

impl Resolved {
    /// The image manifest digest for `platform`, if it was resolved.
    pub fn platform_digest(&self, platform: &str) -> Option<&str> {
        self.platforms.get(platform).map(String::as_str)
    }
}

/// Every resolved reference, by the reference as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub bases: BTreeMap<String, Resolved>,
}

impl Record {
    fn path(dist: &Path) -> PathBuf {
        dist.join(RECORD_FILE)
    }

    /// Reads `dist/bases.json`; an absent file is an empty record.
    pub fn load(dist: &Path) -> Result<Self, BaseError> {
        let path = Self::path(dist);
        let bytes = match fs_err::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(source) => return Err(BaseError::Io { path, source }),
        };
        serde_json::from_slice(&bytes).map_err(|source| BaseError::Record { path, source })
    }

    /// Writes `dist/bases.json` atomically.
    pub fn save(&self, dist: &Path) -> Result<(), BaseError> {
        let path = Self::path(dist);
        let io = |source| BaseError::Io {
            path: path.clone(),
            source,
        };
        fs_err::create_dir_all(dist).map_err(io)?;
        let mut file = tempfile::Builder::new()
            .prefix(".bases-")
            .tempfile_in(dist)
            .map_err(io)?;
        let mut text = serde_json::to_vec_pretty(self).expect("the record serializes");
        text.push(b'\n');
        file.write_all(&text).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        file.persist(&path).map_err(|error| io(error.error))?;
        Ok(())
    }

    /// Takes in what was just resolved; other entries stay.
    pub fn update(&mut self, resolved: &BTreeMap<String, Resolved>) {
        for (reference, entry) in resolved {
            let mut entry = entry.clone();
            // Platforms asked for before and not this time stay known, unless the tag moved.
            if let Some(old) = self.bases.get(reference)
                && old.digest == entry.digest
            {
                for (platform, digest) in &old.platforms {
                    entry
                        .platforms
                        .entry(platform.clone())
                        .or_insert_with(|| digest.clone());
                }
            }
            self.bases.insert(reference.clone(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(digest: &str, platforms: &[(&str, &str)]) -> Resolved {
        Resolved {
            canonical: "docker.io/library/debian:12".into(),
            source: "docker.io/library/debian".into(),
            digest: digest.into(),
            platforms: platforms
                .iter()
                .map(|(p, d)| ((*p).to_owned(), (*d).to_owned()))
                .collect(),
            resolved_at: 1,
        }
    }

    #[test]
    fn the_record_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::load(dir.path()).unwrap(), Record::default());
        let mut record = Record::default();
        record.update(&BTreeMap::from([(
            "debian:12".to_owned(),
            resolved("sha256:i", &[("linux/amd64", "sha256:a")]),
        )]));
        record.save(dir.path()).unwrap();
        assert_eq!(Record::load(dir.path()).unwrap(), record);
        fs_err::write(dir.path().join(RECORD_FILE), "{").unwrap();
        let error = Record::load(dir.path()).unwrap_err().to_string();
        assert!(error.contains("bases.json"), "{error}");
    }

    #[test]
    fn platforms_stay_known_until_the_tag_moves() {
        let mut record = Record::default();
        let one = |r: Resolved| BTreeMap::from([("debian:12".to_owned(), r)]);
        record.update(&one(resolved("sha256:i", &[("linux/amd64", "sha256:a")])));
        record.update(&one(resolved("sha256:i", &[("linux/arm64", "sha256:b")])));
        assert_eq!(record.bases["debian:12"].platforms.len(), 2);
        record.update(&one(resolved("sha256:j", &[("linux/arm64", "sha256:c")])));
        assert_eq!(
            record.bases["debian:12"].platforms,
            BTreeMap::from([("linux/arm64".to_owned(), "sha256:c".to_owned())])
        );
    }
}
