//! Running a plan's builds: parents before children, independent nodes in parallel, each
//! finished node recorded in the ledger at once (so an interrupted run keeps what it built),
//! then one multi-platform OCI layout per image tag whose platforms all stand.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use im_build::{Builder, Dag, Event, NodeOutcome, ScheduleOptions, StepCache};
use im_diag::{Diagnostic, Diagnostics};
use im_plan::{Action, Ledger, Plan, PlanNode};
use serde::Serialize;

use crate::bases::Bases;
use crate::context::{ExecContext, error_lines};
use crate::prepare::Prepared;
use crate::registry::Session;
use crate::steps::{Provenance, Steps};
use im_diag::error_chain;

/// Where the kernel lists the interpreters for foreign binaries.
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// How one node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeResult {
    Built,
    UpToDate,
    Failed,
    Skipped,
    Cancelled,
}

impl NodeResult {
    pub const ALL: [NodeResult; 5] = [
        Self::Built,
        Self::UpToDate,
        Self::Failed,
        Self::Skipped,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Built => "built",
            Self::UpToDate => "up to date",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Built or up to date: its archive stands.
    pub fn stands(self) -> bool {
        matches!(self, Self::Built | Self::UpToDate)
    }
}

/// One plan node after the run.
#[derive(Debug, Clone)]
pub struct NodeRun {
    pub result: NodeResult,
    pub duration: Duration,
    pub error: Option<String>,
}

/// What the scheduler says while it runs, for progress display. `slot` numbers the nodes
/// being built (0..to_build), `label` is `name:tag (os/arch)`.
pub enum Progress<'a> {
    Started {
        slot: usize,
        label: &'a str,
    },
    Line {
        slot: usize,
        label: &'a str,
        line: &'a str,
    },
    Finished {
        slot: usize,
        label: &'a str,
        duration: Duration,
    },
    Failed {
        slot: usize,
        label: &'a str,
        message: String,
    },
    Skipped {
        slot: usize,
        label: &'a str,
        because: &'a str,
    },
    Cancelled {
        slot: usize,
        label: &'a str,
    },
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    pub jobs: usize,
    pub fail_fast: bool,
    pub no_cache: bool,
}

/// What a run did.
pub struct Executed {
    /// By plan index.
    pub nodes: Vec<NodeRun>,
    /// Manifest digests of built and up-to-date nodes, by plan index.
    pub digests: HashMap<usize, String>,
    /// The multi-platform layouts written.
    pub layouts: Vec<PathBuf>,
}

/// One node in `build --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub platform: String,
    pub result: NodeResult,
    pub seconds: f64,
    pub key: String,
    pub digest: Option<String>,
    pub output: String,
    pub log: Option<String>,
    pub error: Option<String>,
    /// Why the plan built it (`Dockerfile changed`, `parent base:1 changed`, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl Executed {
    /// How many nodes ended with `result`.
    pub fn count(&self, result: NodeResult) -> usize {
        self.nodes.iter().filter(|n| n.result == result).count()
    }

    /// Whether every node stands (built or up to date).
    pub fn succeeded(&self) -> bool {
        self.nodes.iter().all(|n| n.result.stands())
    }

    /// One report per node of `plan` (the plan this run executed), `dist` absolute.
    pub fn reports(&self, plan: &Plan, dist: &Path) -> Vec<NodeReport> {
        plan.nodes
            .iter()
            .zip(&self.nodes)
            .enumerate()
            .map(|(i, (node, run))| {
                let output = dist.join(&node.output);
                NodeReport {
                    node: node.id.to_string(),
                    platform: node.platform.to_string(),
                    result: run.result,
                    seconds: run.duration.as_secs_f64(),
                    key: node.key.clone(),
                    digest: self.digests.get(&i).cloned(),
                    log: matches!(run.result, NodeResult::Built | NodeResult::Failed)
                        .then(|| output.with_file_name("build.log").display().to_string()),
                    output: output.display().to_string(),
                    error: run.error.clone(),
                    reasons: node.reasons.iter().map(ToString::to_string).collect(),
                }
            })
            .collect()
    }
}

/// `name:tag (os/arch)`.
pub fn label(node: &PlanNode) -> String {
    format!("{} ({})", node.id, node.platform)
}

/// The nodes `plan` builds.
pub fn to_build(plan: &Plan) -> Vec<usize> {
    (0..plan.nodes.len())
        .filter(|&i| plan.nodes[i].action == Action::Build)
        .collect()
}

/// Foreign platforms run under qemu: names the binfmt handler that is missing for a platform
/// some build must run commands on (`FROM scratch` + `COPY` needs none).
pub fn check_runnable(prepared: &Prepared, plan: &Plan) -> Result<(), Diagnostics> {
    let host = im_build::Platform::host();
    let runs_commands: HashMap<(&str, &str), bool> = prepared
        .rendered
        .tags
        .iter()
        .map(|t| {
            let runs = t
                .parsed
                .instructions()
                .iter()
                .any(|i| i.keyword == im_dockerfile::Keyword::Run);
            ((t.image.as_str(), t.tag.as_str()), runs)
        })
        .collect();
    let mut problems = Diagnostics::new();
    let mut checked = BTreeSet::new();
    for node in plan.nodes.iter().filter(|n| {
        n.action == Action::Build
            && runs_commands
                .get(&(n.id.image.as_str(), n.id.tag.as_str()))
                .copied()
                .unwrap_or(true)
    }) {
        if checked.insert(node.platform.to_string())
            && let Err(error) =
                im_build::check_runnable(&node.platform, &host, Path::new(BINFMT_DIR))
        {
            problems.push(
                Diagnostic::error(error.to_string())
                    .with_note("or leave the platform out with --platform"),
            );
        }
    }
    if problems.has_errors() {
        Err(problems)
    } else {
        Ok(())
    }
}

/// What [`build`] works on.
pub struct Work<'a> {
    pub prepared: &'a Prepared,
    pub plan: &'a Plan,
    pub ledger: Ledger,
    pub bases: &'a Bases,
    pub builder: &'a dyn Builder,
    /// The shared layer cache ([`crate::cache::select`]).
    pub cache: Option<crate::cache::Selected>,
}

/// Builds what `work.plan` says to build, with `context.dist` absolute.
pub fn build(
    context: &ExecContext<'_>,
    work: Work<'_>,
    session: &mut Option<Session>,
    options: BuildOptions,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> anyhow::Result<Executed> {
    let Work {
        prepared,
        plan,
        ledger,
        bases,
        builder,
        cache,
    } = work;
    let dist = context.dist.as_path();
    let to_build = to_build(plan);
    let position: HashMap<usize, usize> = to_build
        .iter()
        .enumerate()
        .map(|(slot, &index)| (index, slot))
        .collect();
    let deps: Vec<Vec<usize>> = to_build
        .iter()
        .map(|&i| {
            plan.nodes[i]
                .parents
                .iter()
                .filter_map(|p| position.get(p).copied())
                .collect()
        })
        .collect();
    let dag = Dag::new(deps).context("the plan's dependencies")?;

    // External bases: each (reference, platform) a build starts from, pulled once.
    let archives = bases.pull(
        context,
        &prepared.project.settings,
        session,
        &crate::bases::needed(plan),
    )?;
    let digests = crate::planning::ledger_digests(&ledger, plan);
    let steps = Steps {
        plan,
        dist,
        bases: archives,
        provenance: Provenance::read(
            &prepared.project.root,
            context.environment.source_date_epoch.as_deref(),
        ),
        no_cache: options.no_cache,
        cache,
        snapshot_id: prepared.snapshot_id.clone(),
    };
    let digests = Mutex::new(digests);
    let ledger = Mutex::new(ledger);
    // Set when a build failed because of the layer cache: later builds go without it.
    let cache_failed = AtomicBool::new(false);
    let labels: Vec<String> = to_build.iter().map(|&i| label(&plan.nodes[i])).collect();
    let outcomes = im_build::schedule(
        &dag,
        ScheduleOptions {
            jobs: options.jobs,
            fail_fast: options.fail_fast,
        },
        &context.cancel,
        |task| {
            let index = to_build[task.node()];
            let node = &plan.nodes[index];
            let mut step = steps.step(index, &digests.lock().expect("digest lock"))?;
            if cache_failed.load(Ordering::Relaxed) {
                step.cache = None;
            }
            let run = |step: &im_build::BuildStep| {
                im_build::execute_step(builder, step, task.cancel_token(), &mut |line| {
                    task.progress(line);
                })
            };
            let output = match run(&step) {
                Err(error) if step.cache.is_some() && cache_failure(&error).is_some() => {
                    // The cache never decides whether a node builds: without it, once more.
                    if !cache_failed.swap(true, Ordering::Relaxed) {
                        context.reporter.warning(
                            &Diagnostic::warning(format!(
                                "{}: the layer cache ({}) failed, building without it: {}",
                                label(node),
                                step.cache.as_ref().map(StepCache::describe).unwrap_or_default(),
                                cache_failure(&error).unwrap_or_default()
                            ))
                            .with_help("check the cache's address and the builder's registry login, or set `cache: false`"),
                        );
                    }
                    step.cache = None;
                    run(&step)
                }
                result => result,
            }
            .inspect_err(|error| {
                // Counted for the back-off of scheduled runs; a cancelled build did not fail.
                if !matches!(error, im_build::BuildError::Cancelled { .. }) {
                    let recorded = ledger.lock().expect("ledger lock").record_failure(
                        dist,
                        node,
                        &error_lines(error),
                    );
                    if let Err(error) = recorded {
                        tracing::warn!("{}", error_chain(&error));
                    }
                }
            })?;
            digests
                .lock()
                .expect("digest lock")
                .insert(index, output.manifest_digest.clone());
            let recorded = ledger.lock().expect("ledger lock").record(
                dist,
                node,
                &output.manifest_digest,
                output.duration,
            );
            if let Err(error) = recorded {
                tracing::warn!("{}", error_chain(&error));
            }
            Ok::<_, im_build::BuildError>(output)
        },
        &mut |event| match event {
            Event::Started { node } => on_progress(Progress::Started {
                slot: node,
                label: &labels[node],
            }),
            Event::Progress { node, line } => on_progress(Progress::Line {
                slot: node,
                label: &labels[node],
                line,
            }),
            Event::Finished { node, duration } => on_progress(Progress::Finished {
                slot: node,
                label: &labels[node],
                duration,
            }),
            Event::Failed { node, error, .. } => on_progress(Progress::Failed {
                slot: node,
                label: &labels[node],
                // A failed command already names the node and platform.
                message: match error {
                    im_build::BuildError::Command { .. } => error_lines(error),
                    _ => format!("{} failed: {}", labels[node], error_lines(error)),
                },
            }),
            Event::Skipped { node, because } => on_progress(Progress::Skipped {
                slot: node,
                label: &labels[node],
                because: &labels[because],
            }),
            Event::Cancelled { node } => on_progress(Progress::Cancelled {
                slot: node,
                label: &labels[node],
            }),
        },
    );
    // Key inputs of keys the ledger no longer has (rebuilt nodes) are dropped.
    if let Err(error) = ledger.lock().expect("ledger lock").prune_inputs(dist) {
        tracing::warn!("{}", error_chain(&error));
    }

    let mut nodes: Vec<NodeRun> = plan
        .nodes
        .iter()
        .map(|_| NodeRun {
            result: NodeResult::UpToDate,
            duration: Duration::ZERO,
            error: None,
        })
        .collect();
    for (slot, outcome) in outcomes.into_iter().enumerate() {
        nodes[to_build[slot]] = match outcome {
            NodeOutcome::Succeeded { duration, .. } => NodeRun {
                result: NodeResult::Built,
                duration,
                error: None,
            },
            NodeOutcome::Failed { error, duration } => NodeRun {
                result: NodeResult::Failed,
                duration,
                error: Some(error_lines(&error)),
            },
            NodeOutcome::Skipped { because } => NodeRun {
                result: NodeResult::Skipped,
                duration: Duration::ZERO,
                error: Some(format!("{} failed", labels[because])),
            },
            NodeOutcome::Cancelled { .. } => NodeRun {
                result: NodeResult::Cancelled,
                duration: Duration::ZERO,
                error: None,
            },
        };
    }
    let layouts = write_layouts(context, plan, &mut nodes);
    Ok(Executed {
        nodes,
        digests: digests.into_inner().expect("digest lock"),
        layouts,
    })
}

/// The line of stderr that says a builder failed on the layer cache rather than on the
/// build (pushing, pulling, importing or exporting the cache), if one does.
fn cache_failure(error: &im_build::BuildError) -> Option<String> {
    let im_build::BuildError::Command {
        source: im_build::RunError::Failed { stderr_tail, .. },
        ..
    } = error
    else {
        return None;
    };
    stderr_tail.iter().find_map(|line| {
        let lower = line.to_ascii_lowercase();
        [
            "pushing cache",
            "pulling cache",
            "importing cache",
            "exporting cache",
            "exporting to cache",
            "cache manifest",
        ]
        .iter()
        .any(|words| lower.contains(words))
        .then(|| line.trim().to_owned())
    })
}

/// Multi-platform tags: one OCI layout with an index of every platform, when all of them
/// stand and one of them changed (or there is none yet).
fn write_layouts(context: &ExecContext<'_>, plan: &Plan, nodes: &mut [NodeRun]) -> Vec<PathBuf> {
    let dist = context.dist.as_path();
    let mut layouts = Vec::new();
    let mut tags: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        tags.entry(node.id.to_string()).or_default().push(i);
    }
    for (tag, members) in &tags {
        if members.len() < 2 || members.iter().any(|&i| !nodes[i].result.stands()) {
            continue;
        }
        let first = &plan.nodes[members[0]];
        let dest = dist
            .join(&first.id.image)
            .join(&first.id.tag)
            .join("image.tar");
        if dest.is_file()
            && members
                .iter()
                .all(|&i| nodes[i].result == NodeResult::UpToDate)
        {
            continue;
        }
        let archives: Vec<PathBuf> = members
            .iter()
            .map(|&i| dist.join(&plan.nodes[i].output))
            .collect();
        match im_build::write_multi_platform_layout(&archives, &dest, tag) {
            Ok(layout) => {
                context.reporter.status(
                    "Indexed",
                    &format!(
                        "{tag}: {} platforms, {}",
                        layout.manifests.len(),
                        layout.index_digest
                    ),
                );
                layouts.push(dest);
            }
            Err(error) => {
                context.reporter.error(&format!(
                    "{tag}: cannot write the multi-platform layout: {}",
                    error_lines(&error)
                ));
                for &i in members {
                    nodes[i].result = NodeResult::Failed;
                }
            }
        }
    }
    layouts
}
