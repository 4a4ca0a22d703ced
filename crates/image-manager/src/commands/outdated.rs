//! `image-manager outdated`: external bases whose tag moved upstream since the last build, with
//! the nodes that rebuilds (see [`im_exec::outdated`]); `build --refresh-bases` builds them.

use im_exec::outdated::{self, Report};
use im_plan::PlanOptions;

use super::{Context, Outcome, planning};
use crate::cli::{Format, OutdatedArgs};

pub fn run(context: &Context<'_>, args: &OutdatedArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = context.prepare_for_builds(None)?;
    printer.diagnostics(&prepared.warnings);
    let exec = context.exec_with(context.dist.clone(), false);
    let options = PlanOptions {
        targets: args.targets.clone(),
        with_deps: true,
        platforms: planning::parse_platforms(&args.platform),
        ..PlanOptions::default()
    };
    let report = check(context, &exec, &prepared, options)?;
    // What `report` shows on its outdated-bases page.
    report.record(&context.dist)?;
    match args.format {
        Format::Json => printer.json(&report)?,
        Format::Text => {
            let mut out = String::new();
            for base in &report.outdated {
                out.push_str(&format!("{}\n", base.reference));
                for moved in &base.platforms {
                    out.push_str(&format!(
                        "  {}  {} -> {}\n",
                        moved.platform, moved.was, moved.now
                    ));
                }
                out.push_str(&format!("  built on it: {}\n", base.direct.join(", ")));
                out.push_str(&format!("  rebuilds:    {}\n", base.nodes.join(", ")));
            }
            for base in &report.locked {
                out.push_str(&format!(
                    "{} (pinned in {})\n  locked {} -> now {}\n  rebuilds after `image-manager lock --update`: {}\n",
                    base.reference,
                    base.locks.join(", "),
                    base.locked,
                    base.now,
                    base.nodes.join(", ")
                ));
            }
            for source in &report.sources {
                out.push_str(&format!(
                    "{} ({} {})\n",
                    source.git, source.kind, source.reference
                ));
                if let Some(now) = &source.now {
                    out.push_str(&format!("  built {} -> now {now}\n", source.built));
                    out.push_str(&format!("  rebuilds:    {}\n", source.nodes.join(", ")));
                }
                if !source.newer_tags.is_empty() {
                    out.push_str(&format!(
                        "  newer tags:  {} (move `ref:` in {}'s image.yml)\n",
                        source.newer_tags.join(", "),
                        source.image
                    ));
                }
            }
            if !out.is_empty() {
                printer.data(out.trim_end())?;
            }
        }
    }
    Ok(if args.exit_zero {
        Outcome::Success
    } else if !report.outdated.is_empty() || !report.locked.is_empty() || !report.sources.is_empty()
    {
        Outcome::Failed
    } else if report.incomplete() {
        Outcome::Incomplete
    } else {
        Outcome::Success
    })
}

/// Checks the bases `options` selects, prints the warnings and a summary line, and returns
/// the report (`build --refresh-bases` starts here too).
pub fn check(
    context: &Context<'_>,
    exec: &im_exec::ExecContext<'_>,
    prepared: &im_exec::Prepared,
    options: PlanOptions,
) -> anyhow::Result<Report> {
    let printer = context.printer;
    let (report, bases, _) = outdated::check(exec, prepared, options)?;
    printer.diagnostics(&bases.fallbacks);
    printer.diagnostics(&bases.warnings());
    let nodes = report.nodes().len();
    if report.outdated.is_empty() {
        printer.status(
            "Up to date",
            format!(
                "no external base moved since the last build ({} checked)",
                im_exec::plural(report.checked, "base")
            ),
        );
    } else {
        printer.status(
            "Outdated",
            format!(
                "{} of {} moved since the last build: {} to rebuild (build --refresh-bases)",
                report.outdated.len(),
                im_exec::plural(report.checked, "external base"),
                im_exec::plural(nodes, "node")
            ),
        );
    }
    if !report.locked.is_empty() {
        printer.status(
            "Outdated",
            format!(
                "{} pinned by packages.lock moved on: `image-manager lock --update` moves the pins",
                im_exec::plural(report.locked.len(), "base")
            ),
        );
    }
    if !report.sources.is_empty() {
        printer.status(
            "Outdated",
            format!(
                "{} moved on upstream: {}",
                im_exec::plural(report.sources.len(), "source repository"),
                report
                    .sources
                    .iter()
                    .map(|s| s.image.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    for source in &report.unreachable_sources {
        printer.status(
            "Unchecked",
            format!("{} ({}): {}", source.git, source.image, source.error),
        );
    }
    if report.incomplete() {
        printer.status(
            "Unchecked",
            format!(
                "{}: the nodes built on them stay as they are",
                im_exec::plural(
                    report.unreachable.len() + report.failed.len(),
                    "external base"
                )
            ),
        );
    }
    Ok(report)
}
