//! `bump`: raise the version of a tag the project owns and, with `cascade`, the patch version
//! of every tag built on it (directly or not), by editing the `image.yml` files in place.
//!
//! Each edit replaces exactly the bytes of one scalar, found through the spans `im-yaml`
//! keeps ([`im_yaml::Source::literal_range`]), so comments, key order, quoting and spacing
//! stay as written. Besides the tag itself, an explicit alias pointing at it (`lts: 1.2.3`)
//! and an `extends: image:1.2.3` naming it follow; generated aliases follow by themselves,
//! and so do variant tags. [`plan`] only reads; [`Bump::apply`] writes every file atomically
//! and undoes everything when the edited project no longer loads.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;

use im_diag::{Diagnostic, Diagnostics};
use im_graph::NodeId;
use im_project::version::Level;
use im_project::{Image, Project};
use serde::Serialize;

use crate::prepare::Prepared;

/// What to bump.
pub struct Request<'a> {
    /// `name:tag`, `name:alias`, or `name` for an image with one tag.
    pub target: &'a str,
    pub level: Level,
    /// Also bump the patch version of every tag built on the target.
    pub cascade: bool,
}

/// Why a tag is bumped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// The tag the user named.
    Target,
    /// Built on the target, directly or not.
    Cascade {
        /// The target, `name:tag`.
        from: String,
    },
}

/// One tag renamed.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub image: String,
    pub from: String,
    pub to: String,
    pub level: &'static str,
    /// The `image.yml` declaring the tag (relative to the project) and the line.
    pub file: String,
    pub line: usize,
    #[serde(flatten)]
    pub cause: Cause,
}

/// One file's edit.
#[derive(Debug, Clone, Serialize)]
pub struct FileEdit {
    /// Relative to the project.
    pub file: String,
    /// A unified diff of the file.
    pub diff: String,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    pub before: String,
    #[serde(skip)]
    pub after: String,
}

/// A planned bump: the tags it renames and the files it edits.
#[derive(Debug, Clone, Serialize)]
pub struct Bump {
    pub changes: Vec<Change>,
    pub files: Vec<FileEdit>,
}

/// One scalar to replace in a file.
struct Splice {
    range: Range<usize>,
    text: String,
    line: usize,
}

/// Plans the bump `request` asks for: every tag it renames and the new text of every file.
/// Every problem is reported at once (a tag that is not MAJOR.MINOR.PATCH, a new tag that
/// exists, a tag not written as a literal value).
pub fn plan(prepared: &Prepared, request: &Request<'_>) -> Result<Bump, Diagnostics> {
    let project = &prepared.project;
    let graph = &prepared.graph;
    let (image, tag) = target(prepared, request.target)?;
    let mut wanted: Vec<(String, String, Level, Cause)> =
        vec![(image.clone(), tag.clone(), request.level, Cause::Target)];
    if request.cascade {
        let from = NodeId::new(&image, &tag);
        let start = graph.index_of(&from).expect("the target is a node");
        let descendants = im_plan::targets::with_descendants(graph, &BTreeSet::from([start]));
        for &node in graph.order.iter().filter(|n| descendants.contains(n)) {
            let id = &graph.nodes[node];
            let Some(found) = project.tag_of(&id.image, &id.tag) else {
                continue;
            };
            // A variant tag follows its base tag.
            let base = found
                .variant
                .as_ref()
                .map_or(&found.name, |variant| &variant.base_tag);
            if wanted.iter().any(|(i, t, ..)| *i == id.image && t == base) {
                continue;
            }
            wanted.push((
                id.image.clone(),
                base.clone(),
                Level::Patch,
                Cause::Cascade {
                    from: from.to_string(),
                },
            ));
        }
    }

    let mut diagnostics = Diagnostics::new();
    let mut changes = Vec::new();
    let mut splices: BTreeMap<usize, Vec<Splice>> = BTreeMap::new();
    let mut taken: BTreeSet<(String, String)> = BTreeSet::new();
    for (name, old, level, cause) in wanted {
        let image = project.image(&name).expect("a node's image");
        let declared = image.tag(&old).expect("a node's tag");
        let file_index = declared.file;
        let file = &project.files[file_index];
        let at = |span| file.location(span);
        let bumped = match project.version_scheme(image).parse_tag(&old) {
            None => Err((
                format!("`{old}` is not a version under the image's version_scheme"),
                "bump works on MAJOR.MINOR.PATCH tags (semver, or a version_scheme with three numeric parts); rename this tag by hand",
            )),
            Some(version) => version
                .bump(level)
                .map_err(|error| (error.to_string(), "rename this tag by hand")),
        };
        let new = match bumped {
            Ok(new) => new,
            Err((why, help)) => {
                diagnostics.push(
                    Diagnostic::error(format!("{name}:{old} cannot be bumped: {why}"))
                        .at(at(declared.span))
                        .with_help(help),
                );
                continue;
            }
        };
        if image.tag(&new).is_some() || !taken.insert((name.clone(), new.clone())) {
            diagnostics.push(
                Diagnostic::error(format!(
                    "bumping {name}:{old} gives {name}:{new}, which already exists"
                ))
                .at(at(declared.span))
                .with_help("bump another level, or remove the existing tag first"),
            );
            continue;
        }
        for (index, splice) in references(project, image, &old, &new, file_index) {
            match splice {
                Ok(splice) => splices.entry(index).or_default().push(splice),
                Err(diagnostic) => diagnostics.push(diagnostic),
            }
        }
        changes.push(Change {
            image: name,
            from: old,
            to: new,
            level: level.as_str(),
            file: file.file.display().to_string(),
            line: declared.span.line,
            cause,
        });
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    let mut files = Vec::new();
    for (index, mut edits) in splices {
        let file = &project.files[index];
        edits.sort_by_key(|splice| splice.range.start);
        if let Some(pair) = edits.windows(2).find(|w| w[0].range.end > w[1].range.start) {
            diagnostics.push(
                Diagnostic::error(format!(
                    "two bumps edit the same value on line {} of {}",
                    pair[1].line,
                    file.file.display()
                ))
                .with_help("tags that share one written value (a YAML anchor) cannot be bumped apart; write each out"),
            );
            continue;
        }
        let before = file.source.text.clone();
        let mut after = String::with_capacity(before.len() + 16);
        let mut at = 0;
        for splice in &edits {
            after.push_str(&before[at..splice.range.start]);
            after.push_str(&splice.text);
            at = splice.range.end;
        }
        after.push_str(&before[at..]);
        let name = file.file.display().to_string();
        files.push(FileEdit {
            diff: unified_diff(&name, &before, &after),
            file: name,
            path: project.root.join(&file.file),
            before,
            after,
        });
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(Bump { changes, files })
}

/// The image and base tag `target` names: `name:tag`, `name:alias` (a variant tag stands for
/// its base tag), or `name` when the image has one base tag.
fn target(prepared: &Prepared, target: &str) -> Result<(String, String), Diagnostics> {
    let project = &prepared.project;
    if target.contains(['*', '?', '[']) {
        return Err(
            Diagnostic::error(format!("bump takes one tag, not the pattern `{target}`"))
                .with_help("name it as name:tag or name:alias")
                .into(),
        );
    }
    let nodes = im_plan::targets::select(project, &prepared.graph, &[target.to_owned()])?;
    let mut bases: BTreeSet<(String, String)> = BTreeSet::new();
    for node in nodes {
        let id = &prepared.graph.nodes[node];
        if let Some(tag) = project.tag_of(&id.image, &id.tag) {
            let base = tag
                .variant
                .as_ref()
                .map_or(&tag.name, |variant| &variant.base_tag);
            bases.insert((id.image.clone(), base.clone()));
        }
    }
    let mut bases = bases.into_iter();
    match (bases.next(), bases.next()) {
        (Some(only), None) => Ok(only),
        (Some(_), Some(_)) => {
            let image = target.split(':').next().unwrap_or(target);
            let tags: Vec<String> = project
                .image(image)
                .map(|image| image.base_tags().map(|t| t.name.clone()).collect())
                .unwrap_or_default();
            Err(
                Diagnostic::error(format!("`{target}` names several tags; bump takes one"))
                    .with_help(format!(
                        "name one: {image}:{}",
                        tags.join(format!(", {image}:").as_str())
                    ))
                    .into(),
            )
        }
        (None, _) => Err(Diagnostic::error(format!("`{target}` names no tag")).into()),
    }
}

/// Every scalar that names `image:old` and follows it to `new`, by file index: the tag's
/// declaration, explicit aliases pointing at it in the image's definitions, and `extends:`
/// naming it anywhere. A place where the name is not written as a literal value is an error.
fn references(
    project: &Project,
    image: &Image,
    old: &str,
    new: &str,
    declared_in: usize,
) -> Vec<(usize, Result<Splice, Diagnostic>)> {
    let declared = image.tag(old).expect("checked by the caller");
    let mut out = vec![(
        declared_in,
        splice(project, declared_in, declared.span, old, new, "the tag"),
    )];
    for &index in &image.files {
        for alias in &project.files[index].aliases {
            if let Some(target) = alias.target.as_ref().filter(|t| t.value == old) {
                let what = format!("the alias `{}`", alias.name.value);
                out.push((index, splice(project, index, target.span, old, new, &what)));
            }
        }
    }
    let (old_ref, new_ref) = (
        format!("{}:{old}", image.name),
        format!("{}:{new}", image.name),
    );
    for (index, file) in project.files.iter().enumerate() {
        if let Some(extends) = file.extends.as_ref().filter(|e| e.value == old_ref) {
            out.push((
                index,
                splice(
                    project,
                    index,
                    extends.span,
                    &old_ref,
                    &new_ref,
                    "`extends`",
                ),
            ));
        }
    }
    out
}

/// The edit of `old` written at `span` of file `index` into `new`.
fn splice(
    project: &Project,
    index: usize,
    span: im_yaml::Span,
    old: &str,
    new: &str,
    what: &str,
) -> Result<Splice, Diagnostic> {
    let file = &project.files[index];
    match file.source.literal_range(span, old) {
        Some(range) => Ok(Splice {
            range,
            text: new.to_owned(),
            line: span.line,
        }),
        None => Err(Diagnostic::error(format!(
            "{what} `{old}` is not written as a literal value here, so bump cannot edit it"
        ))
        .at(file.location(span))
        .with_help(format!(
            "write `{old}` out at this place (not through an alias `*name` or a block scalar), or change it to `{new}` by hand"
        ))),
    }
}

/// A unified diff of one file, `a/NAME` → `b/NAME`, three lines of context.
fn unified_diff(name: &str, before: &str, after: &str) -> String {
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// Why a planned bump was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{path} changed since bump read it; nothing was written (run bump again)")]
    Changed { path: PathBuf },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The edited project does not load; every file was put back.
    #[error("the bumped project does not load, so every file was put back as it was")]
    Invalid(Diagnostics),
}

impl Bump {
    /// Writes every edited file atomically, after checking that none changed since it was
    /// read, then loads the project again with `check` (a Dockerfile that names the old tag
    /// as written, `FROM base:1.2.3`, no longer finds it): when that fails, every file is put
    /// back as it was and the errors are returned.
    pub fn apply(&self, check: impl FnOnce() -> Result<(), Diagnostics>) -> Result<(), ApplyError> {
        for file in &self.files {
            let now = fs_err::read_to_string(&file.path).map_err(|source| ApplyError::Write {
                path: file.path.clone(),
                source,
            })?;
            if now != file.before {
                return Err(ApplyError::Changed {
                    path: file.path.clone(),
                });
            }
        }
        let write = |file: &FileEdit, text: &str| {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs_err::metadata(&file.path)
                .map(|meta| meta.permissions().mode() & 0o7777)
                .ok();
            im_render::output::write_atomic(&file.path, text.as_bytes(), mode, None).map_err(
                |source| ApplyError::Write {
                    path: file.path.clone(),
                    source,
                },
            )
        };
        let mut written = Vec::new();
        let mut result = Ok(());
        for file in &self.files {
            if let Err(error) = write(file, &file.after) {
                result = Err(error);
                break;
            }
            written.push(file);
        }
        if result.is_ok()
            && let Err(diagnostics) = check()
        {
            result = Err(ApplyError::Invalid(diagnostics));
        }
        if result.is_err() {
            for file in written {
                // Best effort: the first error is the one to report.
                let _ = write(file, &file.before);
            }
        }
        result
    }
}
