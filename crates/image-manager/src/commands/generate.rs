//! `image-manager generate`: render every tag into `dist/`.

use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Outcome, plural};
use crate::cli::{Format, GenerateArgs};

#[derive(Serialize)]
struct Report<'a> {
    dist: String,
    images: usize,
    tags: usize,
    #[serde(flatten)]
    write: &'a im_render::dist::WriteReport,
    warnings: Vec<String>,
}

/// Everything besides the input files that changes what generate writes.
fn fingerprint_extra(context: &Context<'_>, snapshot_id: Option<&str>) -> String {
    let settings = im_project::Settings::load(&context.root, &crate::env_vars::lookup)
        .map(|s| format!("{s:?}"))
        .unwrap_or_default();
    format!(
        "image-manager {}\nsnapshot {snapshot_id:?}\ndist {}\n{settings}",
        env!("CARGO_PKG_VERSION"),
        context.dist.display()
    )
}

pub fn run(context: &Context<'_>, args: &GenerateArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let dist_name = context.dist_name();
    let snapshot_id = args.snapshot.snapshot_id.as_deref();
    // Nothing changed since the last generate: no need to render or compare anything.
    let fingerprint =
        im_render::stamp::fingerprint(&context.root, &fingerprint_extra(context, snapshot_id)).ok();
    let previous = im_render::stamp::read(&context.dist).filter(|_| !args.full);
    if let (Some(stamp), Some(fingerprint)) = (&previous, &fingerprint)
        && stamp.is_current(&context.dist, fingerprint)
    {
        let write = im_render::dist::WriteReport {
            written: 0,
            unchanged_tags: stamp.tags.len(),
            removed: Vec::new(),
        };
        report(
            context,
            args,
            &dist_name,
            stamp.images,
            stamp.tags.len(),
            &write,
            &[],
            started,
        )?;
        return Ok(Outcome::Success);
    }
    let prepared = context.prepare(snapshot_id)?;
    context.printer.diagnostics(&prepared.warnings);
    if !prepared.unlocked.is_empty() {
        context
            .printer
            .diagnostics(&[im_diag::Diagnostic::warning(format!(
                "{} without a packages.lock: {}",
                plural_images(prepared.unlocked.len()),
                prepared.unlocked.join(", ")
            ))
            .with_help("run `image-manager lock` to pin their package versions and base digests")]);
    }
    // Another generate or build writing dist/ could rename the same new tag folder. The lock
    // is taken once the project is known to be valid (an invalid one leaves dist/ alone), and
    // the stamp is read again under it: another run may have written since.
    let _lock = super::dist_lock::dist(context)?;
    let previous = im_render::stamp::read(&context.dist).filter(|_| !args.full);
    // What each tag's folder is to hold: recorded in the new stamp, and compared with the
    // last one so tags whose content is the same are left alone.
    let outputs = fingerprint
        .is_some()
        .then(|| im_render::stamp::outputs(&prepared.rendered.tags));
    let unchanged =
        previous
            .as_ref()
            .zip(outputs.as_ref())
            .map(|(stamp, now)| im_render::dist::Unchanged {
                before: &stamp.tags,
                now,
            });
    let write = prepared.write_dist(&context.dist, &dist_name, unchanged)?;
    let tags = prepared.rendered.tags.len();
    if let (Some(fingerprint), Some(outputs)) = (fingerprint, outputs) {
        let stamp = im_render::stamp::Stamp {
            fingerprint,
            images: prepared.project.images.len(),
            tags: outputs,
            follows_branches: prepared
                .rendered
                .tags
                .iter()
                .any(|tag| tag.source.as_ref().is_some_and(|s| s.kind == "branch")),
        };
        im_render::stamp::record(&context.dist, &stamp)
            .with_context(|| format!("writing {}", context.dist.display()))?;
    }
    report(
        context,
        args,
        &dist_name,
        prepared.project.images.len(),
        tags,
        &write,
        &prepared.warnings,
        started,
    )?;
    // Freeing hundreds of thousands of small allocations one by one takes a noticeable part
    // of a large run; the process is about to exit and the OS takes the memory back at once.
    std::mem::forget(prepared);
    Ok(Outcome::Success)
}

#[allow(clippy::too_many_arguments)]
fn report(
    context: &Context<'_>,
    args: &GenerateArgs,
    dist_name: &std::path::Path,
    images: usize,
    tags: usize,
    report: &im_render::dist::WriteReport,
    warnings: &[im_diag::Diagnostic],
    started: Instant,
) -> anyhow::Result<()> {
    match args.format {
        Format::Json => context.printer.json(&Report {
            dist: context.dist.display().to_string(),
            images,
            tags,
            write: report,
            warnings: warnings.iter().map(ToString::to_string).collect(),
        })?,
        Format::Text => {
            for removed in &report.removed {
                context
                    .printer
                    .status("Removed", format!("{removed} (no longer defined)"));
            }
            context.printer.status(
                "Generated",
                format!(
                    "{} of {} in {} ({} written, {} unchanged) in {:.2}s",
                    plural(tags, "tag"),
                    plural(images, "image"),
                    dist_name.display(),
                    plural(report.written, "file"),
                    plural(report.unchanged_tags, "tag"),
                    started.elapsed().as_secs_f64()
                ),
            );
        }
    }
    Ok(())
}

/// "1 image installs packages" / "3 images install packages".
fn plural_images(count: usize) -> String {
    if count == 1 {
        "1 image installs packages".to_owned()
    } else {
        format!("{count} images install packages")
    }
}
