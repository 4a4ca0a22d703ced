//! Assembling a multi-platform index from per-platform images already in the registry
//! (`name:tag-linux-amd64`, `name:tag-linux-arm64`, as platform-split CI jobs push them),
//! then writing it under the tag and the extra tags. No blob moves.

use std::collections::BTreeMap;

use oci_spec::image::ImageIndex;

use super::{Counters, Published, check_target_tags, platforms_of, write_tags};
use crate::manifest::{ManifestDocument, index_type_for};
use crate::{Client, Error, Platform, Reference};

/// How to assemble.
#[derive(Clone, Debug, Default)]
pub struct IndexOptions {
    /// More tags for the index.
    pub extra_tags: Vec<String>,
    /// Annotations of the index.
    pub annotations: BTreeMap<String, String>,
}

/// Builds an index over `sources` (in `target`'s repository) and tags it as `target`.
/// A source that is itself an index contributes its platforms.
pub async fn assemble_index(
    client: &Client,
    target: &Reference,
    sources: &[Reference],
    options: &IndexOptions,
) -> Result<Published, Error> {
    let tag = check_target_tags("assemble index", target, &options.extra_tags)?;
    let invalid = |reason: String| Error::Invalid {
        operation: "assemble index",
        reference: target.to_string(),
        reason,
    };
    if sources.is_empty() {
        return Err(invalid("no source images were given".to_owned()));
    }
    let repository = target.repository();
    let mut descriptors = Vec::new();
    let mut types = Vec::new();
    let mut seen: BTreeMap<Platform, String> = BTreeMap::new();
    for source in sources {
        if source.repository() != repository {
            return Err(invalid(format!(
                "source `{source}` is in another repository; copy it into `{repository}` first"
            )));
        }
        let document = client.get_manifest(source).await?;
        let mut entries = Vec::new();
        if document.is_index() {
            for child in document.children() {
                let platform = ManifestDocument::child_platform(child)
                    .ok_or_else(|| invalid(format!("a child of `{source}` names no platform")))?;
                entries.push((child.clone(), platform, child.media_type().to_string()));
            }
        } else {
            let config = client.image_config(repository, &document).await?;
            let platform = config.platform.ok_or_else(|| {
                invalid(format!("the config of `{source}` names no os/architecture"))
            })?;
            entries.push((
                document.descriptor(),
                platform,
                document.media_type().to_owned(),
            ));
        }
        for (mut descriptor, platform, media_type) in entries {
            if let Some(other) = seen.insert(platform.clone(), source.to_string()) {
                return Err(invalid(format!(
                    "platform {platform} comes from both `{other}` and `{source}`"
                )));
            }
            descriptor.set_platform(Some(platform.to_oci()));
            descriptors.push(descriptor);
            types.push(media_type);
        }
    }
    let type_refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let mut index = ImageIndex::default();
    index.set_media_type(Some(index_type_for(&type_refs).into()));
    index.set_manifests(descriptors);
    if !options.annotations.is_empty() {
        index.set_annotations(Some(options.annotations.clone().into_iter().collect()));
    }
    let document = ManifestDocument::from_index(&index)?;
    let counters = Counters::default();
    let tags = write_tags(
        client,
        target,
        &tag,
        &options.extra_tags,
        &document,
        &counters,
    )
    .await?;
    Ok(Published {
        reference: target.with_digest(document.digest()),
        digest: document.digest().clone(),
        media_type: document.media_type().to_owned(),
        tags,
        platforms: platforms_of(client, repository, &document).await?,
        stats: counters.stats(),
    })
}
