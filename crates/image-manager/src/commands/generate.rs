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

pub fn run(context: &Context<'_>, args: &GenerateArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let prepared = match context.prepare(args.snapshot.snapshot_id.as_deref()) {
        Ok(prepared) => prepared,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    context.printer.diagnostics(&prepared.warnings);
    let dist_name = context
        .dist
        .strip_prefix(&context.root)
        .unwrap_or(&context.dist)
        .to_path_buf();
    let index = prepared.index(&dist_name);
    let report = im_render::dist::write(&context.dist, &prepared.rendered.tags, &index)
        .with_context(|| format!("writing {}", context.dist.display()))?;
    let tags = prepared.rendered.tags.len();
    match args.format {
        Format::Json => context.printer.json(&Report {
            dist: context.dist.display().to_string(),
            images: prepared.project.images.len(),
            tags,
            write: &report,
            warnings: prepared.warnings.iter().map(ToString::to_string).collect(),
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
                    plural(prepared.project.images.len(), "image"),
                    dist_name.display(),
                    plural(report.written, "file"),
                    plural(report.unchanged_tags, "tag"),
                    started.elapsed().as_secs_f64()
                ),
            );
        }
    }
    Ok(Outcome::Success)
}
