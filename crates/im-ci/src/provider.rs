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
type Names<'a> = HashMap<&'a str, &'a str, foldhash::fast::RandomState>;

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
    // A fast hash: the keys are our own job ids, and there are one per job.
    let names: Names<'_> = graph
        .jobs
        .iter()
        .map(|j| (j.id.as_str(), j.name.as_str()))
        .collect();
    doc.entries(0, &graph.jobs, |job| (&job.name, gitlab_job(job, &names)));
    doc.finish()
}

fn gitlab_job<'a>(job: &'a Job, names: &Names<'a>) -> Yaml<'a> {
    let mut entry = Map::new()
        .with("extends", Yaml::str(".image-manager"))
        .with(
            "stage",
            Yaml::str(match job.kind {
                JobKind::Build | JobKind::Manifest => "build",
                JobKind::Test => "test",
                JobKind::Promote => "deploy",
            }),
        );
    if job.default_branch_only {
        entry.push(
            "rules",
            Yaml::List(vec![gitlab_rule(
                "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_MERGE_REQUEST_IID == null",
                "ci-$CI_PIPELINE_ID",
            )]),
        );
    }
    entry.push(
        "needs",
        Yaml::strs(job.needs.iter().map(|id| names[id.as_str()])),
    );
    if !job.runners.is_empty() {
        entry.push("tags", Yaml::strs(&job.runners));
    }
    entry.push("script", Yaml::strs(&job.script));
    entry.build()
}

/// A GitLab rule: when `condition` holds, jobs run under the snapshot id `snapshot`.
fn gitlab_rule<'a>(condition: &'a str, snapshot: &'a str) -> Yaml<'a> {
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
            .with(
                "IM_SNAPSHOT_ID",
                Yaml::str(
                    "${{ github.event_name == 'pull_request' && format('pr-{0}', github.event.number) || format('ci-{0}', github.run_id) }}",
                ),
            )
            .build(),
    );
    doc.open(0, "jobs", graph.jobs.is_empty());
    doc.entries(1, &graph.jobs, |job| (&job.id, github_job(job, settings)));
    doc.finish()
}

fn github_job<'a>(job: &'a Job, settings: &'a Settings) -> Yaml<'a> {
    let mut entry = Map::new().with("name", Yaml::str(&job.name));
    if job.default_branch_only {
        entry.push(
            "if",
            Yaml::str(
                "github.event_name == 'push' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)",
            ),
        );
    }
    entry.push(
        "runs-on",
        if job.runners.is_empty() {
            Yaml::str("ubuntu-latest")
        } else {
            Yaml::strs(&job.runners)
        },
    );
    if !job.needs.is_empty() {
        entry.push("needs", Yaml::strs(&job.needs));
    }
    if let Some(image) = &settings.image {
        entry.push("container", Yaml::str(image));
    }
    let mut steps = vec![
        Map::new()
            .with("uses", Yaml::str("actions/checkout@v5"))
            .build(),
    ];
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
            .with("name", Yaml::str(job.kind.as_str()))
            .with("run", Yaml::str(job.script.join("\n")))
            .build(),
    );
    entry.push("steps", Yaml::List(steps));
    entry.build()
}
