//! The cache of pulled base images: one OCI archive per image manifest digest
//! (`<dir>/sha256-<hex>.tar`), written whole under its final name by the registry client.
//! Every node that starts from the same base for the same platform shares the archive;
//! two processes pulling the same digest at once both end with a complete archive.

use std::path::{Path, PathBuf};

use im_registry::{Client, Digest, Platform, Reference, Repository};

use crate::mirror::{Mirror, candidates, with_repository};
use crate::{BaseError, Resolved};

/// A folder of pulled base images.
#[derive(Clone, Debug)]
pub struct BaseCache {
    dir: PathBuf,
}

impl BaseCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the archive of the image manifest `digest` lives (whether or not it is there).
    pub fn archive(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{}.tar", digest.replace(':', "-")))
    }

    /// Whether the archive of `digest` is already here.
    pub fn contains(&self, digest: &str) -> bool {
        self.archive(digest).is_file()
    }

    /// The archive of `resolved`'s image for `platform`, pulled unless it is cached. Returns
    /// the archive and the bytes downloaded (0 when cached). The pull reads the exact digest
    /// from where it was resolved, then from the other mirrors and the origin.
    pub async fn pull(
        &self,
        client: &Client,
        written: &str,
        resolved: &Resolved,
        platform: &Platform,
        mirrors: &[Mirror],
    ) -> Result<(PathBuf, u64), BaseError> {
        let key = crate::resolve::platform_key(platform);
        let Some(digest) = resolved.platform_digest(&key) else {
            return Err(BaseError::NoPlatform {
                reference: written.to_owned(),
                platform: key,
                available: resolved.platforms.keys().cloned().collect(),
            });
        };
        let archive = self.archive(digest);
        if archive.is_file() {
            return Ok((archive, 0));
        }
        let invalid = |source| BaseError::Invalid {
            reference: written.to_owned(),
            source,
        };
        let digest: Digest = im_registry::parse_digest(digest).map_err(invalid)?;
        let canonical: Reference = resolved.canonical.parse().map_err(invalid)?;
        let first = source_repository(&resolved.source).map_err(invalid)?;
        let mut sources = vec![with_repository(&canonical, &first).with_digest(&digest)];
        for candidate in candidates(&canonical, mirrors) {
            let pinned = candidate.repository().digest(&digest);
            if !sources.contains(&pinned) {
                sources.push(pinned);
            }
        }
        let ref_name = canonical.repository().digest(&digest).to_string();
        let mut last = None;
        for source in &sources {
            match im_registry::ops::pull::pull_archive(
                client, source, platform, &archive, &ref_name,
            )
            .await
            {
                Ok(pulled) => return Ok((archive, pulled.bytes)),
                Err(error) => {
                    tracing::debug!("pulling {source} failed: {error}");
                    last = Some((source.registry().to_owned(), error));
                }
            }
        }
        let (registry, source) = last.expect("there is always one source");
        Err(BaseError::Registry {
            reference: written.to_owned(),
            registry,
            source,
        })
    }
}

/// `host/name` as [`Resolved::source`] records it.
fn source_repository(source: &str) -> Result<Repository, im_registry::Error> {
    let (registry, name) = source.split_once('/').unwrap_or((source, ""));
    Repository::new(registry, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_named_by_digest() {
        let cache = BaseCache::new("/c");
        assert_eq!(
            cache.archive("sha256:ab12"),
            PathBuf::from("/c/sha256-ab12.tar")
        );
        assert!(!cache.contains("sha256:ab12"));
    }

    #[test]
    fn the_recorded_source_splits_into_registry_and_name() {
        let repository = source_repository("127.0.0.1:5001/library/base").unwrap();
        assert_eq!(repository.registry(), "127.0.0.1:5001");
        assert_eq!(repository.name(), "library/base");
    }
}
