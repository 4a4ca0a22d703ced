//! `image-manager manifest [targets]`: combine the per-platform tags that platform-split CI
//! jobs pushed (`push --platform-tags`: `name:tag-linux-amd64`, `name:tag-linux-arm64`) into
//! the multi-platform index `name:tag`, then point the aliases at it. No blob moves; every
//! per-platform tag is checked before anything is written.

use std::time::Instant;

use im_diag::{Diagnostic, Diagnostics};
use im_registry::ops::index::{IndexOptions, assemble_index};

use super::{Context, Outcome, service};
use crate::cli::ManifestArgs;
use im_exec::publish::select_jobs;
use im_exec::publish::{Report, TagReport};
use im_exec::registry;

pub fn run(context: &Context<'_>, args: &ManifestArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let prepared = context.prepare_for_builds(args.snapshot.snapshot_id.as_deref())?;
    printer.diagnostics(&prepared.warnings);
    let platforms = super::planning::parse_platforms(&args.platform);
    let (target, jobs) =
        registry::default_target(&prepared.project.settings).and_then(|target| {
            select_jobs(&prepared, &args.targets, platforms.as_deref()).map(|jobs| (target, jobs))
        })?;
    service::ensure_for(&context.root, &target.host, printer)?;
    let session = context.exec().session(&prepared.project.settings)?;
    let client = session.client();

    // Every per-platform tag first: a missing one writes nothing at all.
    let mut sources = Vec::new();
    let mut missing = Diagnostics::new();
    for job in &jobs {
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
        sources.push(references);
    }
    if let Some(outcome) = super::stop_before_writing(
        &session,
        printer,
        &missing,
        "per-platform tag",
        "no index was written",
    ) {
        return Ok(outcome);
    }

    let mut tags = Vec::new();
    for (job, references) in jobs.iter().zip(&sources) {
        if session.interrupted() {
            break;
        }
        let reference = target.reference(&job.image, &job.published)?;
        let mut report = TagReport::new(job, reference.to_string());
        let options = IndexOptions {
            extra_tags: job.aliases.clone(),
            ..IndexOptions::default()
        };
        match session.run(assemble_index(client, &reference, references, &options)) {
            Ok(published) => report.add(&published),
            Err(error) => report.fail(&error.into()),
        }
        report.status(printer, "Combined");
        tags.push(report);
    }
    let report = Report::new(
        target.url(),
        prepared.snapshot_id.clone(),
        tags,
        started,
        &session,
    );
    super::published::finish(&report, printer, args.format, "combined")
}
