//! Pipelines for graphs too large to commit one job per node. The committed file is small
//! and fixed; its first job (`plan`) runs `generate-ci` at pipeline time — pruned to what
//! changed since the merge request's base and to what the registry lacks — and hands the
//! jobs on:
//!
//! - **GitLab**: as a dynamic child pipeline (`trigger: include: artifact:`), one job per
//!   node with exact `needs` ([`gitlab_child`]); a child whose jobs would need more than
//!   GitLab's 50 orders them by graph level with one stage per level instead.
//! - **GitHub Actions**: a workflow cannot add jobs at run time, so it has one matrix job per
//!   graph level, platform and kind, sized from the whole graph ([`crate::levels::Layout`]);
//!   the plan job's outputs fill each matrix (`fromJSON`), and a job whose matrix is empty is
//!   skipped (the empty-matrix guard) without skipping the levels after it.

use std::collections::BTreeMap;

use crate::graph::{JobGraph, JobKind, Options, SNAPSHOT};
use crate::levels::{Group, Layout};
use crate::provider::{
    GITHUB_DEFAULT_BRANCH, Settings, comment, emulates, github_runs_on, github_steps,
    github_steps_on, github_workflow, gitlab_job, job_names,
};
use crate::yaml::{Map, Yaml};

/// Where the GitLab plan job writes the child pipeline.
pub const GITLAB_CHILD_FILE: &str = "images-child.gitlab-ci.yml";

/// The `.image-manager` template of a GitLab file: the job image and install commands, and
/// (in the committed file) the rules that set the snapshot id and whether this pipeline
/// releases.
fn gitlab_template(settings: &Settings, rules: bool) -> Yaml<'_> {
    let mut template = Map::new();
    if let Some(image) = &settings.image {
        template.push("image", Yaml::str(image.clone()));
    }
    if rules {
        template.push("rules", gitlab_release_rules());
    }
    if !settings.install.is_empty() {
        template.push("before_script", Yaml::strs(settings.install.clone()));
    }
    template.build()
}

/// The snapshot id (`mr-<iid>` in merge requests, `ci-<pipeline>` on branches) and
/// `IM_RELEASE=1` on the default branch, for the child pipeline to inherit.
fn gitlab_release_rules() -> Yaml<'static> {
    let rule = |condition: &'static str, snapshot: &'static str, release: &'static str| {
        crate::provider::gitlab_rule_with(condition, snapshot, Some(release))
    };
    Yaml::List(vec![
        rule("$CI_MERGE_REQUEST_IID", "mr-$CI_MERGE_REQUEST_IID", "0"),
        rule(
            "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH",
            "ci-$CI_PIPELINE_ID",
            "1",
        ),
        rule("$CI_COMMIT_BRANCH", "ci-$CI_PIPELINE_ID", "0"),
    ])
}

/// The committed GitLab file of a dynamic pipeline: the plan job runs `plan_command`
/// (which writes [`GITLAB_CHILD_FILE`]) and a trigger job runs what it wrote.
pub fn gitlab_dynamic(settings: &Settings, plan_command: &str) -> String {
    let plan = "image-manager plan";
    let doc = Map::new()
        .with(".image-manager", gitlab_template(settings, true))
        .with(
            plan,
            Map::new()
                .with("extends", Yaml::str(".image-manager"))
                .with("stage", Yaml::str("build"))
                // The merge request's base commit must be there to compare with.
                .with(
                    "variables",
                    Map::new().with("GIT_DEPTH", Yaml::str("0")).build(),
                )
                .with("script", Yaml::strs([plan_command]))
                .with(
                    "artifacts",
                    Map::new()
                        .with("paths", Yaml::strs([GITLAB_CHILD_FILE]))
                        .with("expire_in", Yaml::str("1 week"))
                        .build(),
                )
                .build(),
        )
        .with(
            "image-manager pipeline",
            Map::new()
                .with("stage", Yaml::str("build"))
                .with("rules", gitlab_release_rules())
                .with("needs", Yaml::strs([plan]))
                .with(
                    "trigger",
                    Map::new()
                        .with(
                            "include",
                            Yaml::List(vec![
                                Map::new()
                                    .with("artifact", Yaml::str(GITLAB_CHILD_FILE))
                                    .with("job", Yaml::str(plan))
                                    .build(),
                            ]),
                        )
                        .with("strategy", Yaml::str("depend"))
                        .build(),
                )
                .build(),
        );
    comment(&settings.header) + &doc.build().render()
}

/// The child pipeline the plan job writes: the jobs of `graph`, under the snapshot id and
/// release flag the parent pipeline passed down. With `levels` (each node's graph level),
/// jobs are ordered by one stage per level instead of `needs`.
pub fn gitlab_child(
    graph: &JobGraph,
    settings: &Settings,
    levels: Option<&BTreeMap<String, usize>>,
) -> String {
    let mut doc = Map::new();
    if let Some(levels) = levels {
        let deepest = levels.values().copied().max().unwrap_or(0);
        let mut stages: Vec<String> = (0..=deepest).map(|l| format!("build-{l}")).collect();
        stages.extend(["manifest", "test", "promote"].map(str::to_owned));
        doc.push("stages", Yaml::strs(stages));
    }
    doc.push(".image-manager", gitlab_template(settings, false));
    let names = job_names(graph);
    let release = Map::new()
        .with("if", Yaml::str("$IM_RELEASE == \"1\""))
        .build();
    for job in &graph.jobs {
        let stage = levels.map(|levels| match job.kind {
            JobKind::Build | JobKind::Nothing => {
                format!("build-{}", levels.get(&job.node).copied().unwrap_or(0))
            }
            JobKind::Manifest => "manifest".to_owned(),
            JobKind::Test => "test".to_owned(),
            JobKind::Promote => "promote".to_owned(),
        });
        doc.push(
            job.name.clone(),
            gitlab_job(job, &names, &release, stage).build(),
        );
    }
    comment(&settings.header) + &doc.build().render()
}

/// The commands a matrix leg of `kind` runs; the leg's values come in `$NODE`, `$PLATFORM`
/// and `$TEST_CONFIG`.
fn leg_script(kind: JobKind, options: &Options) -> String {
    let program = if options.program.is_empty() {
        "image-manager"
    } else {
        options.program.as_str()
    };
    match kind {
        JobKind::Build if options.platform_split => format!(
            "{program} build --push --platform-tags --platform \"$PLATFORM\" {SNAPSHOT} \"$NODE\""
        ),
        JobKind::Build => format!("{program} build --push {SNAPSHOT} \"$NODE\""),
        JobKind::Manifest => format!("{program} manifest {SNAPSHOT} \"$NODE\""),
        JobKind::Test => format!(
            "{program} generate\n{program} test --config \"$TEST_CONFIG\" --image \"$NODE${{IM_SNAPSHOT_ID:+-$IM_SNAPSHOT_ID}}\" --platform \"$PLATFORM\""
        ),
        JobKind::Promote => {
            format!("{program} promote --snapshot-id \"$IM_SNAPSHOT_ID\" \"$NODE\"")
        }
        JobKind::Nothing => "true".to_owned(),
    }
}

/// The committed GitHub workflow of a dynamic pipeline: the plan job runs `plan_command`
/// (which prints every matrix as a `$GITHUB_OUTPUT` line), then one matrix job per group
/// and chunk of `layout`.
pub fn github_dynamic(
    layout: &Layout,
    options: &Options,
    settings: &Settings,
    plan_command: &str,
) -> String {
    let ids = layout.job_ids();
    let mut outputs = Map::new();
    for id in &ids {
        outputs.push(
            id.clone(),
            Yaml::str(format!("${{{{ steps.plan.outputs.{id} }}}}")),
        );
    }
    let mut plan = Map::new()
        .with("name", Yaml::str("plan"))
        .with("runs-on", github_runs_on(&[]));
    if let Some(image) = &settings.image {
        plan.push("container", Yaml::str(image.clone()));
    }
    plan.push("outputs", outputs.build());
    let mut steps = github_steps(
        settings,
        // The pull request's base commit must be there to compare with.
        Some(
            Map::new()
                .with("fetch-depth", Yaml::Raw("0".into()))
                .build(),
        ),
        "plan",
        format!("{plan_command} >> \"$GITHUB_OUTPUT\""),
    );
    if let Some(Yaml::Map(last)) = steps.last_mut() {
        last.insert(0, ("id".into(), Yaml::str("plan")));
        last.push((
            "env".into(),
            Map::new()
                .with(
                    "BASE_SHA",
                    Yaml::str("${{ github.event.pull_request.base.sha }}"),
                )
                .build(),
        ));
    }
    plan.push("steps", Yaml::List(steps));
    let mut jobs = Map::new().with("plan", plan.build());
    for (group, &chunks) in &layout.groups {
        for chunk in 0..chunks {
            jobs.push(
                group.id(chunk),
                github_matrix_job(layout, group, chunk, options, settings),
            );
        }
    }
    github_workflow(jobs, settings)
}

fn github_matrix_job<'a>(
    layout: &Layout,
    group: &Group,
    chunk: usize,
    options: &Options,
    settings: &'a Settings,
) -> Yaml<'a> {
    let id = group.id(chunk);
    let mut needs = vec!["plan".to_owned()];
    needs.extend(layout.needs(group));
    // A job runs when its matrix has legs and nothing before it failed, even when the
    // jobs it needs were skipped for having none.
    let mut condition = format!("!cancelled() && !failure() && needs.plan.outputs.{id} != '[]'");
    if group.kind == JobKind::Promote {
        condition = format!("{condition} && {GITHUB_DEFAULT_BRANCH}");
    }
    let runners = group
        .platform
        .as_ref()
        .and_then(|p| options.runners.get(p))
        .cloned()
        .unwrap_or_default();
    let mut entry = Map::new()
        .with("name", Yaml::str(group.name(chunk)))
        .with("needs", Yaml::strs(needs))
        .with("if", Yaml::str(format!("${{{{ {condition} }}}}")))
        .with(
            "runs-on",
            if runners.is_empty() {
                Yaml::str("ubuntu-latest")
            } else {
                Yaml::strs(runners.clone())
            },
        );
    if let Some(image) = &settings.image {
        entry.push("container", Yaml::str(image.clone()));
    }
    entry.push(
        "strategy",
        Map::new()
            .with("fail-fast", Yaml::Raw("false".into()))
            .with(
                "matrix",
                Map::new()
                    .with(
                        "include",
                        Yaml::str(format!("${{{{ fromJSON(needs.plan.outputs.{id}) }}}}")),
                    )
                    .build(),
            )
            .build(),
    );
    let mut env = Map::new().with("NODE", Yaml::str("${{ matrix.node }}"));
    if group.platform.is_some() {
        env.push("PLATFORM", Yaml::str("${{ matrix.platform }}"));
    }
    if group.kind == JobKind::Test {
        env.push("TEST_CONFIG", Yaml::str("${{ matrix.test_config }}"));
    }
    entry.push("env", env.build());
    entry.push(
        "steps",
        Yaml::List(github_steps_on(
            settings,
            None,
            emulates(group.kind, group.platform.as_deref(), &runners),
            group.kind.as_str(),
            leg_script(group.kind, options),
        )),
    );
    entry.build()
}
