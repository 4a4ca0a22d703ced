//! `image-manager promote --snapshot-id ID [targets]`: point the release tags and their
//! aliases at the images a snapshot pushed (`name:tag-ID`), without rebuilding: the manifests
//! are written again under the new tags, so every digest stays what was tested. Every
//! snapshot tag is resolved before any release tag is written.

use std::time::Instant;

use im_exec::publish::{Report, ops};

use super::{Context, Outcome, published};
use crate::cli::PromoteArgs;

pub fn run(context: &Context<'_>, args: &PromoteArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    // Selection only: render as the snapshot was rendered.
    let opened = context.open_registry(Some(&args.snapshot_id), &args.targets, None)?;
    let sources = ops::snapshots(
        &opened.session,
        &opened.target,
        &opened.jobs,
        &args.snapshot_id,
    )?;
    let sources = match super::found(
        sources,
        context.printer,
        "snapshot tag",
        "nothing was promoted",
    ) {
        Ok(sources) => sources,
        Err(outcome) => return Ok(outcome),
    };
    let tags = ops::promote(
        &opened.session,
        &opened.target,
        &opened.prepared,
        &opened.jobs,
        &sources,
        context.printer,
    );
    let report = Report::new(
        opened.target.url(),
        Some(args.snapshot_id.clone()),
        tags,
        started,
        &opened.session,
    );
    published::finish(&report, context.printer, args.format, "promoted")
}
