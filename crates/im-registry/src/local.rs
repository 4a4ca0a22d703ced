//! `LocalImage`: an image on disk to push — an OCI image layout directory or an OCI archive
//! (a tar of such a layout, as `buildah push oci-archive:`, BuildKit's OCI exporter and the
//! build step write). [`im_oci::OciArchive`] finds where each blob sits (an archive is
//! indexed once), and blobs are streamed from there: nothing is extracted. Manifests are
//! checked against their digests.

use std::collections::HashMap;
use std::io::{Read as _, Seek as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use im_oci::{OciArchive, OciError};
use oci_spec::image::{Descriptor, ImageIndex};

use crate::config::ImageConfigSummary;
use crate::digest::{Digest, descriptor_digest, verify_bytes};
use crate::manifest::{ManifestDocument, ManifestKind, OCI_INDEX, index_type_for, is_foreign};
use crate::transport::BlobSource;
use crate::{Error, Platform};

/// The annotation naming an entry of `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The largest `index.json`, manifest or config read into memory from a local image.
const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

/// An image (single-platform or an index) read from disk.
#[derive(Clone, Debug)]
pub struct LocalImage {
    path: PathBuf,
    root: ManifestDocument,
    manifests: HashMap<Digest, ManifestDocument>,
    blobs: HashMap<Digest, BlobSource>,
}

/// Where member `name` of the layout is, as a source to stream or upload.
fn source(archive: &OciArchive, name: &str) -> Option<BlobSource> {
    if !archive.has(name) {
        return None;
    }
    let (path, offset, len) = archive.location(name).ok()?;
    Some(BlobSource::File { path, offset, len })
}

/// Reads a (small) blob source into memory.
fn read_source(source: &BlobSource, image: &Path) -> Result<Bytes, Error> {
    match source {
        BlobSource::Bytes(bytes) => Ok(bytes.clone()),
        BlobSource::File { path, offset, len } => {
            if *len > MAX_DOCUMENT_BYTES {
                return Err(Error::LocalImage {
                    path: image.to_owned(),
                    reason: format!(
                        "a document is {len} bytes, more than the {MAX_DOCUMENT_BYTES}-byte limit"
                    ),
                });
            }
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            let mut file = fs_err::File::open(path).map_err(io)?;
            file.seek(std::io::SeekFrom::Start(*offset)).map_err(io)?;
            let mut buffer = Vec::with_capacity(usize::try_from(*len).unwrap_or(0));
            file.take(*len).read_to_end(&mut buffer).map_err(io)?;
            if buffer.len() as u64 != *len {
                return Err(Error::LocalImage {
                    path: image.to_owned(),
                    reason: "a file ends early".to_owned(),
                });
            }
            Ok(Bytes::from(buffer))
        }
    }
}

fn blob_name(digest: &Digest) -> String {
    im_oci::archive::blob_member(digest)
}

impl LocalImage {
    /// Opens a layout directory or an OCI archive; `index.json` must name exactly one
    /// image or index, or several single-platform images (which become one index).
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::open_selecting(path, None)
    }

    /// Opens the entry of `index.json` whose `org.opencontainers.image.ref.name` is `name`.
    pub fn open_named(path: &Path, name: &str) -> Result<Self, Error> {
        Self::open_selecting(path, Some(name))
    }

    fn open_selecting(path: &Path, name: Option<&str>) -> Result<Self, Error> {
        let bad = |reason: String| Error::LocalImage {
            path: path.to_owned(),
            reason,
        };
        let storage = OciArchive::open(path).map_err(|error| match error {
            OciError::Io { path, source } => Error::Io { path, source },
            other => other.into(),
        })?;
        if !storage.has("oci-layout") {
            let hint = if storage.has("manifest.json") {
                " (this looks like a docker-archive; export an OCI archive instead)"
            } else {
                ""
            };
            return Err(bad(format!("it has no `oci-layout` file{hint}")));
        }
        let index_source = source(&storage, "index.json")
            .ok_or_else(|| bad("it has no `index.json`".to_owned()))?;
        let index_bytes = read_source(&index_source, path)?;
        let index = ManifestDocument::from_bytes(index_bytes, Some(OCI_INDEX), "index.json")?;
        let mut entries: Vec<&Descriptor> = index.children().iter().collect();
        if let Some(name) = name {
            entries.retain(|d| {
                d.annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME_ANNOTATION))
                    .is_some_and(|n| n == name)
            });
            if entries.is_empty() {
                return Err(bad(format!("`index.json` has no entry named `{name}`")));
            }
        }
        let mut manifests = HashMap::new();
        let load = |descriptor: &Descriptor| -> Result<ManifestDocument, Error> {
            let digest = descriptor_digest(descriptor.digest())?;
            let name = blob_name(&digest);
            let source = source(&storage, &name)
                .ok_or_else(|| bad(format!("manifest {} is missing", descriptor.digest())))?;
            let bytes = read_source(&source, path)?;
            let what = || format!("manifest {} in `{}`", descriptor.digest(), path.display());
            verify_bytes(&what, &digest, Some(descriptor.size()), &bytes)?;
            let media_type = descriptor.media_type().to_string();
            ManifestDocument::from_bytes(bytes, Some(&media_type), &what())
        };
        let root = match entries.as_slice() {
            [] => return Err(bad("`index.json` lists no image".to_owned())),
            [only] => load(only)?,
            several => {
                let mut children = Vec::new();
                let mut names = Vec::new();
                for descriptor in several {
                    let document = load(descriptor)?;
                    if document.is_index() {
                        names.push(descriptor.digest().to_string());
                    }
                    children.push((descriptor, document));
                }
                if !names.is_empty() {
                    let ref_names: Vec<String> = several
                        .iter()
                        .filter_map(|d| d.annotations().as_ref()?.get(REF_NAME_ANNOTATION).cloned())
                        .collect();
                    return Err(bad(format!(
                        "`index.json` lists {} entries including indexes; open one by name ({})",
                        several.len(),
                        ref_names.join(", ")
                    )));
                }
                let mut descriptors = Vec::new();
                let mut types = Vec::new();
                for (descriptor, document) in &children {
                    let mut child = document.descriptor();
                    let platform = match descriptor.platform() {
                        Some(p) => Some(Platform::from_oci(p)),
                        None => config_of(&storage, path, document)?.platform,
                    };
                    let platform = platform.ok_or_else(|| {
                        bad(format!("image {} has no platform", document.digest()))
                    })?;
                    child.set_platform(Some(platform.to_oci()));
                    descriptors.push(child);
                    types.push(document.media_type().to_owned());
                    manifests.insert(document.digest().clone(), document.clone());
                }
                let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
                let mut built = ImageIndex::default();
                built.set_media_type(Some(index_type_for(&type_refs).into()));
                built.set_manifests(descriptors);
                ManifestDocument::from_index(&built)?
            }
        };
        if let ManifestKind::Index(index) = root.kind() {
            for child in index.manifests() {
                if manifests.contains_key(&descriptor_digest(child.digest())?) {
                    continue;
                }
                let document = load(child)?;
                if document.is_index() {
                    return Err(bad(format!(
                        "index {} nests another index, which is not supported",
                        root.digest()
                    )));
                }
                manifests.insert(document.digest().clone(), document);
            }
        }
        manifests.insert(root.digest().clone(), root.clone());
        let mut blobs = HashMap::new();
        for document in manifests.values() {
            for descriptor in document.blobs() {
                let digest = descriptor_digest(descriptor.digest())?;
                let source = source(&storage, &blob_name(&digest)).ok_or_else(|| {
                    bad(format!(
                        "blob {} of manifest {} is missing",
                        descriptor.digest(),
                        document.digest()
                    ))
                })?;
                if source.len() != descriptor.size() {
                    return Err(Error::SizeMismatch {
                        what: format!("blob {} in `{}`", descriptor.digest(), path.display()),
                        expected: descriptor.size(),
                        actual: source.len(),
                    });
                }
                blobs.insert(digest, source);
            }
        }
        Ok(Self {
            path: path.to_owned(),
            root,
            manifests,
            blobs,
        })
    }

    /// Where the image was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The document to push under the tag: an image manifest or an index.
    pub fn root(&self) -> &ManifestDocument {
        &self.root
    }

    /// A manifest of this image (the root or a child) by digest.
    pub fn manifest(&self, digest: &Digest) -> Option<&ManifestDocument> {
        self.manifests.get(digest)
    }

    /// The single-platform manifests: the root itself, or the children of the root index.
    pub fn images(&self) -> Vec<&ManifestDocument> {
        if self.root.is_index() {
            self.root
                .children()
                .iter()
                .filter_map(|c| self.manifests.get(&descriptor_digest(c.digest()).ok()?))
                .collect()
        } else {
            vec![&self.root]
        }
    }

    /// Where a blob's bytes are.
    pub fn blob(&self, digest: &Digest) -> Option<BlobSource> {
        self.blobs.get(digest).cloned()
    }

    /// The parsed config of one of this image's manifests.
    pub fn config(&self, manifest: &ManifestDocument) -> Result<ImageConfigSummary, Error> {
        let ManifestKind::Image(image) = manifest.kind() else {
            return Err(Error::LocalImage {
                path: self.path.clone(),
                reason: format!("{} is an index, not an image", manifest.digest()),
            });
        };
        let descriptor = image.config();
        let digest = descriptor_digest(descriptor.digest())?;
        let source = self.blob(&digest).ok_or_else(|| Error::LocalImage {
            path: self.path.clone(),
            reason: format!("config {} is missing", descriptor.digest()),
        })?;
        let bytes = read_source(&source, &self.path)?;
        let what = || {
            format!(
                "config {} in `{}`",
                descriptor.digest(),
                self.path.display()
            )
        };
        verify_bytes(&what, &digest, Some(descriptor.size()), &bytes)?;
        ImageConfigSummary::parse(&bytes, &self.path.display().to_string())
    }

    /// The platform of a single-platform image (from its config), `None` for an index.
    pub fn platform(&self) -> Result<Option<Platform>, Error> {
        if self.root.is_index() {
            return Ok(None);
        }
        Ok(self.config(&self.root)?.platform)
    }

    /// Every distinct blob of the image with its size (foreign layers excluded).
    pub(crate) fn all_blobs(&self) -> Vec<(Digest, u64)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for document in self.images() {
            for descriptor in document.blobs() {
                // open() converted every blob's digest, so none is skipped here.
                let Ok(digest) = descriptor_digest(descriptor.digest()) else {
                    continue;
                };
                if !is_foreign(descriptor) && seen.insert(digest.clone()) {
                    out.push((digest, descriptor.size()));
                }
            }
        }
        out
    }
}

fn config_of(
    storage: &OciArchive,
    path: &Path,
    document: &ManifestDocument,
) -> Result<ImageConfigSummary, Error> {
    let ManifestKind::Image(image) = document.kind() else {
        return Ok(ImageConfigSummary::default());
    };
    let descriptor = image.config();
    let Some(source) = source(
        storage,
        &blob_name(&descriptor_digest(descriptor.digest())?),
    ) else {
        return Err(Error::LocalImage {
            path: path.to_owned(),
            reason: format!("config {} is missing", descriptor.digest()),
        });
    };
    let bytes = read_source(&source, path)?;
    ImageConfigSummary::parse(&bytes, &path.display().to_string())
}
