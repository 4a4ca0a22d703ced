//! `image-manager build`: generate, plan, then build what is not up to date — parents before
//! children, independent nodes in parallel (see [`im_exec::build`]) — and, with `--push`,
//! publish what the build covered.

use std::collections::BTreeMap;
use std::time::Instant;

use im_exec::build::{BuildOptions, Executed, NodeResult, Progress, Work};
use im_exec::planning::{self, Detect, Request};
use im_exec::{bases, plural, publish, registry};
use serde::Serialize;

use super::{Context, Outcome, service};
use crate::cli::{BuildArgs, Format};

#[derive(Serialize)]
struct NodeReport {
    node: String,
    platform: String,
    result: NodeResult,
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
    push: Option<publish::Report>,
}

pub fn run(context: &Context<'_>, args: &BuildArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let _lock = super::lock::dist(context)?;
    let prepared = context.prepare(args.selection.snapshot.snapshot_id.as_deref())?;
    printer.diagnostics(&prepared.warnings);
    let written = prepared.write_dist(&context.dist, &context.dist_name(), None)?;
    printer.status(
        "Generated",
        format!(
            "{} ({} written)",
            plural(prepared.rendered.tags.len(), "tag"),
            plural(written.written, "file")
        ),
    );
    let exec = context.exec_with(fs_err::canonicalize(&context.dist)?, true);
    let request = Request {
        options: super::planning::plan_options(&args.selection)?,
        builder: args.selection.builder,
        bases: if args.offline {
            bases::Mode::Offline
        } else {
            bases::Mode::Online
        },
        detect: Detect::Required,
    };
    let mut planned = planning::plan(&exec, &prepared, request)?;
    printer.diagnostics(&planned.bases.fallbacks);
    let (choice, settings) = planned.choice.take().expect("detection was asked for");
    // --push: what the registry already holds is not built (see publish::before_build).
    let publish = if args.push {
        let target = registry::default_target(&prepared.project.settings)?;
        service::ensure_for(&context.root, &target.host, printer)?;
        let gate = publish::before_build(
            &exec,
            &prepared,
            target,
            &mut planned.plan,
            &mut planned.ledger,
            args.platform_tags,
        )?;
        let Some(gate) = gate else {
            return Ok(Outcome::Interrupted);
        };
        Some(gate)
    } else {
        None
    };
    let builder = im_build::builder_for(&choice, &settings);
    im_exec::build::check_runnable(&prepared, &planned.plan)?;

    let plan = &planned.plan;
    let to_build = im_exec::build::to_build(plan).len();
    let jobs = jobs(args);
    printer.status(
        if to_build == 0 {
            "Up to date"
        } else {
            "Building"
        },
        if to_build == 0 {
            format!("{} with {}", plural(plan.nodes.len(), "node"), choice.kind)
        } else {
            format!(
                "{to_build} of {} with {} (-j {jobs})",
                plural(plan.nodes.len(), "node"),
                choice.kind
            )
        },
    );
    let mut progress = crate::progress::Progress::new(printer, to_build);
    let executed = im_exec::build::build(
        &exec,
        Work {
            prepared: &prepared,
            plan,
            ledger: planned.ledger.clone(),
            bases: &planned.bases,
            builder: builder.as_ref(),
        },
        &mut planned.session,
        BuildOptions {
            jobs,
            fail_fast: args.fail_fast,
            no_cache: args.no_cache,
        },
        &mut |event| show(&mut progress, event),
    )?;
    progress.finish();

    let interrupted = exec.cancel.is_cancelled();
    let pushed = publish.as_ref().and_then(|gate| {
        if executed.nodes.iter().all(|n| n.result.stands()) && !interrupted {
            Some(publish::after_build(&exec, &prepared, plan, gate))
        } else {
            printer.error("nothing was pushed: the build did not succeed");
            None
        }
    });
    let push_outcome = pushed.as_ref().map(super::published::outcome);
    let in_registry = publish.as_ref().map_or(0, publish::BuildPush::in_registry);
    let counts = print_report(
        context,
        args,
        &exec.dist,
        plan,
        &executed,
        Report {
            builder: choice.kind.as_str().to_owned(),
            nodes: Vec::new(),
            layouts: Vec::new(),
            push: pushed,
        },
        (started, in_registry),
    )?;
    let count = |wanted: NodeResult| counts[wanted.as_str()];
    if interrupted {
        return Ok(Outcome::Interrupted);
    }
    if count(NodeResult::Failed) + count(NodeResult::Skipped) + count(NodeResult::Cancelled) > 0 {
        return Ok(Outcome::Failed);
    }
    Ok(push_outcome.unwrap_or(Outcome::Success))
}

/// Shows one scheduler event.
fn show(progress: &mut crate::progress::Progress<'_>, event: Progress<'_>) {
    match event {
        Progress::Started { slot, label } => progress.started(slot, label),
        Progress::Line { slot, label, line } => {
            tracing::debug!("{label}: {line}");
            progress.step(slot, line);
        }
        Progress::Finished {
            slot,
            label,
            duration,
        } => progress.finished(
            slot,
            "Built",
            &format!("{label} in {:.1}s", duration.as_secs_f64()),
        ),
        Progress::Failed {
            slot,
            label,
            message,
        } => {
            progress.finished(slot, "Failed", label);
            progress.error(&message);
        }
        Progress::Skipped {
            slot,
            label,
            because,
        } => progress.finished(
            slot,
            "Skipped",
            &format!("{label} because {because} failed"),
        ),
        Progress::Cancelled { slot, label } => progress.finished(slot, "Cancelled", label),
    }
}

/// Prints the JSON report or the table and the summary; returns the count of each result.
fn print_report(
    context: &Context<'_>,
    args: &BuildArgs,
    dist: &std::path::Path,
    plan: &im_plan::Plan,
    executed: &Executed,
    mut report: Report,
    (started, in_registry): (Instant, usize),
) -> anyhow::Result<BTreeMap<&'static str, usize>> {
    let printer = context.printer;
    report.layouts = executed
        .layouts
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    report.nodes = plan
        .nodes
        .iter()
        .zip(&executed.nodes)
        .enumerate()
        .map(|(i, (node, run))| {
            let output = dist.join(&node.output);
            NodeReport {
                node: node.id.to_string(),
                platform: node.platform.to_string(),
                result: run.result,
                seconds: run.duration.as_secs_f64(),
                key: node.key.clone(),
                digest: executed.digests.get(&i).cloned(),
                log: matches!(run.result, NodeResult::Built | NodeResult::Failed)
                    .then(|| output.with_file_name("build.log").display().to_string()),
                output: output.display().to_string(),
                error: run.error.clone(),
            }
        })
        .collect();
    let counts: BTreeMap<&str, usize> = NodeResult::ALL
        .into_iter()
        .map(|wanted| {
            let n = report.nodes.iter().filter(|r| r.result == wanted).count();
            (wanted.as_str(), n)
        })
        .collect();
    let count = |wanted: NodeResult| counts[wanted.as_str()];
    match args.format {
        Format::Json => printer.json(&report)?,
        Format::Text => {
            if report
                .nodes
                .iter()
                .any(|r| r.result != NodeResult::UpToDate)
            {
                let width = report.nodes.iter().map(|r| r.node.len()).max().unwrap_or(0);
                let mut table = format!(
                    "\n{:width$}  {:<14}  {:<10}  {:>7}\n",
                    "node", "platform", "result", "time"
                );
                for node in &report.nodes {
                    table.push_str(&format!(
                        "{:width$}  {:<14}  {:<10}  {:>6.1}s\n",
                        node.node,
                        node.platform,
                        node.result.as_str(),
                        node.seconds
                    ));
                }
                printer.info(table.trim_end());
            }
            printer.status(
                "Finished",
                format!(
                    "{} built, {} up to date, {}{} failed, {} skipped in {:.1}s",
                    count(NodeResult::Built),
                    count(NodeResult::UpToDate),
                    if in_registry > 0 {
                        format!("{in_registry} in registry, ")
                    } else {
                        String::new()
                    },
                    count(NodeResult::Failed),
                    count(NodeResult::Skipped) + count(NodeResult::Cancelled),
                    started.elapsed().as_secs_f64()
                ),
            );
            if let Some(pushed) = &report.push {
                super::published::finish(pushed, printer, Format::Text, "pushed")?;
            }
        }
    }
    Ok(counts)
}

fn jobs(args: &BuildArgs) -> usize {
    args.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .max(1)
}
