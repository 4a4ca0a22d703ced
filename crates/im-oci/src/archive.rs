//! [`OciArchive`]: random access to the members of an image on disk (an OCI archive, an OCI
//! layout directory, or any image tar such as a docker-archive) without unpacking it, and
//! the one image a single-image OCI archive holds ([`OciArchive::image`]), as builders write
//! them and registries serve them (an OCI image manifest, or Docker's schema 2 one).
//!
//! Members are found through [`Store`] (indexed once, read in place); blobs are checked
//! against their digests before they are used.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::OciError;
use crate::limits::Limits;
pub use crate::oci_layout::blob_member;
use crate::oci_layout::is_manifest;
use crate::platform::Platform;
use crate::store::Store;

/// An image container opened for reading its members by name.
#[derive(Debug)]
pub struct OciArchive {
    store: Store,
    limits: Limits,
}

/// The one image an OCI archive holds.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The manifest's descriptor as `index.json` lists it.
    pub descriptor: Descriptor,
    pub manifest: ImageManifest,
    /// `sha256:…` of the manifest.
    pub manifest_digest: String,
    /// `sha256:…` of the config.
    pub config_digest: String,
    /// The platform recorded in the image's config.
    pub platform: Platform,
}

/// The part of an image config that says its platform.
#[derive(Deserialize)]
struct ConfigPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// The platform an image config (its JSON bytes) records.
pub fn config_platform(config: &[u8]) -> Result<Platform, serde_json::Error> {
    let config: ConfigPlatform = serde_json::from_slice(config)?;
    Ok(Platform::new(
        &config.os,
        &config.architecture,
        config.variant.as_deref(),
    ))
}

impl OciArchive {
    /// Opens a tar (indexing its members; no data is read) or a layout directory.
    pub fn open(path: &Path) -> Result<Self, OciError> {
        let limits = Limits::default();
        Ok(Self {
            store: Store::open(path, &limits)?,
            limits,
        })
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// Whether the archive has a regular file `name`.
    pub fn has(&self, name: &str) -> bool {
        self.store.contains(name)
    }

    /// The size of member `name`.
    pub fn size(&self, name: &str) -> Result<u64, OciError> {
        self.store.size(name)
    }

    /// Where member `name`'s bytes are: the file, and the offset and length inside it.
    pub fn location(&self, name: &str) -> Result<(PathBuf, u64, u64), OciError> {
        self.store.location(name)
    }

    /// A reader over member `name`'s data.
    pub fn reader(&self, name: &str) -> Result<Box<dyn Read + Send>, OciError> {
        self.store.open_range(name, 0, None)
    }

    /// Member `name`'s data (a JSON document or a config: at most `max_metadata_bytes`).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, OciError> {
        self.store.read_small(name, self.limits.max_metadata_bytes)
    }

    /// Member `name` parsed as JSON.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, OciError> {
        let bytes = self.read(name)?;
        serde_json::from_slice(&bytes).map_err(|source| OciError::Json {
            archive: self.path().to_owned(),
            what: name.to_owned(),
            source,
        })
    }

    /// The blob `digest` (`sha256:…`), checked against its digest.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, OciError> {
        self.read_digest(&digest.parse()?)
    }

    fn read_digest(&self, digest: &Digest) -> Result<Vec<u8>, OciError> {
        let member = blob_member(digest);
        let bytes = self.read(&member)?;
        let actual = Digest::of_bytes(digest.algorithm(), &bytes);
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what: format!("member `{member}` of {}", self.path().display()),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// The archive's single image: `index.json` must list exactly one image manifest (OCI,
    /// or Docker's schema 2, as registries serve base images pulled into archives).
    pub fn image(&self) -> Result<ArchiveImage, OciError> {
        let index: ImageIndex = self.read_json("index.json")?;
        let manifests: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| is_manifest(d.media_type()))
            .collect();
        if manifests.len() != 1 || index.manifests().len() != 1 {
            return Err(OciError::NotSingleImage {
                archive: self.path().to_owned(),
                count: index.manifests().len(),
            });
        }
        let descriptor = manifests[0].clone();
        let json_err = |digest: &Digest, source| OciError::Json {
            archive: self.path().to_owned(),
            what: blob_member(digest),
            source,
        };
        let manifest_digest = Digest::try_from(descriptor.digest())?;
        let manifest: ImageManifest = serde_json::from_slice(&self.read_digest(&manifest_digest)?)
            .map_err(|source| json_err(&manifest_digest, source))?;
        let config_digest = Digest::try_from(manifest.config().digest())?;
        let platform = config_platform(&self.read_digest(&config_digest)?)
            .map_err(|source| json_err(&config_digest, source))?;
        Ok(ArchiveImage {
            descriptor,
            manifest,
            manifest_digest: manifest_digest.to_string(),
            config_digest: config_digest.to_string(),
            platform,
        })
    }
}
