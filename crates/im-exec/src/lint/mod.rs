//! `lint`: hadolint and image-manager's own rules on the selected tags, each finding placed at
//! the template line that wrote it.
//!
//! The selected tags' final Dockerfiles (as `generate` writes them) are grouped by their bytes,
//! so identical Dockerfiles are linted once; the distinct ones are written to a scratch folder
//! and handed to hadolint in batches ([`batches`]), several hadolint processes at a time
//! (`jobs`). hadolint's lines are then mapped back through each tag's source map
//! ([`im_render::source_map`]), computed only for Dockerfiles with findings. The own rules
//! ([`own`]) look at what only the project knows: locks, rootfs files, test configs.

mod batches;
mod own;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_diag::display_path;
use im_lint::finding::ToolInfo;
use im_lint::{Finding, Hadolint, HadolintError, HadolintFinding, Place, Report, Tool};
use im_render::RenderedTag;
use im_render::source_map::{Mapper, SourceMap};

use crate::ExecContext;
use crate::prepare::Prepared;

/// The project's hadolint configuration files, the first found is used.
pub const CONFIG_FILES: [&str; 2] = [".hadolint.yaml", ".hadolint.yml"];

/// What `lint` was asked to do.
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// `name`, `name:tag`, `name:alias` or globs; nothing means every tag.
    pub targets: Vec<String>,
    /// hadolint processes at once.
    pub jobs: usize,
    /// Warnings fail too.
    pub strict: bool,
}

/// How `lint` could not lint.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error(transparent)]
    Hadolint(#[from] HadolintError),
    #[error("cannot write the Dockerfiles to lint into {}", dir.display())]
    Scratch {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot map {tag}'s Dockerfile to its template: {message}")]
    SourceMap { tag: String, message: String },
    #[error("cancelled")]
    Cancelled,
    /// Targets that name nothing (every problem, as diagnostics).
    #[error("the targets do not name tags of this project")]
    Targets(im_diag::Diagnostics),
}

/// The project's `.hadolint.yaml`, if it has one.
pub fn config_file(root: &Path) -> Option<PathBuf> {
    CONFIG_FILES
        .iter()
        .map(|name| root.join(name))
        .find(|path| path.is_file())
}

/// Lints the tags `options.targets` select.
pub fn lint(
    ctx: &ExecContext<'_>,
    prepared: &Prepared,
    options: &LintOptions,
) -> Result<Report, LintError> {
    let selected = selected_tags(prepared, &options.targets).map_err(LintError::Targets)?;
    let hadolint = Hadolint::find(ctx.environment.path.as_deref(), config_file(&ctx.root))?;
    lint_with(ctx, prepared, &hadolint, &selected, options)
}

/// The rendered tags `targets` select, in build order.
fn selected_tags<'p>(
    prepared: &'p Prepared,
    targets: &[String],
) -> Result<Vec<&'p RenderedTag>, im_diag::Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, targets)?;
    let by_id: HashMap<(&str, &str), &RenderedTag> = prepared
        .rendered
        .tags
        .iter()
        .map(|tag| ((tag.image.as_str(), tag.tag.as_str()), tag))
        .collect();
    Ok(prepared
        .graph
        .order
        .iter()
        .filter(|node| selected.contains(node))
        .filter_map(|&node| {
            let id = &prepared.graph.nodes[node];
            by_id.get(&(id.image.as_str(), id.tag.as_str())).copied()
        })
        .collect())
}

/// `name:tag`.
fn tag_name(tag: &RenderedTag) -> String {
    format!("{}:{}", tag.image, tag.tag)
}

/// Lints `tags` with `hadolint`.
pub fn lint_with(
    ctx: &ExecContext<'_>,
    prepared: &Prepared,
    hadolint: &Hadolint,
    tags: &[&RenderedTag],
    options: &LintOptions,
) -> Result<Report, LintError> {
    // Identical Dockerfiles are linted once: group the tags by their Dockerfile's bytes.
    let mut distinct: Vec<&str> = Vec::new();
    let mut users: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (at, tag) in tags.iter().enumerate() {
        let slot = *index.entry(tag.dockerfile.as_str()).or_insert_with(|| {
            distinct.push(tag.dockerfile.as_str());
            users.push(Vec::new());
            distinct.len() - 1
        });
        users[slot].push(at);
    }
    ctx.reporter.status(
        "Linting",
        &format!(
            "{} ({} distinct) with {}",
            crate::plural(tags.len(), "Dockerfile"),
            distinct.len(),
            hadolint.program().display()
        ),
    );
    let version = hadolint.version(&ctx.cancel).map_err(cancelled)?;
    let found = batches::run(hadolint, &distinct, options.jobs, &ctx.cancel)?;

    let root = &prepared.project.root;
    let mapper = Mapper::new(
        &prepared.project,
        &im_render::Options {
            snapshot_id: prepared.snapshot_id.clone(),
            skip_tests: false,
        },
    );
    let mut maps: HashMap<usize, Arc<SourceMap>> = HashMap::new();
    let mut findings = Vec::new();
    for (slot, file_findings) in found.into_iter().enumerate() {
        for &at in &users[slot] {
            if file_findings.is_empty() {
                break;
            }
            let tag = tags[at];
            let map = match maps.get(&at) {
                Some(map) => map.clone(),
                None => {
                    let map =
                        Arc::new(mapper.dockerfile(tag).map_err(|d| LintError::SourceMap {
                            tag: tag_name(tag),
                            message: d.to_string(),
                        })?);
                    maps.insert(at, map.clone());
                    map
                }
            };
            for finding in &file_findings {
                findings.push(placed(finding, tag, &map));
            }
        }
    }
    findings.extend(own::findings(prepared, tags, &|tag| {
        mapper.dockerfile(tag).map_err(|d| LintError::SourceMap {
            tag: tag_name(tag),
            message: d.to_string(),
        })
    })?);
    let info = ToolInfo {
        program: hadolint.program().display().to_string(),
        version,
        config: config_file(root).map(|c| display_path(root, &c).display().to_string()),
    };
    Ok(Report::new(
        info,
        tags.len(),
        distinct.len(),
        findings,
        options.strict,
    ))
}

fn cancelled(error: HadolintError) -> LintError {
    match error {
        HadolintError::Run(im_process::RunError::Cancelled { .. }) => LintError::Cancelled,
        other => LintError::Hadolint(other),
    }
}

/// The rendered Dockerfile of `tag`, as `dist/` names it.
fn rendered_path(tag: &RenderedTag) -> String {
    im_render::rendered_dockerfile_path(&tag.image, &tag.tag)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `place` of line `line` (column `column`) of `tag`'s rendered Dockerfile: the template line
/// that wrote it, and the rendered line.
fn at_line(
    tag: &RenderedTag,
    map: &SourceMap,
    line: usize,
    column: Option<usize>,
) -> (Place, Option<Place>) {
    let rendered = Place::line(rendered_path(tag), line, column);
    match map.origin(line) {
        Some(origin) => (
            Place::line(origin.file.to_string(), origin.line, None),
            Some(rendered),
        ),
        // A line image-manager added (the rootfs COPY): only the rendered line says where.
        None => (rendered, None),
    }
}

/// A hadolint finding of `tag`'s Dockerfile, placed at its template line.
fn placed(finding: &HadolintFinding, tag: &RenderedTag, map: &SourceMap) -> Finding {
    let (location, rendered) = at_line(tag, map, finding.line, finding.column);
    Finding {
        rule: finding.code.clone(),
        level: finding.level,
        tool: Tool::Hadolint,
        message: finding.message.clone(),
        location,
        rendered,
        tags: vec![tag_name(tag)],
        help_uri: im_lint::rules::help_uri(&finding.code),
    }
}
