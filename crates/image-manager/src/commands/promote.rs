//! `image-manager promote --snapshot-id ID [targets]`: point the release tags and their
//! aliases at the images a snapshot pushed (`name:tag-ID`), without rebuilding: the manifests
//! are written again under the new tags, so every digest stays what was tested. Every
//! snapshot tag is resolved before any release tag is written.

use std::time::Instant;

use im_diag::{Diagnostic, Diagnostics};
use im_registry::ops::tag::tag_image;

use super::{Context, Outcome, service};
use crate::cli::PromoteArgs;
use im_exec::publish::{Report, TagReport};
use im_exec::publish::{published_tag, select_jobs};
use im_exec::registry;

pub fn run(context: &Context<'_>, args: &PromoteArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    // Selection only: render as the snapshot was rendered.
    let prepared = context.prepare_for_builds(Some(&args.snapshot_id))?;
    printer.diagnostics(&prepared.warnings);
    let (target, jobs) =
        registry::default_target(&prepared.project.settings).and_then(|target| {
            select_jobs(&prepared, &args.targets, None).map(|jobs| (target, jobs))
        })?;
    service::ensure_for(&context.root, &target.host, printer)?;
    let session = context.exec().session(&prepared.project.settings)?;
    let client = session.client();

    let mut sources = Vec::new();
    let mut missing = Diagnostics::new();
    for job in &jobs {
        let source = target.reference(&job.image, &job.published)?;
        match session.run(client.resolve_digest(&source))? {
            Some(digest) => sources.push(source.with_digest(&digest)),
            None => {
                missing.push(
                    Diagnostic::error(format!(
                        "{} has no snapshot `{}`: {source} does not exist",
                        job.node(),
                        args.snapshot_id
                    ))
                    .with_help(format!(
                        "push the snapshot first: image-manager build --push --snapshot-id {} {}",
                        args.snapshot_id,
                        job.node()
                    )),
                );
            }
        }
    }
    if let Some(outcome) = super::stop_before_writing(
        &session,
        printer,
        &missing,
        "snapshot tag",
        "nothing was promoted",
    ) {
        return Ok(outcome);
    }

    let mut tags = Vec::new();
    for (job, source) in jobs.iter().zip(&sources) {
        if session.interrupted() {
            break;
        }
        let release = published_tag(&job.tag, None);
        let mut report = TagReport::new(job, target.reference(&job.image, &release)?.to_string());
        let aliases = prepared
            .project
            .image(&job.image)
            .map(|image| {
                image
                    .aliases_of(&job.tag)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let mut new_tags = vec![release];
        new_tags.extend(aliases);
        match session.run(tag_image(client, source, &new_tags)) {
            Ok(published) => report.add(&published),
            Err(error) => report.fail(&error.into()),
        }
        report.status(printer, "Promoted");
        tags.push(report);
    }
    let report = Report::new(
        target.url(),
        Some(args.snapshot_id.clone()),
        tags,
        started,
        &session,
    );
    super::published::finish(&report, printer, args.format, "promoted")
}
