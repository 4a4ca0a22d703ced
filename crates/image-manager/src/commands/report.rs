//! `image-manager report`: gather what is known about the project (see
//! [`im_exec::report`]), write the HTML site atomically, then optionally open it in a browser
//! or serve it on loopback until Ctrl-C.

use std::time::Instant;

use im_diag::Diagnostic;
use im_exec::registry;
use im_exec::report::{self, Gather, ReportError};

use super::{Context, Outcome, plural, service};
use crate::cli::{Format, ReportArgs};
use crate::env_vars;

pub fn run(context: &Context<'_>, args: &ReportArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let loaded = context.load()?;
    printer.diagnostics(&loaded.warnings);
    let project = loaded.project;
    let session = match &args.registry {
        Some(spec) => {
            let target = registry::named_target(&project.settings, spec)?;
            service::ensure_for(&context.root, &target.host, printer)?;
            let session = context.exec().session(&project.settings)?;
            Some((target, session))
        }
        None => None,
    };
    let name = fs_err::canonicalize(&context.root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    let site = report::gather(&Gather {
        dist: &context.dist,
        project: &project,
        name,
        registry: session.as_ref().map(|(t, s)| (t, s)),
        now: report::now(),
        targets: &args.targets,
    })
    .map_err(problem)?;
    let dir = match &args.output {
        Some(dir) => context.root.join(dir),
        None => context.dist.join("report"),
    };
    let written = report::write(&site, &dir)?;
    let index = written.dir.join("index.html");
    match args.format {
        Format::Json => printer.json(&written)?,
        Format::Text => printer.status(
            "Wrote",
            format!(
                "{} ({}, {}; largest {}) in {:.2}s: {}",
                written.dir.display(),
                plural(written.pages, "page"),
                im_exec::human_bytes(written.bytes),
                im_exec::human_bytes(written.largest.1),
                started.elapsed().as_secs_f64(),
                index.display()
            ),
        ),
    }
    if args.open {
        open(context, &index);
    }
    if let Some(addr) = args.serve {
        let exec = context.exec();
        report::serve(&written.dir, addr, &exec.cancel, &mut |bound| {
            printer.status("Serving", format!("http://{bound}/ (Ctrl-C stops)"));
        })
        .map_err(|e| Diagnostic::error(e.to_string()).with_help("use --serve 127.0.0.1:PORT"))?;
        return Ok(Outcome::Success);
    }
    Ok(Outcome::Success)
}

/// A missing or foreign index is the user's to fix (exit 2).
fn problem(error: ReportError) -> anyhow::Error {
    match error {
        ReportError::NoIndex { .. } => Diagnostic::error(error.to_string())
            .with_help("run `image-manager generate` (or `build`) first")
            .into(),
        ReportError::NoMatch { .. } | ReportError::BadTarget { .. } => {
            Diagnostic::error(error.to_string()).into()
        }
        other => other.into(),
    }
}

/// Opens `index` in a browser; no opener, or one that fails, is a warning.
fn open(context: &Context<'_>, index: &std::path::Path) {
    let path = std::env::var_os(env_vars::PATH);
    if let Err(error) = report::open(index, path.as_deref()) {
        context.printer.diagnostics([&Diagnostic::warning(format!(
            "--open: {}",
            im_diag::error_chain(&error)
        ))
        .with_help(format!("open {} in a browser", index.display()))]);
    }
}
