//! `lint`: hadolint and image-manager's own rules on the selected tags, each finding placed at
//! the template line that wrote it.
//!
//! The selected tags' final Dockerfiles (as `generate` writes them) are grouped by their bytes,
//! so identical Dockerfiles are linted once; the distinct ones are written to a scratch folder
//! and handed to hadolint in batches ([`batches`]), several hadolint processes at a time
//! (`jobs`). hadolint's lines are then mapped back through each tag's source map
//! ([`im_render::source_map`]), computed only for Dockerfiles with findings. The own rules
//! ([`own`]) look at what only the project knows: locks, rootfs files, test configs.

mod aliases;
mod batches;
mod cache;
mod own;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// Reuse the findings of Dockerfiles linted before (`dist/.lint-cache.json`).
    pub cache: bool,
    /// Ask the default registry where the aliases point now (`IM004`).
    pub registry: bool,
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
    #[error("cannot ask the registry where the aliases point: {0}")]
    Registry(String),
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

/// The source map of `tag`'s Dockerfile.
fn map_of(mapper: &Mapper<'_>, tag: &RenderedTag) -> Result<SourceMap, LintError> {
    mapper.dockerfile(tag).map_err(|d| LintError::SourceMap {
        tag: tag_name(tag),
        message: d.to_string(),
    })
}

/// `work` of each of `items`, on up to `jobs` threads, in the items' order.
fn in_parallel<T: Send>(items: &[usize], jobs: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if items.is_empty() {
        return Vec::new();
    }
    let size = items.len().div_ceil(jobs.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|chunk| scope.spawn(|| chunk.iter().map(|&item| work(item)).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a lint thread panicked"))
            .collect()
    })
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
    // Dockerfiles that differ only where no rule looks (versions in comments, ARG/ENV and
    // label values, the parent's tag) are linted once: group the tags by their canonical form.
    let root = &prepared.project.root;
    let config = config_file(root);
    // Read once: it keys the findings cache and says whether label values matter.
    let config_bytes = config.as_deref().and_then(|path| fs_err::read(path).ok());
    let canonical = im_lint::canonical::Canonical::for_config(
        config_bytes
            .as_deref()
            .map(String::from_utf8_lossy)
            .as_deref(),
    );
    let forms: Vec<std::borrow::Cow<'_, str>> =
        in_parallel(&(0..tags.len()).collect::<Vec<_>>(), options.jobs, |at| {
            canonical.apply(&tags[at].dockerfile)
        });
    let mut distinct: Vec<&str> = Vec::new();
    let mut users: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (at, form) in forms.iter().enumerate() {
        let slot = *index.entry(form.as_ref()).or_insert_with(|| {
            distinct.push(form.as_ref());
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
    let (found, cached) = if options.cache {
        cached_run(
            ctx,
            hadolint,
            &version,
            config_bytes.as_deref(),
            &distinct,
            options,
        )?
    } else {
        (
            batches::run(hadolint, &distinct, options.jobs, &ctx.cancel)?,
            0,
        )
    };

    let mapper = Mapper::new(
        &prepared.project,
        &im_render::Options {
            snapshot_id: prepared.snapshot_id.clone(),
            skip_tests: false,
            skip_locks: false,
            refresh_sources: false,
        },
    );
    let mut slot_of = vec![0; tags.len()];
    for (slot, at) in users.iter().enumerate() {
        for &at in at {
            slot_of[at] = slot;
        }
    }
    // Source maps only for the tags whose Dockerfile has findings, made in parallel.
    let mapped: Vec<usize> = (0..tags.len())
        .filter(|&at| !found[slot_of[at]].is_empty())
        .collect();
    let maps = in_parallel(&mapped, options.jobs, |at| map_of(&mapper, tags[at]));
    let mut findings = Vec::new();
    for (&at, map) in mapped.iter().zip(maps) {
        let map = map?;
        for finding in &found[slot_of[at]] {
            findings.push(placed(finding, tags[at], &map));
        }
    }
    findings.extend(own::findings(prepared, tags, &|tag| map_of(&mapper, tag))?);
    if options.registry {
        findings.extend(aliases::moved_down(ctx, prepared, tags)?);
    }
    let info = ToolInfo {
        program: hadolint.program().display().to_string(),
        version,
        config: config.map(|c| display_path(root, &c).display().to_string()),
    };
    let seen = im_lint::Seen {
        tags: tags.len(),
        dockerfiles: distinct.len(),
        cached,
    };
    Ok(Report::new(info, seen, findings, options.strict))
}

/// [`batches::run`] on the Dockerfiles the cache does not know, the cache updated; also how
/// many came from the cache.
fn cached_run(
    ctx: &ExecContext<'_>,
    hadolint: &Hadolint,
    version: &str,
    config: Option<&[u8]>,
    distinct: &[&str],
    options: &LintOptions,
) -> Result<(Vec<Vec<HadolintFinding>>, usize), LintError> {
    let cache = cache::Cache::load(&ctx.dist, version, config);
    let keys: Vec<String> = distinct.iter().map(|text| cache.key(text)).collect();
    let missing: Vec<usize> = (0..distinct.len())
        .filter(|&at| cache.get(&keys[at]).is_none())
        .collect();
    let texts: Vec<&str> = missing.iter().map(|&at| distinct[at]).collect();
    let mut fresh = batches::run(hadolint, &texts, options.jobs, &ctx.cancel)?.into_iter();
    let mut found = Vec::with_capacity(distinct.len());
    let mut new_entries = Vec::with_capacity(missing.len());
    for key in &keys {
        match cache.get(key) {
            Some(known) => found.push(known.clone()),
            None => {
                let findings = fresh.next().expect("one result per missing Dockerfile");
                new_entries.push((key.clone(), findings.clone()));
                found.push(findings);
            }
        }
    }
    let cached = distinct.len() - missing.len();
    // A run over every tag knows every Dockerfile there is: the others are dropped.
    let prune = options.targets.is_empty().then_some(keys.as_slice());
    if let Err(error) = cache.save(new_entries, prune) {
        ctx.reporter.warning(&im_diag::Diagnostic::warning(format!(
            "the lint cache {} could not be written: {error}",
            ctx.dist.join(cache::FILE).display()
        )));
    }
    Ok((found, cached))
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
