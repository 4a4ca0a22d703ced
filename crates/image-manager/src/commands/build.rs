//! `image-manager build`: generate, plan, then build what is not up to date — parents before
//! children, independent nodes in parallel — and record every finished node in the ledger.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use im_build::{BuildStep, CancelToken, Dag, Event, NodeOutcome, Parent, ScheduleOptions};
use im_plan::{Action, Ledger, LedgerEntry, Plan, PlanNode};
use serde::Serialize;

use super::{Context, Outcome, bases, planning, plural};
use crate::cli::{BuildArgs, Format};
use crate::env_vars;

/// Where the kernel lists the interpreters for foreign binaries.
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// How one node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Result_ {
    Built,
    UpToDate,
    Failed,
    Skipped,
    Cancelled,
}

impl Result_ {
    fn as_str(self) -> &'static str {
        match self {
            Result_::Built => "built",
            Result_::UpToDate => "up to date",
            Result_::Failed => "failed",
            Result_::Skipped => "skipped",
            Result_::Cancelled => "cancelled",
        }
    }
}

#[derive(Serialize)]
struct NodeReport {
    node: String,
    platform: String,
    result: Result_,
    seconds: f64,
    key: String,
    digest: Option<String>,
    output: String,
    log: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Report {
    builder: String,
    nodes: Vec<NodeReport>,
    layouts: Vec<String>,
    /// What `--push` did.
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<super::push::Report>,
}

/// Holds `dist/.lock` for the whole build, so two builds of one project never interleave.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `SOURCE_DATE_EPOCH`, else the last commit's time.
fn source_date_epoch(root: &Path) -> Option<i64> {
    std::env::var(env_vars::SOURCE_DATE_EPOCH)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .or_else(|| git(root, &["log", "-1", "--format=%ct"]).and_then(|value| value.parse().ok()))
}

fn rfc3339(epoch: i64) -> String {
    // Civil-from-days (Howard Hinnant), enough for a label.
    let days = epoch.div_euclid(86_400);
    let seconds = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}

struct Shared<'a> {
    plan: &'a Plan,
    dist: &'a Path,
    /// The archive of each external base (reference as written, platform) a build needs.
    bases: BTreeMap<bases::Need, Result<PathBuf, bases::Unavailable>>,
    /// Manifest digests of finished or up-to-date nodes, by plan index.
    digests: Mutex<HashMap<usize, String>>,
    ledger: Mutex<Ledger>,
    volatile: BTreeMap<String, String>,
    epoch: Option<i64>,
    no_cache: bool,
}

impl Shared<'_> {
    fn step(&self, node: &PlanNode) -> Result<BuildStep, im_build::BuildError> {
        let platform = node.platform.clone();
        let context_dir = self.dist.join(&node.id.image).join(&node.id.tag);
        let output = self.dist.join(&node.output);
        let mut labels: BTreeMap<String, String> = (*node.inputs.labels).clone();
        labels.extend(self.volatile.clone());
        labels.insert("dev.image-manager.build-key".to_owned(), node.key.clone());
        let digests = self.digests.lock().expect("digest lock");
        let base_name = labels.get("org.opencontainers.image.base.name").cloned();
        let mut parents = Vec::new();
        for (reference, at) in &node.parent_refs {
            parents.push(Parent {
                reference: reference.clone(),
                archive: self.dist.join(&self.plan.nodes[*at].output),
            });
            if base_name.as_deref() == Some(reference.as_str())
                && let Some(digest) = digests.get(at)
            {
                labels.insert(
                    "org.opencontainers.image.base.digest".to_owned(),
                    digest.clone(),
                );
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
                    return Err(im_build::BuildError::Base {
                        node: node.id.to_string(),
                        platform,
                        reference: reference.clone(),
                        source: error.clone(),
                    });
                }
                None => unreachable!("every external base of a node to build was pulled"),
            }
            if base_name.as_deref() == Some(reference.as_str())
                && let Some(digest) = digest
            {
                labels.insert(
                    "org.opencontainers.image.base.digest".to_owned(),
                    digest.clone(),
                );
            }
        }
        Ok(BuildStep {
            node: node.id.to_string(),
            platform,
            dockerfile: context_dir.join("Dockerfile"),
            context_dir,
            image: node.id.to_string(),
            build_args: node.inputs.build_args.clone(),
            labels,
            parents,
            log: output.with_file_name("build.log"),
            output,
            source_date_epoch: self.epoch,
            no_cache: self.no_cache,
            pull: im_build::PullPolicy::default(),
        })
    }
}

pub fn run(context: &Context<'_>, args: &BuildArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let _lock = super::lock::dist(context)?;
    let prepared = match context.prepare(args.selection.snapshot.snapshot_id.as_deref()) {
        Ok(prepared) => prepared,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    printer.diagnostics(&prepared.warnings);
    let dist_name = context
        .dist
        .strip_prefix(&context.root)
        .unwrap_or(&context.dist)
        .to_path_buf();
    let written = im_render::dist::write(
        &context.dist,
        &prepared.rendered.tags,
        || prepared.index(&dist_name),
        None,
    )
    .with_context(|| format!("writing {}", context.dist.display()))?;
    printer.status(
        "Generated",
        format!(
            "{} ({} written)",
            plural(prepared.rendered.tags.len(), "tag"),
            plural(written.written, "file")
        ),
    );
    let dist = fs_err::canonicalize(&context.dist)?;

    let settings =
        match planning::builder_settings(&prepared.project, args.selection.builder.as_deref()) {
            Ok(settings) => settings,
            Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
        };
    let choice = match planning::choose_builder(&settings) {
        Ok(choice) => choice,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    tracing::debug!("builder: {}", choice.reason);
    let mut options = match planning::plan_options(&args.selection, planning::key_name(&choice)) {
        Ok(options) => options,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    let mode = if args.offline {
        bases::Mode::Offline
    } else {
        bases::Mode::Online
    };
    let mut session = None;
    let bases = match bases::resolve(context, &prepared, &mut options, mode, &mut session)? {
        Ok(bases) => bases,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    printer.diagnostics(&bases.fallbacks);
    let mut ledger = Ledger::load(&dist)?;
    let mut plan = match im_plan::plan(
        &prepared.project,
        &prepared.graph,
        &prepared.rendered.tags,
        &ledger,
        &dist,
        &options,
    ) {
        Ok(plan) => plan,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    // --push: what the registry already holds is not built (see push::before_build).
    let publish = if args.push {
        let gate = super::push::before_build(
            context,
            &prepared,
            &dist,
            &mut plan,
            &mut ledger,
            args.platform_tags,
        )?;
        match gate {
            Ok(publish) => Some(publish),
            Err(outcome) => return Ok(outcome),
        }
    } else {
        None
    };
    let builder = im_build::builder_for(&choice, &settings);

    // Foreign platforms run under qemu: say which binfmt handler is missing before building.
    let host = im_oci::Platform::host();
    let mut unrunnable = im_diag::Diagnostics::new();
    let mut checked = std::collections::BTreeSet::new();
    let rendered_by_id: HashMap<(&str, &str), &im_render::RenderedTag> = prepared
        .rendered
        .tags
        .iter()
        .map(|t| ((t.image.as_str(), t.tag.as_str()), t))
        .collect();
    let runs_commands = |node: &PlanNode| {
        rendered_by_id
            .get(&(node.id.image.as_str(), node.id.tag.as_str()))
            .is_none_or(|t| {
                t.parsed
                    .instructions()
                    .iter()
                    .any(|i| i.keyword == im_dockerfile::Keyword::Run)
            })
    };
    // Only builds that run commands need an emulator (`FROM scratch` + `COPY` does not).
    for node in plan
        .nodes
        .iter()
        .filter(|n| n.action == Action::Build && runs_commands(n))
    {
        if checked.insert(node.platform.to_string())
            && let Err(error) =
                im_build::check_runnable(&node.platform, &host, Path::new(BINFMT_DIR))
        {
            unrunnable.push(
                im_diag::Diagnostic::error(error.to_string())
                    .with_note("or leave the platform out with --platform"),
            );
        }
    }
    if unrunnable.has_errors() {
        return Ok(Outcome::Invalid(unrunnable));
    }

    // The nodes to build, as a DAG of their own.
    let to_build: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| plan.nodes[i].action == Action::Build)
        .collect();
    let position: HashMap<usize, usize> = to_build
        .iter()
        .enumerate()
        .map(|(dag, &plan_index)| (plan_index, dag))
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
    let needed: BTreeSet<bases::Need> = to_build
        .iter()
        .flat_map(|&i| {
            let node = &plan.nodes[i];
            node.inputs
                .externals
                .keys()
                .map(|reference| (reference.clone(), node.platform.clone()))
        })
        .collect();
    let base_archives = bases.pull(context, &prepared.project.settings, &mut session, &needed)?;

    let mut digests = HashMap::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        if node.action == Action::UpToDate
            && let Some(entry) = ledger.nodes.get(&im_plan::ledger::entry_name(
                &node.id.to_string(),
                &node.platform.to_string(),
            ))
        {
            digests.insert(i, entry.digest.clone());
        }
    }
    let epoch = source_date_epoch(&prepared.project.root);
    let mut volatile = BTreeMap::new();
    if let Some(epoch) = epoch {
        volatile.insert(
            "org.opencontainers.image.created".to_owned(),
            rfc3339(epoch),
        );
    }
    if let Some(revision) = git(&prepared.project.root, &["rev-parse", "HEAD"]) {
        volatile.insert("org.opencontainers.image.revision".to_owned(), revision);
    }
    if let Some(source) = git(
        &prepared.project.root,
        &["config", "--get", "remote.origin.url"],
    ) {
        volatile.insert("org.opencontainers.image.source".to_owned(), source);
    }
    let shared = Shared {
        plan: &plan,
        dist: &dist,
        bases: base_archives,
        digests: Mutex::new(digests),
        ledger: Mutex::new(ledger),
        volatile,
        epoch,
        no_cache: args.no_cache,
    };

    let cancel = CancelToken::new();
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let interrupted = interrupted.clone();
        let push_cancel = publish.as_ref().map(super::push::BuildPush::cancellation);
        crate::interrupt::on_interrupt(move || {
            interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
            cancel.cancel();
            if let Some(token) = &push_cancel {
                token.cancel();
            }
        });
    }
    if to_build.is_empty() {
        printer.status(
            "Up to date",
            format!(
                "{} with {}",
                plural(plan.nodes.len(), "node"),
                choice.kind.as_str()
            ),
        );
    } else {
        printer.status(
            "Building",
            format!(
                "{} of {} with {} (-j {})",
                to_build.len(),
                plural(plan.nodes.len(), "node"),
                choice.kind.as_str(),
                jobs(args)
            ),
        );
    }
    let label = |dag_node: usize| {
        let node = &plan.nodes[to_build[dag_node]];
        format!("{} ({})", node.id, node.platform)
    };
    let mut progress = crate::progress::Progress::new(printer, to_build.len());
    let outcomes = im_build::schedule(
        &dag,
        ScheduleOptions {
            jobs: jobs(args),
            fail_fast: args.fail_fast,
        },
        &cancel,
        |task| {
            let plan_index = to_build[task.node()];
            let node = &plan.nodes[plan_index];
            let step = shared.step(node)?;
            let output = im_build::execute_step(
                builder.as_ref(),
                &step,
                task.cancel_token(),
                &mut |line| task.progress(line),
            )?;
            shared
                .digests
                .lock()
                .expect("digest lock")
                .insert(plan_index, output.manifest_digest.clone());
            if let Err(error) = im_plan::ledger::record_inputs(shared.dist, &node.key, &node.inputs)
            {
                tracing::warn!("{}", error_chain(&error));
            }
            let mut ledger = shared.ledger.lock().expect("ledger lock");
            ledger.nodes.insert(
                im_plan::ledger::entry_name(&node.id.to_string(), &node.platform.to_string()),
                LedgerEntry::new(node, output.manifest_digest.clone(), output.duration),
            );
            if let Err(error) = ledger.save(shared.dist) {
                tracing::warn!("{}", error_chain(&error));
            }
            Ok::<_, im_build::BuildError>(output)
        },
        &mut |event| match event {
            Event::Started { node } => progress.started(node, &label(node)),
            Event::Progress { node, line } => {
                tracing::debug!("{}: {line}", label(node));
                progress.step(node, line);
            }
            Event::Finished { node, duration } => {
                progress.finished(
                    node,
                    "Built",
                    &format!("{} in {:.1}s", label(node), duration.as_secs_f64()),
                );
            }
            Event::Failed { node, error, .. } => {
                progress.finished(node, "Failed", &label(node));
                // A failed command already names the node and platform.
                progress.error(&match error {
                    im_build::BuildError::Command { .. } => error_chain(error),
                    _ => format!("{} failed: {}", label(node), error_chain(error)),
                });
            }
            Event::Skipped { node, because } => {
                progress.finished(
                    node,
                    "Skipped",
                    &format!("{} because {} failed", label(node), label(because)),
                );
            }
            Event::Cancelled { node } => progress.finished(node, "Cancelled", &label(node)),
        },
    );
    progress.finish();
    // Key inputs of keys the ledger no longer has (rebuilt nodes) are dropped.
    if let Err(error) = shared
        .ledger
        .lock()
        .expect("ledger lock")
        .prune_inputs(shared.dist)
    {
        tracing::warn!("{}", error_chain(&error));
    }

    // Collect results per plan node.
    let mut results: Vec<(Result_, Duration, Option<String>)> = plan
        .nodes
        .iter()
        .map(|_| (Result_::UpToDate, Duration::ZERO, None))
        .collect();
    for (dag_node, outcome) in outcomes.into_iter().enumerate() {
        let plan_index = to_build[dag_node];
        results[plan_index] = match outcome {
            NodeOutcome::Succeeded { duration, .. } => (Result_::Built, duration, None),
            NodeOutcome::Failed { error, duration } => {
                (Result_::Failed, duration, Some(error_chain(&error)))
            }
            NodeOutcome::Skipped { because } => (
                Result_::Skipped,
                Duration::ZERO,
                Some(format!("{} failed", label(because))),
            ),
            NodeOutcome::Cancelled { .. } => (Result_::Cancelled, Duration::ZERO, None),
        };
    }

    // Multi-platform tags: one OCI layout with an index of every platform.
    let mut layouts = Vec::new();
    let mut tags: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        tags.entry(node.id.to_string()).or_default().push(i);
    }
    for (tag, members) in &tags {
        if members.len() < 2
            || members
                .iter()
                .any(|&i| !matches!(results[i].0, Result_::Built | Result_::UpToDate))
        {
            continue;
        }
        let first = &plan.nodes[members[0]];
        let dest = dist
            .join(&first.id.image)
            .join(&first.id.tag)
            .join("image.tar");
        if dest.is_file() && members.iter().all(|&i| results[i].0 == Result_::UpToDate) {
            continue;
        }
        let archives: Vec<PathBuf> = members
            .iter()
            .map(|&i| dist.join(&plan.nodes[i].output))
            .collect();
        match im_build::write_multi_platform_layout(&archives, &dest, tag) {
            Ok(layout) => {
                printer.status(
                    "Indexed",
                    format!(
                        "{tag}: {} platforms, {}",
                        layout.manifests.len(),
                        layout.index_digest
                    ),
                );
                layouts.push(dest.display().to_string());
            }
            Err(error) => {
                printer.error(format!(
                    "{tag}: cannot write the multi-platform layout: {}",
                    error_chain(&error)
                ));
                for &i in members {
                    results[i].0 = Result_::Failed;
                }
            }
        }
    }

    let pushed = publish.as_ref().and_then(|publish| {
        let succeeded = results
            .iter()
            .all(|r| matches!(r.0, Result_::Built | Result_::UpToDate));
        if succeeded && !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            Some(super::push::after_build(context, &prepared, &plan, publish))
        } else {
            printer.error("nothing was pushed: the build did not succeed");
            None
        }
    });
    let push_outcome = pushed.as_ref().map(super::push::Report::outcome);

    let digests = shared.digests.lock().expect("digest lock").clone();
    let reports: Vec<NodeReport> = plan
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| NodeReport {
            node: node.id.to_string(),
            platform: node.platform.to_string(),
            result: results[i].0,
            seconds: results[i].1.as_secs_f64(),
            key: node.key.clone(),
            digest: digests.get(&i).cloned(),
            output: dist.join(&node.output).display().to_string(),
            log: matches!(results[i].0, Result_::Built | Result_::Failed).then(|| {
                dist.join(&node.output)
                    .with_file_name("build.log")
                    .display()
                    .to_string()
            }),
            error: results[i].2.clone(),
        })
        .collect();
    let counts: BTreeMap<&str, usize> = [
        Result_::Built,
        Result_::UpToDate,
        Result_::Failed,
        Result_::Skipped,
        Result_::Cancelled,
    ]
    .into_iter()
    .map(|wanted| {
        (
            wanted.as_str(),
            reports.iter().filter(|r| r.result == wanted).count(),
        )
    })
    .collect();
    let count = |wanted: Result_| counts[wanted.as_str()];
    match args.format {
        Format::Json => printer.json(&Report {
            builder: choice.kind.as_str().to_owned(),
            nodes: reports,
            layouts,
            push: pushed,
        })?,
        Format::Text => {
            if !to_build.is_empty() {
                let width = reports.iter().map(|r| r.node.len()).max().unwrap_or(0);
                let mut table = format!(
                    "\n{:width$}  {:<14}  {:<10}  {:>7}\n",
                    "node", "platform", "result", "time"
                );
                for report in &reports {
                    table.push_str(&format!(
                        "{:width$}  {:<14}  {:<10}  {:>6.1}s\n",
                        report.node,
                        report.platform,
                        report.result.as_str(),
                        report.seconds
                    ));
                }
                printer.info(table.trim_end());
            }
            let in_registry = publish
                .as_ref()
                .map_or(0, super::push::BuildPush::in_registry);
            printer.status(
                "Finished",
                format!(
                    "{} built, {} up to date, {}{} failed, {} skipped in {:.1}s",
                    count(Result_::Built),
                    count(Result_::UpToDate),
                    if in_registry > 0 {
                        format!("{in_registry} in registry, ")
                    } else {
                        String::new()
                    },
                    count(Result_::Failed),
                    count(Result_::Skipped) + count(Result_::Cancelled),
                    started.elapsed().as_secs_f64()
                ),
            );
            if let Some(pushed) = &pushed {
                pushed.finish(printer, Format::Text, "pushed")?;
            }
        }
    }
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(Outcome::Interrupted);
    }
    if count(Result_::Failed) + count(Result_::Skipped) + count(Result_::Cancelled) > 0 {
        return Ok(Outcome::Failed);
    }
    if let Some(outcome) = push_outcome {
        return Ok(outcome);
    }
    Ok(Outcome::Success)
}

fn jobs(args: &BuildArgs) -> usize {
    args.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .max(1)
}
