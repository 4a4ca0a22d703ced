//! The job graph: what a pipeline runs for a project, independent of the CI provider.
//!
//! Every node (image tag × platform, or image tag when platforms are not split) gets a build
//! job whose `needs` are exactly the build jobs of its parents, so a leaf starts as soon as
//! its own chain is done. Each image tag then gets a manifest job (with split platforms), a
//! test job (when it has a test config) and a promote job (on the default branch). All jobs
//! work under a snapshot id (`IM_SNAPSHOT_ID`, set by the provider's pipeline); promote turns
//! the tested snapshot into the release tags.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// One image tag of the project, as the pipeline needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// `name:tag`.
    pub node: String,
    /// `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// The managed image tags it is built on (`name:tag`).
    pub parents: Vec<String>,
    /// Where `generate` writes its rendered test config (`dist/<name>/<tag>/test.yml`), when
    /// it has one.
    pub test_config: Option<String>,
    /// Why the pipeline has it (`Dockerfile changed`, `parent base:1 changed`, `a target`).
    pub why: Vec<String>,
}

/// How jobs are shaped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// One build job per platform, joined by a manifest job (else one job builds every
    /// platform of a tag and pushes its index).
    pub platform_split: bool,
    /// Runner tags per platform; a platform without runners builds on the default runner
    /// (under qemu when it is foreign).
    pub runners: BTreeMap<String, Vec<String>>,
    /// Commands every job runs first (installing image-manager and a builder).
    pub install: Vec<String>,
    /// The command that runs image-manager in jobs.
    pub program: String,
}

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    Build,
    Manifest,
    Test,
    Promote,
    /// The one job of a pipeline with nothing to build (a CI file needs a job).
    Nothing,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Manifest => "manifest",
            Self::Test => "test",
            Self::Promote => "promote",
            Self::Nothing => "nothing",
        }
    }
}

/// One job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Unique, made of `[a-z0-9_-]` (a GitHub job id; also its GitLab name's source).
    pub id: String,
    /// For people: `build app:1.0 linux/amd64`.
    pub name: String,
    pub kind: JobKind,
    /// `name:tag`.
    pub node: String,
    /// The platform a build or test job is for (none: every platform of the tag).
    pub platform: Option<String>,
    /// Ids of the jobs this one waits for.
    pub needs: Vec<String>,
    /// Runner tags (empty: the default runner).
    pub runners: Vec<String>,
    /// Shell commands, in order (after the install commands).
    pub script: Vec<String>,
    /// Only on the default branch (promote).
    pub default_branch_only: bool,
}

/// Every job, parents before children.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct JobGraph {
    /// The image tags the pipeline builds, and why each is in it.
    pub nodes: Vec<NodeEntry>,
    pub jobs: Vec<Job>,
}

/// One image tag of the pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeEntry {
    /// `name:tag`.
    pub node: String,
    pub platforms: Vec<String>,
    /// The managed tags it is built on that the pipeline also builds (the others are taken
    /// from the registry).
    pub parents: Vec<String>,
    pub why: Vec<String>,
}

impl JobGraph {
    /// The most `needs` any job has.
    pub fn widest_needs(&self) -> usize {
        self.jobs.iter().map(|j| j.needs.len()).max().unwrap_or(0)
    }
}

/// The snapshot arguments every job passes: none when `IM_SNAPSHOT_ID` is empty.
pub(crate) const SNAPSHOT: &str = "${IM_SNAPSHOT_ID:+--snapshot-id \"$IM_SNAPSHOT_ID\"}";

/// `[a-z0-9-]` only, runs of anything else as one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

/// Shell-quotes one word when it needs it (shlex, as the process runner quotes).
pub fn shell_word(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| word.replace('\0', ""), std::borrow::Cow::into_owned)
}

struct Ids {
    used: HashSet<String>,
}

impl Ids {
    /// A job id from `parts`, made unique: two names that slug alike (`a.b` and `a-b`) get a
    /// short hash of the full name.
    fn make(&mut self, name: &str) -> String {
        let mut id = slug(name);
        if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
            id = format!("job-{id}");
        }
        if !self.used.insert(id.clone()) {
            let hash = Sha256::digest(name.as_bytes());
            id = format!("{id}-{:02x}{:02x}{:02x}", hash[0], hash[1], hash[2]);
            self.used.insert(id.clone());
        }
        id
    }
}

/// The job graph of `tags` (parents listed before children).
pub fn job_graph(tags: &[Tag], options: &Options) -> JobGraph {
    let program = if options.program.is_empty() {
        "image-manager"
    } else {
        options.program.as_str()
    };
    let mut ids = Ids {
        used: HashSet::with_capacity(tags.len() * 6),
    };
    // node → its build jobs: (platform, or "" when platforms are not split; job id).
    let mut builds: HashMap<&str, Vec<(&str, String)>> = HashMap::with_capacity(tags.len());
    let mut jobs = Vec::with_capacity(tags.len() * 6);
    let in_pipeline: BTreeSet<&str> = tags.iter().map(|t| t.node.as_str()).collect();
    let nodes = tags
        .iter()
        .map(|tag| NodeEntry {
            node: tag.node.clone(),
            platforms: tag.platforms.clone(),
            parents: tag
                .parents
                .iter()
                .filter(|p| in_pipeline.contains(p.as_str()))
                .cloned()
                .collect(),
            why: tag.why.clone(),
        })
        .collect();
    for tag in tags {
        let node = shell_word(&tag.node);
        let mut tag_builds = Vec::new();
        let legs: Vec<Option<&String>> = if options.platform_split {
            tag.platforms.iter().map(Some).collect()
        } else {
            vec![None]
        };
        for platform in legs {
            let name = match platform {
                Some(p) => format!("build {} {p}", tag.node),
                None => format!("build {}", tag.node),
            };
            let id = ids.make(&name);
            let needs = tag
                .parents
                .iter()
                .filter_map(|parent| builds.get(parent.as_str()))
                .flatten()
                .filter(|(leg, _)| platform.is_none_or(|p| p == leg))
                .map(|(_, id)| id.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let script = match platform {
                Some(p) => vec![format!(
                    "{program} build --push --platform-tags --platform {} {SNAPSHOT} {node}",
                    shell_word(p)
                )],
                None => vec![format!("{program} build --push {SNAPSHOT} {node}")],
            };
            let runners = platform
                .and_then(|p| options.runners.get(p))
                .cloned()
                .unwrap_or_default();
            builds
                .entry(tag.node.as_str())
                .or_default()
                .push((platform.map_or("", String::as_str), id.clone()));
            tag_builds.push(id.clone());
            jobs.push(Job {
                id,
                name,
                kind: JobKind::Build,
                node: tag.node.clone(),
                platform: platform.cloned(),
                needs,
                runners,
                script,
                default_branch_only: false,
            });
        }
        let mut done = tag_builds.clone();
        if options.platform_split {
            let name = format!("manifest {}", tag.node);
            let id = ids.make(&name);
            jobs.push(Job {
                id: id.clone(),
                name,
                kind: JobKind::Manifest,
                node: tag.node.clone(),
                platform: None,
                needs: tag_builds.clone(),
                runners: Vec::new(),
                script: vec![format!("{program} manifest {SNAPSHOT} {node}")],
                default_branch_only: false,
            });
            done = vec![id];
        }
        if let Some(config) = &tag.test_config {
            let mut tests = Vec::new();
            for platform in &tag.platforms {
                let name = format!("test {} {platform}", tag.node);
                let id = ids.make(&name);
                let image = format!("{}${{IM_SNAPSHOT_ID:+-$IM_SNAPSHOT_ID}}", tag.node);
                jobs.push(Job {
                    id: id.clone(),
                    name,
                    kind: JobKind::Test,
                    node: tag.node.clone(),
                    platform: Some(platform.clone()),
                    needs: done.clone(),
                    runners: options.runners.get(platform).cloned().unwrap_or_default(),
                    script: vec![
                        format!("{program} generate"),
                        format!(
                            "{program} test --config {} --image \"{image}\" --platform {}",
                            shell_word(config),
                            shell_word(platform)
                        ),
                    ],
                    default_branch_only: false,
                });
                tests.push(id);
            }
            done = tests;
        }
        let name = format!("promote {}", tag.node);
        let id = ids.make(&name);
        jobs.push(Job {
            id,
            name,
            kind: JobKind::Promote,
            node: tag.node.clone(),
            platform: None,
            needs: done,
            runners: Vec::new(),
            script: vec![format!(
                "{program} promote --snapshot-id \"$IM_SNAPSHOT_ID\" {node}"
            )],
            default_branch_only: true,
        });
    }
    if jobs.is_empty() {
        jobs.push(Job {
            id: "nothing-to-build".to_owned(),
            name: "nothing to build".to_owned(),
            kind: JobKind::Nothing,
            node: String::new(),
            platform: None,
            needs: Vec::new(),
            runners: Vec::new(),
            script: vec![
                "echo 'image-manager: no image tag needs a job in this pipeline'".to_owned(),
            ],
            default_branch_only: false,
        });
    }
    JobGraph { nodes, jobs }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tag on linux/amd64 and linux/arm64, with a test config when `test` (also for the
    /// tests of [`crate::levels`]).
    pub(crate) fn tag(node: &str, parents: &[&str], test: bool) -> Tag {
        Tag {
            node: node.into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            test_config: test.then(|| format!("dist/{}/test.yml", node.replace(':', "/"))),
            why: Vec::new(),
        }
    }

    #[test]
    fn a_build_job_needs_exactly_its_parents_builds_on_its_platform() {
        let graph = job_graph(
            &[tag("base:1", &[], false), tag("app:1.0", &["base:1"], true)],
            &Options {
                platform_split: true,
                ..Options::default()
            },
        );
        let job = |id: &str| {
            graph
                .jobs
                .iter()
                .find(|j| j.id == id)
                .unwrap_or_else(|| panic!("{id}: {graph:#?}"))
        };
        assert_eq!(
            job("build-app-1-0-linux-arm64").needs,
            ["build-base-1-linux-arm64"]
        );
        assert!(job("build-base-1-linux-amd64").needs.is_empty());
        assert_eq!(
            job("manifest-app-1-0").needs,
            ["build-app-1-0-linux-amd64", "build-app-1-0-linux-arm64"]
        );
        assert_eq!(job("test-app-1-0-linux-amd64").needs, ["manifest-app-1-0"]);
        assert_eq!(
            job("promote-app-1-0").needs,
            ["test-app-1-0-linux-amd64", "test-app-1-0-linux-arm64"]
        );
        assert_eq!(job("promote-base-1").needs, ["manifest-base-1"]);
        assert!(job("promote-base-1").default_branch_only);
    }

    #[test]
    fn unsplit_tags_build_every_platform_in_one_job() {
        let graph = job_graph(
            &[
                tag("base:1", &[], false),
                tag("app:1.0", &["base:1"], false),
            ],
            &Options::default(),
        );
        let ids: Vec<&str> = graph.jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "build-base-1",
                "promote-base-1",
                "build-app-1-0",
                "promote-app-1-0"
            ]
        );
        assert_eq!(graph.jobs[2].needs, ["build-base-1"]);
        assert_eq!(
            graph.jobs[2].script,
            [
                "image-manager build --push ${IM_SNAPSHOT_ID:+--snapshot-id \"$IM_SNAPSHOT_ID\"} app:1.0"
            ]
        );
    }

    #[test]
    fn a_parent_left_out_of_the_pipeline_is_not_needed() {
        let graph = job_graph(
            &[tag("app:1.0", &["base:1"], false)],
            &Options {
                platform_split: true,
                ..Options::default()
            },
        );
        assert!(
            graph
                .jobs
                .iter()
                .filter(|j| j.kind == JobKind::Build)
                .all(|j| j.needs.is_empty()),
            "{graph:#?}"
        );
        assert!(graph.nodes[0].parents.is_empty());
    }

    #[test]
    fn an_empty_pipeline_has_one_job_saying_so() {
        let graph = job_graph(&[], &Options::default());
        assert_eq!(graph.jobs.len(), 1);
        assert_eq!(graph.jobs[0].kind, JobKind::Nothing);
    }

    #[test]
    fn names_that_slug_alike_get_distinct_ids() {
        let mut ids = Ids {
            used: HashSet::new(),
        };
        let a = ids.make("build a.b");
        let b = ids.make("build a-b");
        assert_eq!(a, "build-a-b");
        assert_ne!(a, b);
        assert!(b.starts_with("build-a-b-"));
    }
}
