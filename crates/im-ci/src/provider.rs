//! The job graph as a GitLab CI file (to `include:`) or a GitHub Actions workflow.

use std::collections::HashMap;

use crate::graph::{Job, JobGraph, JobKind};
use crate::yaml::{Document, Map, Yaml};

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

/// Job id → GitLab job name.
pub(crate) type Names<'a> = HashMap<&'a str, &'a str, foldhash::fast::RandomState>;

/// The bytes a job takes in the file, about: where the buffer starts.
const BYTES_PER_JOB: usize = 512;

/// The GitLab CI file.
pub fn gitlab(graph: &JobGraph, settings: &Settings) -> String {
    let mut doc = Document::new(&settings.header, graph.jobs.len(), BYTES_PER_JOB);
    let mut template = Map::new();
    if let Some(image) = &settings.image {
        template.push("image", Yaml::str(image));
    }
    template.push(
        "rules",
        Yaml::List(vec![
            gitlab_rule("$CI_MERGE_REQUEST_IID", "mr-$CI_MERGE_REQUEST_IID"),
            gitlab_rule("$CI_COMMIT_BRANCH", "ci-$CI_PIPELINE_ID"),
        ]),
    );
    if !settings.install.is_empty() {
        template.push("before_script", Yaml::strs(&settings.install));
    }
    doc.entry(0, ".image-manager", &template.build());
    let names = job_names(graph);
    let release = gitlab_rule(
        "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_MERGE_REQUEST_IID == null",
        "ci-$CI_PIPELINE_ID",
    );
    doc.entries(0, &graph.jobs, |job| {
        (&job.name, gitlab_job(job, &names, &release, None).build())
    });
    doc.finish()
}

/// Job id → job name (GitLab names jobs by their names), with a fast hash: the keys are our
/// own job ids, one per job.
pub(crate) fn job_names(graph: &JobGraph) -> Names<'_> {
    graph
        .jobs
        .iter()
        .map(|j| (j.id.as_str(), j.name.as_str()))
        .collect()
}

/// One GitLab job: `release` is the rule of jobs that run only on the default branch;
/// `stage` replaces `needs` with stage ordering (see [`crate::dynamic`]).
pub(crate) fn gitlab_job<'a>(
    job: &'a Job,
    names: &Names<'a>,
    release: &Yaml<'a>,
    stage: Option<String>,
) -> Map<'a> {
    let ordered = stage.is_some();
    let stage: std::borrow::Cow<'a, str> = match stage {
        Some(stage) => stage.into(),
        None => match job.kind {
            JobKind::Build | JobKind::Manifest | JobKind::Nothing => "build",
            JobKind::Test => "test",
            JobKind::Promote => "deploy",
        }
        .into(),
    };
    let mut entry = Map::new()
        .with("extends", Yaml::str(".image-manager"))
        .with("stage", Yaml::str(stage));
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
        entry.push("tags", Yaml::strs(&job.runners));
    }
    entry.push("script", Yaml::strs(&job.script));
    entry
}

/// A GitLab rule: when `condition` holds, jobs run under the snapshot id `snapshot`.
pub(crate) fn gitlab_rule<'a>(condition: &'a str, snapshot: &'a str) -> Yaml<'a> {
    gitlab_rule_with(condition, snapshot, None)
}

/// [`gitlab_rule`], also setting `IM_RELEASE` when `release` is given.
pub(crate) fn gitlab_rule_with<'a>(
    condition: &'a str,
    snapshot: &'a str,
    release: Option<&'a str>,
) -> Yaml<'a> {
    let mut variables = Map::new().with("IM_SNAPSHOT_ID", Yaml::str(snapshot));
    if let Some(release) = release {
        variables = variables.with("IM_RELEASE", Yaml::str(release));
    }
    Map::new()
        .with("if", Yaml::str(condition))
        .with("variables", variables.build())
        .build()
}

/// The GitHub Actions workflow.
pub fn github(graph: &JobGraph, settings: &Settings) -> String {
    let mut doc = Document::new(&settings.header, graph.jobs.len(), BYTES_PER_JOB);
    doc.entry(0, "name", &Yaml::str("images"));
    doc.entry(
        0,
        "on",
        &Map::new()
            .with("push", Map::new().build())
            .with("pull_request", Map::new().build())
            .build(),
    );
    doc.entry(
        0,
        "env",
        &Map::new()
            .with("IM_SNAPSHOT_ID", Yaml::str(GITHUB_SNAPSHOT))
            .build(),
    );
    doc.open(0, "jobs", graph.jobs.is_empty());
    doc.entries(1, &graph.jobs, |job| (&job.id, github_job(job, settings)));
    doc.finish()
}

fn github_job<'a>(job: &'a Job, settings: &'a Settings) -> Yaml<'a> {
    let mut entry = Map::new().with("name", Yaml::str(&job.name));
    if job.default_branch_only {
        entry.push("if", Yaml::str(GITHUB_DEFAULT_BRANCH));
    }
    entry.push("runs-on", github_runs_on(&job.runners));
    if !job.needs.is_empty() {
        entry.push("needs", Yaml::strs(&job.needs));
    }
    if let Some(image) = &settings.image {
        entry.push("container", Yaml::str(image));
    }
    entry.push(
        "steps",
        Yaml::List(github_steps_on(
            settings,
            None,
            emulates(job.kind, job.platform.as_deref(), &job.runners),
            job.kind.as_str(),
            job.script.join("\n"),
        )),
    );
    entry.build()
}

/// The `if:` of jobs that run only on pushes to the default branch.
pub(crate) const GITHUB_DEFAULT_BRANCH: &str = "github.event_name == 'push' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)";

/// The snapshot id every job of a workflow works under.
const GITHUB_SNAPSHOT: &str = "${{ github.event_name == 'pull_request' && format('pr-{0}', github.event.number) || format('ci-{0}', github.run_id) }}";

/// `header` as `#` comment lines.
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

/// A workflow of `jobs` (a whole tree: for the dynamic workflow's few jobs), with the
/// snapshot id every job works under.
pub(crate) fn github_workflow(jobs: Map<'_>, settings: &Settings) -> String {
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
                .with("IM_SNAPSHOT_ID", Yaml::str(GITHUB_SNAPSHOT))
                .build(),
        )
        .with("jobs", jobs.build());
    comment(&settings.header) + &doc.build().render()
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
pub(crate) fn github_runs_on(runners: &[String]) -> Yaml<'_> {
    if runners.is_empty() {
        Yaml::str("ubuntu-latest")
    } else {
        Yaml::strs(runners)
    }
}

/// Checkout (`checkout` holds its `with:`), the install commands, then `script` as the step
/// `name`.
pub(crate) fn github_steps<'a>(
    settings: &'a Settings,
    checkout: Option<Yaml<'a>>,
    name: &'a str,
    script: impl Into<std::borrow::Cow<'a, str>>,
) -> Vec<Yaml<'a>> {
    github_steps_on(settings, checkout, false, name, script)
}

/// [`github_steps`], with qemu registered first when `emulate` (a foreign platform built or
/// tested on GitHub's hosted amd64 runner).
pub(crate) fn github_steps_on<'a>(
    settings: &'a Settings,
    checkout: Option<Yaml<'a>>,
    emulate: bool,
    name: &'a str,
    script: impl Into<std::borrow::Cow<'a, str>>,
) -> Vec<Yaml<'a>> {
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
