//! `image-manager sync --from REGISTRY --to REGISTRY [targets]`: copy every managed image tag
//! (all platforms) and its aliases from one registry to another, skipping whatever the target
//! already holds, so a second run transfers nothing. A tag the source does not have is
//! reported as missing and fails the sync, unless `--allow-missing` says the source may be
//! only partly published (a typo in `--from` must not look like success).
//!
//! REGISTRY is the `name` of a `registries:` entry (its credentials apply) or
//! `host[:port][/namespace]` (credentials from Docker's `config.json`, if any).

use std::time::Instant;

use im_exec::publish::{Report, Result_, ops, select_jobs};
use im_exec::registry;

use super::{Context, Outcome, plural, service};
use crate::cli::SyncArgs;

pub fn run(context: &Context<'_>, args: &SyncArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let prepared = context.prepare_for_builds(args.snapshot.snapshot_id.as_deref())?;
    printer.diagnostics(&prepared.warnings);
    let settings = &prepared.project.settings;
    let found = registry::named_target(settings, &args.from).and_then(|from| {
        let to = registry::named_target(settings, &args.to)?;
        let jobs = select_jobs(&prepared, &args.targets, None)?;
        Ok((from, to, jobs))
    });
    let (from, to, jobs) = found?;
    if from.host == to.host && from.namespace == to.namespace {
        return Err(im_diag::Diagnostic::error(format!(
            "--from and --to are the same registry ({})",
            from.url()
        ))
        .into());
    }
    service::ensure_for(&context.root, &from.host, printer)?;
    service::ensure_for(&context.root, &to.host, printer)?;
    let session = context.exec().session(settings)?;
    let scratch = ops::scratch_dir(&context.dist)?;
    printer.status(
        "Copying",
        format!(
            "{} from {} to {}",
            plural(jobs.len(), "image tag"),
            from.url(),
            to.url()
        ),
    );
    let tags = ops::copy(&session, (&from, &to), &jobs, scratch.path(), printer);
    let report = Report::new(
        to.url(),
        prepared.snapshot_id.clone(),
        tags,
        started,
        &session,
    );
    let outcome = super::published::finish(&report, printer, args.format, "copied")?;
    let missing = report.count(Result_::Missing);
    if missing == 0 || args.allow_missing || !matches!(outcome, Outcome::Success) {
        return Ok(outcome);
    }
    let verb = if missing == 1 { "is" } else { "are" };
    printer.error(format!(
        "{} {verb} missing from {}: check --from, or pass --allow-missing when that registry \
         holds only part of the project",
        plural(missing, "image tag"),
        from.url()
    ));
    Ok(Outcome::Failed)
}
