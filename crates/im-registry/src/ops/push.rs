//! Pushing local images: one OCI layout or archive (a single image or an index), or several
//! single-platform archives (`dist/<name>/<tag>/<os>-<arch>/image.tar`) combined into one
//! index. Blobs go first, then per-platform manifests by digest, then the root under the
//! tag, then the extra tags. What the registry already has is not sent again.

use std::collections::BTreeMap;

use oci_spec::image::ImageIndex;

use super::{Counters, Published, check_target_tags, for_each_limited, put_if_changed, write_tags};
use crate::digest::descriptor_digest;
use crate::manifest::{ManifestDocument, index_type_for};
use crate::{Client, Error, LocalImage, Platform, Reference};

/// How to push.
#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    /// More tags for the same digest, written only after everything else is in.
    pub extra_tags: Vec<String>,
    /// Also tag each platform manifest as `TAG-os-arch[-variant]` (what platform-split CI
    /// jobs push for `manifest` to combine later).
    pub platform_tags: bool,
    /// Annotations of an index built from several images.
    pub index_annotations: BTreeMap<String, String>,
}

/// Pushes one local image (a single image or an index) to `target` (`repo:tag`).
pub async fn push_image(
    client: &Client,
    image: &LocalImage,
    target: &Reference,
    options: &PushOptions,
) -> Result<Published, Error> {
    let tag = check_target_tags("push", target, &options.extra_tags)?;
    let children: Vec<&ManifestDocument> = if image.root().is_index() {
        image.images()
    } else {
        Vec::new()
    };
    publish(
        client,
        &[image],
        image.root(),
        &children,
        target,
        &tag,
        options,
    )
    .await
}

/// Pushes several single-platform images as one index under `target`.
pub async fn push_platform_images(
    client: &Client,
    images: &[LocalImage],
    target: &Reference,
    options: &PushOptions,
) -> Result<Published, Error> {
    let tag = check_target_tags("push", target, &options.extra_tags)?;
    if images.is_empty() {
        return Err(Error::Invalid {
            operation: "push",
            reference: target.to_string(),
            reason: "no images were given".to_owned(),
        });
    }
    let mut children: Vec<&ManifestDocument> = Vec::new();
    let mut descriptors = Vec::new();
    let mut seen: BTreeMap<Platform, String> = BTreeMap::new();
    for image in images {
        for manifest in image.images() {
            let descriptor_platform = image
                .root()
                .children()
                .iter()
                .find(|c| descriptor_digest(c.digest()).is_ok_and(|d| &d == manifest.digest()))
                .and_then(ManifestDocument::child_platform);
            let platform = match descriptor_platform {
                Some(p) => p,
                None => image
                    .config(manifest)?
                    .platform
                    .ok_or_else(|| Error::LocalImage {
                        path: image.path().to_owned(),
                        reason: "its config names no os/architecture".to_owned(),
                    })?,
            };
            if let Some(other) = seen.insert(platform.clone(), image.path().display().to_string()) {
                return Err(Error::Invalid {
                    operation: "push",
                    reference: target.to_string(),
                    reason: format!(
                        "platform {platform} comes from both `{other}` and `{}`",
                        image.path().display()
                    ),
                });
            }
            let mut descriptor = manifest.descriptor();
            descriptor.set_platform(Some(platform.to_oci()));
            descriptors.push(descriptor);
            children.push(manifest);
        }
    }
    let types: Vec<&str> = children.iter().map(|c| c.media_type()).collect();
    let mut index = ImageIndex::default();
    index.set_media_type(Some(index_type_for(&types).into()));
    index.set_manifests(descriptors);
    if !options.index_annotations.is_empty() {
        index.set_annotations(Some(
            options.index_annotations.clone().into_iter().collect(),
        ));
    }
    let root = ManifestDocument::from_index(&index)?;
    let sources: Vec<&LocalImage> = images.iter().collect();
    publish(client, &sources, &root, &children, target, &tag, options).await
}

async fn publish(
    client: &Client,
    images: &[&LocalImage],
    root: &ManifestDocument,
    children: &[&ManifestDocument],
    target: &Reference,
    tag: &str,
    options: &PushOptions,
) -> Result<Published, Error> {
    let counters = Counters::default();
    let repository = target.repository();
    // 1. Blobs.
    let mut blobs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for image in images {
        for (digest, size) in image.all_blobs() {
            if seen.insert(digest.clone()) {
                let source = image.blob(&digest).ok_or_else(|| Error::LocalImage {
                    path: image.path().to_owned(),
                    reason: format!("blob {digest} is missing"),
                })?;
                blobs.push((digest, size, source));
            }
        }
    }
    for_each_limited(blobs, client.concurrency(), |(digest, size, source)| {
        let counters = &counters;
        async move {
            let outcome = client
                .push_blob(repository, &digest, size, source, None)
                .await?;
            counters.blob(outcome, size);
            Ok(())
        }
    })
    .await?;
    // 2. Child manifests, by digest.
    for_each_limited(children.to_vec(), client.concurrency(), |child| {
        let counters = &counters;
        async move { put_if_changed(client, &repository.digest(child.digest()), child, counters).await }
    })
    .await?;
    // 3. The root under its tag, then the extra tags; per-platform tags last.
    let tags = write_tags(client, target, tag, &options.extra_tags, root, &counters).await?;
    if options.platform_tags && root.is_index() {
        let mut platform_refs = Vec::new();
        for child in root.children() {
            if let (Some(platform), Some(document)) = (
                ManifestDocument::child_platform(child),
                children
                    .iter()
                    .find(|c| descriptor_digest(child.digest()).is_ok_and(|d| &d == c.digest())),
            ) {
                platform_refs.push((
                    target.with_tag(&format!("{tag}-{}", platform.slug()))?,
                    *document,
                ));
            }
        }
        for_each_limited(
            platform_refs,
            client.concurrency(),
            |(reference, document)| {
                let counters = &counters;
                async move { put_if_changed(client, &reference, document, counters).await }
            },
        )
        .await?;
    }
    let platforms = if root.is_index() {
        root.children()
            .iter()
            .filter_map(ManifestDocument::child_platform)
            .collect()
    } else {
        match images.first() {
            Some(image) => image.config(root)?.platform.into_iter().collect(),
            None => Vec::new(),
        }
    };
    Ok(Published {
        reference: target.with_digest(root.digest()),
        digest: root.digest().clone(),
        media_type: root.media_type().to_owned(),
        tags,
        platforms,
        stats: counters.stats(),
    })
}
