//! `image-manager sbom [targets]`: an SBOM of every selected built platform image, made by
//! syft next to its archive, several at once, skipping images whose SBOM is current (see
//! [`im_exec::sbom`]).

use im_exec::sbom::{SbomOptions, SbomResult, make_sboms};
use im_sbom::SbomFormat;

use super::{Context, Outcome, planning, plural};
use crate::cli::{Format, SbomArgs, SbomFormatArg};

pub fn run(context: &Context<'_>, args: &SbomArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = context.prepare_for_builds(args.snapshot.snapshot_id.as_deref())?;
    printer.diagnostics(&prepared.warnings);
    let format = match args.format {
        SbomFormatArg::Cyclonedx => SbomFormat::CycloneDxJson,
        SbomFormatArg::Spdx => SbomFormat::SpdxJson,
        SbomFormatArg::Syft => SbomFormat::SyftJson,
    };
    let options = SbomOptions {
        format,
        jobs: args
            .jobs
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
            })
            .max(1),
        force: args.force,
    };
    let platforms = planning::parse_platforms(&args.platform);
    let _lock = super::dist_lock::dist(context)?;
    let exec = context.exec();
    let report = make_sboms(
        &exec,
        &prepared,
        &args.targets,
        platforms.as_deref(),
        options,
    )?;
    match args.report {
        Format::Json => printer.json(&report)?,
        Format::Text => printer.status(
            "Finished",
            format!(
                "{} made, {} up to date, {} failed in {:.1}s ({format})",
                plural(report.count(SbomResult::Made), "SBOM"),
                report.count(SbomResult::UpToDate),
                report.count(SbomResult::Failed),
                report.seconds,
            ),
        ),
    }
    Ok(if report.interrupted {
        Outcome::Interrupted
    } else if report.count(SbomResult::Failed) > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}
