//! Complete build steps: what the plan decided for a node, plus what only a run knows — the
//! parents' archives, the labels that change with every build (passed in as data, never part
//! of a key), the parents' digests — turned into the [`BuildStep`] a builder runs and, for
//! `plan --format json`, the exact argv it will run.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use im_build::{BuildError, BuildStep, Builder, Parent, PullPolicy};
use im_plan::{Plan, PlanNode};
use serde::Serialize;

use crate::bases::{Need, Unavailable};

/// The label every built image carries with its build key.
pub const BUILD_KEY_LABEL: &str = "dev.image-manager.build-key";
const BASE_NAME_LABEL: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST_LABEL: &str = "org.opencontainers.image.base.digest";
const SOURCE_LABEL: &str = "org.opencontainers.image.source";
const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// Where and when a build happens: the values of labels that change with every build and
/// never enter a key (`org.opencontainers.image.created`, `.revision`, `.source`), and the
/// timestamp for reproducible builds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Provenance {
    /// `SOURCE_DATE_EPOCH`, else the last commit's time.
    pub epoch: Option<i64>,
    pub labels: BTreeMap<String, String>,
}

impl Provenance {
    /// Reads the project's git state; `source_date_epoch` is the variable's value, if set.
    pub fn read(root: &Path, source_date_epoch: Option<&str>) -> Self {
        let epoch = source_date_epoch
            .and_then(|value| value.trim().parse().ok())
            .or_else(|| git(root, &["log", "-1", "--format=%ct"]).and_then(|v| v.parse().ok()));
        let mut labels = BTreeMap::new();
        if let Some(created) = epoch.and_then(rfc3339) {
            labels.insert("org.opencontainers.image.created".to_owned(), created);
        }
        if let Some(revision) = git(root, &["rev-parse", "HEAD"]) {
            labels.insert(REVISION_LABEL.to_owned(), revision);
        }
        if let Some(source) = git(root, &["config", "--get", "remote.origin.url"]) {
            labels.insert(SOURCE_LABEL.to_owned(), source);
        }
        Self { epoch, labels }
    }
}

/// `git -C root args`' output, if it succeeded and said something.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    im_source::git::run(Some(root), args, &[])
        .ok()
        .map(|out| out.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `2026-12-06T03:45:24Z`.
pub fn rfc3339(epoch: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// What completes the steps of one plan.
pub struct Steps<'a> {
    pub plan: &'a Plan,
    /// `dist/`, absolute.
    pub dist: &'a Path,
    /// The archive of each external base (reference as written, platform) a build needs.
    pub bases: BTreeMap<Need, Result<PathBuf, Unavailable>>,
    pub provenance: Provenance,
    pub no_cache: bool,
    /// The shared layer cache, scoped to each step.
    pub cache: Option<crate::cache::Selected>,
    /// The `--snapshot-id` the project was rendered with: the base name label names a
    /// managed parent written `<tag>-<id>` as `<tag>` (see [`im_plan::PlanOptions`]).
    pub snapshot_id: Option<String>,
}

impl Steps<'_> {
    /// The step of plan node `index`; `digests` holds the manifest digests of the nodes
    /// already built or up to date (by plan index).
    pub fn step(
        &self,
        index: usize,
        digests: &HashMap<usize, String>,
    ) -> Result<BuildStep, BuildError> {
        let node = &self.plan.nodes[index];
        let tag_dir = self.dist.join(&node.id.image).join(&node.id.tag);
        let output = self.dist.join(&node.output);
        let mut labels: BTreeMap<String, String> = (*node.inputs.labels).clone();
        labels.extend(self.provenance.labels.clone());
        // An image built from an external repository names that repository and commit, not
        // the project's.
        let context_dir = match &node.source {
            Some(source) => {
                labels.insert(SOURCE_LABEL.to_owned(), source.git.clone());
                labels.insert(REVISION_LABEL.to_owned(), source.commit.clone());
                source.context.clone()
            }
            None => tag_dir.clone(),
        };
        labels.insert(BUILD_KEY_LABEL.to_owned(), node.key.clone());
        let base_name = labels.get(BASE_NAME_LABEL).cloned();
        let mut base_digest = None;
        let mut parents = Vec::new();
        for (reference, at) in &node.parent_refs {
            parents.push(Parent {
                reference: reference.clone(),
                archive: self.dist.join(&self.plan.nodes[*at].output),
            });
            let release = im_plan::release_name(reference, self.snapshot_id.as_deref());
            if base_name.as_deref() == Some(release) {
                base_digest = digests.get(at).cloned();
            }
        }
        for (reference, digest) in &node.inputs.externals {
            let key = (reference.clone(), node.platform.clone());
            match self.bases.get(&key) {
                Some(Ok(archive)) => parents.push(Parent {
                    reference: reference.clone(),
                    archive: archive.clone(),
                }),
                Some(Err(error)) => {
                    return Err(BuildError::Base {
                        node: node.id.to_string(),
                        platform: node.platform.clone(),
                        reference: reference.clone(),
                        source: error.clone(),
                    });
                }
                None => unreachable!("every external base of a node to build was located"),
            }
            if base_name.as_deref() == Some(reference.as_str()) && digest.is_some() {
                base_digest.clone_from(digest);
            }
        }
        if let Some(digest) = base_digest {
            labels.insert(BASE_DIGEST_LABEL.to_owned(), digest);
        }
        Ok(BuildStep {
            node: node.id.to_string(),
            platform: node.platform.clone(),
            dockerfile: tag_dir.join("Dockerfile"),
            context_dir,
            image: node.id.to_string(),
            build_args: node.inputs.build_args.clone(),
            labels,
            parents,
            log: output.with_file_name("build.log"),
            output,
            source_date_epoch: self.provenance.epoch,
            no_cache: self.no_cache,
            pull: PullPolicy::default(),
            cache: self
                .cache
                .as_ref()
                .and_then(|cache| cache.for_node(&node.id.image, &node.platform)),
        })
    }

    /// What `plan --format json` shows of node `index` before anything is built: its
    /// labels and the exact commands `builder` runs. A parent that is still to be built has
    /// no digest yet; it stands as `<digest of NODE (PLATFORM)>`.
    pub fn preview(
        &self,
        index: usize,
        known: &HashMap<usize, String>,
        builder: &dyn Builder,
    ) -> Result<StepPreview, BuildError> {
        let node = &self.plan.nodes[index];
        // Only this node's parents: the plan's other digests are not looked at.
        let digests: HashMap<usize, String> = node
            .parent_refs
            .iter()
            .map(|&(_, at)| {
                let digest = known
                    .get(&at)
                    .cloned()
                    .unwrap_or_else(|| pending_digest(&self.plan.nodes[at]));
                (at, digest)
            })
            .collect();
        let step = self.step(index, &digests)?;
        let mut parent_digests: Vec<String> = node
            .parent_refs
            .iter()
            .map(|(_, at)| digests[at].clone())
            .collect();
        parent_digests.extend(node.inputs.externals.iter().map(|(reference, digest)| {
            digest
                .clone()
                .unwrap_or_else(|| format!("<digest of {reference}>"))
        }));
        let plan = builder.plan(&step, &parent_digests)?;
        Ok(StepPreview {
            labels: step.labels,
            commands: plan
                .loads
                .iter()
                .chain(&plan.commands)
                .map(Command::of)
                .collect(),
        })
    }
}

/// A step as `plan --format json` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct StepPreview {
    pub labels: BTreeMap<String, String>,
    /// Every command the builder runs, in order.
    pub commands: Vec<Command>,
}

/// One command: the variables added to its environment and its argv.
#[derive(Clone, Debug, Serialize)]
pub struct Command {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    pub argv: Vec<String>,
}

impl Command {
    fn of(spec: &im_build::CommandSpec) -> Self {
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        Self {
            env: spec
                .env
                .iter()
                .map(|(k, v)| (text(k), text(v)))
                .chain(spec.secret_env.keys().map(|k| (text(k), "***".to_owned())))
                .collect(),
            argv: std::iter::once(text(spec.program.as_os_str()))
                .chain(spec.args.iter().map(|a| text(a)))
                .collect(),
        }
    }
}

fn pending_digest(node: &PlanNode) -> String {
    format!("<digest of {} ({})>", node.id, node.platform)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_rfc3339_in_utc() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_796_528_724).as_deref(),
            Some("2026-12-06T03:45:24Z")
        );
    }
}
