//! Reading what a reference holds: digest, media type, platforms, sizes, labels and
//! annotations (`inspect`); picking one platform's manifest out of an index; and reading
//! one label or annotation, such as the build key, to decide whether a build can be skipped.

use std::collections::{BTreeMap, HashSet};

use crate::digest::{Digest, descriptor_digest};
use crate::manifest::{ManifestDocument, ManifestKind};
use crate::{Client, Error, Platform, Reference};

/// One platform image of an inspected reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformImage {
    /// The platform (from the index entry, else the config).
    pub platform: Option<Platform>,
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest media type.
    pub media_type: String,
    /// Manifest plus config plus layers, in bytes.
    pub size: u64,
    /// The config's labels.
    pub labels: BTreeMap<String, String>,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// What `inspect` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The reference pinned to its digest.
    pub reference: Reference,
    /// The digest of the manifest or index.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Bytes of every distinct manifest and blob.
    pub size: u64,
    /// The top-level annotations.
    pub annotations: BTreeMap<String, String>,
    /// One entry per platform (one for a single image).
    pub platforms: Vec<PlatformImage>,
}

/// Inspects a reference.
pub async fn inspect(client: &Client, reference: &Reference) -> Result<Inspection, Error> {
    let root = client.get_manifest(reference).await?;
    let repository = reference.repository();
    let mut platforms = Vec::new();
    let mut blobs_seen = HashSet::new();
    let mut size = root.size();
    let children: Vec<(Option<Platform>, ManifestDocument)> = if root.is_index() {
        let mut out = Vec::new();
        for child in root.children() {
            let document = client
                .get_manifest(&repository.digest(&descriptor_digest(child.digest())?))
                .await?;
            out.push((ManifestDocument::child_platform(child), document));
        }
        out
    } else {
        vec![(None, root.clone())]
    };
    for (platform, document) in children {
        if document.is_index() {
            continue;
        }
        let config = client.image_config(repository, &document).await?;
        let blob_size: u64 = document.blobs().iter().map(|d| d.size()).sum();
        if root.is_index() {
            size += document.size();
        }
        size += document
            .blobs()
            .iter()
            .filter(|d| blobs_seen.insert(d.digest().clone()))
            .map(|d| d.size())
            .sum::<u64>();
        platforms.push(PlatformImage {
            platform: platform.or(config.platform),
            digest: document.digest().clone(),
            media_type: document.media_type().to_owned(),
            size: document.size() + blob_size,
            labels: config.labels,
            annotations: document.annotations(),
        });
    }
    Ok(Inspection {
        reference: reference.with_digest(root.digest()),
        digest: root.digest().clone(),
        media_type: root.media_type().to_owned(),
        size,
        annotations: root.annotations(),
        platforms,
    })
}

/// The image manifest for `platform`: the reference itself when it is a single image for
/// that platform, else the matching child of its index. An index without it is an error
/// naming the platform and listing the ones it has.
pub async fn select_platform(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
) -> Result<ManifestDocument, Error> {
    let root = client.get_manifest(reference).await?;
    let repository = reference.repository();
    match root.kind() {
        ManifestKind::Index(_) => {
            let available: Vec<Platform> = root
                .children()
                .iter()
                .filter_map(ManifestDocument::child_platform)
                .collect();
            let Some(child) = root.children().iter().find(|c| {
                ManifestDocument::child_platform(c).is_some_and(|p| p.satisfies(platform))
            }) else {
                return Err(Error::PlatformNotFound {
                    reference: reference.to_string(),
                    wanted: platform.clone(),
                    available,
                });
            };
            let document = client
                .get_manifest(&repository.digest(&descriptor_digest(child.digest())?))
                .await?;
            if document.is_index() {
                return Err(Error::Invalid {
                    operation: "select platform",
                    reference: reference.to_string(),
                    reason: "the platform entry is itself an index".to_owned(),
                });
            }
            Ok(document)
        }
        ManifestKind::Image(_) => {
            let config = client.image_config(repository, &root).await?;
            match config.platform {
                Some(found) if found.satisfies(platform) => Ok(root),
                found => Err(Error::PlatformNotFound {
                    reference: reference.to_string(),
                    wanted: platform.clone(),
                    available: found.into_iter().collect(),
                }),
            }
        }
    }
}

/// A label or annotation of the image at `reference`: the index's annotations, then the
/// platform image's manifest annotations, then its config labels. `None` when the tag does
/// not exist or nothing carries the key. Without `platform`, the first image of an index
/// is read.
pub async fn read_metadata(
    client: &Client,
    reference: &Reference,
    key: &str,
    platform: Option<&Platform>,
) -> Result<Option<String>, Error> {
    let root = match client.get_manifest(reference).await {
        Ok(root) => root,
        Err(Error::ManifestNotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    if let Some(value) = root.annotations().get(key) {
        return Ok(Some(value.clone()));
    }
    let repository = reference.repository();
    let image = if root.is_index() {
        let child = match platform {
            Some(wanted) => root
                .children()
                .iter()
                .find(|c| ManifestDocument::child_platform(c).is_some_and(|p| p.satisfies(wanted))),
            None => root.children().first(),
        };
        let Some(child) = child else {
            return Ok(None);
        };
        client
            .get_manifest(&repository.digest(&descriptor_digest(child.digest())?))
            .await?
    } else {
        root
    };
    if let Some(value) = image.annotations().get(key) {
        return Ok(Some(value.clone()));
    }
    if image.is_index() {
        return Ok(None);
    }
    Ok(client
        .image_config(repository, &image)
        .await?
        .labels
        .get(key)
        .cloned())
}
