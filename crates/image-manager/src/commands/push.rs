//! `image-manager push`: publish built images from `dist/` to the default registry — per
//! image tag, every platform's image, the multi-platform index under `name:tag` (the very
//! bytes `build` wrote), then each alias (see [`im_exec::publish`]).
//!
//! What exists locally comes from the plan: a selected node must be up to date (its ledger
//! key matches its inputs and its archive exists), or push refuses before sending anything.

use std::time::Instant;

use im_exec::plural;
use im_exec::publish::{self, Report};
use im_exec::registry;

use super::{Context, Outcome, planning, published, service};
use crate::cli::PushArgs;

/// `image-manager push [targets]`.
pub fn run(context: &Context<'_>, args: &PushArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let outputs = super::summary::CiOutputs::parse(&args.output)?;
    // A key that cannot be used stops the push before anything is sent.
    let key = args
        .sign
        .as_deref()
        .map(|path| super::sign::signing_key(path, "COSIGN_PASSWORD"))
        .transpose()?;
    let prepared = context.prepare_for_builds(args.snapshot.snapshot_id.as_deref())?;
    printer.diagnostics(&prepared.warnings);
    let target = registry::default_target(&prepared.project.settings)?;
    let platforms = planning::parse_platforms(&args.platform);
    let exec = context.exec();
    let jobs = publish::local_jobs(&exec, &prepared, &args.targets, platforms.as_deref())?;
    service::ensure_for(&context.root, &target.host, printer)?;
    let session = exec.session(&prepared.project.settings)?;
    printer.status(
        "Pushing",
        format!("{} to {}", plural(jobs.len(), "image tag"), target.url()),
    );
    let tags = publish::publish(&session, &target, &jobs, args.platform_tags, printer);
    let signed = match &key {
        Some(key) if !session.interrupted() => {
            publish::sign::sign(&session, &target, &jobs, key, printer)
                .iter()
                .all(publish::sign::SignReport::ok)
        }
        _ => true,
    };
    let report = Report::new(
        target.url(),
        prepared.snapshot_id.clone(),
        tags,
        started,
        &session,
    );
    let outcome = published::finish(&report, printer, args.format, "pushed")?;
    super::summary::append(context, &super::summary::push(&report));
    outputs.write(
        || im_exec::ci_reports::push_junit(&report),
        || im_exec::ci_reports::push_dotenv(&report),
    )?;
    if !signed && outcome == Outcome::Success {
        printer.error("pushed, but not every tag was signed");
        return Ok(Outcome::Failed);
    }
    Ok(outcome)
}
