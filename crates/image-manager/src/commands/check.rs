//! `image-manager check`: validate everything without writing, report every problem.

use std::path::PathBuf;

use im_diag::{Diagnostic, Diagnostics, Location, display_path};
use im_render::discovery::SourceKind;
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

/// Parses every rendered test config as `test` will; errors point at the template (or the
/// plain `test.yml`) it came from.
fn check_test_configs(prepared: &super::Prepared) -> Diagnostics {
    let root = &prepared.project.root;
    let confined = im_input::Confined::new(root);
    let mut diagnostics = Diagnostics::new();
    for rendered in &prepared.rendered.tags {
        let Some((text, found)) = &rendered.test else {
            continue;
        };
        let template = found.kind == SourceKind::Template;
        let shown = if template {
            PathBuf::from(format!("dist/{}/{}/test.yml", rendered.image, rendered.tag))
        } else {
            display_path(root, &found.path)
        };
        let Err(error) = im_structure_test::config::parse_config(&shown, text.clone()) else {
            continue;
        };
        let errors = match error {
            im_structure_test::config::ConfigError::Invalid { diagnostics } => diagnostics,
            other @ im_structure_test::config::ConfigError::Read { .. } => {
                Diagnostic::error(other.to_string())
                    .at(Location::file(&shown))
                    .into()
            }
        };
        for diagnostic in errors {
            let diagnostic = if template {
                im_render::in_template(diagnostic, &confined, root, &found.path)
            } else {
                diagnostic
            };
            diagnostics.push(diagnostic.with_note(format!(
                "in the test config of {}:{}",
                rendered.image, rendered.tag
            )));
        }
    }
    diagnostics
}

/// A warning when `registries:` lists several and marks none the default: `push`, `promote`
/// and `manifest` need one (`sync` names its registries and does not).
fn registry_warning(prepared: &super::Prepared) -> Option<Diagnostic> {
    let settings = &prepared.project.settings;
    if settings.registries.len() < 2 || settings.default_registry().is_some() {
        return None;
    }
    let file = settings
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(im_project::settings::SETTINGS_FILE));
    Some(
        Diagnostic::warning(format!(
            "{} registries are listed and none is marked `default: true`: push, promote and manifest will refuse to run",
            settings.registries.len()
        ))
        .at(Location::file(file))
        .with_help("mark the registry to publish to with `default: true`"),
    )
}

pub fn run(context: &Context<'_>, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let prepared = context
        .prepare(args.snapshot.snapshot_id.as_deref())
        .and_then(|prepared| {
            let mut errors = check_test_configs(&prepared);
            if errors.has_errors() {
                for warning in &prepared.warnings {
                    errors.push(warning.clone());
                }
                Err(errors)
            } else {
                Ok(prepared)
            }
        });
    let prepared = match prepared {
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
            return Err(diagnostics.into());
        }
    };
    let mut warnings = prepared.warnings.clone();
    warnings.extend(registry_warning(&prepared));
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
