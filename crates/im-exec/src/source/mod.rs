//! Images built from an external repository (`source:` in `image.yml`): before rendering,
//! each definition's `ref` is resolved to a commit, the commit fetched into the project's
//! repository cache (a bare clone per URL, shallow where the server allows), checked out with
//! the definition's patches applied, and the commit recorded in the image's `packages.lock`.
//!
//! A branch is followed: every run asks the remote where it points (one `git ls-remote`), so
//! a new upstream commit changes the build key of the image and its descendants. A tag or a
//! commit is taken from the lock without asking, unless `refresh` (`build --refresh-bases`).
//! When the remote cannot be reached, the locked commit is built and a warning says so.

use std::path::PathBuf;
use std::sync::Arc;

use im_diag::{Diagnostic, Diagnostics, display_path};
use im_lock::file::SourceLock;
use im_lock::{LOCK_FILE, LockFile};
use im_project::upstream::{SourceDef, is_commit};
use im_project::{ImageFile, Project};
use im_render::upstream::{ResolvedSource, ResolvedSources};
use im_source::patch::Patch;
use im_source::remote::{RefKind, ResolveError};
use im_source::{Repository, Resolved};
use rayon::prelude::*;

pub mod outdated;

/// The bare repositories, one per URL.
pub const GIT_CACHE_DIR: &str = ".image-manager/cache/git";
/// The checkouts, one per commit and set of patches.
pub const CHECKOUTS_DIR: &str = ".image-manager/cache/sources";

/// The sources of a project, fetched, and what was said on the way.
#[derive(Debug, Default)]
pub struct Fetched {
    pub sources: ResolvedSources,
    pub warnings: Vec<Diagnostic>,
    /// The locks whose `source:` changed, with their new text: written by
    /// [`Fetched::write_locks`] once the whole project rendered.
    pub locks: Vec<(PathBuf, PathBuf, String)>,
}

impl Fetched {
    /// Writes the changed locks, each atomically.
    pub fn write_locks(&self) -> Result<(), Diagnostics> {
        for (path, shown, text) in &self.locks {
            im_render::output::write_atomic(path, text.as_bytes(), None, None).map_err(
                |error| Diagnostic::error(format!("cannot write {}: {error}", shown.display())),
            )?;
        }
        Ok(())
    }
}

/// Resolves, fetches and checks out the `source:` of every definition that has one; writes
/// each changed commit into the definition's lock. Every problem is collected.
pub fn fetch(project: &Project, refresh: bool) -> Result<Fetched, Diagnostics> {
    let work: Vec<(usize, &ImageFile, &SourceDef)> = project
        .files
        .iter()
        .enumerate()
        .filter_map(|(index, file)| file.upstream.as_ref().map(|source| (index, file, source)))
        .collect();
    if work.is_empty() {
        return Ok(Fetched::default());
    }
    // One repository is fetched into by one thread at a time (git's shallow fetches of one
    // repository lock each other out); different repositories in parallel.
    let mut by_url: Vec<Vec<(usize, &ImageFile, &SourceDef)>> = Vec::new();
    for entry in work {
        match by_url
            .iter_mut()
            .find(|group| group[0].2.git.value == entry.2.git.value)
        {
            Some(group) => group.push(entry),
            None => by_url.push(vec![entry]),
        }
    }
    let results: Vec<(usize, FetchedOne)> = by_url
        .par_iter()
        .flat_map_iter(|group| {
            group
                .iter()
                .map(|&(index, file, source)| (index, fetch_one(project, file, source, refresh)))
        })
        .collect();
    let mut fetched = Fetched::default();
    let mut errors = Diagnostics::new();
    for (index, result) in results {
        match result {
            Ok((resolved, warnings, lock)) => {
                fetched.sources.insert(index, Arc::new(resolved));
                fetched.warnings.extend(warnings);
                fetched.locks.extend(lock);
            }
            Err(found) => errors.extend(found),
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    Ok(fetched)
}

/// One definition's checkout and its warnings.
type FetchedOne = Result<
    (
        ResolvedSource,
        Vec<Diagnostic>,
        Option<(PathBuf, PathBuf, String)>,
    ),
    Diagnostics,
>;

fn fetch_one(project: &Project, file: &ImageFile, source: &SourceDef, refresh: bool) -> FetchedOne {
    let root = &project.root;
    let at = |span| file.location(span);
    let url = source.git.value.as_str();
    let reference = source.reference.value.as_str();
    let mut warnings = Vec::new();
    let lock_path = file.dir.join(LOCK_FILE);
    let lock_shown = display_path(root, &lock_path);
    let lock = crate::lock::read_lock(project, &lock_path, &lock_shown)?;
    let locked = lock
        .as_ref()
        .and_then(|lock| lock.source.as_ref())
        .filter(|locked| {
            locked.git == url && locked.reference == reference && is_commit(&locked.commit)
        });

    // Whether the remote said where `ref` points during this run (`outdated` asks otherwise).
    let mut asked = false;
    let resolved = if is_commit(reference) {
        Resolved {
            commit: reference.to_owned(),
            kind: RefKind::Commit,
            refname: None,
        }
    } else if let Some(locked) = locked.filter(|l| l.kind == "tag" && !refresh) {
        Resolved {
            commit: locked.commit.clone(),
            kind: RefKind::Tag,
            refname: Some(format!("refs/tags/{reference}")),
        }
    } else {
        match im_source::remote::resolve(url, reference) {
            Ok(resolved) => {
                asked = true;
                resolved
            }
            Err(ResolveError::Unreachable(error)) => match locked {
                Some(locked) => {
                    warnings.push(
                        Diagnostic::warning(format!(
                            "cannot reach {url} ({}); building the locked commit {}",
                            im_source::git::message(&error),
                            short(&locked.commit)
                        ))
                        .at(at(source.git.span))
                        .with_help("`image-manager outdated` says whether it moved once the repository is reachable again"),
                    );
                    Resolved {
                        commit: locked.commit.clone(),
                        kind: RefKind::parse(&locked.kind).unwrap_or(RefKind::Branch),
                        refname: None,
                    }
                }
                None => {
                    return Err(Diagnostic::error(format!(
                        "cannot reach the repository {url}: {}",
                        im_source::git::message(&error)
                    ))
                    .at(at(source.git.span))
                    .with_help("check the URL and that git can fetch it here (credentials, network); `git ls-remote <url>` shows what git says")
                    .into());
                }
            },
            Err(error @ ResolveError::NoSuchRef(_)) => {
                return Err(Diagnostic::error(error.to_string())
                    .at(at(source.reference.span))
                    .with_help(format!("`git ls-remote {url}` lists its branches and tags; a commit is written as its full 40-character SHA"))
                    .into());
            }
        }
    };

    let cache = Repository::open(&root.join(GIT_CACHE_DIR), url).map_err(|error| {
        Diagnostics::from(Diagnostic::error(error.to_string()).at(at(source.git.span)))
    })?;
    cache
        .fetch(&resolved.commit, resolved.refname.as_deref())
        .map_err(|error| {
            let help = if resolved.kind == RefKind::Commit {
                "make sure the commit is on a branch or tag of the repository"
            } else {
                "check that git can fetch the repository here (credentials, network)"
            };
            Diagnostics::from(
                Diagnostic::error(error.to_string())
                    .at(at(source.git.span))
                    .with_help(help),
            )
        })?;
    let patches = read_patches(project, file, source)?;
    let checkout = cache
        .checkout(&resolved.commit, &patches, &root.join(CHECKOUTS_DIR))
        .map_err(|error| match error {
            im_source::cache::CheckoutError::Patch(patch) => {
                Diagnostics::from(patch.diagnostic().with_note(format!(
                    "applying the patches of {} to {url} at {}",
                    file.file.display(),
                    short(&resolved.commit)
                )))
            }
            other => Diagnostic::error(other.to_string())
                .at(at(source.git.span))
                .into(),
        })?;
    // im-source works with absolute paths; the project's are as the user gave them, and so
    // are the paths messages show.
    let checkout_dir = std::path::absolute(root)
        .ok()
        .and_then(|absolute| {
            checkout
                .dir
                .strip_prefix(absolute)
                .ok()
                .map(|rel| root.join(rel))
        })
        .unwrap_or_else(|| checkout.dir.clone());
    let context = checkout_dir.join(&source.context.value);
    if !context.is_dir() {
        return Err(Diagnostic::error(format!(
            "{url} has no folder `{}` at {}",
            source.context.value,
            short(&resolved.commit)
        ))
        .at(at(source.context.span))
        .with_help("name a folder of the repository, relative to its top")
        .into());
    }
    let dockerfile = checkout_dir.join(source.dockerfile_path());
    if !dockerfile.is_file() {
        return Err(Diagnostic::error(format!(
            "{url} has no Dockerfile `{}` at {}",
            source.dockerfile_path(),
            short(&resolved.commit)
        ))
        .at(at(source.dockerfile.span))
        .with_help("`dockerfile:` is relative to `context:`")
        .into());
    }
    let lock = recorded(lock, url, reference, &resolved)
        .map(|text| (lock_path.clone(), lock_shown.clone(), text));
    Ok((
        ResolvedSource {
            git: url.to_owned(),
            reference: reference.to_owned(),
            kind: resolved.kind.as_str(),
            commit: resolved.commit,
            asked,
            context,
            context_path: source.context.value.clone(),
            dockerfile,
            patches: checkout.patches,
        },
        warnings,
        lock,
    ))
}

/// The patch files, read inside the project.
fn read_patches(
    project: &Project,
    file: &ImageFile,
    source: &SourceDef,
) -> Result<Vec<Patch>, Diagnostics> {
    let confined = im_input::Confined::new(&project.root);
    let mut errors = Diagnostics::new();
    let mut patches = Vec::new();
    for patch in &source.patches {
        let path = file.dir.join(&patch.value);
        let display = display_path(&project.root, &path);
        match confined.read_text(&path) {
            Ok(text) => patches.push(Patch {
                path,
                display: display.display().to_string(),
                text,
            }),
            Err(error) => errors.push(
                error
                    .diagnostic(&display)
                    .at(file.location(patch.span))
                    .with_help("patches are relative to the image.yml folder"),
            ),
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    Ok(patches)
}

/// The lock's new text when the commit it records changed (a new lock when there is none).
fn recorded(
    lock: Option<LockFile>,
    url: &str,
    reference: &str,
    resolved: &Resolved,
) -> Option<String> {
    let entry = SourceLock {
        git: url.to_owned(),
        reference: reference.to_owned(),
        kind: resolved.kind.as_str().to_owned(),
        commit: resolved.commit.clone(),
    };
    let mut lock = lock.unwrap_or_default();
    if lock.source.as_ref() == Some(&entry) {
        return None;
    }
    lock.source = Some(entry);
    Some(lock.to_yaml())
}

/// The first 12 characters of a commit.
pub fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
