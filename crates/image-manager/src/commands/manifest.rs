//! `image-manager manifest [targets]`: combine the per-platform tags that platform-split CI
//! jobs pushed (`push --platform-tags`: `name:tag-linux-amd64`, `name:tag-linux-arm64`) into
//! the multi-platform index `name:tag`, then point the aliases at it. No blob moves; every
//! per-platform tag is checked before anything is written.

use std::time::Instant;

use im_exec::publish::{Report, ops};

use super::{Context, Outcome, planning, published};
use crate::cli::ManifestArgs;

pub fn run(context: &Context<'_>, args: &ManifestArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let platforms = planning::parse_platforms(&args.platform);
    let opened = context.open_registry(
        args.snapshot.snapshot_id.as_deref(),
        &args.targets,
        platforms.as_deref(),
    )?;
    let sources = ops::platform_tags(&opened.session, &opened.target, &opened.jobs)?;
    let sources = match super::found(
        sources,
        context.printer,
        "per-platform tag",
        "no index was written",
    ) {
        Ok(sources) => sources,
        Err(outcome) => return Ok(outcome),
    };
    let tags = ops::combine(
        &opened.session,
        &opened.target,
        &opened.jobs,
        &sources,
        context.printer,
    );
    let report = Report::new(
        opened.target.url(),
        opened.prepared.snapshot_id.clone(),
        tags,
        started,
        &opened.session,
    );
    published::finish(&report, context.printer, args.format, "combined")
}
