//! `image-manager build`: generate, plan, then build what is not up to date — parents before
//! children, independent nodes in parallel (see [`im_exec::build`]) — and, with `--push`,
//! publish what the build covered.

use std::time::Instant;

use im_exec::build::{BuildOptions, Executed, NodeReport, NodeResult, Progress, Work};
use im_exec::planning::{self, Detect, Request};
use im_exec::{bases, plural, publish, registry};
use serde::Serialize;

use super::{Context, Outcome, service};
use crate::cli::{BuildArgs, Format, LoadStore};
use im_exec::load::Store;

#[derive(Serialize)]
struct Report {
    builder: String,
    nodes: Vec<NodeReport>,
    layouts: Vec<String>,
    /// What `--push` did.
    #[serde(skip_serializing_if = "Option::is_none")]
    push: Option<publish::Report>,
    /// What `--load` put into the local store.
    #[serde(skip_serializing_if = "Option::is_none")]
    loaded: Option<Vec<im_exec::load::Loaded>>,
}

pub fn run(context: &Context<'_>, args: &BuildArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let outputs = super::summary::CiOutputs::parse(&args.output)?;
    let _lock = super::dist_lock::dist(context)?;
    let prepared = context.prepare_refreshing(
        args.selection.snapshot.snapshot_id.as_deref(),
        args.refresh_bases,
    )?;
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
    let mut options = super::planning::plan_options(&args.selection)?;
    let mut incomplete = false;
    if args.refresh_bases {
        // Exactly the nodes whose external bases moved, and what is built on them.
        let report = super::outdated::check(context, &exec, &prepared, options.clone())?;
        incomplete = report.incomplete();
        if !report.moved() {
            return Ok(if incomplete {
                Outcome::Incomplete
            } else {
                Outcome::Success
            });
        }
        options.targets = report.nodes().into_iter().collect();
        options.dependents = false;
    }
    let request = |options| Request {
        options,
        builder: args.selection.builder,
        bases: if args.offline {
            bases::Mode::Offline
        } else {
            bases::Mode::Online
        },
        detect: Detect::Required,
    };
    let mut planned = planning::plan(&exec, &prepared, request(options.clone()))?;
    if args.refresh_bases {
        // A scheduled run leaves alone what keeps failing with the same inputs.
        let now = im_plan::ledger::now();
        let backed_off = im_exec::history::back_off(&planned.plan, &planned.ledger, now);
        if !backed_off.is_empty() {
            for node in &backed_off {
                let why = node.failures.map_or_else(
                    || "a node it is built on is backing off".to_owned(),
                    |count| format!("failed {} with this key", plural(count as usize, "time")),
                );
                printer.status(
                    "Backing off",
                    format!(
                        "{} ({}): {why}; tried again after {}",
                        node.node, node.platform, node.retry_after
                    ),
                );
            }
            let skipped: std::collections::BTreeSet<&str> =
                backed_off.iter().map(|node| node.node.as_str()).collect();
            options
                .targets
                .retain(|target| !skipped.contains(target.as_str()));
            if options.targets.is_empty() {
                return Ok(if incomplete {
                    Outcome::Incomplete
                } else {
                    Outcome::Success
                });
            }
            planned = planning::plan(&exec, &prepared, request(options))?;
        }
    }
    printer.diagnostics(&planned.bases.fallbacks);
    let (choice, mut settings) = planned.choice.take().expect("detection was asked for");
    if choice.kind == im_build::BuilderKind::Buildkit && settings.buildkit.addr.is_none() {
        // No BUILDKIT_HOST: the project's own buildkitd.
        settings.buildkit.addr = service::buildkitd_for_build(&context.root, printer)?;
    }
    // --push: what the registry already holds is not built (see publish::before_build).
    let publish = if args.push {
        let target = registry::default_target(&prepared.project.settings)?;
        service::ensure_for(&context.root, &target.host, printer)?;
        // The session that resolved the external bases, if one did: one client, one runtime.
        let session = exec.session_in(&mut planned.session, &prepared.project.settings)?;
        let gate = publish::before_build(
            &exec,
            session,
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
    let cache = super::cache::choose(context, &exec, &prepared, &choice, args.no_cache)?;

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
            cache,
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
        if executed.succeeded() && !interrupted {
            let session = planned
                .session
                .as_ref()
                .expect("--push made it before the build");
            Some(publish::after_build(&exec, session, &prepared, plan, gate))
        } else {
            printer.error("nothing was pushed: the build did not succeed");
            None
        }
    });
    let push_outcome = pushed.as_ref().map(super::published::outcome);
    let loaded = match args.load {
        Some(store) if executed.succeeded() && !interrupted => {
            let store = match store {
                LoadStore::Podman => Store::Podman,
                LoadStore::Auto if choice.kind == im_build::BuilderKind::Podman => Store::Podman,
                LoadStore::Docker | LoadStore::Auto => Store::Docker,
            };
            let loaded = im_exec::load::load(&exec, plan, &executed, store)?;
            for image in &loaded {
                match &image.skipped {
                    None => printer.status(
                        "Loaded",
                        format!(
                            "{} ({}) into {}",
                            image.reference,
                            image.platform,
                            store.program()
                        ),
                    ),
                    Some(why) => {
                        printer.status("Skipped", format!("loading {}: {why}", image.reference));
                    }
                }
            }
            Some(loaded)
        }
        Some(_) => {
            printer.error("nothing was loaded: the build did not succeed");
            None
        }
        None => None,
    };
    let report = Report {
        builder: choice.kind.as_str().to_owned(),
        nodes: executed.reports(plan, &exec.dist),
        layouts: executed
            .layouts
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        push: pushed,
        loaded,
    };
    let in_registry = publish.as_ref().map_or(0, publish::BuildPush::in_registry);
    print_report(context, args, &executed, &report, (started, in_registry))?;
    super::summary::append(
        context,
        &super::summary::build(&report.nodes, report.push.as_ref()),
    );
    outputs.write(
        || im_exec::ci_reports::build_junit(&report.nodes),
        || im_exec::ci_reports::build_dotenv(&report.nodes),
    )?;
    if interrupted {
        Ok(Outcome::Interrupted)
    } else if !executed.succeeded() {
        Ok(Outcome::Failed)
    } else if incomplete {
        Ok(push_outcome.unwrap_or(Outcome::Incomplete))
    } else {
        Ok(push_outcome.unwrap_or(Outcome::Success))
    }
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

/// Prints the JSON report, or the table and the summary.
fn print_report(
    context: &Context<'_>,
    args: &BuildArgs,
    executed: &Executed,
    report: &Report,
    (started, in_registry): (Instant, usize),
) -> anyhow::Result<()> {
    let printer = context.printer;
    let count = |wanted: NodeResult| executed.count(wanted);
    match args.format {
        Format::Json => printer.json(report)?,
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
    Ok(())
}

fn jobs(args: &BuildArgs) -> usize {
    args.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
        .max(1)
}
