//! Graph levels, for pipelines too large to list one job per node: a node's level is one
//! more than its highest parent's (roots are level 0), so every job of a level can start once
//! the level before it is done. GitHub Actions cannot make a job need one leg of a matrix, and
//! a workflow's jobs are fixed when it is committed: the dynamic workflow has one matrix job
//! per level, platform and kind ([`Group`]), sized from the whole graph ([`Layout`]), and its
//! first job fills each matrix with the nodes of that pipeline ([`Matrices`]), at most
//! [`GITHUB_MATRIX`] legs each.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::graph::{JobKind, Options, Tag};

/// The most jobs one GitHub matrix makes.
pub const GITHUB_MATRIX: usize = 256;

/// The level of every tag (`name:tag` → level) among `tags` (parents listed before
/// children); a parent not among them does not count.
pub fn levels(tags: &[Tag]) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for tag in tags {
        let level = tag
            .parents
            .iter()
            .filter_map(|p| out.get(p))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        out.insert(tag.node.clone(), level);
    }
    out
}

/// One matrix job's kind, graph level (builds only) and platform (builds and tests split by
/// platform, so each runs on that platform's runners).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group {
    pub kind: JobKind,
    pub level: usize,
    pub platform: Option<String>,
}

impl Group {
    /// The job id (and plan output name) of chunk `chunk`: `build_2_linux_arm64_0`.
    pub fn id(&self, chunk: usize) -> String {
        let mut id = self.kind.as_str().to_owned();
        if self.kind == JobKind::Build {
            id.push_str(&format!("_{}", self.level));
        }
        if let Some(platform) = &self.platform {
            id.push('_');
            id.push_str(&platform.replace(['/', '.', '-'], "_"));
        }
        id.push_str(&format!("_{chunk}"));
        id
    }

    /// For people: `build level 2 linux/arm64 (1)`.
    pub fn name(&self, chunk: usize) -> String {
        let mut name = self.kind.as_str().to_owned();
        if self.kind == JobKind::Build {
            name.push_str(&format!(" level {}", self.level));
        }
        if let Some(platform) = &self.platform {
            name.push(' ');
            name.push_str(platform);
        }
        format!("{name} ({})", chunk + 1)
    }
}

/// One leg of a matrix: what its job runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Leg {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_config: Option<String>,
}

/// Every leg of `tags`, by group. `levels` are the levels of the whole graph, so a pruned
/// pipeline's legs fall into the groups the workflow was generated with.
pub fn legs(
    tags: &[Tag],
    options: &Options,
    levels: &BTreeMap<String, usize>,
) -> BTreeMap<Group, Vec<Leg>> {
    let mut out: BTreeMap<Group, Vec<Leg>> = BTreeMap::new();
    let mut add = |kind, level, platform: Option<&String>, leg: Leg| {
        out.entry(Group {
            kind,
            level,
            platform: platform.cloned(),
        })
        .or_default()
        .push(leg);
    };
    for tag in tags {
        let level = levels.get(&tag.node).copied().unwrap_or(0);
        let leg = |platform: Option<&String>| Leg {
            node: tag.node.clone(),
            platform: platform.cloned(),
            test_config: None,
        };
        if options.platform_split {
            for platform in &tag.platforms {
                add(JobKind::Build, level, Some(platform), leg(Some(platform)));
            }
            add(JobKind::Manifest, 0, None, leg(None));
        } else {
            add(JobKind::Build, level, None, leg(None));
        }
        if let Some(config) = &tag.test_config {
            for platform in &tag.platforms {
                add(
                    JobKind::Test,
                    0,
                    Some(platform),
                    Leg {
                        test_config: Some(config.clone()),
                        ..leg(Some(platform))
                    },
                );
            }
        }
        add(JobKind::Promote, 0, None, leg(None));
    }
    out
}

/// How many matrix jobs each group has in the committed workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub groups: BTreeMap<Group, usize>,
}

impl Layout {
    /// The layout for `legs` (the whole graph's): each group gets the matrix jobs its legs
    /// need, at most `cap`. A pipeline builds what changed, so the committed workflow stays
    /// the same size however many images the project has (it changes with the graph's depth
    /// and platforms); a pipeline needing more legs than a group holds is refused by its plan
    /// job, saying to raise `ci.matrix_jobs`.
    pub fn of(legs: &BTreeMap<Group, Vec<Leg>>, cap: usize) -> Self {
        Self {
            groups: legs
                .iter()
                .map(|(group, legs)| {
                    (
                        group.clone(),
                        legs.len().div_ceil(GITHUB_MATRIX).clamp(1, cap.max(1)),
                    )
                })
                .collect(),
        }
    }

    /// A short fingerprint: the plan job checks it was generated for the same layout.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        for (group, chunks) in &self.groups {
            hasher.update(format!("{}={chunks}\n", group.id(0)));
        }
        hex::encode(&hasher.finalize()[..6])
    }

    /// Every job id, in order.
    pub fn job_ids(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|(group, &chunks)| (0..chunks).map(|c| group.id(c)))
            .collect()
    }

    /// The jobs a job of `group` waits for (besides the plan job).
    pub fn needs(&self, group: &Group) -> Vec<String> {
        let ids = |filter: &dyn Fn(&Group) -> bool| -> Vec<String> {
            self.groups
                .iter()
                .filter(|(g, _)| filter(g))
                .flat_map(|(g, &chunks)| (0..chunks).map(|c| g.id(c)))
                .collect()
        };
        let builds: Vec<&Group> = self
            .groups
            .keys()
            .filter(|g| g.kind == JobKind::Build)
            .collect();
        // The last build level of each platform: when it is done, every build is.
        let last_builds = || -> BTreeSet<&Group> {
            let mut last: BTreeMap<&Option<String>, &Group> = BTreeMap::new();
            for g in &builds {
                let entry = last.entry(&g.platform).or_insert(g);
                if g.level > entry.level {
                    *entry = g;
                }
            }
            last.into_values().collect()
        };
        let has = |kind: JobKind| self.groups.keys().any(|g| g.kind == kind);
        match group.kind {
            JobKind::Build if group.level == 0 => Vec::new(),
            JobKind::Build => {
                let same = |g: &Group| {
                    g.kind == JobKind::Build
                        && g.level + 1 == group.level
                        && g.platform == group.platform
                };
                let found = ids(&same);
                if found.is_empty() {
                    ids(&|g: &Group| g.kind == JobKind::Build && g.level + 1 == group.level)
                } else {
                    found
                }
            }
            JobKind::Manifest => {
                let last = last_builds();
                ids(&|g: &Group| last.contains(g))
            }
            JobKind::Test if has(JobKind::Manifest) => {
                ids(&|g: &Group| g.kind == JobKind::Manifest)
            }
            JobKind::Promote if has(JobKind::Test) => ids(&|g: &Group| g.kind == JobKind::Test),
            JobKind::Promote if has(JobKind::Manifest) => {
                ids(&|g: &Group| g.kind == JobKind::Manifest)
            }
            JobKind::Test | JobKind::Promote | JobKind::Nothing => {
                let last = last_builds();
                ids(&|g: &Group| last.contains(g))
            }
        }
    }
}

/// What the plan job hands the workflow: the legs of every matrix job (`[]` for the ones
/// this pipeline does not use).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matrices {
    pub jobs: BTreeMap<String, Vec<Leg>>,
}

/// The workflow's layout cannot hold this pipeline's legs: it was generated for another
/// graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the workflow has {had} matrix job(s) for `{group}`, and this pipeline needs {needs} (256 legs each)"
)]
pub struct Stale {
    pub group: String,
    pub had: usize,
    pub needs: usize,
}

impl Matrices {
    /// The legs of a pipeline (pruned or not) in the committed `layout`.
    pub fn fill(layout: &Layout, legs: &BTreeMap<Group, Vec<Leg>>) -> Result<Self, Stale> {
        let mut jobs: BTreeMap<String, Vec<Leg>> = layout
            .job_ids()
            .into_iter()
            .map(|id| (id, Vec::new()))
            .collect();
        for (group, legs) in legs {
            let had = layout.groups.get(group).copied().unwrap_or(0);
            let needs = legs.len().div_ceil(GITHUB_MATRIX);
            if needs > had {
                return Err(Stale {
                    group: group.name(0),
                    had,
                    needs,
                });
            }
            for (chunk, part) in legs.chunks(GITHUB_MATRIX).enumerate() {
                jobs.insert(group.id(chunk), part.to_vec());
            }
        }
        Ok(Self { jobs })
    }

    /// `$GITHUB_OUTPUT` lines: `build_0_linux_amd64_0=[{"node":...}]`.
    pub fn outputs(&self) -> String {
        let mut out = String::new();
        for (id, legs) in &self.jobs {
            out.push_str(id);
            out.push('=');
            out.push_str(&serde_json::to_string(legs).expect("legs serialize"));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::tag;

    fn split() -> Options {
        Options {
            platform_split: true,
            ..Options::default()
        }
    }

    #[test]
    fn levels_follow_the_longest_chain_of_parents() {
        let tags = [
            tag("base:1", &[], false),
            tag("app:1", &["base:1"], false),
            tag("tool:1", &["base:1"], false),
            tag("app:1-dev", &["app:1", "base:1"], false),
        ];
        let levels = levels(&tags);
        assert_eq!(levels["base:1"], 0);
        assert_eq!(levels["tool:1"], 1);
        assert_eq!(levels["app:1-dev"], 2);
    }

    #[test]
    fn a_level_waits_for_the_level_before_on_its_platform_and_chunks_hold_256_legs() {
        let mut tags = vec![tag("base:1", &[], true)];
        for i in 0..300 {
            tags.push(tag(&format!("app:{i}"), &["base:1"], false));
        }
        let legs = legs(&tags, &split(), &levels(&tags));
        let layout = Layout::of(&legs, 8);
        let arm = Group {
            kind: JobKind::Build,
            level: 1,
            platform: Some("linux/arm64".into()),
        };
        assert_eq!(layout.groups[&arm], 2, "300 legs: two matrices");
        assert_eq!(layout.needs(&arm), ["build_0_linux_arm64_0"]);
        let manifest = Group {
            kind: JobKind::Manifest,
            level: 0,
            platform: None,
        };
        assert_eq!(
            layout.needs(&manifest),
            [
                "build_1_linux_amd64_0",
                "build_1_linux_amd64_1",
                "build_1_linux_arm64_0",
                "build_1_linux_arm64_1"
            ]
        );
        let promote = Group {
            kind: JobKind::Promote,
            level: 0,
            platform: None,
        };
        assert_eq!(
            layout.needs(&promote),
            ["test_linux_amd64_0", "test_linux_arm64_0"]
        );

        // A pruned pipeline fills the same jobs; the unused ones are empty.
        let pruned = vec![tag("app:7", &["base:1"], false)];
        let matrices =
            Matrices::fill(&layout, &self::legs(&pruned, &split(), &levels(&tags))).unwrap();
        assert_eq!(matrices.jobs.len(), layout.job_ids().len());
        assert_eq!(matrices.jobs["build_0_linux_amd64_0"], []);
        assert_eq!(matrices.jobs["build_1_linux_arm64_0"][0].node, "app:7");
        let outputs = matrices.outputs();
        assert!(
            outputs.contains(
                "build_1_linux_arm64_0=[{\"node\":\"app:7\",\"platform\":\"linux/arm64\"}]\n"
            ),
            "{outputs}"
        );
        assert!(outputs.contains("build_1_linux_arm64_1=[]\n"));

        // A graph the workflow was not generated for is refused.
        let mut more = tags.clone();
        for i in 300..600 {
            more.push(tag(&format!("app:{i}"), &["base:1"], false));
        }
        let error =
            Matrices::fill(&layout, &self::legs(&more, &split(), &levels(&more))).unwrap_err();
        assert_eq!(error.had, 2);
        assert_eq!(error.needs, 3);
    }
}
