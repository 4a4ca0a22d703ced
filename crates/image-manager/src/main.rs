//! The `image-manager` binary: parses the command line, runs one command, and turns the
//! outcome into an exit code (0 success, 1 the work failed, 2 usage or configuration error,
//! 3 part of it could not be checked).

mod cli;
mod commands;
mod env_vars;
mod interrupt;
mod printer;
mod progress;

use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

use crate::cli::Cli;
use crate::commands::Outcome;
use crate::printer::Printer;

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "image_manager=debug,im_=debug,warn",
        _ => "trace",
    };
    let filter = std::env::var(env_vars::IMAGE_MANAGER_LOG).unwrap_or_else(|_| default.to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .try_init();
}

/// The problems with the user's input an error carries, if that is what it is.
fn invalid_input(error: &anyhow::Error) -> Option<im_diag::Diagnostics> {
    error
        .downcast_ref::<im_diag::Diagnostics>()
        .cloned()
        .or_else(|| {
            error
                .downcast_ref::<im_diag::Diagnostic>()
                .cloned()
                .map(Into::into)
        })
}

fn main() -> ExitCode {
    // First, so a Ctrl-C during start-up is not lost and an inherited "ignore" is kept.
    interrupt::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    init_tracing(cli.global.verbose);
    let printer = Printer::new(&cli.global);
    let cancel = im_build::CancelToken::new();
    match commands::run(&cli, &printer, &cancel) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Ok(Outcome::Incomplete) => ExitCode::from(3),
        Err(error) => match invalid_input(&error) {
            Some(diagnostics) => {
                printer.diagnostics(&diagnostics);
                let count = diagnostics.error_count();
                printer.error(format!(
                    "{count} problem{} found; nothing was changed",
                    if count == 1 { "" } else { "s" }
                ));
                ExitCode::from(2)
            }
            None => {
                printer.error(format!("{error:#}"));
                ExitCode::from(1)
            }
        },
    }
}
