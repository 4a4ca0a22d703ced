//! The job graph as a GitLab CI file (to `include:`) or a GitHub Actions workflow.

use crate::graph::{Job, JobGraph, JobKind};
use crate::yaml::{Map, Yaml};

/// A CI system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Gitlab,
    Github,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gitlab => "gitlab",
            Self::Github => "github",
        }
    }

    /// Where the file goes by default, relative to the project.
    pub fn default_output(self) -> &'static str {
        match self {
            Self::Gitlab => "ci/images.gitlab-ci.yml",
            Self::Github => ".github/workflows/images.yml",
        }
    }

    /// The most `needs` one job may have.
    pub fn max_needs(self) -> usize {
        match self {
            Self::Gitlab => 50,
            // No documented cap on `needs`; a workflow holds at most 256 jobs per matrix, and
            // this keeps one job's list readable.
            Self::Github => 256,
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gitlab" => Ok(Self::Gitlab),
            "github" => Ok(Self::Github),
            other => Err(format!(
                "unknown CI provider `{other}`: use gitlab or github"
            )),
        }
    }
}

/// What the generated file needs besides the jobs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// A container image with image-manager and a builder, for container-based runners.
    pub image: Option<String>,
    /// Commands each job runs before its own (installing image-manager and a builder).
    pub install: Vec<String>,
    /// The first line(s): what generated the file and how to regenerate it.
    pub header: String,
}

pub(crate) fn comment(header: &str) -> String {
    header
        .lines()
        .map(|line| {
            if line.is_empty() {
                "#\n".to_owned()
            } else {
                format!("# {line}\n")
            }
        })
        .collect()
}

/// The GitLab CI file.
pub fn gitlab(graph: &JobGraph, settings: &Settings) -> String {
    let mut doc = Map::new();
    let mut template = Map::new();
    if let Some(image) = &settings.image {
        template.push("image", Yaml::str(image.clone()));
    }
    template.push(
        "rules",
        Yaml::List(vec![
            gitlab_rule("$CI_MERGE_REQUEST_IID", "mr-$CI_MERGE_REQUEST_IID"),
            gitlab_rule("$CI_COMMIT_BRANCH", "ci-$CI_PIPELINE_ID"),
        ]),
    );
    if !settings.install.is_empty() {
        template.push("before_script", Yaml::strs(settings.install.clone()));
    }
    doc.push(".image-manager", template.build());
    let names = job_names(graph);
    let release = gitlab_rule(
        "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_MERGE_REQUEST_IID == null",
        "ci-$CI_PIPELINE_ID",
    );
    for job in &graph.jobs {
        doc.push(
            job.name.clone(),
            gitlab_job(job, &names, &release, None).build(),
        );
    }
    comment(&settings.header) + &doc.build().render()
}

/// Job id → job name (GitLab names jobs by their names).
pub(crate) fn job_names(graph: &JobGraph) -> std::collections::HashMap<&str, &str> {
    graph
        .jobs
        .iter()
        .map(|j| (j.id.as_str(), j.name.as_str()))
        .collect()
}

/// One GitLab job: `release` is the rule of jobs that run only on the default branch;
/// `stage` replaces `needs` with stage ordering (see [`crate::dynamic`]).
pub(crate) fn gitlab_job(
    job: &Job,
    names: &std::collections::HashMap<&str, &str>,
    release: &Yaml,
    stage: Option<String>,
) -> Map {
    let ordered = stage.is_some();
    let mut entry = Map::new()
        .with("extends", Yaml::str(".image-manager"))
        .with(
            "stage",
            Yaml::str(stage.unwrap_or_else(|| {
                match job.kind {
                    JobKind::Build | JobKind::Manifest | JobKind::Nothing => "build",
                    JobKind::Test => "test",
                    JobKind::Promote => "deploy",
                }
                .to_owned()
            })),
        );
    if job.default_branch_only {
        entry.push("rules", Yaml::List(vec![release.clone()]));
    }
    if !ordered {
        entry.push(
            "needs",
            Yaml::strs(job.needs.iter().map(|id| names[id.as_str()])),
        );
    }
    if !job.runners.is_empty() {
        entry.push("tags", Yaml::strs(job.runners.clone()));
    }
    entry.push("script", Yaml::strs(job.script.clone()));
    entry
}

/// A GitLab rule: when `condition` holds, jobs run under the snapshot id `snapshot`.
pub(crate) fn gitlab_rule(condition: &str, snapshot: &str) -> Yaml {
    Map::new()
        .with("if", Yaml::str(condition))
        .with(
            "variables",
            Map::new()
                .with("IM_SNAPSHOT_ID", Yaml::str(snapshot))
                .build(),
        )
        .build()
}

/// The GitHub Actions workflow.
pub fn github(graph: &JobGraph, settings: &Settings) -> String {
    let mut jobs = Map::new();
    for job in &graph.jobs {
        jobs.push(job.id.clone(), github_job(job, settings));
    }
    github_workflow(jobs, settings)
}

/// The `if:` of jobs that run only on pushes to the default branch.
pub(crate) const GITHUB_DEFAULT_BRANCH: &str = "github.event_name == 'push' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)";

/// A workflow of `jobs`, with the snapshot id every job works under.
pub(crate) fn github_workflow(jobs: Map, settings: &Settings) -> String {
    let doc = Map::new()
        .with("name", Yaml::str("images"))
        .with(
            "on",
            Map::new()
                .with("push", Map::new().build())
                .with("pull_request", Map::new().build())
                .build(),
        )
        .with(
            "env",
            Map::new()
                .with(
                    "IM_SNAPSHOT_ID",
                    Yaml::str(
                        "${{ github.event_name == 'pull_request' && format('pr-{0}', github.event.number) || format('ci-{0}', github.run_id) }}",
                    ),
                )
                .build(),
        )
        .with("jobs", jobs.build());
    comment(&settings.header) + &doc.build().render()
}

fn github_job(job: &Job, settings: &Settings) -> Yaml {
    let mut entry = Map::new().with("name", Yaml::str(job.name.clone()));
    if job.default_branch_only {
        entry.push("if", Yaml::str(GITHUB_DEFAULT_BRANCH));
    }
    entry.push("runs-on", github_runs_on(&job.runners));
    if !job.needs.is_empty() {
        entry.push("needs", Yaml::strs(job.needs.clone()));
    }
    if let Some(image) = &settings.image {
        entry.push("container", Yaml::str(image.clone()));
    }
    entry.push(
        "steps",
        Yaml::List(github_steps_on(
            settings,
            None,
            emulates(job.kind, job.platform.as_deref(), &job.runners),
            job.kind.as_str(),
            &job.script.join("\n"),
        )),
    );
    entry.build()
}

/// Whether a job runs foreign binaries on the default (amd64) runner: a build or test job for
/// a platform other than amd64 with no runners of its own, or a build of every platform.
pub(crate) fn emulates(kind: JobKind, platform: Option<&str>, runners: &[String]) -> bool {
    match kind {
        JobKind::Build | JobKind::Test if runners.is_empty() => {
            platform.is_none_or(|p| !p.starts_with("linux/amd64"))
        }
        _ => false,
    }
}

/// `runs-on:` for runner labels (none: GitHub's hosted Linux runner).
pub(crate) fn github_runs_on(runners: &[String]) -> Yaml {
    if runners.is_empty() {
        Yaml::str("ubuntu-latest")
    } else {
        Yaml::strs(runners.iter().cloned())
    }
}

/// Checkout (`checkout` holds its `with:`), the install commands, then `script` as the step
/// `name`.
pub(crate) fn github_steps(
    settings: &Settings,
    checkout: Option<Yaml>,
    name: &str,
    script: &str,
) -> Vec<Yaml> {
    github_steps_on(settings, checkout, false, name, script)
}

/// [`github_steps`], with qemu registered first when `emulate` (a foreign platform built or
/// tested on GitHub's hosted amd64 runner).
pub(crate) fn github_steps_on(
    settings: &Settings,
    checkout: Option<Yaml>,
    emulate: bool,
    name: &str,
    script: &str,
) -> Vec<Yaml> {
    let mut first = Map::new().with("uses", Yaml::str("actions/checkout@v5"));
    if let Some(with) = checkout {
        first.push("with", with);
    }
    let mut steps = vec![first.build()];
    if emulate {
        steps.push(
            Map::new()
                .with("name", Yaml::str("register qemu for foreign platforms"))
                .with("uses", Yaml::str("docker/setup-qemu-action@v4"))
                .build(),
        );
    }
    if !settings.install.is_empty() {
        steps.push(
            Map::new()
                .with("name", Yaml::str("install image-manager"))
                .with("run", Yaml::str(settings.install.join("\n")))
                .build(),
        );
    }
    steps.push(
        Map::new()
            .with("name", Yaml::str(name))
            .with("run", Yaml::str(script))
            .build(),
    );
    steps
}
