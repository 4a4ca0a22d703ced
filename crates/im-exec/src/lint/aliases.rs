//! `IM004`, with `lint --registry`: an alias that would move to a lower version than the one
//! it points at in the default registry (what the last push left there). Nothing in the tree
//! records pushes, so the registry is asked: the `org.opencontainers.image.version` label of
//! the image under `<name>:<alias>` is the tag it pointed at; the image's version scheme
//! compares it with the tag the alias points at now. An alias the registry does not have is
//! new, not moved.

use std::collections::BTreeSet;

use im_diag::display_path;
use im_lint::rules::{self, ALIAS_MOVES_DOWN};
use im_lint::{Finding, Place, Tool};
use im_registry::ops::inspect::read_metadata;
use im_render::RenderedTag;

use super::LintError;
use crate::ExecContext;
use crate::prepare::Prepared;

/// The label that names the tag an image was built as.
pub const VERSION_LABEL: &str = "org.opencontainers.image.version";

/// `tag` without its variant suffix (`1.2.0-dev` of variant `-dev` is `1.2.0`).
fn base<'a>(tag: &'a str, suffix: Option<&str>) -> &'a str {
    suffix
        .and_then(|suffix| tag.strip_suffix(suffix))
        .unwrap_or(tag)
}

/// The `IM004` findings of the aliases of `tags`' images that point at one of `tags`.
pub fn moved_down(
    ctx: &ExecContext<'_>,
    prepared: &Prepared,
    tags: &[&RenderedTag],
) -> Result<Vec<Finding>, LintError> {
    let project = &prepared.project;
    let settings = &project.settings;
    let target = crate::registry::default_target(settings).map_err(LintError::Targets)?;
    let session = ctx
        .session(settings)
        .map_err(|error| LintError::Registry(format!("{error:#}")))?;
    let selected: BTreeSet<(&str, &str)> = tags
        .iter()
        .map(|t| (t.image.as_str(), t.tag.as_str()))
        .collect();
    let mut out = Vec::new();
    for image in &project.images {
        let scheme = project.version_scheme(image);
        for (alias, now) in &image.aliases {
            if !selected.contains(&(image.name.as_str(), now.as_str())) {
                continue;
            }
            let Some(tag) = image.tag(now) else { continue };
            let reference = target
                .reference(&image.name, alias)
                .map_err(|error| LintError::Registry(format!("{error:#}")))?;
            let pushed = session
                .run(read_metadata(
                    session.client(),
                    &reference,
                    VERSION_LABEL,
                    None,
                ))
                .map_err(|error| {
                    LintError::Registry(format!(
                        "reading {reference}: {}",
                        im_diag::error_chain(&error)
                    ))
                })?;
            let Some(pushed) = pushed else { continue };
            let suffix = tag.variant.as_ref().map(|v| v.suffix.as_str());
            let (Some(old), Some(new)) = (
                scheme.parse_tag(base(&pushed, suffix)),
                scheme.parse_tag(base(now, suffix)),
            ) else {
                continue;
            };
            if new < old {
                let file = &project.file_of(tag).file;
                out.push(Finding {
                    rule: ALIAS_MOVES_DOWN.id.to_owned(),
                    level: ALIAS_MOVES_DOWN.level,
                    tool: Tool::ImageManager,
                    message: rules::alias_moves_down_message(
                        alias,
                        now,
                        &pushed,
                        &reference.to_string(),
                    ),
                    location: Place::file(
                        display_path(&project.root, file)
                            .to_string_lossy()
                            .replace('\\', "/"),
                    ),
                    rendered: None,
                    tags: vec![format!("{}:{now}", image.name)],
                    help_uri: None,
                });
            }
        }
    }
    Ok(out)
}
