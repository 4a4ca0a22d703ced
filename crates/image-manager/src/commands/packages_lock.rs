//! `image-manager lock [targets]`: writes (or with `--check`, checks) each image's
//! `packages.lock` (see [`im_exec::lock::command`]).

use std::collections::BTreeSet;

use im_exec::lock::command::{LockOptions, LockReport, Mode, lock};
use im_structure_test::RuntimeKind;

use super::{Context, Outcome, plural};
use crate::cli::{Format, LockArgs, LockRuntime};

pub fn run(context: &Context<'_>, args: &LockArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = im_exec::Prepared::new(
        &context.root,
        &crate::env_vars::lookup,
        im_render::Options {
            skip_tests: true,
            skip_locks: true,
            ..im_render::Options::default()
        },
    )?;
    printer.diagnostics(&prepared.warnings);
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, &args.targets)?;
    let images: BTreeSet<String> = if args.targets.is_empty() {
        BTreeSet::new()
    } else {
        selected
            .iter()
            .map(|&node| prepared.graph.nodes[node].image.clone())
            .collect()
    };
    let options = LockOptions {
        mode: if args.check {
            Mode::Check
        } else if args.update {
            Mode::Update
        } else {
            Mode::Write
        },
        images,
        runtime: args.runtime.map(|runtime| match runtime {
            LockRuntime::Docker => RuntimeKind::Docker,
            LockRuntime::Podman => RuntimeKind::Podman,
            LockRuntime::Buildah => RuntimeKind::Buildah,
        }),
        generator: format!("image-manager {}", env!("CARGO_PKG_VERSION")),
    };
    let exec = context.exec();
    let report = lock(&exec, &prepared, &options)?;
    match args.format {
        Format::Json => printer.json(&report)?,
        Format::Text => print(context, &report, options.mode),
    }
    Ok(if options.mode == Mode::Check && report.stale() {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

fn print(context: &Context<'_>, report: &LockReport, mode: Mode) {
    let printer = context.printer;
    for file in &report.files {
        let packages: usize = file.bases.iter().map(|b| b.packages).sum();
        let verb = match file.status {
            "created" => "Created",
            "updated" => "Updated",
            "unchanged" => "Unchanged",
            "current" => "Current",
            _ => "Stale",
        };
        printer.status(
            verb,
            format!(
                "{} ({}, {})",
                file.path,
                plural(file.bases.len(), "base"),
                plural(packages, "package")
            ),
        );
        for problem in &file.problems {
            printer.status("", format!("  {problem}"));
        }
    }
    if report.files.is_empty() {
        printer.status(
            "Finished",
            "no Dockerfile installs packages: nothing to lock",
        );
    } else if mode == Mode::Check {
        if report.stale() {
            printer.status("Stale", "run `image-manager lock` and commit the locks");
        }
    } else {
        printer.status(
            "Finished",
            format!(
                "{} read in {}",
                plural(report.files.len(), "lock"),
                plural(report.containers, "container")
            ),
        );
    }
}
