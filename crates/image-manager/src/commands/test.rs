//! `image-manager test`: run each tag's container-structure-test config against its built
//! image, for every platform — natively for file, content, metadata and license tests, through
//! a real runtime (Docker, podman, buildah) for command tests.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_diag::{Diagnostic, Diagnostics};
use im_structure_test::{
    CliRuntime, CstBackend, CstDriver, Driver, ImageSource, Job, Report, Runtime, RuntimeKind,
    SuiteOptions, Target, load_config, run_all,
};

use super::{Context, Outcome, plural};
use crate::cli::{Format, TestArgs, TestDriver};
use crate::env_vars;

/// The runtime command tests run in.
fn runtime(
    kind: RuntimeKind,
    project: &im_project::Project,
    log: Option<PathBuf>,
) -> Arc<dyn Runtime> {
    let storage = &project.settings.storage;
    let mut global: Vec<OsString> = Vec::new();
    if let Some(driver) = &storage.driver {
        global.extend(["--storage-driver".into(), driver.into()]);
    }
    if let Some(root) = &storage.root {
        global.extend(["--root".into(), root.into()]);
    }
    if let Some(runroot) = &storage.runroot {
        global.extend(["--runroot".into(), runroot.into()]);
    }
    match kind {
        RuntimeKind::Docker => {
            let env = std::env::var_os(env_vars::DOCKER_HOST)
                .map(|host| vec![(OsString::from(env_vars::DOCKER_HOST), host)])
                .unwrap_or_default();
            Arc::new(CliRuntime::new(
                kind,
                docker_program(),
                Vec::new(),
                env,
                log,
            ))
        }
        RuntimeKind::Podman => Arc::new(
            CliRuntime::new(kind, "podman".into(), global, Vec::new(), log)
                .with_run_args(vec!["--network=host".into()]),
        ),
        RuntimeKind::Buildah => Arc::new(CliRuntime::new(
            kind,
            "buildah".into(),
            global,
            Vec::new(),
            log,
        )),
    }
}

/// Debian's client (20.10) loads archives into the engine; a newer client without buildx
/// works too for `load` and `run`.
fn docker_program() -> PathBuf {
    let debian = Path::new("/usr/bin/docker");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("docker")
    }
}

/// The runtimes command tests may use, best first: the builder that made the images (from
/// the ledger), the configured builder, then Docker (when its daemon answers), podman and
/// buildah, each only when it is installed.
fn runtime_candidates(project: &im_project::Project, built_by: Option<&str>) -> Vec<RuntimeKind> {
    let mut settings = im_build::BuilderSettings::default();
    settings.docker.host = std::env::var(env_vars::DOCKER_HOST).ok();
    let kind_of = |name: &str| match name {
        "docker" | "docker-classic" | "buildkit" => Some(im_build::BuilderKind::Docker),
        "podman" => Some(im_build::BuilderKind::Podman),
        "buildah" => Some(im_build::BuilderKind::Buildah),
        _ => None,
    };
    let preferred = built_by
        .and_then(kind_of)
        .into_iter()
        .chain(project.settings.builder.as_deref().and_then(kind_of));
    let lookup = im_build::SystemLookup::new(std::env::var_os(env_vars::PATH));
    let mut found = Vec::new();
    for kind in preferred.chain([
        im_build::BuilderKind::Docker,
        im_build::BuilderKind::Podman,
        im_build::BuilderKind::Buildah,
    ]) {
        let runtime = match kind {
            im_build::BuilderKind::Docker => RuntimeKind::Docker,
            im_build::BuilderKind::Podman => RuntimeKind::Podman,
            _ => RuntimeKind::Buildah,
        };
        if found.contains(&runtime) {
            continue;
        }
        settings.kind = Some(kind);
        if im_build::detect(&settings, &lookup).is_ok() {
            found.push(runtime);
        }
    }
    found
}

/// The first of `candidates` that can start a container here (each is probed with a
/// trivial one). Passing over one says why; none usable is an error naming each one's
/// reason.
fn usable_runtime(
    printer: &crate::printer::Printer,
    candidates: &[RuntimeKind],
    project: &im_project::Project,
    log: Option<&Path>,
) -> Result<Arc<dyn Runtime>, Diagnostics> {
    let mut unusable: Vec<(RuntimeKind, String)> = Vec::new();
    for &kind in candidates {
        let candidate = runtime(kind, project, log.map(Path::to_path_buf));
        match candidate.probe() {
            Ok(()) => {
                for (skipped, why) in &unusable {
                    printer.diagnostic(
                        &Diagnostic::warning(format!(
                            "{} cannot run containers here: command tests run in {}",
                            skipped.name(),
                            kind.name()
                        ))
                        .with_note(why.clone()),
                    );
                }
                return Ok(candidate);
            }
            Err(error) => unusable.push((kind, error_chain(&error))),
        }
    }
    let mut diagnostic = if candidates.is_empty() {
        Diagnostic::error("command tests need a container runtime, and none was found")
    } else {
        let names: Vec<&str> = candidates.iter().map(|k| k.name()).collect();
        Diagnostic::error(format!(
            "runtime unusable: {} cannot run containers here",
            names.join(", ")
        ))
    };
    for (kind, why) in unusable {
        diagnostic = diagnostic.with_note(format!("{}: {why}", kind.name()));
    }
    Err(diagnostic
        .with_help(
            "install docker.io (and start dockerd), podman or buildah where containers can run, \
             or pick a working one with --driver",
        )
        .into())
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The driver; runtimes are looked for and probed only when some config has command tests.
fn driver(
    context: &Context<'_>,
    args: &TestArgs,
    project: &im_project::Project,
    jobs: &[Job],
    log: Option<&Path>,
) -> Result<Driver, Diagnostics> {
    let requested = match args.driver {
        TestDriver::Native => None,
        TestDriver::Docker => Some(RuntimeKind::Docker),
        TestDriver::Podman => Some(RuntimeKind::Podman),
        TestDriver::Buildah => Some(RuntimeKind::Buildah),
        TestDriver::Cst => {
            let env = std::env::var_os(env_vars::DOCKER_HOST)
                .map(|host| vec![(OsString::from(env_vars::DOCKER_HOST), host)])
                .unwrap_or_default();
            let log = log.map(Path::to_path_buf);
            return Ok(Driver::Cst {
                cst: Arc::new(CstDriver::new(
                    "container-structure-test".into(),
                    CstBackend::Docker,
                    env,
                    log.clone(),
                )),
                loader: Some(runtime(RuntimeKind::Docker, project, log)),
            });
        }
    };
    if jobs.iter().all(|job| job.config.command_tests.is_empty()) {
        return Ok(Driver::Native { runtime: None });
    }
    let candidates = match requested {
        Some(kind) => vec![kind],
        None => runtime_candidates(project, built_by(context, jobs).as_deref()),
    };
    let runtime = usable_runtime(context.printer, &candidates, project, log)?;
    Ok(Driver::Native {
        runtime: Some(runtime),
    })
}

/// The builder the ledger says built the first tested image, if it knows.
fn built_by(context: &Context<'_>, jobs: &[Job]) -> Option<String> {
    let ledger = im_plan::Ledger::load(&context.dist).ok()?;
    jobs.iter().find_map(|job| {
        let platform = job.target.platform.as_ref()?.to_string();
        let entry = ledger
            .nodes
            .get(&im_plan::ledger::entry_name(&job.target.label, &platform))?;
        (!entry.builder.is_empty()).then(|| entry.builder.clone())
    })
}

/// One `--config FILE --image TAR` run, as container-structure-test does it.
fn direct_jobs(args: &TestArgs, config: &Path, image: &Path) -> Result<Vec<Job>, Diagnostics> {
    let loaded = load_config(config).map_err(|error| config_error(&error))?;
    let platform = platform_arg(args)?;
    Ok(vec![Job {
        config: Arc::new(loaded),
        config_path: config.to_path_buf(),
        target: Target {
            label: image.display().to_string(),
            source: ImageSource::Archive {
                path: image.to_path_buf(),
                tag: None,
            },
            platform,
        },
    }])
}

fn platform_arg(args: &TestArgs) -> Result<Option<im_oci::Platform>, Diagnostics> {
    match args.platform.as_slice() {
        [] => Ok(None),
        [one] => one.parse().map(Some).map_err(|_| {
            Diagnostic::error(format!("--platform: `{one}` is not a platform")).into()
        }),
        _ => Err(Diagnostic::error("--platform takes one platform with --image").into()),
    }
}

fn config_error(error: &im_structure_test::ConfigError) -> Diagnostics {
    match error {
        im_structure_test::ConfigError::Invalid { diagnostics } => diagnostics.clone(),
        other @ im_structure_test::ConfigError::Read { .. } => {
            Diagnostic::error(other.to_string()).into()
        }
    }
}

/// Whether `text` names an image in a registry rather than a file (`host[:port]/repo:tag`,
/// or `repo:tag` in the project's default registry).
fn is_reference(text: &str) -> bool {
    !Path::new(text).exists() && text.contains(':')
}

/// Downloads the image `reference` names (for `--platform`, else this machine's) into a
/// temporary OCI archive, verified blob by blob, so it can be tested like a built one.
fn fetch_reference(
    context: &Context<'_>,
    args: &TestArgs,
    text: &str,
) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let settings = im_project::Settings::load(&context.root, &env_vars::lookup).unwrap_or_default();
    let has_host = text
        .split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost");
    let full = match (has_host, crate::registry::default_target(&settings)) {
        (false, Ok(target)) => format!("{}/{text}", target.url()),
        _ => text.to_owned(),
    };
    let reference: im_registry::Reference = full.parse().map_err(|error| {
        anyhow::anyhow!("`{text}` is neither a file nor an image reference: {error}")
    })?;
    let platform: im_oci::Platform = match args.platform.as_slice() {
        [one] => one
            .parse()
            .map_err(|_| anyhow::anyhow!("--platform: `{one}` is not a platform"))?,
        _ => im_oci::Platform::host(),
    };
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("image.tar");
    let session = crate::registry::Session::new(&settings)?;
    context
        .printer
        .status("Fetching", format!("{reference} ({platform})"));
    session.run(crate::registry::fetch_archive(
        session.client(),
        &reference,
        &platform,
        &archive,
        &reference.to_string(),
    ))?;
    Ok((dir, archive))
}

pub fn run(context: &Context<'_>, args: &TestArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let mut _fetched = None;
    let (jobs, project) = match (&args.config, &args.image) {
        (Some(config), Some(image)) => {
            let mut image = image.clone();
            if let Some(text) = image.to_str().filter(|text| is_reference(text)) {
                let (dir, archive) = fetch_reference(context, args, text)?;
                _fetched = Some(dir);
                image = archive;
            }
            match direct_jobs(args, config, &image) {
                Ok(jobs) => (jobs, context.load().ok().map(|loaded| loaded.project)),
                Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            return Ok(Outcome::Invalid(
                Diagnostic::error("--config and --image go together")
                    .with_help("pass both to test one image, or neither to test the project")
                    .into(),
            ));
        }
        (None, None) => {
            let prepared = match context.prepare(args.snapshot.snapshot_id.as_deref()) {
                Ok(prepared) => prepared,
                Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
            };
            // The test configs live in dist/: write what is current first, as build does.
            let dist_name = context
                .dist
                .strip_prefix(&context.root)
                .unwrap_or(&context.dist)
                .to_path_buf();
            let lock = super::lock::dist(context)?;
            im_render::dist::write(
                &context.dist,
                &prepared.rendered.tags,
                || prepared.index(&dist_name),
                None,
            )
            .map_err(|error| anyhow::anyhow!("writing {}: {error}", context.dist.display()))?;
            drop(lock);
            match project_jobs(context, &prepared, args) {
                Ok(jobs) => (jobs, Some(prepared.project)),
                Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
            }
        }
    };
    if jobs.is_empty() {
        printer.status("Tested", "nothing: no selected tag has a test config");
        return Ok(Outcome::Success);
    }
    let fallback;
    let project_ref = match &project {
        Some(project) => project,
        None => {
            fallback = im_project::Project {
                root: context.root.clone(),
                settings: im_project::Settings::default(),
                files: Vec::new(),
                images: Vec::new(),
            };
            &fallback
        }
    };
    // The runtimes' log goes to dist/ in a project; outside one nothing is written (a
    // failed command's error carries the end of its output).
    let log = match &project {
        Some(_) => {
            fs_err::create_dir_all(&context.dist)?;
            Some(context.dist.join("test.log"))
        }
        None => None,
    };
    let driver = match driver(context, args, project_ref, &jobs, log.as_deref()) {
        Ok(driver) => driver,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
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
    for output in &args.output {
        write_output(output, &report)?;
    }
    match args.format {
        Format::Json => printer.data(report.to_json())?,
        Format::Text => print_report(printer, &report),
    }
    Ok(if report.ok() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn project_jobs(
    context: &Context<'_>,
    prepared: &super::Prepared,
    args: &TestArgs,
) -> Result<Vec<Job>, Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, &args.targets)?;
    let platforms = super::planning::parse_platforms(&args.platform)?;
    let mut jobs = Vec::new();
    let mut missing = Diagnostics::new();
    let by_id: std::collections::HashMap<(&str, &str), &im_render::RenderedTag> = prepared
        .rendered
        .tags
        .iter()
        .map(|t| ((t.image.as_str(), t.tag.as_str()), t))
        .collect();
    for node in selected {
        let id = &prepared.graph.nodes[node];
        let Some(rendered) = by_id.get(&(id.image.as_str(), id.tag.as_str())).copied() else {
            continue;
        };
        if rendered.test.is_none() {
            continue;
        }
        let Some(tag) = prepared
            .project
            .image(&id.image)
            .and_then(|image| image.tag(&id.tag))
        else {
            continue;
        };
        let dir = context.dist.join(&id.image).join(&id.tag);
        let config_path = dir.join("test.yml");
        if !config_path.is_file() {
            missing.push(
                Diagnostic::error(format!(
                    "{id} has a test config, but {} does not exist",
                    config_path.display()
                ))
                .with_help("run `image-manager generate` (or `build`) first"),
            );
            continue;
        }
        let config = match load_config(&config_path) {
            Ok(config) => Arc::new(config),
            Err(error) => {
                for diagnostic in config_error(&error) {
                    missing.push(diagnostic.with_note(format!(
                            "{} is rendered from {}",
                            config_path.display(),
                            rendered
                                .test
                                .as_ref()
                                .map_or_else(String::new, |(_, found)| found
                                    .path
                                    .display()
                                    .to_string())
                        )));
                }
                continue;
            }
        };
        for platform in platforms.clone().unwrap_or_else(|| tag.platforms.clone()) {
            let archive = dir.join(platform.slug()).join("image.tar");
            if !archive.is_file() {
                missing.push(
                    Diagnostic::error(format!(
                        "{id} is not built for {platform} ({} is missing)",
                        archive.display()
                    ))
                    .with_help(format!(
                        "run `image-manager build {id} --platform {platform}` first"
                    )),
                );
                continue;
            }
            jobs.push(Job {
                config: config.clone(),
                config_path: config_path.clone(),
                target: Target {
                    // The platform is the report's own field: `display_name` adds it.
                    label: id.to_string(),
                    source: ImageSource::Archive {
                        path: archive,
                        tag: None,
                    },
                    platform: Some(platform.clone()),
                },
            });
        }
    }
    if missing.has_errors() {
        Err(missing)
    } else {
        Ok(jobs)
    }
}

fn write_output(spec: &str, report: &Report) -> anyhow::Result<()> {
    let (kind, path) = spec
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--output {spec}: write junit:FILE or json:FILE"))?;
    let text = match kind {
        "junit" => report.to_junit(),
        "json" => report.to_json(),
        other => anyhow::bail!("--output {spec}: unknown kind `{other}` (junit or json)"),
    };
    let path = Path::new(path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(path, text)?;
    Ok(())
}

fn print_report(printer: &crate::printer::Printer, report: &Report) {
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
