//! `image-manager lint`: hadolint and the own rules on the selected tags (see
//! [`im_exec::lint`]), the report printed or written whole to `--output`.

use anyhow::Context as _;
use im_diag::Diagnostic;
use im_exec::lint::{LintError, LintOptions};
use im_lint::{Format, HadolintError, Report};

use super::{Context, Outcome, plural};
use crate::cli::{LintArgs, LintFormat};

fn format(format: LintFormat) -> Format {
    match format {
        LintFormat::Tty => Format::Tty,
        LintFormat::Json => Format::Json,
        LintFormat::Sarif => Format::Sarif,
        LintFormat::Checkstyle => Format::Checkstyle,
        LintFormat::Junit => Format::Junit,
    }
}

/// How `lint` could not lint, as the input or tool problem it is (exit 2).
fn problem(error: LintError) -> anyhow::Error {
    match error {
        LintError::Targets(diagnostics) => diagnostics.into(),
        LintError::Hadolint(HadolintError::Missing) => {
            Diagnostic::error("hadolint was not found on PATH")
                .with_help(im_lint::hadolint::INSTALL)
                .into()
        }
        other => Diagnostic::error(im_diag::error_chain(&other))
            .with_help("lint needs a working hadolint: check that `hadolint --version` runs and that .hadolint.yaml is valid")
            .into(),
    }
}

fn summary(report: &Report) -> String {
    let counts = report.counts;
    format!(
        "{} ({} distinct Dockerfiles, {} of them cached): {}, {}, {} info, {} style",
        plural(report.tags, "tag"),
        report.dockerfiles,
        report.cached,
        plural(counts.error, "error"),
        plural(counts.warning, "warning"),
        counts.info,
        counts.style
    )
}

pub fn run(context: &Context<'_>, args: &LintArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = context.prepare_for_builds(args.snapshot.snapshot_id.as_deref())?;
    printer.diagnostics(&prepared.warnings);
    let options = LintOptions {
        targets: args.targets.clone(),
        jobs: args.jobs.map_or_else(
            || std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            usize::from,
        ),
        strict: args.strict,
        cache: !args.no_cache,
        registry: args.registry,
    };
    let report = match im_exec::lint::lint(&context.exec(), &prepared, &options) {
        Ok(report) => report,
        Err(LintError::Cancelled) => return Ok(Outcome::Interrupted),
        Err(error) => return Err(problem(error)),
    };
    // Remembered in dist/, when there is one, for `report` (a failure to do so is a warning).
    if context.dist.is_dir()
        && let Err(error) = im_exec::report::records::record_lint(&context.dist, &report)
    {
        printer.diagnostics([&Diagnostic::warning(format!(
            "the lint findings were not recorded for `report`: {error}"
        ))]);
    }
    let format = format(args.format);
    match &args.output {
        Some(output) => {
            let path = context.root.join(output);
            if let Some(dir) = path.parent() {
                fs_err::create_dir_all(dir)?;
            }
            // Through a temporary file: a reader never sees half a report.
            let text = im_lint::format::write(&report, format);
            im_render::output::write_atomic(&path, text.as_bytes(), None, None)
                .with_context(|| format!("writing {}", path.display()))?;
            printer.status(
                "Wrote",
                format!("{} ({})", output.display(), format.as_str()),
            );
        }
        None if format == Format::Json => printer.json(&report)?,
        None => {
            let text = im_lint::format::write(&report, format);
            if !text.is_empty() {
                printer.data(text.trim_end_matches('\n'))?;
            }
        }
    }
    if report.ok {
        printer.status("Linted", summary(&report));
        Ok(Outcome::Success)
    } else {
        printer.error(format!(
            "lint{} failed: {}",
            if report.strict { " --strict" } else { "" },
            summary(&report)
        ));
        Ok(Outcome::Failed)
    }
}
