//! Choosing an image from a docker-archive tar (`docker save`, `buildah push docker-archive:`).
//!
//! `manifest.json` lists images with their config member, tags and layer members. Several
//! images and no tag is an error listing their tags. Layer members carry no digest of their
//! own, so each layer is checked against the config's `rootfs.diff_ids` instead.

use std::sync::Arc;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::OciError;
use crate::image::{Image, OpenOptions, parse_diff_ids};
use crate::oci_layout::tag_matches;
use crate::source::{BlobSource, LayerDescriptor, StoreSource};
use crate::store::Store;

/// One image in a docker-archive's `manifest.json`: its config member, tags and layer
/// members (bottom up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// The digest a config member's name claims (`<hex>.json` or `blobs/sha256/<hex>`).
fn named_digest(member: &str) -> Option<Digest> {
    let file = member.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    format!("sha256:{hex}").parse().ok()
}

/// Selects and opens one image of the docker-archive in `store`.
pub fn select(store: Arc<Store>, options: &OpenOptions) -> Result<Image, OciError> {
    let limit = options.limits.max_metadata_bytes;
    let path = store.path().to_owned();
    let json = |what: &str, source| OciError::Json {
        archive: path.clone(),
        what: what.to_owned(),
        source,
    };
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&store.read_small("manifest.json", limit)?)
            .map_err(|e| json("manifest.json", e))?;
    let label = |e: &DockerManifestEntry| {
        e.repo_tags
            .as_ref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_else(|| e.config.clone())
    };
    let entry = match &options.tag {
        Some(tag) => entries
            .iter()
            .find(|e| {
                e.repo_tags
                    .iter()
                    .flatten()
                    .any(|name| tag_matches(name, tag))
            })
            .ok_or_else(|| OciError::NoSuchTag {
                image: path.clone(),
                tag: tag.clone(),
                candidates: entries
                    .iter()
                    .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
                    .collect(),
            })?,
        None => match entries.as_slice() {
            [only] => only,
            [] => return Err(OciError::NotAnImage { path }),
            many => {
                return Err(OciError::AmbiguousImage {
                    image: path,
                    candidates: many.iter().map(label).collect(),
                });
            }
        },
    };
    let config_bytes = store.read_small(&entry.config, limit)?;
    if let Some(expected) = named_digest(&entry.config) {
        let actual = Digest::of_bytes(expected.algorithm(), &config_bytes);
        if actual != expected {
            return Err(OciError::DigestMismatch {
                what: format!("config `{}` of {}", entry.config, path.display()),
                expected: expected.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| json(&entry.config, e))?;
    let diff_ids = parse_diff_ids(&config)?;
    let mut layers = Vec::with_capacity(entry.layers.len());
    for (i, member) in entry.layers.iter().enumerate() {
        layers.push(LayerDescriptor {
            digest: None,
            size: Some(store.size(member)?),
            media_type: None,
            diff_id: diff_ids.get(i).cloned(),
            locator: member.clone(),
        });
    }
    let name = match &options.tag {
        Some(tag) => format!("{}:{tag}", path.display()),
        None => path.display().to_string(),
    };
    let source: Arc<dyn BlobSource> = Arc::new(StoreSource { store });
    Image::new(name, config, layers, source, options)
}
