//! The registry-to-registry publishing steps: `manifest` (per-platform tags → an index and
//! its aliases), `promote` (snapshot tags → release tags and aliases; both also write the revision tag of an
//! image with `revision: true`) and `sync` (copy between
//! registries, with the referrers of each image and the revision tag that names the build). Each first finds every source — a missing one writes nothing at all — then
//! writes job by job, in order, stopping at Ctrl-C.

use anyhow::Context as _;
use im_diag::{Diagnostic, Diagnostics};
use im_registry::Reference;
use im_registry::ops::copy::{CopyOptions, copy_image};
use im_registry::ops::index::{IndexOptions, assemble_index};
use im_registry::ops::referrers::copy_image_referrers;
use im_registry::ops::tag::tag_image;

use super::jobs::{TagJob, published_tag};
use super::report::{Result_, TagReport};
use super::revision::{copied_revision, revise_report};
use crate::context::Reporter;
use crate::prepare::Prepared;
use crate::registry::{Session, Target};

/// The sources of a registry command, found before anything is written.
pub enum Sources<S> {
    /// One per job.
    Found(Vec<S>),
    /// Every missing source, for people.
    Missing(Diagnostics),
    Interrupted,
}

impl<S> Sources<S> {
    fn checked(session: &Session, found: Vec<S>, missing: Diagnostics) -> Self {
        if session.interrupted() {
            Self::Interrupted
        } else if missing.has_errors() {
            Self::Missing(missing)
        } else {
            Self::Found(found)
        }
    }
}

/// Runs `write` for each job with its source, in order, stopping at Ctrl-C; each job's
/// report is shown with `verb`.
fn each_job<S>(
    session: &Session,
    jobs: &[TagJob],
    sources: &[S],
    reporter: &dyn Reporter,
    verb: &str,
    mut write: impl FnMut(&TagJob, &S) -> anyhow::Result<TagReport>,
) -> Vec<TagReport> {
    let mut tags = Vec::new();
    for (job, source) in jobs.iter().zip(sources) {
        if session.interrupted() {
            break;
        }
        let report = write(job, source).unwrap_or_else(|error| {
            let mut report = TagReport::new(job, job.node());
            report.fail(&error);
            report
        });
        report.status(reporter, verb);
        tags.push(report);
    }
    tags
}

/// `manifest`: every job's per-platform tags.
pub fn platform_tags(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
) -> anyhow::Result<Sources<Vec<Reference>>> {
    let client = session.client();
    let mut found = Vec::new();
    let mut missing = Diagnostics::new();
    for job in jobs {
        let mut references = Vec::new();
        for platform in &job.platforms {
            let reference = target.reference(&job.image, &job.platform_tag(platform))?;
            if session.run(client.head_manifest(&reference))?.is_none() {
                missing.push(
                    Diagnostic::error(format!(
                        "{} ({platform}) has no per-platform tag: {reference} does not exist",
                        job.node()
                    ))
                    .with_help(format!(
                        "push it first: image-manager push {} --platform {platform} --platform-tags",
                        job.node()
                    )),
                );
            }
            references.push(reference);
        }
        found.push(references);
    }
    Ok(Sources::checked(session, found, missing))
}

/// `manifest`: writes each job's index over its per-platform tags, then its aliases.
pub fn combine(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
    sources: &[Vec<Reference>],
    reporter: &dyn Reporter,
) -> Vec<TagReport> {
    each_job(
        session,
        jobs,
        sources,
        reporter,
        "Combined",
        |job, references| {
            let reference = target.reference(&job.image, &job.published)?;
            let mut report = TagReport::new(job, reference.to_string());
            let options = IndexOptions {
                extra_tags: job.aliases.clone(),
                ..IndexOptions::default()
            };
            report.record(session.run(assemble_index(
                session.client(),
                &reference,
                references,
                &options,
            )));
            if job.revision {
                revise_report(session, target, (&job.image, &job.published), &mut report);
            }
            Ok(report)
        },
    )
}

/// `promote`: every job's snapshot tag `<tag>-<snapshot_id>`, pinned by digest.
pub fn snapshots(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
    snapshot_id: &str,
) -> anyhow::Result<Sources<Reference>> {
    let mut found = Vec::new();
    let mut missing = Diagnostics::new();
    for job in jobs {
        let source = target.reference(&job.image, &job.published)?;
        match session.run(session.client().resolve_digest(&source))? {
            Some(digest) => found.push(source.with_digest(&digest)),
            None => missing.push(
                Diagnostic::error(format!(
                    "{} has no snapshot `{snapshot_id}`: {source} does not exist",
                    job.node(),
                ))
                .with_help(format!(
                    "push the snapshot first: image-manager build --push --snapshot-id {snapshot_id} {}",
                    job.node()
                )),
            ),
        }
    }
    Ok(Sources::checked(session, found, missing))
}

/// `promote`: tags each snapshot with its release tag and the aliases.
pub fn promote(
    session: &Session,
    target: &Target,
    prepared: &Prepared,
    jobs: &[TagJob],
    sources: &[Reference],
    reporter: &dyn Reporter,
) -> Vec<TagReport> {
    each_job(
        session,
        jobs,
        sources,
        reporter,
        "Promoted",
        |job, source| {
            let release = published_tag(&job.tag, None);
            let mut report =
                TagReport::new(job, target.reference(&job.image, &release)?.to_string());
            let mut new_tags = vec![release.clone()];
            let image = prepared.project.image(&job.image);
            if let Some(image) = image {
                new_tags.extend(image.aliases_of(&job.tag).map(str::to_owned));
            }
            report.record(session.run(tag_image(session.client(), source, &new_tags)));
            if image.is_some_and(|image| image.revision) {
                revise_report(session, target, (&job.image, &release), &mut report);
            }
            Ok(report)
        },
    )
}

/// `sync`: copies each job's tag and aliases from `from` to `to`, skipping what `to` holds;
/// a tag `from` does not have is reported missing. Blobs pass through `scratch`.
pub fn copy(
    session: &Session,
    (from, to): (&Target, &Target),
    jobs: &[TagJob],
    scratch: &std::path::Path,
    reporter: &dyn Reporter,
) -> Vec<TagReport> {
    let client = session.client();
    let sources = vec![(); jobs.len()];
    each_job(session, jobs, &sources, reporter, "Copied", |job, ()| {
        let source = from.reference(&job.image, &job.published)?;
        let destination = to.reference(&job.image, &job.published)?;
        let mut report = TagReport::new(job, destination.to_string());
        report.platforms.clear();
        match session.run(client.head_manifest(&source)) {
            Ok(None) => {
                report.result = Result_::Missing;
                report.error = Some(format!("{source} does not exist"));
            }
            Ok(Some(_)) => {
                let mut options = CopyOptions {
                    extra_tags: job.aliases.clone(),
                    scratch_dir: Some(scratch.to_owned()),
                };
                // The revision tag naming this build comes along.
                if job.revision {
                    match session.run(copied_revision(
                        client,
                        &source,
                        &destination,
                        &job.published,
                    )) {
                        Ok(revision) => {
                            options
                                .extra_tags
                                .extend(revision.as_ref().map(|r| r.tag.clone()));
                            report.revision = revision;
                        }
                        Err(error) => {
                            report.fail(
                                &anyhow::Error::from(error).context(format!(
                                    "copying the revision tag of {}",
                                    job.published
                                )),
                            );
                            return Ok(report);
                        }
                    }
                }
                let copied = session.run(copy_image(client, &source, &destination, &options));
                // The referrers (SBOMs, signatures) of the image and its platforms come along.
                let copied = match copied {
                    Ok(published) => session
                        .run(copy_image_referrers(
                            client,
                            source.repository(),
                            destination.repository(),
                            &published.digest,
                        ))
                        .map(|referrers| {
                            report.sboms_attached += referrers;
                            published
                        }),
                    Err(error) => Err(error),
                };
                report.record(copied);
                if report.sboms_attached > 0 && report.result == Result_::UpToDate {
                    report.result = Result_::Pushed;
                }
            }
            Err(error) => report.fail(&error.into()),
        }
        Ok(report)
    })
}

/// A scratch folder for `sync` inside `dist` (same file system as what it writes).
pub fn scratch_dir(dist: &std::path::Path) -> anyhow::Result<tempfile::TempDir> {
    fs_err::create_dir_all(dist)?;
    tempfile::Builder::new()
        .prefix(".sync-")
        .tempdir_in(dist)
        .with_context(|| format!("making a scratch folder in {}", dist.display()))
}
