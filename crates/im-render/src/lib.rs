//! Rendering a project: every tag's Dockerfile, test config and rootfs overlay.
//!
//! - [`discovery`]: which template or file serves a tag.
//! - [`engine`]: minijinja, confined and limited, with the `resolve_base_image` and
//!   `resolve_version` filters.
//! - [`pycompat`], [`filters`]: Python's methods and the Jinja2 filters
//!   minijinja lacks, so templates written for Python's Jinja2 render the same.
//! - [`rootfs`]: merging rootfs layers and syncing them into `dist/`.
//! - [`output`]: atomic, write-if-changed file writes.
//! - [`dist`]: the `dist/` layout and `dist/index.json`.
//! - [`stamp`]: the fingerprint that lets an unchanged rerun skip everything.
//! - [`upstream`]: the checkouts of images built from an external repository (`source:`).
//!
//! [`render`] computes everything in memory (in parallel) and reports every problem; writing
//! is a separate step ([`dist::write`]) so `check` can render without touching the disk.

pub mod discovery;
pub mod dist;
pub mod engine;
pub mod filters;
pub mod layout;
pub mod output;
pub mod pycompat;
pub mod rootfs;
pub mod source_map;
pub mod stamp;
pub mod upstream;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_diag::{Diagnostic, Diagnostics, Location, display_path};
use im_dockerfile::Dockerfile;
use im_project::{Image, Project, Tag};
use minijinja::Value;
use rayon::prelude::*;
use serde_json::json;

use crate::discovery::{Found, Output, SourceKind};
use crate::engine::{Engine, FilterData, ImageEntry, RenderContext};
use crate::rootfs::{LayerCache, Overlay};

/// Settings of one rendering.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--snapshot-id`: base images resolve to `<tag>-<id>`.
    pub snapshot_id: Option<String>,
    /// Leave test configs out (`plan` and `why` only need what builds).
    pub skip_tests: bool,
    /// Leave `packages.lock` files unapplied (`lock`, which makes them).
    pub skip_locks: bool,
    /// Ask the remote where every `source:` ref points, tags included (`build
    /// --refresh-bases`); else only branches are asked and tags come from the lock.
    pub refresh_sources: bool,
}

/// Everything generated for one tag.
#[derive(Debug, Clone)]
pub struct RenderedTag {
    pub image: String,
    pub tag: String,
    /// The parsed Dockerfile (before the rootfs `COPY` is injected).
    pub parsed: Dockerfile,
    /// The final Dockerfile text.
    pub dockerfile: String,
    pub dockerfile_source: Found,
    pub test: Option<(String, Found)>,
    /// Whether the tag has a test config (also when [`Options::skip_tests`] left it out).
    pub has_test: bool,
    pub overlay: Arc<Overlay>,
    /// Whether `COPY --chown=<user> rootfs/ /` was added.
    pub rootfs_injected: bool,
    /// What the image's `packages.lock` pinned in [`RenderedTag::dockerfile`], when it has
    /// one (set after rendering, by `im_exec`).
    pub pins: Option<Arc<TagPins>>,
    /// The external repository the Dockerfile and the build context come from (`source:`).
    pub source: Option<Arc<upstream::ResolvedSource>>,
}

/// The pins a lock put into a tag's Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPins {
    /// The lock file (as shown to the user).
    pub lock: PathBuf,
    /// The final Dockerfile before pinning: the build key hashes it and [`TagPins::pins`]
    /// separately, so a plan can say which pin changed.
    pub unpinned: String,
    /// Package name → version, and `FROM <base>` → digest.
    pub pins: BTreeMap<String, String>,
}

/// The result of rendering a whole project.
#[derive(Debug, Default)]
pub struct Rendered {
    /// In project order: images by name, then each image's tags.
    pub tags: Vec<RenderedTag>,
    pub warnings: Vec<Diagnostic>,
}

/// The rootfs layers of a definition folder (and variant), in order.
pub fn rootfs_layers(root: &Path, image_dir: &Path, variant: Option<&str>) -> Vec<PathBuf> {
    let mut layers = Vec::new();
    if let Some(parent) = image_dir.parent() {
        let images = root.join(im_project::model::IMAGES_DIR);
        if parent.starts_with(&images) && parent != images {
            layers.push(parent.join("rootfs"));
        }
    }
    layers.push(image_dir.join("rootfs"));
    if let Some(variant) = variant {
        layers.push(image_dir.join(variant).join("rootfs"));
    }
    layers
}

type SourceKey = (usize, Option<usize>);

struct Sources {
    /// [`image_context`] of the definition.
    image: Value,
    dockerfile: Found,
    test: Option<Found>,
    overlay: Arc<Overlay>,
    source: Option<Arc<upstream::ResolvedSource>>,
}

fn filter_data(project: &Project, options: &Options) -> FilterData {
    let images = project
        .images
        .iter()
        .map(|image| {
            let entry = ImageEntry {
                base_tags: image.base_tags().map(|t| t.name.clone()).collect(),
                tags: image.tags.iter().map(|t| t.name.clone()).collect(),
                aliases: image.aliases.clone(),
            };
            (image.name.clone(), entry)
        })
        .collect();
    FilterData {
        images,
        snapshot_id: options.snapshot_id.clone(),
    }
}

/// The `image` part of the template context: the same for every tag of a definition.
pub fn image_context(project: &Project, image: &Image, file_index: usize) -> Value {
    let file = &project.files[file_index];
    Value::from(minijinja::value::Serde(&json!({
        "name": image.name,
        "description": file.description,
        "licenses": file.licenses,
        "is_base_image": file.is_base_image,
        "tags": image.tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        "aliases": image.aliases,
        "versions": file.layer.versions,
        "variables": file.layer.variables,
    })))
}

/// The template context of one tag; `image_value` is [`image_context`] of its definition.
pub fn context(image: &Image, tag: &Tag, options: &Options, image_value: Value) -> Value {
    let variant = tag.variant.as_ref().map(|v| {
        Value::from_pairs([
            ("name", Value::from(v.name.as_str())),
            ("suffix", Value::from(v.suffix.as_str())),
        ])
    });
    let base_image = tag.variant.as_ref().map(|v| match &options.snapshot_id {
        Some(id) => format!("{}:{}-{id}", image.name, v.base_tag),
        None => format!("{}:{}", image.name, v.base_tag),
    });
    let platforms: Vec<Value> = tag
        .platforms
        .iter()
        .map(|p| Value::from(p.to_string()))
        .collect();
    let aliases: Vec<Value> = image.aliases_of(&tag.name).map(Value::from).collect();
    let versions = Value::from(minijinja::value::Serde(&tag.versions));
    let variables = Value::from(minijinja::value::Serde(&tag.variables));
    let tag_value = Value::from_pairs([
        ("name", Value::from(tag.name.as_str())),
        ("versions", versions.clone()),
        ("variables", variables.clone()),
        ("aliases", Value::from(aliases)),
        ("rootfs_user", Value::from(tag.rootfs_user.as_str())),
        ("rootfs_copy", Value::from(tag.rootfs_copy)),
    ]);
    Value::from_pairs([
        ("image", image_value),
        ("tag", tag_value),
        ("variant", Value::from(variant)),
        ("base_image", Value::from(base_image)),
        ("snapshot_id", Value::from(options.snapshot_id.clone())),
        ("platforms", Value::from(platforms)),
        ("versions", versions),
        ("variables", variables),
    ])
}

fn find_sources(
    project: &Project,
    image: &Image,
    key: SourceKey,
    layer_cache: &LayerCache,
    upstream: &upstream::ResolvedSources,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Sources, Diagnostics> {
    let (file_index, variant_index) = key;
    let file = &project.files[file_index];
    let variant = variant_index.map(|index| &file.variants[index]);
    let variant_name = variant.map(|v| v.name.value.as_str());
    let exists = |path: &Path| im_input::Confined::is_candidate(path);
    let root = &project.root;
    let test = discovery::find(root, &file.dir, Output::Test, variant_name, None, &exists)
        .ok()
        .flatten();
    if variant_index.is_none()
        && let Some(declared) = &file.upstream
    {
        // The repository's Dockerfile, used as it is; its context is the checkout, so the
        // image folder's rootfs is not copied in.
        let rootfs = file.dir.join("rootfs");
        if rootfs.is_dir() {
            warnings.push(
                Diagnostic::warning(format!(
                    "{} is not copied into this image: it builds from `source:`, whose context is the repository",
                    display_path(root, &rootfs).display()
                ))
                .at(file.location(declared.span))
                .with_help("add the files with a patch (`source.patches`), or build a variant or child image FROM this one that copies them"),
            );
        }
        return match upstream.get(&file_index) {
            Some(resolved) => Ok(Sources {
                image: image_context(project, image, file_index),
                dockerfile: Found {
                    path: resolved.dockerfile.clone(),
                    kind: SourceKind::Verbatim,
                },
                test,
                overlay: Arc::new(Overlay::default()),
                source: Some(resolved.clone()),
            }),
            None => Err(Diagnostic::error("this image's `source:` was not fetched")
                .at(file.location(declared.span))
                .with_help("render through image-manager's commands, which fetch it first")
                .into()),
        };
    }
    let explicit = variant
        .and_then(|v| v.template.as_ref())
        .or(file.template.as_ref());
    let show = |path: &Path| display_path(root, path);
    let mut diagnostics = Diagnostics::new();
    let dockerfile = match discovery::find(
        root,
        &file.dir,
        Output::Dockerfile,
        variant_name,
        explicit.map(|t| t.value.as_str()),
        &exists,
    ) {
        Ok(Some(found)) => Some(found),
        Ok(None) => {
            let what = variant_name.map_or_else(String::new, |v| format!(" for variant `{v}`"));
            diagnostics.push(
                Diagnostic::error(format!("no Dockerfile template{what}"))
                    .at(Location::file(&file.file))
                    .with_help(format!(
                        "add {}/Dockerfile.jinja2 (or a plain Dockerfile), or set `template:`",
                        show(&file.dir).display()
                    )),
            );
            None
        }
        Err(looked) => {
            let template = explicit.expect("only explicit templates can be missing");
            let places: Vec<String> = looked
                .iter()
                .map(|p| show(p).display().to_string())
                .collect();
            diagnostics.push(
                Diagnostic::error(format!("the template `{}` does not exist", template.value))
                    .at(file.location(template.span))
                    .with_note(format!("looked at: {}", places.join(", ")))
                    .with_help("fix the name, or create the file"),
            );
            None
        }
    };
    let layers = rootfs_layers(root, &file.dir, variant_name);
    let overlay = match Overlay::collect_with(&layers, &show, layer_cache) {
        Ok((overlay, found_warnings)) => {
            warnings.extend(found_warnings);
            Some(overlay)
        }
        Err(error) => {
            diagnostics.push(error);
            None
        }
    };
    match (dockerfile, overlay) {
        (Some(dockerfile), Some(overlay)) if !diagnostics.has_errors() => Ok(Sources {
            image: image_context(project, image, file_index),
            dockerfile,
            test,
            overlay: Arc::new(overlay),
            source: None,
        }),
        _ => Err(diagnostics),
    }
}

fn render_one(
    project: &Project,
    engine: &Engine,
    image: &Image,
    tag: &Tag,
    sources: &Sources,
    options: &Options,
) -> Result<RenderedTag, Diagnostics> {
    let root = &project.root;
    let confined = engine.confined();
    let ctx = RenderContext::from_value(context(image, tag, options, sources.image.clone()));
    let read_or_render = |found: &Found| -> Result<String, Diagnostic> {
        match found.kind {
            SourceKind::Template => engine.render(&found.path, &ctx),
            SourceKind::Verbatim => confined
                .read_text(&found.path)
                .map_err(|error| error.diagnostic(&display_path(root, &found.path))),
        }
    };
    let mut diagnostics = Diagnostics::new();
    let with_tag =
        |d: Diagnostic| d.with_note(format!("while rendering {}:{}", image.name, tag.name));
    let dockerfile_text = read_or_render(&sources.dockerfile).map_err(with_tag);
    let test = match sources.test.as_ref().filter(|_| !options.skip_tests) {
        Some(found) => match read_or_render(found) {
            Ok(text) => Some((text, found.clone())),
            Err(error) => {
                diagnostics.push(with_tag(error));
                None
            }
        },
        None => None,
    };
    let text = match dockerfile_text {
        Ok(text) => text,
        Err(error) => {
            diagnostics.push(error);
            return Err(diagnostics);
        }
    };
    let shown = match sources.dockerfile.kind {
        SourceKind::Verbatim => display_path(root, &sources.dockerfile.path),
        SourceKind::Template => rendered_dockerfile_path(&image.name, &tag.name),
    };
    let parsed = match Dockerfile::parse(shown, text, &BTreeMap::new()) {
        Ok(parsed) => parsed,
        Err(errors) => {
            let source = display_path(root, &sources.dockerfile.path);
            for error in errors {
                let error = match sources.dockerfile.kind {
                    SourceKind::Template => {
                        in_template(error, confined, root, &sources.dockerfile.path)
                    }
                    SourceKind::Verbatim => error,
                };
                diagnostics.push(error.with_note(format!(
                    "{}:{} is rendered from {}",
                    image.name,
                    tag.name,
                    source.display()
                )));
            }
            return Err(diagnostics);
        }
    };
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let inject = sources.overlay.has_content() && tag.rootfs_copy && !parsed.copies_rootfs();
    let dockerfile = if inject {
        with_rootfs_copy(&parsed, tag)
    } else {
        parsed.text().to_owned()
    };
    Ok(RenderedTag {
        image: image.name.clone(),
        tag: tag.name.clone(),
        parsed,
        dockerfile,
        dockerfile_source: sources.dockerfile.clone(),
        test,
        has_test: sources.test.is_some(),
        overlay: sources.overlay.clone(),
        rootfs_injected: inject,
        pins: None,
        source: sources.source.clone(),
    })
}

/// The text of `dockerfile` with `COPY --chown=<rootfs_user> rootfs/ /` after its final
/// `FROM`: what a tag whose overlay the Dockerfile does not copy builds.
pub fn with_rootfs_copy(dockerfile: &Dockerfile, tag: &Tag) -> String {
    dockerfile.inject_after_final_from(&format!("COPY --chown={} rootfs/ /", tag.rootfs_user))
}

/// Where a tag's rendered Dockerfile is written: `dist/<image>/<tag>/Dockerfile`.
pub fn rendered_dockerfile_path(image: &str, tag: &str) -> PathBuf {
    PathBuf::from(format!("dist/{image}/{tag}/Dockerfile"))
}

/// Re-points a diagnostic about a rendered file (a Dockerfile or test config, which is not
/// written while there are errors) at its template `template`: at the template line with the same text when there is
/// exactly one, else at the template's first line, with the rendered line kept in a note.
pub fn in_template(
    mut diagnostic: Diagnostic,
    confined: &im_input::Confined,
    root: &Path,
    template: &Path,
) -> Diagnostic {
    let Ok(source) = confined.read_text(template) else {
        return diagnostic;
    };
    let display = display_path(root, template);
    let rendered = diagnostic.location.take();
    let wanted = rendered
        .as_ref()
        .and_then(|l| l.snippet.as_deref())
        .map(str::trim)
        .filter(|text| !text.is_empty());
    let matches: Vec<(usize, &str)> = wanted.map_or_else(Vec::new, |wanted| {
        source
            .lines()
            .enumerate()
            .filter(|(_, line)| line.trim() == wanted)
            .collect()
    });
    let location = match (matches.as_slice(), &rendered) {
        ([(index, line)], Some(rendered)) => {
            let indent = line.chars().count() - line.trim_start().chars().count();
            let rendered_indent = rendered
                .snippet
                .as_deref()
                .map_or(0, |s| s.chars().count() - s.trim_start().chars().count());
            let column = (rendered.column + indent)
                .saturating_sub(rendered_indent)
                .max(1);
            Location::in_source(&display, &source, index + 1, column, rendered.len)
        }
        _ => {
            if let Some(rendered) = &rendered
                && rendered.line > 0
            {
                let text = rendered.snippet.as_deref().unwrap_or_default();
                diagnostic = diagnostic.with_note(format!(
                    "line {} of the rendered file: {text}",
                    rendered.line
                ));
            }
            let first = source.lines().next().map_or(1, |l| l.chars().count());
            Location::in_source(&display, &source, 1, 1, first)
        }
    };
    diagnostic.at(location)
}

/// Renders every tag of the project. Collects all problems before failing.
pub fn render(project: &Project, options: &Options) -> Result<Rendered, Diagnostics> {
    render_with(project, options, &upstream::ResolvedSources::default())
}

/// [`render`] with the checkouts of the definitions that have a `source:`.
pub fn render_with(
    project: &Project,
    options: &Options,
    upstream: &upstream::ResolvedSources,
) -> Result<Rendered, Diagnostics> {
    let mut keys: Vec<(SourceKey, &Image)> = Vec::new();
    let mut seen: std::collections::HashSet<SourceKey> = std::collections::HashSet::new();
    let mut work: Vec<(&Image, &Tag, SourceKey)> = Vec::new();
    for image in &project.images {
        for tag in &image.tags {
            let key = (tag.file, tag.variant.as_ref().map(|v| v.index));
            if seen.insert(key) {
                keys.push((key, image));
            }
            work.push((image, tag, key));
        }
    }
    let layer_cache = LayerCache::default();
    let found: Vec<(SourceKey, Result<Sources, Diagnostics>, Vec<Diagnostic>)> = keys
        .par_iter()
        .map(|&(key, image)| {
            let mut warnings = Vec::new();
            let sources = find_sources(project, image, key, &layer_cache, upstream, &mut warnings);
            (key, sources, warnings)
        })
        .collect();
    let mut diagnostics = Diagnostics::new();
    let mut warnings = Vec::new();
    let mut sources: HashMap<SourceKey, Sources> = HashMap::new();
    for (key, result, found_warnings) in found {
        // Definitions that share a rootfs layer share its warnings: say each once.
        for warning in found_warnings {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        match result {
            Ok(found) => {
                sources.insert(key, found);
            }
            Err(errors) => diagnostics.extend(errors),
        }
    }
    let engine = Engine::new(&project.root, filter_data(project, options));
    // Indexed, so the results go straight into one vector of the right size.
    let results: Vec<Option<Result<RenderedTag, Diagnostics>>> = work
        .par_iter()
        .map(|(image, tag, key)| {
            sources
                .get(key)
                .map(|found| render_one(project, &engine, image, tag, found, options))
        })
        .collect();
    let mut tags = Vec::with_capacity(results.len());
    for result in results.into_iter().flatten() {
        match result {
            Ok(rendered) => tags.push(rendered),
            Err(errors) => diagnostics.extend(errors),
        }
    }
    if diagnostics.has_errors() {
        for warning in warnings {
            diagnostics.push(warning);
        }
        return Err(diagnostics);
    }
    Ok(Rendered { tags, warnings })
}
