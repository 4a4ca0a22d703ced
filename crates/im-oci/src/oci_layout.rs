//! Choosing an image from an OCI layout (a directory, or the same tree inside a tar).
//!
//! `index.json` may list several images (told apart by their `org.opencontainers.image.ref.name`
//! or `io.containerd.image.name` annotation), nested indexes (multi-platform images) and
//! attestation manifests (platform `unknown/unknown`, skipped). Several named images and no tag
//! is an error listing the names; several platforms and none requested is an error listing the
//! platforms. Every blob read is checked against its descriptor's size and digest.

use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::error::OciError;
use crate::image::{Image, OpenOptions};
use crate::platform::Platform;
use crate::source::{BlobSource, LayerDescriptor, StoreSource};
use crate::store::Store;

const MAX_INDEX_DEPTH: usize = 4;
const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The member holding the blob `digest`.
pub fn blob_member(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}

fn read_blob(store: &Store, descriptor: &Descriptor, limit: u64) -> Result<Vec<u8>, OciError> {
    let digest = Digest::try_from(descriptor.digest())?;
    let member = blob_member(&digest);
    if !store.contains(&member) {
        return Err(OciError::MissingBlob {
            image: store.path().to_owned(),
            digest: digest.to_string(),
        });
    }
    let bytes = store.read_small(&member, limit)?;
    if bytes.len() as u64 != descriptor.size() {
        return Err(OciError::SizeMismatch {
            what: format!("blob {digest}"),
            expected: descriptor.size(),
            actual: bytes.len() as u64,
        });
    }
    let actual = Digest::of_bytes(digest.algorithm(), &bytes);
    if actual != digest {
        return Err(OciError::DigestMismatch {
            what: format!("blob {digest}"),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

fn parse<T: serde::de::DeserializeOwned>(
    store: &Store,
    what: &str,
    bytes: &[u8],
) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        archive: store.path().to_owned(),
        what: what.to_owned(),
        source,
    })
}

fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    let annotations = descriptor.annotations().as_ref()?;
    annotations
        .get(REF_NAME)
        .or_else(|| annotations.get(CONTAINERD_NAME))
        .map(String::as_str)
}

/// Whether an image named `name` (`repo:tag`) answers to `tag` (`repo:tag`, `tag` or `repo`).
pub(crate) fn tag_matches(name: &str, tag: &str) -> bool {
    name == tag
        || name.ends_with(&format!(":{tag}"))
        || name.rsplit_once(':').is_some_and(|(repo, _)| repo == tag)
}

fn is_index(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageIndex)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.list.v2+json"
}

pub(crate) fn is_manifest(media_type: &MediaType) -> bool {
    matches!(media_type, MediaType::ImageManifest)
        || media_type.to_string() == "application/vnd.docker.distribution.manifest.v2+json"
}

fn descriptor_platform(descriptor: &Descriptor) -> Option<Platform> {
    descriptor.platform().as_ref().map(Platform::from_oci)
}

/// Selects and opens one image of the layout in `store`.
pub fn select(store: &Arc<Store>, options: &OpenOptions) -> Result<Image, OciError> {
    let limit = options.limits.max_metadata_bytes;
    let path = store.path().to_owned();
    let _layout: oci_spec::image::OciLayout =
        parse(store, "oci-layout", &store.read_small("oci-layout", limit)?)?;
    let index: ImageIndex = parse(store, "index.json", &store.read_small("index.json", limit)?)?;
    let top = index.manifests();
    let names: Vec<String> = {
        let mut names: Vec<String> = top.iter().filter_map(ref_name).map(str::to_owned).collect();
        names.sort();
        names.dedup();
        names
    };
    let chosen: Vec<&Descriptor> = match &options.tag {
        Some(tag) => {
            let chosen: Vec<&Descriptor> = top
                .iter()
                .filter(|d| ref_name(d).is_some_and(|n| tag_matches(n, tag)))
                .collect();
            if chosen.is_empty() {
                return Err(OciError::NoSuchTag {
                    image: path,
                    tag: tag.clone(),
                    candidates: names,
                });
            }
            chosen
        }
        None if names.len() > 1 => {
            return Err(OciError::AmbiguousImage {
                image: path,
                candidates: names,
            });
        }
        None => top.iter().collect(),
    };
    let mut leaves: Vec<Descriptor> = Vec::new();
    for descriptor in chosen {
        collect_leaves(store, descriptor, 0, limit, &mut leaves)?;
    }
    leaves.retain(|d| descriptor_platform(d).is_none_or(|p| p.os != "unknown"));
    let display_name = match &options.tag {
        Some(tag) => format!("{}:{tag}", path.display()),
        None => path.display().to_string(),
    };
    let available: Vec<String> = leaves
        .iter()
        .map(|d| {
            descriptor_platform(d).map_or_else(|| "(unspecified)".to_owned(), |p| p.to_string())
        })
        .collect();
    let leaf = match &options.platform {
        Some(requested) => {
            let explicit = leaves
                .iter()
                .find(|d| descriptor_platform(d).is_some_and(|p| p.satisfies(requested)));
            let unspecified = leaves.iter().find(|d| d.platform().is_none());
            match explicit.or(unspecified) {
                Some(leaf) => leaf.clone(),
                None if leaves.len() == 1 => leaves[0].clone(), // Image::new reports the mismatch naming both
                None => {
                    return Err(OciError::NoMatchingPlatform {
                        image: display_name,
                        requested: requested.to_string(),
                        available,
                    });
                }
            }
        }
        None if leaves.len() == 1 => leaves[0].clone(),
        None => {
            return Err(OciError::NoMatchingPlatform {
                image: display_name,
                requested: "(none given)".to_owned(),
                available,
            });
        }
    };
    let manifest: ImageManifest = parse(store, "image manifest", &read_blob(store, &leaf, limit)?)?;
    let config_bytes = read_blob(store, manifest.config(), limit)?;
    let source: Arc<dyn BlobSource> = Arc::new(OciBlobs {
        inner: StoreSource {
            store: Arc::clone(store),
        },
    });
    Image::from_manifest(display_name, &manifest, &config_bytes, source, options)
}

fn collect_leaves(
    store: &Store,
    descriptor: &Descriptor,
    depth: usize,
    limit: u64,
    leaves: &mut Vec<Descriptor>,
) -> Result<(), OciError> {
    let media_type = descriptor.media_type();
    if is_manifest(media_type) {
        leaves.push(descriptor.clone());
    } else if is_index(media_type) {
        if depth >= MAX_INDEX_DEPTH {
            return Err(OciError::IndexTooDeep {
                image: store.path().to_owned(),
                limit: MAX_INDEX_DEPTH,
            });
        }
        let nested: ImageIndex =
            parse(store, "nested index", &read_blob(store, descriptor, limit)?)?;
        for child in nested.manifests() {
            collect_leaves(store, child, depth + 1, limit, leaves)?;
        }
    }
    Ok(())
}

/// Blobs of an OCI layout: the locator is the digest, stored under `blobs/<alg>/<hex>`.
#[derive(Debug)]
struct OciBlobs {
    inner: StoreSource,
}

impl OciBlobs {
    fn member(&self, layer: &LayerDescriptor) -> Result<LayerDescriptor, OciError> {
        let digest: Digest = layer.locator.parse()?;
        let member = blob_member(&digest);
        if !self.inner.store.contains(&member) {
            return Err(OciError::MissingBlob {
                image: self.inner.store.path().to_owned(),
                digest: digest.to_string(),
            });
        }
        Ok(LayerDescriptor {
            locator: member,
            ..layer.clone()
        })
    }
}

impl BlobSource for OciBlobs {
    fn open_blob(
        &self,
        layer: &LayerDescriptor,
    ) -> Result<Box<dyn std::io::Read + Send>, OciError> {
        self.inner.open_blob(&self.member(layer)?)
    }

    fn open_blob_range(
        &self,
        layer: &LayerDescriptor,
        offset: u64,
        len: u64,
    ) -> Result<Option<Box<dyn std::io::Read + Send>>, OciError> {
        self.inner
            .open_blob_range(&self.member(layer)?, offset, len)
    }

    fn open_blob_window(
        &self,
        layer: &LayerDescriptor,
    ) -> Result<Option<crate::store::Window>, OciError> {
        self.inner.open_blob_window(&self.member(layer)?)
    }
}
