//! Revision tags (`revision: true` in `image.yml`): after a release tag `T` is written
//! (`push`, `build --push`, `manifest`, `promote`), the repository's tag list names the
//! latest revision `T-r<N>`. When it holds the manifest `T` now holds, nothing is written;
//! otherwise `T-r<N+1>` (`T-r1` for the first) is pointed at it. So each revision tag names
//! one build forever while `T` moves. A snapshot tag gets none; promoting it writes the
//! release tag's. `sync` copies the revision tag that names the build it copies.
//!
//! The build keys of both (the label every image carries, per platform) say why a new
//! revision was written: the key changed, or the same key was built again into another
//! digest (a build that is not reproducible). A revision tag always names exactly what `T`
//! holds, so the second case gets a revision of its own too.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use im_project::revision::{latest_revision, revision_number, revision_tag};
use im_registry::ops::Published;
use im_registry::{Client, Digest, Reference, Repository};
use serde::Serialize;

use super::report::TagReport;
use crate::registry::{BUILD_KEY_LABEL, Session, Target};

/// What happened to the revision tag of a release tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionResult {
    /// A new revision tag was written.
    Written,
    /// The latest revision tag already names this build.
    Unchanged,
}

/// Why a revision tag was written or left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionReason {
    /// The tag had no revision yet.
    First,
    /// The latest revision holds another build key.
    KeyChanged,
    /// The latest revision holds the same build key in another manifest (a build that is
    /// not reproducible).
    DigestChanged,
    /// The latest revision holds this very manifest.
    SameBuild,
    /// `sync` copied the source registry's revision tag of this manifest.
    Copied,
}

/// The revision tag of one release tag, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionReport {
    /// `T-r<N>`: the tag written, or the existing one that names this build.
    pub tag: String,
    pub result: RevisionResult,
    pub reason: RevisionReason,
    /// The latest revision before this one, when a new one was written over it.
    pub previous: Option<String>,
}

/// What the latest revision tag of a release tag holds, compared with what was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    pub number: u64,
    pub same_digest: bool,
    pub same_keys: bool,
}

/// The revision tag to write (or keep) for `tag`, given its latest revision.
pub fn choose(tag: &str, latest: Option<Latest>) -> RevisionReport {
    let Some(latest) = latest else {
        return RevisionReport {
            tag: revision_tag(tag, 1),
            result: RevisionResult::Written,
            reason: RevisionReason::First,
            previous: None,
        };
    };
    if latest.same_digest {
        return RevisionReport {
            tag: revision_tag(tag, latest.number),
            result: RevisionResult::Unchanged,
            reason: RevisionReason::SameBuild,
            previous: None,
        };
    }
    RevisionReport {
        tag: revision_tag(tag, latest.number + 1),
        result: RevisionResult::Written,
        reason: if latest.same_keys {
            RevisionReason::DigestChanged
        } else {
            RevisionReason::KeyChanged
        },
        previous: Some(revision_tag(tag, latest.number)),
    }
}

/// The build key of each platform image of `reference`: for an index the set of its
/// platforms' keys, for a single image its one key.
async fn build_keys(
    client: &Client,
    reference: &Reference,
) -> Result<BTreeSet<(Option<String>, Option<String>)>, im_registry::Error> {
    let inspection = im_registry::ops::inspect::inspect(client, reference).await?;
    Ok(inspection
        .platforms
        .into_iter()
        .map(|image| {
            let key = image
                .labels
                .get(BUILD_KEY_LABEL)
                .or_else(|| image.annotations.get(BUILD_KEY_LABEL))
                .cloned();
            (image.platform.map(|p| p.to_string()), key)
        })
        .collect())
}

/// A revision step's outcome: the report, and what writing the new tag did (if it wrote).
pub struct Revision {
    pub report: RevisionReport,
    pub written: Option<Published>,
}

/// The tag list of each repository a run writes revision tags in: listed once (an image's
/// tags share its repository, and a list grows with every revision), kept up to date with
/// the revision tags the run writes, and held while one tag's revision is decided and
/// written, so two jobs of one repository take turns.
#[derive(Default)]
pub struct TagLists(std::sync::Mutex<HashMap<String, Arc<TagList>>>);

/// One repository's tags, `None` until listed.
type TagList = tokio::sync::Mutex<Option<Vec<String>>>;

impl TagLists {
    fn of(&self, repository: &Repository) -> Arc<TagList> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(repository.to_string())
            .or_default()
            .clone()
    }
}

/// Writes (or confirms) the revision tag of `tag` in `repository`, which now holds `digest`.
/// A revision tag that exists already is never written over.
pub async fn revise(
    client: &Client,
    lists: &TagLists,
    repository: &Repository,
    tag: &str,
    digest: &Digest,
) -> Result<Revision, im_registry::Error> {
    let list = lists.of(repository);
    let mut listed = list.lock().await;
    if listed.is_none() {
        *listed = Some(client.list_tags(repository).await?);
    }
    let tags = listed.as_mut().expect("listed above");
    let revision = decide_and_write(client, tags, repository, tag, digest).await?;
    if revision.written.is_some() {
        tags.push(revision.report.tag.clone());
    }
    Ok(revision)
}

async fn decide_and_write(
    client: &Client,
    tags: &[String],
    repository: &Repository,
    tag: &str,
    digest: &Digest,
) -> Result<Revision, im_registry::Error> {
    let latest = match latest_revision(tag, tags.iter().map(String::as_str)) {
        None => None,
        Some(number) => {
            let existing = repository.tag(&revision_tag(tag, number))?;
            let same_digest = client.resolve_digest(&existing).await?.as_ref() == Some(digest);
            let same_keys = same_digest
                || build_keys(client, &existing).await?
                    == build_keys(client, &repository.digest(digest)).await?;
            Some(Latest {
                number,
                same_digest,
                same_keys,
            })
        }
    };
    let report = choose(tag, latest);
    if report.result == RevisionResult::Unchanged {
        return Ok(Revision {
            report,
            written: None,
        });
    }
    // A revision tag is never moved, even when the tag list (which some registries update
    // late) did not show it.
    let new_tag = repository.tag(&report.tag)?;
    if let Some(held) = client.resolve_digest(&new_tag).await? {
        if &held == digest {
            return Ok(Revision {
                report: RevisionReport {
                    result: RevisionResult::Unchanged,
                    reason: RevisionReason::SameBuild,
                    previous: None,
                    ..report
                },
                written: None,
            });
        }
        return Err(im_registry::Error::Invalid {
            operation: "revision",
            reference: new_tag.to_string(),
            reason: format!(
                "it exists already and holds {held}, though the tag list did not name it; a revision tag is never moved, so nothing was written"
            ),
        });
    }
    let written = im_registry::ops::tag::tag_image(
        client,
        &repository.digest(digest),
        std::slice::from_ref(&report.tag),
    )
    .await?;
    Ok(Revision {
        report,
        written: Some(written),
    })
}

/// `sync`: the revision tag (the highest) that names what `source` holds in its registry, to
/// copy along to `destination`. `None` when none does (pushed before `revision: true`). A
/// revision tag the destination holds for another manifest is an error: it is never moved.
pub async fn copied_revision(
    client: &Client,
    source: &Reference,
    destination: &Reference,
    tag: &str,
) -> Result<Option<RevisionReport>, im_registry::Error> {
    let Some(digest) = client.resolve_digest(source).await? else {
        return Ok(None);
    };
    let repository = source.repository();
    let mut numbers: Vec<u64> = client
        .list_tags(repository)
        .await?
        .iter()
        .filter_map(|candidate| revision_number(tag, candidate))
        .collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    for number in numbers {
        let name = revision_tag(tag, number);
        if client.resolve_digest(&repository.tag(&name)?).await? != Some(digest.clone()) {
            continue;
        }
        let target = destination.repository().tag(&name)?;
        let result = match client.resolve_digest(&target).await? {
            None => RevisionResult::Written,
            Some(held) if held == digest => RevisionResult::Unchanged,
            Some(held) => {
                return Err(im_registry::Error::Invalid {
                    operation: "sync",
                    reference: target.to_string(),
                    reason: format!(
                        "it holds {held}, not the {digest} it names in the source; a revision tag is never moved"
                    ),
                });
            }
        };
        return Ok(Some(RevisionReport {
            tag: name,
            result,
            reason: RevisionReason::Copied,
            previous: None,
        }));
    }
    Ok(None)
}

impl TagReport {
    /// Records a revision step: the tag written counts as written, an unchanged one as
    /// confirmed.
    pub fn add_revision(&mut self, revision: Revision) {
        match &revision.written {
            Some(published) => self.add(published),
            None => self.tags.push(revision.report.tag.clone()),
        }
        self.revision = Some(revision.report);
    }
}

/// The revision step of a release tag written outside `push` (`manifest`, `promote`, the
/// image tags `build --push` found in the registry): for an image with `revision: true`
/// whose tag `report` says was written, writes or confirms `image:tag`'s revision tag.
pub fn revise_report(
    session: &Session,
    target: &Target,
    (image, tag): (&str, &str),
    report: &mut TagReport,
) {
    if report.result == super::Result_::Failed {
        return;
    }
    let Some(digest) = report.digest.as_deref() else {
        return;
    };
    let outcome = (|| -> anyhow::Result<Revision> {
        let repository = target.repository(image)?;
        let digest = im_registry::parse_digest(digest)?;
        Ok(session.run(revise(
            session.client(),
            session.revision_tags(),
            &repository,
            tag,
            &digest,
        ))?)
    })();
    match outcome {
        Ok(revision) => report.add_revision(revision),
        Err(error) => report.fail(&error.context(format!("writing the revision tag of {tag}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(number: u64, same_digest: bool, same_keys: bool) -> Latest {
        Latest {
            number,
            same_digest,
            same_keys,
        }
    }

    #[test]
    fn the_first_build_is_revision_one() {
        let first = choose("3.13.7", None);
        assert_eq!(first.tag, "3.13.7-r1");
        assert_eq!(first.result, RevisionResult::Written);
        assert_eq!(first.reason, RevisionReason::First);
        assert_eq!(first.previous, None);
    }

    #[test]
    fn the_same_build_keeps_its_revision() {
        let same = choose("3.13.7", Some(latest(4, true, true)));
        assert_eq!(same.tag, "3.13.7-r4");
        assert_eq!(same.result, RevisionResult::Unchanged);
        assert_eq!(same.reason, RevisionReason::SameBuild);
    }

    #[test]
    fn another_build_gets_the_next_revision() {
        let changed = choose("3.13.7", Some(latest(9, false, false)));
        assert_eq!(changed.tag, "3.13.7-r10");
        assert_eq!(changed.result, RevisionResult::Written);
        assert_eq!(changed.reason, RevisionReason::KeyChanged);
        assert_eq!(changed.previous.as_deref(), Some("3.13.7-r9"));
        // The same key built into another manifest: a revision names one manifest.
        let rebuilt = choose("3.13.7", Some(latest(2, false, true)));
        assert_eq!(rebuilt.tag, "3.13.7-r3");
        assert_eq!(rebuilt.reason, RevisionReason::DigestChanged);
    }
}
