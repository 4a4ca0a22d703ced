//! `packages.lock` in the flow: which external base each stage of each tag installs packages
//! from, pinning the rendered Dockerfiles to the locks ([`apply`], part of preparing a
//! project), and the `lock` command that writes the locks ([`command`]).
//!
//! A lock sits next to an image's `image.yml` and covers every tag that file defines. A stage
//! that starts from an external base installs from that base; a stage that starts from a
//! managed image installs from the external base at the root of that image's chain (its
//! package sources are that base's), so the lock of `python` names `debian:bookworm` when
//! `python` is built `FROM base`, itself `FROM debian:bookworm`.

pub mod command;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_diag::{Diagnostic, Diagnostics};
use im_dockerfile::{Dockerfile, ImageRef, StageBase};
use im_graph::{EdgeKind, Graph, NodeId};
use im_lock::{LOCK_FILE, LockFile, StageLock};
use im_project::{Project, Tag};
use im_render::{Rendered, RenderedTag, TagPins};
use rayon::prelude::*;

/// The lock file of `tag`: next to the `image.yml` that defines it (absolute path, and as
/// shown to the user).
pub fn lock_path(project: &Project, tag: &Tag) -> (PathBuf, PathBuf) {
    let file = project.file_of(tag);
    let shown = file
        .file
        .parent()
        .map_or_else(|| PathBuf::from(LOCK_FILE), |dir| dir.join(LOCK_FILE));
    (file.dir.join(LOCK_FILE), shown)
}

/// Reads the lock at `path` (`shown` in messages); `Ok(None)` when there is none.
pub fn read_lock(
    project: &Project,
    path: &Path,
    shown: &Path,
) -> Result<Option<LockFile>, Diagnostics> {
    let confined = im_input::Confined::new(&project.root);
    match confined.read_text(path) {
        Ok(text) => LockFile::parse(shown, text).map(Some),
        Err(error) if error.is_missing() => Ok(None),
        Err(error) => Err(error.diagnostic(shown).into()),
    }
}

/// For each stage of a node's Dockerfile: the external base its packages come from, and
/// whether the stage's own `FROM` is that base. `None`: `scratch` at the root.
pub type StageBases = Vec<Option<(String, bool)>>;

/// The stage bases of every graph node (by node index); nodes not rendered have none.
pub fn stage_bases(graph: &Graph, rendered: &Rendered) -> Vec<StageBases> {
    let by_id: HashMap<(&str, &str), &RenderedTag> = rendered
        .tags
        .iter()
        .map(|tag| ((tag.image.as_str(), tag.tag.as_str()), tag))
        .collect();
    let dockerfiles: Vec<Option<&Dockerfile>> = graph
        .nodes
        .iter()
        .map(|NodeId { image, tag }| {
            by_id
                .get(&(image.as_str(), tag.as_str()))
                .map(|t| &t.parsed)
        })
        .collect();
    let mut roots: Vec<Root> = vec![Root::Unknown; graph.nodes.len()];
    (0..graph.nodes.len())
        .map(|node| {
            let Some(dockerfile) = dockerfiles[node] else {
                return Vec::new();
            };
            (0..dockerfile.stages().len())
                .map(|stage| {
                    let own = matches!(
                        &dockerfile.stages()[stage].base,
                        StageBase::Image(image) if external(graph, node, image)
                    );
                    stage_root(graph, &dockerfiles, &mut roots, node, stage).map(|base| (base, own))
                })
                .collect()
        })
        .collect()
}

/// Whether `image` (a `FROM` of `node`) is outside the project.
fn external(graph: &Graph, node: usize, image: &ImageRef) -> bool {
    let reference = image.to_string();
    !graph.parents[node]
        .iter()
        .any(|edge| edge.kind == EdgeKind::From && edge.reference == reference)
}

/// The external base at the root of `stage` of `node`.
fn stage_root(
    graph: &Graph,
    dockerfiles: &[Option<&Dockerfile>],
    roots: &mut [Root],
    node: usize,
    stage: usize,
) -> Option<String> {
    let dockerfile = dockerfiles[node]?;
    match &dockerfile.stages()[stage].base {
        StageBase::Scratch => None,
        StageBase::Stage(earlier) => stage_root(graph, dockerfiles, roots, node, *earlier),
        StageBase::Image(image) => {
            let reference = image.to_string();
            let parent = graph.parents[node]
                .iter()
                .find(|edge| edge.kind == EdgeKind::From && edge.reference == reference);
            match parent {
                None => Some(reference),
                Some(edge) => node_root(graph, dockerfiles, roots, edge.parent),
            }
        }
    }
}

/// The external base at the root of a node's final stage (memoised).
fn node_root(
    graph: &Graph,
    dockerfiles: &[Option<&Dockerfile>],
    roots: &mut [Root],
    node: usize,
) -> Option<String> {
    if let Root::Known(known) = &roots[node] {
        return known.clone();
    }
    let root = dockerfiles[node].and_then(|dockerfile| {
        let last = dockerfile.stages().len().checked_sub(1)?;
        stage_root(graph, dockerfiles, roots, node, last)
    });
    roots[node] = Root::Known(root.clone());
    root
}

/// A node's root external base, once worked out (`None`: `scratch`).
#[derive(Clone)]
enum Root {
    Unknown,
    Known(Option<String>),
}

/// A lock file read once, as shown to the user.
type SharedLock = Arc<(PathBuf, LockFile)>;

/// What applying the locks found besides errors.
#[derive(Debug, Default)]
pub struct Applied {
    pub warnings: Vec<Diagnostic>,
    /// Images whose Dockerfiles install packages although they have no lock.
    pub unlocked: Vec<String>,
}

/// Pins every rendered tag whose image has a lock, and the external bases of its node in
/// `graph` (built from the unpinned tags) to what its pinned `FROM`s name. A package a lock
/// lacks is an error at its argument (the caller points it at the template).
pub fn apply(
    project: &Project,
    rendered: &mut Rendered,
    graph: &mut Graph,
) -> Result<Applied, Diagnostics> {
    // One read per image file's lock: locks are few and small, tags many.
    let mut locks: HashMap<usize, Option<SharedLock>> = HashMap::new();
    let mut errors = Diagnostics::new();
    // (rendered tag, its definition, its lock)
    let mut work: Vec<(usize, &Tag, SharedLock)> = Vec::new();
    let mut unlocked: Vec<String> = Vec::new();
    let mut lock_warnings: Vec<Diagnostic> = Vec::new();
    for (index, tag) in rendered.tags.iter().enumerate() {
        let Some(definition) = project.tag_of(&tag.image, &tag.tag) else {
            continue;
        };
        let lock = locks
            .entry(definition.file)
            .or_insert_with(|| {
                let (path, shown) = lock_path(project, definition);
                match read_lock(project, &path, &shown) {
                    Ok(lock) => lock.map(|mut lock| {
                        lock_warnings.append(&mut lock.warnings);
                        Arc::new((shown, lock))
                    }),
                    Err(error) => {
                        errors.extend(error);
                        None
                    }
                }
            })
            .clone()
            // A lock holding only a `source:` commit pins no packages.
            .filter(|lock| !lock.1.bases.is_empty());
        match lock {
            Some(lock) => work.push((index, definition, lock)),
            None => {
                if unlocked.last() != Some(&tag.image)
                    && !im_lock::package_args(&tag.parsed).is_empty()
                {
                    unlocked.push(tag.image.clone());
                }
            }
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    unlocked.dedup();
    if work.is_empty() {
        return Ok(Applied {
            warnings: lock_warnings,
            unlocked,
        });
    }
    let bases = stage_bases(graph, rendered);
    let node_of: HashMap<(&str, &str), usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(index, id)| ((id.image.as_str(), id.tag.as_str()), index))
        .collect();
    let work: Vec<(usize, &Tag, SharedLock, usize)> = work
        .into_iter()
        .filter_map(|(index, definition, lock)| {
            let tag = &rendered.tags[index];
            let node = *node_of.get(&(tag.image.as_str(), tag.tag.as_str()))?;
            Some((index, definition, lock, node))
        })
        .collect();
    let results: Vec<(usize, usize, Result<PinnedTag, Diagnostics>)> = work
        .par_iter()
        .map(|(index, definition, lock, node)| {
            let tag = &rendered.tags[*index];
            let pinned = pin_tag(tag, definition, &bases[*node], &lock.0, &lock.1);
            (*index, *node, pinned)
        })
        .collect();
    let mut warnings = lock_warnings;
    for (index, node, result) in results {
        match result {
            Ok(pinned) => {
                graph.refresh_externals(node, &pinned.parsed);
                let tag = &mut rendered.tags[index];
                tag.dockerfile = pinned.text;
                tag.parsed = pinned.parsed;
                tag.pins = Some(Arc::new(pinned.pins));
                for warning in pinned.warnings {
                    if !warnings.contains(&warning) {
                        warnings.push(warning);
                    }
                }
            }
            Err(found) => errors.extend(found),
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    Ok(Applied { warnings, unlocked })
}

/// A tag's Dockerfile pinned.
struct PinnedTag {
    parsed: Dockerfile,
    /// The final text (with the rootfs `COPY`, when injected).
    text: String,
    pins: TagPins,
    warnings: Vec<Diagnostic>,
}

/// Pins one tag (`definition` says what it is): its parsed Dockerfile (errors point at its
/// lines, which map to the template), then adds the rootfs `COPY` to the pinned text when
/// rendering added it (the line pins nothing).
fn pin_tag(
    tag: &RenderedTag,
    definition: &Tag,
    bases: &StageBases,
    shown: &Path,
    lock: &LockFile,
) -> Result<PinnedTag, Diagnostics> {
    let stages: Vec<Option<StageLock<'_>>> = bases
        .iter()
        .map(|base| {
            base.as_ref().map(|(base, own)| StageLock {
                base,
                entry: lock.base(base),
                pin_from: *own,
            })
        })
        .collect();
    let pinned = im_lock::pin(&tag.parsed, &stages, shown)?;
    let parsed = Dockerfile::parse(tag.parsed.path(), pinned.text, &BTreeMap::new())?;
    let text = if tag.rootfs_injected {
        im_render::with_rootfs_copy(&parsed, definition)
    } else {
        parsed.text().to_owned()
    };
    Ok(PinnedTag {
        parsed,
        text,
        pins: TagPins {
            lock: shown.to_path_buf(),
            unpinned: tag.dockerfile.clone(),
            pins: pinned.pins,
        },
        warnings: pinned.warnings,
    })
}

#[cfg(test)]
mod tests;
