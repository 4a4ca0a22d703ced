//! `image-manager check`: validate everything without writing, report every problem.

use serde::Serialize;

use super::{Context, Outcome, plural};
use crate::cli::{CheckArgs, Format};

#[derive(Serialize)]
struct Report {
    ok: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
    images: usize,
    tags: usize,
}

pub fn run(context: &Context<'_>, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let prepared = match context.prepare(args.snapshot.snapshot_id.as_deref()) {
        Ok(prepared) => prepared,
        Err(diagnostics) => {
            if args.format == Format::Json {
                let (errors, warnings): (Vec<_>, Vec<_>) =
                    diagnostics.iter().partition(|d| d.is_error());
                context.printer.json(&Report {
                    ok: false,
                    errors: errors.iter().map(ToString::to_string).collect(),
                    warnings: warnings.iter().map(ToString::to_string).collect(),
                    images: 0,
                    tags: 0,
                })?;
            }
            return Ok(Outcome::Invalid(diagnostics));
        }
    };
    let mut warnings = prepared.warnings.clone();
    for rendered in &prepared.rendered.tags {
        if rendered.test.is_none() {
            let tag = prepared
                .project
                .image(&rendered.image)
                .and_then(|i| i.tag(&rendered.tag));
            let file = tag.map(|t| prepared.project.file_of(t));
            let mut warning = im_diag::Diagnostic::warning(format!(
                "{}:{} has no test config",
                rendered.image, rendered.tag
            ))
            .with_help(
                "add test.yml.jinja2 (container-structure-test format) next to its image.yml",
            );
            if let Some(file) = file {
                warning = warning.at(im_diag::Location::file(&file.file));
            }
            warnings.push(warning);
        }
    }
    let tags = prepared.rendered.tags.len();
    let images = prepared.project.images.len();
    match args.format {
        Format::Json => context.printer.json(&Report {
            ok: true,
            errors: Vec::new(),
            warnings: warnings.iter().map(ToString::to_string).collect(),
            images,
            tags,
        })?,
        Format::Text => {
            context.printer.diagnostics(&warnings);
            context.printer.status(
                "Checked",
                format!(
                    "{} and {}: no errors, {}",
                    plural(images, "image"),
                    plural(tags, "tag"),
                    plural(warnings.len(), "warning")
                ),
            );
        }
    }
    Ok(Outcome::Success)
}
