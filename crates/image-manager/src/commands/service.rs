//! `image-manager start|stop|status [registry|garage|buildkitd|dind|all]`: the local services
//! for development (see [`im_services`]), each on a loopback address with its configuration,
//! data, log and state under `<project>/.image-manager/<service>/`. `push` starts the
//! registry and `build` the project's Garage by themselves; `BUILDKIT_HOST` / `DOCKER_HOST`
//! mean "use that daemon": `start` leaves buildkitd / dind alone then.

use std::path::Path;

use im_services::{Runner, Service as _, ServiceStatus, Stopped};

use super::{Context, Outcome};
use crate::cli::{Format, Service, ServiceArgs, StatusArgs};
use crate::env_vars;
use crate::printer::Printer;

/// Starts the local registry when `host` is its address and nothing answers there yet
/// (`push` to `127.0.0.1:5050` just works).
pub fn ensure_for(root: &Path, host: &str, printer: &Printer) -> anyhow::Result<()> {
    let Ok(registry) = env_vars::local_registry() else {
        return Ok(());
    };
    if !registry.serves(host) {
        return Ok(());
    }
    if let Some(status) = env_vars::services(root).ensure(&registry)? {
        printer.status("Started", describe(&status));
    }
    Ok(())
}

/// Starts the project's Garage when `start garage` set it up before (its credentials are
/// there) and it is stopped: builds use it as their S3 layer cache.
pub fn ensure_garage(root: &Path, printer: &Printer) -> anyhow::Result<()> {
    if im_services::garage::Credentials::read(root).is_none() {
        return Ok(());
    }
    let garage = make(Service::Garage)?;
    if let Some(status) = env_vars::services(root).ensure(garage.as_ref())? {
        printer.status(
            "Started",
            format!("{} (the layer cache)", describe(&status)),
        );
    }
    Ok(())
}

/// `DOCKER_HOST` of the isolated Docker daemon `test` runs command tests in (started when it
/// is stopped), or none when dockerd is not installed (the machine's Docker is used then).
pub fn dind_for_tests(root: &Path, printer: &Printer) -> anyhow::Result<Option<String>> {
    if !installed(Service::Dind) {
        tracing::info!("dockerd is not installed: command tests use the machine's Docker");
        return Ok(None);
    }
    let dind = dind()?;
    if let Some(status) = env_vars::services(root).ensure(&dind)? {
        printer.status(
            "Started",
            format!("{} (an isolated Docker for the tests)", describe(&status)),
        );
    }
    Ok(Some(dind.docker_host()))
}

/// `BUILDKIT_HOST` of the project's buildkitd for the buildkit builder (started when it is
/// stopped), or none when buildkitd is not installed (buildctl's default address then).
pub fn buildkitd_for_build(root: &Path, printer: &Printer) -> anyhow::Result<Option<String>> {
    if !installed(Service::Buildkitd) {
        return Ok(None);
    }
    let buildkitd = buildkitd()?;
    if let Some(status) = env_vars::services(root).ensure(&buildkitd)? {
        printer.status("Started", format!("{} (the builder)", describe(&status)));
    }
    Ok(Some(buildkitd.buildkit_host()))
}

/// The project's buildkitd, the local registry reachable over HTTP.
fn buildkitd() -> anyhow::Result<im_services::Buildkitd> {
    let registry = env_vars::local_registry()?;
    Ok(im_services::Buildkitd::new(
        env_vars::service_addr(
            env_vars::IMAGE_MANAGER_BUILDKITD_ADDR,
            im_services::Buildkitd::DEFAULT_ADDR,
        )?,
        vec![registry.addr().to_string()],
    ))
}

fn dind() -> anyhow::Result<im_services::Dind> {
    Ok(im_services::Dind::new(env_vars::service_addr(
        env_vars::IMAGE_MANAGER_DIND_ADDR,
        im_services::Dind::DEFAULT_ADDR,
    )?))
}

/// The service behind a name.
fn make(service: Service) -> anyhow::Result<Box<dyn im_services::Service>> {
    Ok(match service {
        Service::Registry | Service::All => Box::new(env_vars::local_registry()?),
        Service::Garage => Box::new(im_services::Garage::new(env_vars::service_addr(
            env_vars::IMAGE_MANAGER_GARAGE_ADDR,
            im_services::Garage::DEFAULT_ADDR,
        )?)),
        Service::Buildkitd => Box::new(buildkitd()?),
        Service::Dind => Box::new(dind()?),
    })
}

/// The services a command names: one, or all of them.
fn named(service: Option<Service>) -> Vec<Service> {
    match service {
        None | Some(Service::All) => vec![
            Service::Registry,
            Service::Garage,
            Service::Buildkitd,
            Service::Dind,
        ],
        Some(one) => vec![one],
    }
}

/// Why `start` leaves a service alone: an external daemon is configured.
fn external(service: Service) -> Option<&'static str> {
    match service {
        Service::Buildkitd if env_vars::is_set(env_vars::BUILDKIT_HOST) => Some("BUILDKIT_HOST"),
        Service::Dind if env_vars::is_set(env_vars::DOCKER_HOST) => Some("DOCKER_HOST"),
        _ => None,
    }
}

/// Whether what runs `service` is installed (for `start` with no name).
fn installed(service: Service) -> bool {
    let path = std::env::var_os(env_vars::PATH);
    let on_path = |program: &str| im_build::command::which(program, path.as_deref()).is_some();
    match service {
        Service::Registry | Service::All => {
            on_path("docker-registry") || on_path("registry") || on_path("docker")
        }
        Service::Garage => on_path("garage"),
        Service::Buildkitd => on_path("buildkitd"),
        Service::Dind => on_path("dockerd"),
    }
}

fn describe(status: &ServiceStatus) -> String {
    let how = match (status.runner, status.pid, status.container.as_deref()) {
        (Some(Runner::Process), Some(pid), _) => format!(
            "pid {pid}, {}",
            status.program.as_deref().unwrap_or_default()
        ),
        (Some(Runner::Docker), _, Some(name)) => format!("container {name}"),
        _ => "not started by image-manager".to_owned(),
    };
    format!("{} on {} ({how})", status.service, status.address)
}

fn print(printer: &Printer, format: Format, statuses: &[ServiceStatus]) -> anyhow::Result<()> {
    match format {
        Format::Json => printer.json(&statuses)?,
        Format::Text => {
            let mut out = String::new();
            for status in statuses {
                if status.running {
                    out.push_str(&format!(
                        "{}  running  {}\n",
                        status.service,
                        describe(status)
                    ));
                    if status.managed {
                        out.push_str(&format!(
                            "  data  {}\n  log   {}\n",
                            status.data, status.log
                        ));
                    }
                } else {
                    out.push_str(&format!(
                        "{}  stopped  (would listen on {})\n",
                        status.service, status.address
                    ));
                }
            }
            printer.data(out.trim_end())?;
        }
    }
    Ok(())
}

/// `image-manager start [SERVICE]`.
pub fn run_start(context: &Context<'_>, args: &ServiceArgs) -> anyhow::Result<Outcome> {
    let services = env_vars::services(&context.root);
    let mut statuses = Vec::new();
    for name in named(args.service) {
        if let Some(variable) = external(name) {
            context.printer.info(format!(
                "{variable} is set: using that daemon, not starting {}",
                make(name)?.name()
            ));
            continue;
        }
        if args.service.is_none() && !installed(name) {
            tracing::info!("{} is not installed; not starting it", make(name)?.name());
            continue;
        }
        let service = make(name)?;
        let (status, started) = services.start(service.as_ref())?;
        let verb = if started { "Started" } else { "Running" };
        context.printer.status(verb, describe(&status));
        statuses.push(status);
    }
    if args.format == Format::Json {
        print(context.printer, args.format, &statuses)?;
    }
    Ok(Outcome::Success)
}

/// `image-manager stop [SERVICE]`.
pub fn run_stop(context: &Context<'_>, args: &ServiceArgs) -> anyhow::Result<Outcome> {
    let services = env_vars::services(&context.root);
    let mut statuses = Vec::new();
    for name in named(args.service) {
        let service = make(name)?;
        let label = service.name();
        match services.stop(service.as_ref())? {
            Stopped::Stopped => context.printer.status("Stopped", label),
            Stopped::Foreign => context.printer.info(format!(
                "the {label} on {} was not started by image-manager for this project; leaving it alone",
                service.addr()
            )),
            Stopped::NotRunning if args.service.is_some() => context
                .printer
                .status("Stopped", format!("{label} (it was not running)")),
            Stopped::NotRunning => {}
        }
        statuses.push(services.status(service.as_ref())?);
    }
    if args.format == Format::Json {
        print(context.printer, args.format, &statuses)?;
    }
    Ok(Outcome::Success)
}

/// `image-manager status [SERVICE]`.
pub fn run_status(context: &Context<'_>, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let services = env_vars::services(&context.root);
    let mut statuses = Vec::new();
    for name in named(args.service) {
        statuses.push(services.status(make(name)?.as_ref())?);
    }
    print(context.printer, args.format, &statuses)?;
    Ok(Outcome::Success)
}
