//! Operations built on the client, one per module: push a local image (`push`), copy
//! between repositories or registries (`copy`), add tags (`tag`), assemble an index from
//! per-platform tags (`index`), read what a reference holds (`inspect`), and pull one
//! platform image into an OCI archive (`pull`), and attach, list and copy OCI 1.1
//! referrers (`referrers`). They share one
//! publishing order: blobs, then child manifests, then the index or manifest under its tag,
//! then the extra tags — so a tag never points at something incomplete.

pub mod copy;
pub mod index;
pub mod inspect;
pub mod pull;
pub mod push;
pub mod referrers;
pub mod tag;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::digest::Digest;
use crate::manifest::ManifestDocument;
use crate::reference::check_tag;
use crate::upload::BlobPush;
use crate::{Client, Error, Platform, Reference, Repository};

/// What a publishing operation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Blobs sent.
    pub blobs_uploaded: usize,
    /// Blobs mounted from another repository of the same registry.
    pub blobs_mounted: usize,
    /// Blobs the target already had.
    pub blobs_present: usize,
    /// Bytes sent in blob uploads.
    pub bytes_uploaded: u64,
    /// Manifests (children, index, tags) written.
    pub manifests_written: usize,
    /// Manifests and tags the target already had with the same digest.
    pub manifests_present: usize,
}

/// The result of publishing one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// The target, pinned to the digest that was published.
    pub reference: Reference,
    /// The digest of the manifest or index under the tags.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Every tag that now points at `digest` (the main one first).
    pub tags: Vec<String>,
    /// The platforms of the published image: each child of an index, or the one a single
    /// image's config names (empty when it names none).
    pub platforms: Vec<Platform>,
    /// What was transferred.
    pub stats: TransferStats,
}

/// The platforms `root` holds: its children's, or for a single image its config's (read
/// from `repository`).
pub(crate) async fn platforms_of(
    client: &Client,
    repository: &Repository,
    root: &ManifestDocument,
) -> Result<Vec<Platform>, Error> {
    if root.is_index() {
        return Ok(root
            .children()
            .iter()
            .filter_map(ManifestDocument::child_platform)
            .collect());
    }
    Ok(client
        .image_config(repository, root)
        .await?
        .platform
        .into_iter()
        .collect())
}

/// Thread-safe counters behind `TransferStats`.
#[derive(Default)]
pub(crate) struct Counters {
    uploaded: AtomicUsize,
    mounted: AtomicUsize,
    present: AtomicUsize,
    bytes: AtomicU64,
    written: AtomicUsize,
    manifests_present: AtomicUsize,
}

impl Counters {
    pub(crate) fn blob(&self, outcome: BlobPush, size: u64) {
        match outcome {
            BlobPush::AlreadyPresent => self.present.fetch_add(1, Ordering::Relaxed),
            BlobPush::Mounted => self.mounted.fetch_add(1, Ordering::Relaxed),
            BlobPush::Uploaded => {
                self.bytes.fetch_add(size, Ordering::Relaxed);
                self.uploaded.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    pub(crate) fn manifest(&self, written: bool) {
        if written {
            self.written.fetch_add(1, Ordering::Relaxed);
        } else {
            self.manifests_present.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> TransferStats {
        TransferStats {
            blobs_uploaded: self.uploaded.load(Ordering::Relaxed),
            blobs_mounted: self.mounted.load(Ordering::Relaxed),
            blobs_present: self.present.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes.load(Ordering::Relaxed),
            manifests_written: self.written.load(Ordering::Relaxed),
            manifests_present: self.manifests_present.load(Ordering::Relaxed),
        }
    }
}

/// Runs `work` over `items`, `limit` at a time, stopping at the first error (the others
/// are dropped, which cancels their requests).
pub(crate) async fn for_each_limited<T, F, Fut>(
    items: Vec<T>,
    limit: usize,
    work: F,
) -> Result<(), Error>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    futures_util::stream::iter(items.into_iter().map(work))
        .buffer_unordered(limit.max(1))
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Checks a target and its extra tags before any byte moves.
pub(crate) fn check_target_tags(
    operation: &'static str,
    target: &Reference,
    extra_tags: &[String],
) -> Result<String, Error> {
    let invalid = |reason: String| Error::Invalid {
        operation,
        reference: target.to_string(),
        reason,
    };
    let Some(tag) = target.tag() else {
        return Err(invalid("the target needs a tag".to_owned()));
    };
    if target.digest().is_some() {
        return Err(invalid("the target must be a tag, not a digest".to_owned()));
    }
    for extra in extra_tags {
        check_tag(extra).map_err(|reason| invalid(format!("extra tag `{extra}`: {reason}")))?;
    }
    Ok(tag.to_owned())
}

/// Writes `document` under `reference` unless it is already there.
pub(crate) async fn put_if_changed(
    client: &Client,
    reference: &Reference,
    document: &ManifestDocument,
    counters: &Counters,
) -> Result<(), Error> {
    let existing = client.head_manifest_for(reference, true).await?;
    if existing
        .as_ref()
        .and_then(|head| head.digest.as_ref())
        .is_some_and(|digest| digest == document.digest())
    {
        counters.manifest(false);
        return Ok(());
    }
    client.put_manifest(reference, document).await?;
    counters.manifest(true);
    Ok(())
}

/// Writes the main tag, then every extra tag, each only if it changes.
pub(crate) async fn write_tags(
    client: &Client,
    target: &Reference,
    tag: &str,
    extra_tags: &[String],
    document: &ManifestDocument,
    counters: &Counters,
) -> Result<Vec<String>, Error> {
    put_if_changed(client, target, document, counters).await?;
    let mut extra: Vec<String> = Vec::new();
    for t in extra_tags {
        if t != tag && !extra.contains(t) {
            extra.push(t.clone());
        }
    }
    let references = extra
        .iter()
        .map(|t| target.with_tag(t))
        .collect::<Result<Vec<_>, _>>()?;
    for_each_limited(references, client.concurrency(), |reference| async move {
        put_if_changed(client, &reference, document, counters).await
    })
    .await?;
    let mut tags = vec![tag.to_owned()];
    tags.extend(extra);
    Ok(tags)
}
