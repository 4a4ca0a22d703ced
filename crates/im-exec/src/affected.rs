//! What changed since a git revision (`generate-ci --affected-since REF`): the image tags
//! whose build key, test config or aliases differ between the project at `REF` and the
//! working tree, with the reason for each. Build keys chain through parents, so every
//! descendant of a changed tag is affected too.
//!
//! The project at `REF` is read from git into a scratch folder (a private index file, so
//! the user's index and working tree are never touched), rendered and planned like the
//! working tree; nothing is built and no registry is asked. Comparing keys rather than
//! changed paths means a change that renders to the same bytes (a comment in a shared
//! template) affects nothing, and a change to a file every image reads (the settings)
//! affects exactly the images whose inputs it changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use im_diag::{Diagnostic, Diagnostics};
use im_plan::{Ledger, Plan, PlanOptions};

use crate::prepare::Prepared;

/// Image tag (`name:tag`) → why it is affected, for every affected tag.
pub type Affected = BTreeMap<String, Vec<String>>;

/// The tags of `current` (the working tree, rendered with test configs) that changed since
/// `reference`; `targets` selects as for `build`; `lookup` reads `${VAR}` in settings.
pub fn since(
    current: &Prepared,
    reference: &str,
    targets: &[String],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Affected> {
    let root = &current.project.root;
    let git = Git::open(root, reference)?;
    if !git.changed_since()? {
        return Ok(Affected::new());
    }
    let scratch = tempfile::Builder::new()
        .prefix("image-manager-affected-")
        .tempdir()?;
    let old_root = git.checkout(scratch.path())?;
    let keys_now = keys(current, targets)?;
    let old = old_root.as_deref().map(|old_root| {
        Prepared::new(
            old_root,
            lookup,
            im_render::Options {
                snapshot_id: None,
                skip_tests: false,
                skip_locks: false,
                refresh_sources: false,
            },
        )
    });
    let old = match old {
        Some(Ok(old)) => Some(old),
        // The project did not exist, or did not load, at `reference`: everything is new.
        None | Some(Err(_)) => None,
    };
    let keys_then = match &old {
        // Every tag of then, whatever the targets select now.
        Some(old) => keys(old, &[]).unwrap_or_default(),
        None => Plan::default(),
    };
    Ok(compare(
        current,
        &keys_now,
        old.as_ref(),
        &keys_then,
        reference,
    ))
}

/// A plan of `prepared` made only for its keys (no ledger, no builder, no registry).
fn keys(prepared: &Prepared, targets: &[String]) -> Result<Plan, Diagnostics> {
    im_plan::plan(
        &prepared.project,
        &prepared.graph,
        &prepared.rendered.tags,
        &Ledger::default(),
        Path::new("/nonexistent/image-manager-affected"),
        &PlanOptions {
            targets: targets.to_vec(),
            with_deps: true,
            builder: "affected".to_owned(),
            ..PlanOptions::default()
        },
    )
}

fn compare(
    current: &Prepared,
    now: &Plan,
    old: Option<&Prepared>,
    then: &Plan,
    reference: &str,
) -> Affected {
    let then_nodes: BTreeMap<(String, String), &im_plan::PlanNode> = then
        .nodes
        .iter()
        .map(|n| ((n.id.to_string(), n.platform.to_string()), n))
        .collect();
    let mut affected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for node in &now.nodes {
        let id = node.id.to_string();
        let reasons: Vec<String> = match then_nodes.get(&(id.clone(), node.platform.to_string())) {
            None => vec![format!("new since {reference}")],
            Some(before) if before.key == node.key => Vec::new(),
            Some(before) => im_plan::changes(&before.inputs, &node.inputs)
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        if !reasons.is_empty() {
            affected.entry(id).or_default().extend(reasons);
        }
    }
    // What does not enter a key but makes the test, manifest or promote jobs differ.
    let tests = |prepared: &Prepared| -> BTreeMap<String, Option<String>> {
        prepared
            .rendered
            .tags
            .iter()
            .map(|t| {
                (
                    format!("{}:{}", t.image, t.tag),
                    t.test.as_ref().map(|(text, _)| text.clone()),
                )
            })
            .collect()
    };
    let tests_now = tests(current);
    let tests_then = old.map(tests).unwrap_or_default();
    let selected: BTreeSet<String> = now.nodes.iter().map(|n| n.id.to_string()).collect();
    for id in &selected {
        if tests_then.get(id).cloned().flatten() != tests_now.get(id).cloned().flatten()
            && old.is_some()
        {
            affected
                .entry(id.clone())
                .or_default()
                .insert("test config changed".to_owned());
        }
        let aliases = |prepared: &Prepared| -> Option<Vec<String>> {
            let (name, tag) = id.split_once(':')?;
            let image = prepared.project.image(name)?;
            image.tag(tag)?;
            Some(image.aliases_of(tag).map(str::to_owned).collect())
        };
        if let Some(old) = old
            && aliases(old).is_some()
            && aliases(old) != aliases(current)
        {
            affected
                .entry(id.clone())
                .or_default()
                .insert("aliases changed".to_owned());
        }
    }
    affected
        .into_iter()
        .map(|(id, reasons)| (id, reasons.into_iter().collect()))
        .collect()
}

/// The project's git repository and the commit `reference` names.
struct Git {
    /// The project folder.
    root: PathBuf,
    /// The repository's top folder.
    top: PathBuf,
    /// The project folder relative to `top` (`""` at the top).
    prefix: String,
    commit: String,
    reference: String,
}

impl Git {
    fn open(root: &Path, reference: &str) -> anyhow::Result<Git> {
        let not_a_repo = |_| {
            Diagnostic::error(format!(
                "--affected-since needs the project in a git repository; {} is not in one",
                root.display()
            ))
            .with_help("run it in a clone of the project, or leave --affected-since out to generate the whole pipeline")
        };
        let top = git(root, &["rev-parse", "--show-toplevel"], &[]).map_err(not_a_repo)?;
        let prefix = git(root, &["rev-parse", "--show-prefix"], &[]).map_err(not_a_repo)?;
        let commit = git(
            root,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &format!("{reference}^{{commit}}"),
            ],
            &[],
        )
        .map_err(|_| {
            Diagnostic::error(format!(
                "--affected-since: `{reference}` is not a commit of this repository"
            ))
            .with_help("name a branch, tag or commit that exists here; a shallow CI clone may need `git fetch --depth=50 origin <branch>` first")
        })?;
        Ok(Git {
            root: root.to_owned(),
            top: PathBuf::from(top.trim()),
            prefix: prefix.trim().trim_end_matches('/').to_owned(),
            commit: commit.trim().to_owned(),
            reference: reference.to_owned(),
        })
    }

    /// Whether anything under the project differs from the commit (tracked changes and
    /// files git does not ignore).
    fn changed_since(&self) -> anyhow::Result<bool> {
        let changed = git(
            &self.root,
            &[
                "diff",
                "--name-only",
                "--no-renames",
                &self.commit,
                "--",
                ".",
            ],
            &[],
        )?;
        let untracked = git(
            &self.root,
            &["ls-files", "--others", "--exclude-standard", "--", "."],
            &[],
        )?;
        Ok(!changed.trim().is_empty() || !untracked.trim().is_empty())
    }

    /// Writes the project as the commit has it under `scratch`; returns its folder, or
    /// `None` when the commit has no such folder.
    fn checkout(&self, scratch: &Path) -> anyhow::Result<Option<PathBuf>> {
        let tree = if self.prefix.is_empty() {
            format!("{}^{{tree}}", self.commit)
        } else {
            format!("{}:{}", self.commit, self.prefix)
        };
        if git(&self.top, &["cat-file", "-e", &tree], &[]).is_err() {
            return Ok(None);
        }
        let out = scratch.join("tree");
        let repository = [std::ffi::OsStr::new("-C"), self.top.as_os_str()];
        im_source::cache::export_tree(&repository, &tree, &scratch.join("index"), &out)
            .map_err(|error| anyhow::anyhow!("reading {} from git: {error}", self.reference))?;
        fs_err::create_dir_all(&out)?;
        Ok(Some(out))
    }
}

/// `git -C dir args` with `env`, within the deadline; its stdout.
fn git(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<String, im_process::RunError> {
    im_source::git::run(Some(dir), args, env)
}
