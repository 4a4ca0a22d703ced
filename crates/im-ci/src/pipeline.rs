//! Choosing the pipeline's shape and writing it: one job per node when the provider can hold
//! it, else the dynamic pipeline ([`crate::dynamic`]); what its plan job writes at pipeline
//! time; and the provider limit that no shape can meet, as an error saying which and what to
//! set.

use std::collections::BTreeMap;

use crate::dynamic::{GITLAB_CHILD_FILE, github_dynamic, gitlab_child, gitlab_dynamic};
use crate::graph::{JobGraph, Options, Tag, job_graph};
use crate::levels::{self, Layout, Matrices};
use crate::provider::{Provider, Settings, github, gitlab};

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One job per node while the provider can hold it, else dynamic.
    Auto,
    /// One job per node.
    Nodes,
    /// A small fixed file whose first job generates the jobs at pipeline time.
    Dynamic,
    /// What a dynamic GitLab pipeline's plan job writes: the child pipeline.
    Child,
    /// What a dynamic GitHub workflow's plan job prints: every matrix, as `$GITHUB_OUTPUT`.
    Matrices,
}

/// The biggest workflow file GitHub runs.
pub const GITHUB_MAX_WORKFLOW_BYTES: usize = 500 * 1000;
/// The most a GitHub job's outputs may hold together.
pub const GITHUB_MAX_OUTPUTS_BYTES: usize = 1024 * 1024;
/// The default of `ci.max_jobs`: GitLab.com's pipeline size on its free tier.
pub const DEFAULT_MAX_JOBS: usize = 500;
/// The default of `ci.matrix_jobs`: 4 x 256 legs per graph level, platform and kind.
pub const DEFAULT_MATRIX_JOBS: usize = 4;

/// Everything one generation needs.
pub struct Request<'a> {
    pub provider: Provider,
    pub shape: Shape,
    /// Every tag of the targets, parents first.
    pub all: &'a [Tag],
    /// The tags this pipeline builds (pruned), parents first; `all` when nothing is pruned.
    pub pipeline: &'a [Tag],
    pub options: &'a Options,
    pub settings: &'a Settings,
    pub max_jobs: usize,
    /// Matrix jobs per graph level, platform and kind in a dynamic GitHub workflow.
    pub matrix_jobs: usize,
    /// The `generate-ci` arguments the plan job repeats (targets and pruning flags).
    pub plan_args: &'a str,
    /// `--layout`: the layout the committed GitHub workflow was made for (matrices shape).
    pub layout: Option<&'a str>,
}

/// What was generated.
#[derive(Debug)]
pub struct Generated {
    pub text: String,
    /// The job graph of the nodes (also for a dynamic file, for `--format json`).
    pub graph: JobGraph,
    /// `nodes` or `dynamic` (what was written), `child` or `matrices`.
    pub shape: &'static str,
}

/// A provider limit no shape meets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Limit {
    pub message: String,
    pub help: String,
}

/// Generates `request`.
pub fn generate(request: &Request<'_>) -> Result<Generated, Limit> {
    let graph = job_graph(request.pipeline, request.options);
    match request.shape {
        Shape::Child => child(request, graph),
        Shape::Matrices => matrices(request, graph),
        Shape::Nodes | Shape::Auto | Shape::Dynamic => committed(request, graph),
    }
}

fn nodes_text(request: &Request<'_>, graph: &JobGraph) -> String {
    match request.provider {
        Provider::Gitlab => gitlab(graph, request.settings),
        Provider::Github => github(graph, request.settings),
    }
}

/// Why one job per node does not fit, if it does not.
fn nodes_limit(request: &Request<'_>, graph: &JobGraph, text: Option<&str>) -> Option<String> {
    let provider = request.provider;
    if graph.jobs.len() > request.max_jobs {
        return Some(format!(
            "{} jobs, more than `ci.max_jobs` ({})",
            graph.jobs.len(),
            request.max_jobs
        ));
    }
    if let Some(job) = graph
        .jobs
        .iter()
        .find(|job| job.needs.len() > provider.max_needs())
    {
        return Some(format!(
            "the job `{}` needs {} jobs; {} allows at most {}",
            job.name,
            job.needs.len(),
            provider.as_str(),
            provider.max_needs()
        ));
    }
    if provider == Provider::Github
        && let Some(text) = text
        && text.len() > GITHUB_MAX_WORKFLOW_BYTES
    {
        return Some(format!(
            "the workflow is {} bytes; GitHub runs workflows of at most {GITHUB_MAX_WORKFLOW_BYTES}",
            text.len()
        ));
    }
    None
}

fn committed(request: &Request<'_>, graph: JobGraph) -> Result<Generated, Limit> {
    if request.shape != Shape::Dynamic {
        // Counting comes first: a graph far past the limits is never written out whole.
        let text = match nodes_limit(request, &graph, None) {
            None => nodes_text(request, &graph),
            Some(_) => String::new(),
        };
        match nodes_limit(request, &graph, (!text.is_empty()).then_some(text.as_str())) {
            None => {
                return Ok(Generated {
                    text,
                    graph,
                    shape: "nodes",
                });
            }
            Some(why) if request.shape == Shape::Nodes => {
                return Err(Limit {
                    message: format!("one job per node does not fit {}: {why}", request.provider.as_str()),
                    help: "leave `ci.shape` unset (or `dynamic`) to generate the jobs at pipeline time, set `ci: {platform_split: false}` for one job per image tag, or generate the pipeline for fewer targets".to_owned(),
                });
            }
            Some(_) => {}
        }
    }
    let text = match request.provider {
        Provider::Gitlab => gitlab_dynamic(
            request.settings,
            &format!(
                "image-manager generate-ci --provider gitlab --shape child {} --output {GITLAB_CHILD_FILE}",
                request.plan_args
            ),
        ),
        Provider::Github => {
            let layout = github_layout(request);
            let text = github_dynamic(
                &layout,
                request.options,
                request.settings,
                &format!(
                    "image-manager generate-ci --provider github --shape matrices --layout {} {} --output -",
                    layout.id(),
                    request.plan_args
                ),
            );
            if text.len() > GITHUB_MAX_WORKFLOW_BYTES {
                return Err(Limit {
                    message: format!(
                        "even as one matrix job per graph level, the workflow is {} bytes; GitHub runs workflows of at most {GITHUB_MAX_WORKFLOW_BYTES}",
                        text.len()
                    ),
                    help: "split the images over several workflows (generate-ci TARGETS --output .github/workflows/<name>.yml for each part)".to_owned(),
                });
            }
            text
        }
    };
    Ok(Generated {
        text,
        graph,
        shape: "dynamic",
    })
}

/// The committed workflow's matrices: every leg of the whole graph.
fn github_layout(request: &Request<'_>) -> Layout {
    let levels = levels::levels(request.all);
    Layout::of(
        &levels::legs(request.all, request.options, &levels),
        request.matrix_jobs,
    )
}

fn child(request: &Request<'_>, graph: JobGraph) -> Result<Generated, Limit> {
    if graph.jobs.len() > request.max_jobs {
        return Err(Limit {
            message: format!(
                "this pipeline has {} jobs, more than `ci.max_jobs` ({})",
                graph.jobs.len(),
                request.max_jobs
            ),
            help: "raise `ci.max_jobs` if your GitLab allows bigger pipelines (its pipeline size limit), set `ci: {platform_split: false}` for one job per image tag, or generate for fewer targets".to_owned(),
        });
    }
    let ordered = graph.widest_needs() > request.provider.max_needs();
    let levels: Option<BTreeMap<String, usize>> = ordered.then(|| levels::levels(request.pipeline));
    let text = gitlab_child(&graph, request.settings, levels.as_ref());
    Ok(Generated {
        text,
        graph,
        shape: "child",
    })
}

fn matrices(request: &Request<'_>, graph: JobGraph) -> Result<Generated, Limit> {
    let layout = github_layout(request);
    if let Some(expected) = request.layout
        && expected != layout.id()
    {
        return Err(stale(&format!(
            "it was generated for matrix layout {expected}, and the graph now makes {} (its depth, platforms or ci.matrix_jobs changed)",
            layout.id()
        )));
    }
    let levels = levels::levels(request.all);
    let filled = Matrices::fill(
        &layout,
        &levels::legs(request.pipeline, request.options, &levels),
    )
    .map_err(|error| Limit {
        message: format!("this pipeline does not fit the workflow: {error}"),
        help: "set `ci.matrix_jobs` higher (matrix jobs per graph level and platform; default 4) and regenerate the workflow, or build fewer images per pipeline".to_owned(),
    })?;
    let text = filled.outputs();
    if text.len() > GITHUB_MAX_OUTPUTS_BYTES {
        return Err(Limit {
            message: format!(
                "this pipeline's matrices are {} bytes; a GitHub job's outputs hold at most {GITHUB_MAX_OUTPUTS_BYTES}",
                text.len()
            ),
            help: "build fewer images per pipeline (a pipeline with --affected-since builds what changed), or set `ci: {platform_split: false}` for one leg per image tag".to_owned(),
        });
    }
    Ok(Generated {
        text,
        graph,
        shape: "matrices",
    })
}

fn stale(why: &str) -> Limit {
    Limit {
        message: format!("the committed workflow does not match the images: {why}"),
        help: "run `image-manager generate-ci --provider github` and commit the workflow (`generate-ci --check` in a lint job catches this)".to_owned(),
    }
}
