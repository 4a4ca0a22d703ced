//! `sbom.json` next to a platform archive: for each SBOM format made, the file, the image
//! digest it describes, the SBOM's own digest and its package count. An SBOM is current when
//! the archive still holds that image and the file is still what was written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use im_oci::{Algorithm, Digest, OciArchive};
use serde::{Deserialize, Serialize};

use crate::{SbomError, SbomFormat, write_atomically};

/// The record's file name.
pub const RECORD_FILE: &str = "sbom.json";

/// One SBOM made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// The SBOM's file name, next to the record.
    pub file: String,
    /// The digest of the image manifest it describes.
    pub image_digest: String,
    /// The digest of the SBOM file as written.
    pub sbom_digest: String,
    pub packages: usize,
}

/// Every SBOM made for one platform archive, by format name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub sboms: BTreeMap<String, RecordEntry>,
}

impl Record {
    /// The record in `dir`; an empty one when there is none.
    pub fn load(dir: &Path) -> Result<Self, SbomError> {
        let path = dir.join(RECORD_FILE);
        match fs_err::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| SbomError::Record { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(SbomError::Write { path, source }),
        }
    }

    /// Writes the record into `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), SbomError> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a record serialises");
        bytes.push(b'\n');
        write_atomically(&dir.join(RECORD_FILE), &bytes)
    }

    /// The entry of `format` when its SBOM describes `image_digest` and its file in `dir` is
    /// as written.
    pub fn current(
        &self,
        dir: &Path,
        format: SbomFormat,
        image_digest: &str,
    ) -> Option<&RecordEntry> {
        let entry = self.sboms.get(format.name())?;
        if entry.image_digest != image_digest {
            return None;
        }
        let bytes = fs_err::read(dir.join(&entry.file)).ok()?;
        (sbom_digest(&bytes) == entry.sbom_digest).then_some(entry)
    }

    /// Records an SBOM of `format` written to `dir`.
    pub fn set(&mut self, format: SbomFormat, image_digest: &str, bytes: &[u8], packages: usize) {
        self.sboms.insert(
            format.name().to_owned(),
            RecordEntry {
                file: format.file_name().to_owned(),
                image_digest: image_digest.to_owned(),
                sbom_digest: sbom_digest(bytes),
                packages,
            },
        );
    }
}

/// `sha256:…` of an SBOM's bytes.
pub fn sbom_digest(bytes: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, bytes).to_string()
}

/// The digest of the image manifest in a single-platform OCI archive.
pub fn image_digest(archive: &Path) -> Result<String, SbomError> {
    let error = |source| SbomError::Archive {
        archive: archive.to_owned(),
        source,
    };
    Ok(OciArchive::open(archive)
        .and_then(|a| a.image())
        .map_err(error)?
        .manifest_digest)
}

/// The SBOMs recorded next to an archive, split by whether they describe its image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sboms {
    /// Each format whose SBOM describes the image, with its file.
    pub current: Vec<(SbomFormat, PathBuf)>,
    /// Formats whose SBOM describes another image (an earlier build) or was edited.
    pub stale: Vec<SbomFormat>,
}

/// The SBOMs next to `archive`, against the image it holds now (`image_digest`).
pub fn current_sboms(archive: &Path, image_digest: &str) -> Result<Sboms, SbomError> {
    let dir = archive.parent().unwrap_or(Path::new("."));
    let record = Record::load(dir)?;
    let mut found = Sboms::default();
    for format in SbomFormat::ALL {
        if !record.sboms.contains_key(format.name()) {
            continue;
        }
        match record.current(dir, format, image_digest) {
            Some(entry) => found.current.push((format, dir.join(&entry.file))),
            None => found.stale.push(format),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sbom_is_current_for_its_image_while_its_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut record = Record::default();
        let format = SbomFormat::CycloneDxJson;
        write_atomically(&dir.path().join(format.file_name()), b"{}").unwrap();
        record.set(format, "sha256:aa", b"{}", 4);
        record.save(dir.path()).unwrap();
        let loaded = Record::load(dir.path()).unwrap();
        assert_eq!(loaded, record);
        assert_eq!(
            loaded
                .current(dir.path(), format, "sha256:aa")
                .unwrap()
                .packages,
            4
        );
        assert!(
            loaded.current(dir.path(), format, "sha256:bb").is_none(),
            "another image"
        );
        assert!(
            loaded
                .current(dir.path(), SbomFormat::SpdxJson, "sha256:aa")
                .is_none()
        );
        fs_err::write(dir.path().join(format.file_name()), b"{ }").unwrap();
        assert!(
            loaded.current(dir.path(), format, "sha256:aa").is_none(),
            "edited"
        );
    }

    #[test]
    fn no_record_is_an_empty_one_and_a_broken_one_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Record::load(dir.path()).unwrap(), Record::default());
        fs_err::write(dir.path().join(RECORD_FILE), b"{").unwrap();
        let error = Record::load(dir.path()).unwrap_err();
        assert!(error.to_string().contains("delete it"), "{error}");
    }
}
