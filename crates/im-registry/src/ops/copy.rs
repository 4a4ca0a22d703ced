//! Copying an image (every platform) from one repository to another, in the same registry
//! (blobs are mounted) or across registries (blobs are streamed through memory or a scratch
//! file, verified on the way). Whatever the target already has — the whole image under the
//! tag, a platform manifest, a blob — is skipped, so a second copy transfers nothing.

use std::path::PathBuf;

use super::{
    Counters, Published, check_target_tags, for_each_limited, platforms_of, put_if_changed,
    write_tags,
};
use crate::digest::descriptor_digest;
use crate::manifest::ManifestDocument;
use crate::transport::BlobSource;
use crate::{Client, Error, Reference};

/// How to copy.
#[derive(Clone, Debug, Default)]
pub struct CopyOptions {
    /// More tags for the copied digest in the target repository.
    pub extra_tags: Vec<String>,
    /// Where blobs too large to stage in memory are staged; without it, every blob is staged
    /// in memory.
    pub scratch_dir: Option<PathBuf>,
}

/// Copies `source` (a tag or digest) to `target` (`repo:tag`), all platforms.
pub async fn copy_image(
    client: &Client,
    source: &Reference,
    target: &Reference,
    options: &CopyOptions,
) -> Result<Published, Error> {
    let tag = check_target_tags("copy", target, &options.extra_tags)?;
    let counters = Counters::default();
    let root = client.get_manifest(source).await?;
    let already = client
        .head_manifest_for(target, true)
        .await?
        .and_then(|head| head.digest)
        .is_some_and(|digest| &digest == root.digest());
    if !already {
        copy_content(client, source, target, &root, options, &counters).await?;
    }
    let tags = write_tags(client, target, &tag, &options.extra_tags, &root, &counters).await?;
    Ok(Published {
        reference: target.with_digest(root.digest()),
        digest: root.digest().clone(),
        media_type: root.media_type().to_owned(),
        tags,
        platforms: platforms_of(client, source.repository(), &root).await?,
        stats: counters.stats(),
    })
}

/// Copies the blobs and child manifests of `root` (not `root` itself).
async fn copy_content(
    client: &Client,
    source: &Reference,
    target: &Reference,
    root: &ManifestDocument,
    options: &CopyOptions,
    counters: &Counters,
) -> Result<(), Error> {
    let source_repo = source.repository();
    let target_repo = target.repository();
    // Child manifests the target lacks.
    let mut children = Vec::new();
    for child in root.children() {
        let child_digest = descriptor_digest(child.digest())?;
        let pinned = target_repo.digest(&child_digest);
        if client.head_manifest_for(&pinned, true).await?.is_some() {
            counters.manifest(false);
            continue;
        }
        let document = client
            .get_manifest(&source_repo.digest(&child_digest))
            .await?;
        if document.is_index() {
            return Err(Error::Invalid {
                operation: "copy",
                reference: source.to_string(),
                reason: format!(
                    "child {} is itself an index, which is not supported",
                    child.digest()
                ),
            });
        }
        children.push(document);
    }
    let images: Vec<&ManifestDocument> = if root.is_index() {
        children.iter().collect()
    } else {
        vec![root]
    };
    let mut blobs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for image in &images {
        for descriptor in image.blobs() {
            let digest = descriptor_digest(descriptor.digest())?;
            if seen.insert(digest.clone()) {
                blobs.push((digest, descriptor.size()));
            }
        }
    }
    let same_registry = source_repo.registry() == target_repo.registry();
    for_each_limited(blobs, client.concurrency(), |(digest, size)| async move {
        if client
            .blob_exists_for(target_repo, &digest, true)
            .await?
            .is_some()
        {
            counters.blob(crate::BlobPush::AlreadyPresent, size);
            return Ok(());
        }
        if same_registry {
            // Mount, falling back to an upload of what we read from the source.
            if client
                .mount_blob(target_repo, &digest, source_repo)
                .await
                .unwrap_or(false)
            {
                counters.blob(crate::BlobPush::Mounted, size);
                return Ok(());
            }
        }
        let limits = &client.transport.limits;
        let (staged, scratch) = match &options.scratch_dir {
            Some(dir) if size > limits.in_memory_blob_max_bytes => {
                let path = dir.join(format!(
                    "{}-{}.partial",
                    digest.algorithm().name(),
                    digest.hex()
                ));
                client
                    .download_blob(source_repo, &digest, size, &path)
                    .await?;
                (
                    BlobSource::File {
                        path: path.clone(),
                        offset: 0,
                        len: size,
                    },
                    Some(path),
                )
            }
            _ => (
                BlobSource::Bytes(client.fetch_blob(source_repo, &digest, size).await?),
                None,
            ),
        };
        let outcome = client
            .upload_blob_unchecked(target_repo, &digest, size, staged, None)
            .await;
        if let Some(path) = scratch {
            let _ = tokio::fs::remove_file(&path).await;
        }
        counters.blob(outcome?, size);
        Ok(())
    })
    .await?;
    for_each_limited(
        children.iter().collect(),
        client.concurrency(),
        |child: &ManifestDocument| async move {
            put_if_changed(client, &target_repo.digest(child.digest()), child, counters).await
        },
    )
    .await?;
    Ok(())
}
