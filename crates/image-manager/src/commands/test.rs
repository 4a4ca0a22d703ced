//! `image-manager test`: run each tag's container-structure-test config against its built
//! image, for every platform — natively for file, content, metadata and license tests, through
//! a real runtime (Docker, podman, buildah) for command tests (see [`im_exec::test`]).

use std::path::Path;

use im_diag::{Diagnostic, Diagnostics};
use im_exec::test::{self, DriverChoice, ReportFormat};
use im_structure_test::{Report, RuntimeKind, SuiteOptions, run_all};

use super::{Context, Outcome, planning, plural};
use crate::cli::{Format, TestArgs, TestDriver};
use crate::env_vars;
use crate::printer::Printer;

pub fn run(context: &Context<'_>, args: &TestArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let mut _fetched = None;
    let (jobs, project) = match (&args.config, &args.image) {
        (Some(config), Some(image)) => {
            let mut image = image.clone();
            if let Some(text) = image.to_str().filter(|text| test::is_reference(text)) {
                let settings = im_project::Settings::load(&context.root, &env_vars::lookup)
                    .unwrap_or_default();
                let platform = match args.platform.as_slice() {
                    [one] => Some(one),
                    _ => None,
                };
                let fetched = test::fetch_reference(&context.exec(), &settings, text, platform)?;
                image.clone_from(&fetched.archive);
                _fetched = Some(fetched);
            }
            let jobs = test::direct_jobs(config, &image, platform_arg(args)?)?;
            (jobs, context.load().ok().map(|loaded| loaded.project))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Diagnostic::error("--config and --image go together")
                .with_help("pass both to test one image, or neither to test the project")
                .into());
        }
        (None, None) => {
            let prepared = context.prepare(args.snapshot.snapshot_id.as_deref())?;
            // The test configs live in dist/: write what is current first, as build does.
            let lock = super::dist_lock::dist(context)?;
            prepared.write_dist(&context.dist, &context.dist_name(), None)?;
            drop(lock);
            let platforms = planning::parse_platforms(&args.platform);
            let jobs = test::project_jobs(
                &context.dist,
                &prepared,
                &args.targets,
                platforms.as_deref(),
            )?;
            (jobs, Some(prepared.project))
        }
    };
    // `containerRunOptions.envVars` names variables of this environment.
    let jobs: Vec<_> = jobs
        .into_iter()
        .map(|mut job| {
            if !job.config.run_options.host_env_vars.is_empty() {
                job.config =
                    std::sync::Arc::new((*job.config).clone().with_host_env(env_vars::lookup));
            }
            job
        })
        .collect();
    if jobs.is_empty() {
        printer.status("Tested", "nothing: no selected tag has a test config");
        return Ok(Outcome::Success);
    }
    let choice = match args.driver {
        TestDriver::Native => DriverChoice::Native,
        TestDriver::Docker => DriverChoice::Runtime(RuntimeKind::Docker),
        TestDriver::Podman => DriverChoice::Runtime(RuntimeKind::Podman),
        TestDriver::Buildah => DriverChoice::Runtime(RuntimeKind::Buildah),
        TestDriver::Cst => DriverChoice::Cst,
    };
    let mut exec = context.exec_with(context.dist.clone(), false);
    let docker_runtime = match choice {
        DriverChoice::Runtime(RuntimeKind::Docker) | DriverChoice::Cst => true,
        DriverChoice::Native => {
            project.as_ref().and_then(|p| p.settings.builder.as_deref()) == Some("docker")
                && jobs.iter().any(|job| !job.config.command_tests.is_empty())
        }
        DriverChoice::Runtime(_) => false,
    };
    if docker_runtime && exec.environment.docker_host.is_none() {
        // The proof of concept's isolation: command tests in a Docker daemon of their own.
        exec.environment.docker_host = super::service::dind_for_tests(&context.root, printer)?;
    }
    let driver = test::driver(&exec, choice, project.as_ref(), &jobs)?;
    printer.status(
        "Testing",
        format!(
            "{} with {}",
            plural(jobs.len(), "image"),
            args.driver.as_str()
        ),
    );
    let mut options = SuiteOptions::default();
    if let Some(jobs) = args.jobs {
        options.image_jobs = jobs.max(1);
    }
    if let Some(seconds) = args.timeout {
        options.command_timeout = std::time::Duration::from_secs(seconds);
    }
    let report = run_all(&jobs, &driver, &options);
    // A project run is remembered in dist/ for `report` (a failure to do so is a warning).
    if args.config.is_none()
        && let Err(error) =
            im_exec::report::records::record_tests(&context.dist, &report, im_exec::report::now())
    {
        printer.diagnostics([&Diagnostic::warning(format!(
            "the test results were not recorded for `report`: {error}"
        ))]);
    }
    for output in &args.output {
        let (format, path) = output_arg(output)?;
        test::write_report(&report, format, path)?;
    }
    match args.format {
        Format::Json => printer.data(report.to_json())?,
        Format::Text => print_report(printer, &report),
    }
    super::summary::append(context, &super::summary::test(&report));
    Ok(if report.ok() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// The platform of `--image`: at most one.
fn platform_arg(args: &TestArgs) -> Result<Option<im_oci::Platform>, Diagnostics> {
    match args.platform.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        _ => Err(Diagnostic::error("--platform takes one platform with --image").into()),
    }
}

/// `--output junit:FILE` or `json:FILE`.
fn output_arg(spec: &str) -> anyhow::Result<(ReportFormat, &Path)> {
    let (kind, path) = spec
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--output {spec}: write junit:FILE or json:FILE"))?;
    let format = match kind {
        "junit" => ReportFormat::Junit,
        "json" => ReportFormat::Json,
        other => anyhow::bail!("--output {spec}: unknown kind `{other}` (junit or json)"),
    };
    Ok((format, Path::new(path)))
}

fn print_report(printer: &Printer, report: &Report) {
    for image in &report.images {
        let failed = image.results.iter().filter(|r| !r.pass).count();
        let verdict = if image.ok() { "Passed" } else { "Failed" };
        printer.status(
            verdict,
            format!(
                "{}: {} passed, {} failed in {:.2}s",
                image.display_name(),
                image.results.len() - failed,
                failed,
                image.duration.as_secs_f64()
            ),
        );
        if let Some(error) = &image.error {
            printer.error(format!("{}: {error}", image.display_name()));
        }
        for result in image.results.iter().filter(|r| !r.pass) {
            let mut text = format!(
                "  FAIL {} ({:.2}s)",
                result.full_name(),
                result.duration.as_secs_f64()
            );
            for failure in &result.failures {
                text.push_str(&format!("\n       {}", failure.message));
                if let Some(expected) = &failure.expected {
                    text.push_str(&format!("\n       expected: {expected}"));
                }
                if let Some(found) = &failure.found {
                    text.push_str(&format!(
                        "\n       found:    {}",
                        found
                            .lines()
                            .take(10)
                            .collect::<Vec<_>>()
                            .join("\n                 ")
                    ));
                }
            }
            printer.info(text);
        }
    }
    printer.info(format!(
        "{} passed, {} failed",
        report.passed(),
        report.failed()
    ));
}
