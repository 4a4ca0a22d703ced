//! The test driver: natively, with command tests in a container runtime that is looked for
//! and probed only when some config has command tests; or the real container-structure-test.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_build::{BuilderKind, BuilderSettings, SystemLookup};
use im_diag::{Diagnostic, Diagnostics};
use im_project::{Project, Settings};
use im_structure_test::{CliRuntime, CstBackend, CstDriver, Driver, Job, Runtime, RuntimeKind};

use crate::{Environment, ExecContext, error_chain};

/// Which driver tests run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverChoice {
    /// Natively; command tests in the first runtime that can run containers here.
    Native,
    /// Natively; command tests in this runtime.
    Runtime(RuntimeKind),
    /// Everything through the real container-structure-test binary.
    Cst,
}

/// The driver for `jobs`. `project` (when there is one) gives the builders' storage settings
/// and the preferred builder, and the runtimes log to `dist/test.log`; outside a project
/// nothing is written (a failed command's error carries the end of its output). A runtime
/// passed over is a warning; none usable is an error naming each one's reason.
pub fn driver(
    exec: &ExecContext<'_>,
    choice: DriverChoice,
    project: Option<&Project>,
    jobs: &[Job],
) -> anyhow::Result<Driver> {
    let settings = project.map(|project| &project.settings);
    let default_settings = Settings::default();
    let settings = settings.unwrap_or(&default_settings);
    let log = match project {
        Some(_) => {
            fs_err::create_dir_all(&exec.dist)?;
            Some(exec.dist.join("test.log"))
        }
        None => None,
    };
    let env = &exec.environment;
    let requested = match choice {
        DriverChoice::Native => None,
        DriverChoice::Runtime(kind) => Some(kind),
        DriverChoice::Cst => {
            return Ok(Driver::Cst {
                cst: Arc::new(CstDriver::new(
                    "container-structure-test".into(),
                    CstBackend::Docker,
                    docker_env(env),
                    log.clone(),
                )),
                loader: Some(runtime(RuntimeKind::Docker, settings, env, log)),
            });
        }
    };
    if jobs.iter().all(|job| job.config.command_tests.is_empty()) {
        return Ok(Driver::Native { runtime: None });
    }
    let candidates = match requested {
        Some(kind) => vec![kind],
        None => runtime_candidates(settings, env, built_by(&exec.dist, jobs).as_deref()),
    };
    let runtime = usable_runtime(exec, &candidates, settings, log.as_deref(), "command tests")?;
    Ok(Driver::Native {
        runtime: Some(runtime),
    })
}

/// `DOCKER_HOST` for the processes that talk to Docker.
fn docker_env(env: &Environment) -> Vec<(OsString, OsString)> {
    env.docker_host
        .iter()
        .map(|host| (OsString::from("DOCKER_HOST"), OsString::from(host)))
        .collect()
}

/// The runtime command tests run in.
fn runtime(
    kind: RuntimeKind,
    settings: &Settings,
    env: &Environment,
    log: Option<PathBuf>,
) -> Arc<dyn Runtime> {
    let storage = &settings.storage;
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
        RuntimeKind::Docker => Arc::new(CliRuntime::new(
            kind,
            docker_program(),
            Vec::new(),
            docker_env(env),
            log,
        )),
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

/// A container runtime for work other than tests (`lock` reads package versions in one):
/// `requested`, else the configured builder's, Docker, podman and buildah, the first that can
/// start a container here. `purpose` names the work in messages (plural: "command tests"); `log` gets every
/// command and its output.
pub fn container_runtime(
    exec: &ExecContext<'_>,
    settings: &Settings,
    requested: Option<RuntimeKind>,
    purpose: &str,
    log: Option<&Path>,
) -> anyhow::Result<Arc<dyn Runtime>> {
    let candidates = match requested {
        Some(kind) => vec![kind],
        None => runtime_candidates(settings, &exec.environment, None),
    };
    Ok(usable_runtime(exec, &candidates, settings, log, purpose)?)
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
fn runtime_candidates(
    settings: &Settings,
    env: &Environment,
    built_by: Option<&str>,
) -> Vec<RuntimeKind> {
    let mut builder = BuilderSettings::default();
    builder.docker.host.clone_from(&env.docker_host);
    let kind_of = |name: &str| match name {
        "docker" | "docker-classic" | "buildkit" => Some(BuilderKind::Docker),
        "podman" => Some(BuilderKind::Podman),
        "buildah" => Some(BuilderKind::Buildah),
        _ => None,
    };
    let preferred = built_by
        .and_then(kind_of)
        .into_iter()
        .chain(settings.builder.as_deref().and_then(kind_of));
    let lookup = SystemLookup::new(env.path.clone());
    let mut found = Vec::new();
    for kind in preferred.chain([
        BuilderKind::Docker,
        BuilderKind::Podman,
        BuilderKind::Buildah,
    ]) {
        let runtime = match kind {
            BuilderKind::Docker => RuntimeKind::Docker,
            BuilderKind::Podman => RuntimeKind::Podman,
            _ => RuntimeKind::Buildah,
        };
        if found.contains(&runtime) {
            continue;
        }
        builder.kind = Some(kind);
        if im_build::detect(&builder, &lookup).is_ok() {
            found.push(runtime);
        }
    }
    found
}

/// The builder the ledger says built the first tested image, if it knows.
fn built_by(dist: &Path, jobs: &[Job]) -> Option<String> {
    let ledger = im_plan::Ledger::load(dist).ok()?;
    jobs.iter().find_map(|job| {
        let platform = job.target.platform.as_ref()?.to_string();
        let entry = ledger
            .nodes
            .get(&im_plan::ledger::entry_name(&job.target.label, &platform))?;
        (!entry.builder.is_empty()).then(|| entry.builder.clone())
    })
}

/// The first of `candidates` that can start a container here (each is probed with a
/// trivial one). Passing over one says why; none usable is an error naming each one's
/// reason.
fn usable_runtime(
    exec: &ExecContext<'_>,
    candidates: &[RuntimeKind],
    settings: &Settings,
    log: Option<&Path>,
    purpose: &str,
) -> Result<Arc<dyn Runtime>, Diagnostics> {
    let mut unusable: Vec<(RuntimeKind, String)> = Vec::new();
    for &kind in candidates {
        let candidate = runtime(
            kind,
            settings,
            &exec.environment,
            log.map(Path::to_path_buf),
        );
        match candidate.probe() {
            Ok(()) => {
                for (skipped, why) in &unusable {
                    exec.reporter.warning(
                        &Diagnostic::warning(format!(
                            "{} cannot run containers here: {purpose} run in {}",
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
        Diagnostic::error(format!(
            "{purpose} need a container runtime, and none was found"
        ))
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
