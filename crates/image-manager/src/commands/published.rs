//! How a publishing command (`push`, `build --push`, `promote`, `manifest`, `sync`) ends: the
//! summary people read or the report scripts read, and the exit outcome.

use im_exec::publish::{Report, Result_};

use super::Outcome;
use crate::cli::Format;
use crate::printer::Printer;

/// Prints the summary (text) or the report (json) and turns it into an outcome; `done` names
/// what happened to written tags (`pushed`, `copied`, ...).
pub fn finish(
    report: &Report,
    printer: &Printer,
    format: Format,
    done: &str,
) -> anyhow::Result<Outcome> {
    match format {
        Format::Json => printer.json(report)?,
        Format::Text => {
            let missing = report.count(Result_::Missing);
            printer.status(
                "Finished",
                format!(
                    "{} {done}, {} up to date, {} failed{} in {:.1}s ({})",
                    report.count(Result_::Pushed),
                    report.count(Result_::UpToDate),
                    report.count(Result_::Failed),
                    if missing > 0 {
                        format!(", {missing} missing")
                    } else {
                        String::new()
                    },
                    report.seconds,
                    report.registry,
                ),
            );
        }
    }
    Ok(outcome(report))
}

/// Interrupted, failed (a tag failed) or success.
pub fn outcome(report: &Report) -> Outcome {
    if report.interrupted {
        Outcome::Interrupted
    } else if report.count(Result_::Failed) > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    }
}
