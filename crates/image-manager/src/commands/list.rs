//! `image-manager list`: images, tags and aliases.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::{Format, ListArgs};

#[derive(Serialize)]
struct ListedTag<'a> {
    name: &'a str,
    variant: Option<&'a str>,
    base_tag: Option<&'a str>,
    aliases: Vec<&'a str>,
    platforms: Vec<String>,
    definition: String,
}

#[derive(Serialize)]
struct ListedImage<'a> {
    name: &'a str,
    tags: Vec<ListedTag<'a>>,
    aliases: &'a std::collections::BTreeMap<String, String>,
}

pub fn run(context: &Context<'_>, args: &ListArgs) -> anyhow::Result<Outcome> {
    let loaded = context.load()?;
    context.printer.diagnostics(&loaded.warnings);
    let project = &loaded.project;
    let images: Vec<ListedImage<'_>> = project
        .images
        .iter()
        .map(|image| ListedImage {
            name: &image.name,
            aliases: &image.aliases,
            tags: image
                .tags
                .iter()
                .map(|tag| ListedTag {
                    name: &tag.name,
                    variant: tag.variant.as_ref().map(|v| v.name.as_str()),
                    base_tag: tag.variant.as_ref().map(|v| v.base_tag.as_str()),
                    aliases: image.aliases_of(&tag.name).collect(),
                    platforms: tag.platforms.iter().map(ToString::to_string).collect(),
                    definition: project.file_of(tag).file.display().to_string(),
                })
                .collect(),
        })
        .collect();
    match args.format {
        Format::Json => context.printer.json(&images)?,
        Format::Text => {
            let mut out = String::new();
            for image in &images {
                out.push_str(image.name);
                out.push('\n');
                let width = image.tags.iter().map(|t| t.name.len()).max().unwrap_or(0);
                for tag in &image.tags {
                    let mut line = format!("  {:width$}", tag.name);
                    if !tag.aliases.is_empty() {
                        let _ = write!(line, "  aliases: {}", tag.aliases.join(", "));
                    }
                    if let Some(variant) = tag.variant {
                        let _ = write!(line, "  (variant {variant})");
                    }
                    out.push_str(line.trim_end());
                    out.push('\n');
                }
            }
            context.printer.data(out.trim_end())?;
        }
    }
    Ok(Outcome::Success)
}
