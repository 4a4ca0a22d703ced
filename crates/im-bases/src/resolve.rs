//! Resolving external base references to digests: the tag's digest and, for each platform
//! asked for, the digest of that platform's image manifest. Mirrors are asked first; a
//! mirror that fails or lacks the reference is skipped, the reference's own registry is
//! asked last and its answer is the one reported.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use im_registry::{Client, Error, ManifestDocument, ManifestKind, Platform, Reference};

use crate::error::Credentials;
use crate::mirror::{Mirror, candidates};
use crate::{BaseError, Record, Resolved};

/// The outcome of resolving many references: each one resolved or failed on its own, so a
/// registry that is down fails only the nodes that need it.
#[derive(Debug, Default)]
pub struct Resolution {
    pub resolved: BTreeMap<String, Resolved>,
    pub failed: BTreeMap<String, BaseError>,
}

impl Resolution {
    /// What `record` knows for `wanted`, without asking any registry (`--offline`, `plan`).
    /// A reference or platform it does not know fails with [`BaseError::Offline`].
    pub fn from_record(record: &Record, wanted: &BTreeMap<String, BTreeSet<Platform>>) -> Self {
        let mut out = Self::default();
        for (reference, platforms) in wanted {
            let registry = reference
                .parse::<Reference>()
                .map(|r| r.registry().to_owned())
                .unwrap_or_default();
            match record.bases.get(reference) {
                Some(known)
                    if platforms
                        .iter()
                        .all(|p| known.platforms.contains_key(&platform_key(p))) =>
                {
                    out.resolved.insert(reference.clone(), known.clone());
                }
                known => {
                    let what = if known.is_some() {
                        "was not resolved for every platform it is needed for"
                    } else {
                        "has not been resolved yet"
                    };
                    out.failed.insert(
                        reference.clone(),
                        BaseError::Offline {
                            reference: reference.clone(),
                            registry,
                            what,
                        },
                    );
                }
            }
        }
        out
    }

    /// The digest of `reference`'s image for `platform`, if resolved.
    pub fn digest(&self, reference: &str, platform: &Platform) -> Option<&str> {
        self.resolved
            .get(reference)?
            .platform_digest(&platform_key(platform))
    }
}

/// How platforms are written in the record: `linux/amd64`, `linux/arm/v7`.
pub(crate) fn platform_key(platform: &Platform) -> String {
    match &platform.variant {
        Some(variant) => format!("{}/{}/{variant}", platform.os, platform.architecture),
        None => format!("{}/{}", platform.os, platform.architecture),
    }
}

/// Resolves every reference of `wanted` (reference as written → the platforms needed),
/// `concurrency` at a time.
pub async fn resolve_all(
    client: &Client,
    wanted: &BTreeMap<String, BTreeSet<Platform>>,
    mirrors: &[Mirror],
    concurrency: usize,
) -> Resolution {
    let results: Vec<(String, Result<Resolved, BaseError>)> =
        futures_util::stream::iter(wanted.iter().map(|(reference, platforms)| async move {
            let platforms: Vec<Platform> = platforms.iter().cloned().collect();
            (
                reference.clone(),
                resolve(client, reference, &platforms, mirrors).await,
            )
        }))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut out = Resolution::default();
    for (reference, result) in results {
        match result {
            Ok(resolved) => {
                out.resolved.insert(reference, resolved);
            }
            Err(error) => {
                out.failed.insert(reference, error);
            }
        }
    }
    out
}

/// Resolves one reference as written (`debian:bookworm-slim`, `reg:5000/base@sha256:…`)
/// for `platforms`.
pub async fn resolve(
    client: &Client,
    written: &str,
    platforms: &[Platform],
    mirrors: &[Mirror],
) -> Result<Resolved, BaseError> {
    let reference: Reference = written.parse().map_err(|source| BaseError::Invalid {
        reference: written.to_owned(),
        source,
    })?;
    let mut asked = Vec::new();
    let sources = candidates(&reference, mirrors);
    let last = sources.len() - 1;
    for (i, source) in sources.iter().enumerate() {
        let registry = source.registry().to_owned();
        asked.push(registry.clone());
        let root = match client.get_manifest(source).await {
            Ok(root) => root,
            Err(Error::ManifestNotFound { .. }) => continue,
            Err(error) if i < last => {
                tracing::debug!("mirror {registry} skipped for {written}: {error}");
                continue;
            }
            Err(error @ Error::Unauthorized { .. }) => {
                let credentials = match &error {
                    Error::Unauthorized {
                        had_credentials: true,
                        ..
                    } => Credentials::Tried,
                    _ => Credentials::NoneConfigured,
                };
                return Err(BaseError::Unauthorized {
                    reference: written.to_owned(),
                    registry,
                    credentials,
                    source: error,
                });
            }
            Err(error) => {
                return Err(BaseError::Registry {
                    reference: written.to_owned(),
                    registry,
                    source: error,
                });
            }
        };
        let found = platform_digests(client, source, &root)
            .await
            .map_err(|error| BaseError::Registry {
                reference: written.to_owned(),
                registry: registry.clone(),
                source: error,
            })?;
        let mut chosen = BTreeMap::new();
        for wanted in platforms {
            let Some((_, digest)) = found.iter().find(|(p, _)| p.satisfies(wanted)) else {
                return Err(BaseError::NoPlatform {
                    reference: written.to_owned(),
                    platform: platform_key(wanted),
                    available: found.iter().map(|(p, _)| platform_key(p)).collect(),
                });
            };
            chosen.insert(platform_key(wanted), digest.clone());
        }
        return Ok(Resolved {
            canonical: reference.to_string(),
            source: source.repository().to_string(),
            digest: root.digest().to_string(),
            platforms: chosen,
            resolved_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0)),
        });
    }
    Err(BaseError::NotFound {
        reference: written.to_owned(),
        registries: asked,
        credentials: Credentials::Unknown,
    })
}

/// Every platform image `root` offers, with its manifest digest: an index's children, or
/// the single image and the platform its config names.
async fn platform_digests(
    client: &Client,
    source: &Reference,
    root: &ManifestDocument,
) -> Result<Vec<(Platform, String)>, Error> {
    match root.kind() {
        ManifestKind::Index(_) => Ok(root
            .children()
            .iter()
            .filter_map(|child| {
                ManifestDocument::child_platform(child)
                    .map(|platform| (platform, child.digest().to_string()))
            })
            .collect()),
        ManifestKind::Image(_) => {
            let config = client.image_config(source.repository(), root).await?;
            Ok(config
                .platform
                .map(|platform| (platform, root.digest().to_string()))
                .into_iter()
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_resolution_uses_the_record_and_names_what_it_lacks() {
        let mut record = Record::default();
        record.bases.insert(
            "debian:12".into(),
            Resolved {
                canonical: "docker.io/library/debian:12".into(),
                source: "docker.io/library/debian".into(),
                digest: "sha256:i".into(),
                platforms: BTreeMap::from([("linux/amd64".into(), "sha256:a".into())]),
                resolved_at: 0,
            },
        );
        let amd64 = Platform::linux("amd64");
        let arm64 = Platform::linux("arm64");
        let wanted = BTreeMap::from([
            ("debian:12".to_owned(), BTreeSet::from([amd64.clone()])),
            ("alpine:3".to_owned(), BTreeSet::from([amd64.clone()])),
        ]);
        let resolution = Resolution::from_record(&record, &wanted);
        assert_eq!(resolution.digest("debian:12", &amd64), Some("sha256:a"));
        let missing = resolution.failed["alpine:3"].to_string();
        assert!(missing.contains("has not been resolved yet"), "{missing}");
        assert!(missing.contains("docker.io"), "{missing}");
        let both = BTreeMap::from([("debian:12".to_owned(), BTreeSet::from([amd64, arm64]))]);
        let partial = Resolution::from_record(&record, &both);
        let text = partial.failed["debian:12"].to_string();
        assert!(text.contains("every platform"), "{text}");
    }
}
