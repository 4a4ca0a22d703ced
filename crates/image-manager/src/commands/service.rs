//! `image-manager start registry`, `stop registry` and `status`: a local distribution
//! registry for development, on a loopback address (`127.0.0.1:5050`, or
//! `IMAGE_MANAGER_REGISTRY_ADDR`), with its configuration, data, log and state under
//! `<project>/.image-manager/registry/` (see [`im_services`]). `push` starts it by itself when
//! the default registry is that address and nothing answers there.

use std::path::Path;

use im_services::{Runner, Service as _, ServiceStatus, Stopped};

use super::{Context, Outcome};
use crate::cli::{Format, ServiceArgs, StatusArgs};
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

/// `image-manager start [registry]`.
pub fn run_start(context: &Context<'_>, args: &ServiceArgs) -> anyhow::Result<Outcome> {
    let registry = env_vars::local_registry()?;
    let (status, started) = env_vars::services(&context.root).start(&registry)?;
    let verb = if started { "Started" } else { "Running" };
    context.printer.status(verb, describe(&status));
    if args.format == Format::Json {
        print(context.printer, args.format, &[status])?;
    }
    Ok(Outcome::Success)
}

/// `image-manager stop [registry]`.
pub fn run_stop(context: &Context<'_>, args: &ServiceArgs) -> anyhow::Result<Outcome> {
    let registry = env_vars::local_registry()?;
    let services = env_vars::services(&context.root);
    match services.stop(&registry)? {
        Stopped::Stopped => context.printer.status("Stopped", "registry"),
        Stopped::Foreign => context.printer.info(format!(
            "the registry on {} was not started by image-manager for this project; leaving it alone",
            registry.addr()
        )),
        Stopped::NotRunning => context
            .printer
            .status("Stopped", "registry (it was not running)"),
    }
    if args.format == Format::Json {
        print(context.printer, args.format, &[services.status(&registry)?])?;
    }
    Ok(Outcome::Success)
}

/// `image-manager status`.
pub fn run_status(context: &Context<'_>, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let registry = env_vars::local_registry()?;
    let status = env_vars::services(&context.root).status(&registry)?;
    print(context.printer, args.format, &[status])?;
    Ok(Outcome::Success)
}
