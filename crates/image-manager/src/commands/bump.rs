//! `image-manager bump LEVEL TARGET`: raise a tag's version in its `image.yml` (and with
//! `--cascade` the patch version of every tag built on it), print the diff, write atomically
//! (see [`im_exec::bump`]).

use im_exec::bump::{self, ApplyError, Request};
use im_project::version::Level;
use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::{BumpArgs, BumpLevel, Format};

#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    bump: &'a bump::Bump,
    written: bool,
}

pub fn run(context: &Context<'_>, args: &BumpArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = context.prepare_for_builds(None)?;
    let level = match args.level {
        BumpLevel::Patch => Level::Patch,
        BumpLevel::Minor => Level::Minor,
        BumpLevel::Major => Level::Major,
    };
    let planned = bump::plan(
        &prepared,
        &Request {
            target: &args.target,
            level,
            cascade: args.cascade,
        },
    )?;
    drop(prepared);
    if !args.dry_run {
        match planned.apply(|| context.prepare_for_builds(None).map(drop)) {
            Ok(()) => {}
            Err(ApplyError::Invalid(diagnostics)) => {
                printer.info(
                    "With the new tags the project does not load, so every file was put back:",
                );
                return Err(diagnostics.into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    let verb = if args.dry_run { "Would bump" } else { "Bumped" };
    for change in &planned.changes {
        let why = match &change.cause {
            bump::Cause::Target => String::new(),
            bump::Cause::Cascade { from } => format!(", built on {from}"),
        };
        printer.status(
            verb,
            format!(
                "{}:{} to {} ({}:{}{why})",
                change.image, change.from, change.to, change.file, change.line
            ),
        );
    }
    match args.format {
        Format::Json => printer.json(&Report {
            bump: &planned,
            written: !args.dry_run,
        })?,
        Format::Text => {
            let diff: String = planned
                .files
                .iter()
                .map(|file| file.diff.as_str())
                .collect();
            printer.data(diff.trim_end())?;
        }
    }
    Ok(Outcome::Success)
}
