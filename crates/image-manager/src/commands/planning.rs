//! What `plan`, `why` and `build` share: choosing the builder and turning command-line
//! selection into [`PlanOptions`].

use std::collections::BTreeMap;
use std::str::FromStr;

use im_build::{BackendChoice, BuilderKind, BuilderSettings, SystemLookup};
use im_diag::{Diagnostic, Diagnostics};
use im_plan::PlanOptions;
use im_project::{Platform, Project};

use crate::cli::SelectionArgs;
use crate::env_vars;

/// The builder settings from `.image-manager.yml`, the command line and the environment.
pub fn builder_settings(
    project: &Project,
    requested: Option<&str>,
) -> Result<BuilderSettings, Diagnostics> {
    let mut settings = BuilderSettings::default();
    let wanted = requested
        .map(str::to_owned)
        .or_else(|| project.settings.builder.clone());
    if let Some(wanted) = wanted {
        settings.kind = Some(BuilderKind::from_str(&wanted).map_err(|_| {
            Diagnostic::error(format!("unknown builder `{wanted}`"))
                .with_help("use buildah, docker, buildkit or podman")
        })?);
    }
    let storage = &project.settings.storage;
    for tool in [&mut settings.buildah, &mut settings.podman] {
        // Unset values leave the tool's own configuration (storage.conf) in charge.
        tool.storage_driver.clone_from(&storage.driver);
        tool.root.clone_from(&storage.root);
        tool.runroot.clone_from(&storage.runroot);
        if let Some(isolation) = &storage.isolation {
            tool.isolation.clone_from(isolation);
        }
    }
    settings.docker.host = std::env::var(env_vars::DOCKER_HOST).ok();
    settings.docker.buildkit = match std::env::var(env_vars::DOCKER_BUILDKIT) {
        Ok(value) if !value.is_empty() => Some(parse_docker_bool(&value).ok_or_else(|| {
            Diagnostic::error(format!(
                "DOCKER_BUILDKIT=`{value}` is neither true nor false"
            ))
            .with_help("set DOCKER_BUILDKIT=1 (BuildKit) or DOCKER_BUILDKIT=0 (the classic builder), or unset it")
        })?),
        _ => project.settings.buildkit,
    };
    settings.buildkit.addr = std::env::var(env_vars::BUILDKIT_HOST).ok();
    Ok(settings)
}

/// A boolean as the Docker client reads `DOCKER_BUILDKIT` (Go's `strconv.ParseBool`).
fn parse_docker_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Detects (or checks) the builder on this machine.
pub fn choose_builder(settings: &BuilderSettings) -> Result<BackendChoice, Diagnostics> {
    let lookup = SystemLookup::new(std::env::var_os(env_vars::PATH));
    im_build::detect(settings, &lookup).map_err(|error| Diagnostic::error(error.to_string()).into())
}

/// The builder kind's name for keys when only planning (no detection needed when it is set).
pub fn planned_builder(settings: &BuilderSettings) -> Result<String, Diagnostics> {
    match settings.kind {
        // Docker's flavor is part of the key, and only detection knows it.
        Some(kind) if kind != BuilderKind::Docker => Ok(kind.as_str().to_owned()),
        _ => choose_builder(settings).map(|choice| key_name(&choice)),
    }
}

/// The builder as build keys and the ledger name it: its kind, except `docker-classic` for
/// Docker's classic builder, which makes other images than BuildKit from one Dockerfile (so
/// switching between them rebuilds).
pub fn key_name(choice: &BackendChoice) -> String {
    match (choice.kind, choice.docker_flavor) {
        (BuilderKind::Docker, Some(im_build::DockerFlavor::Classic)) => "docker-classic".to_owned(),
        (kind, _) => kind.as_str().to_owned(),
    }
}

/// The `--platform` values: `os/arch[/variant]`, or the proof of concept's short form, a
/// bare architecture meaning Linux (`amd64` is `linux/amd64`, `arm64` is `linux/arm64`).
pub fn parse_platforms(values: &[String]) -> Result<Option<Vec<Platform>>, Diagnostics> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut platforms = Vec::new();
    for value in values {
        let full = if value.contains('/') {
            value.clone()
        } else {
            format!("linux/{value}")
        };
        let platform = full.parse::<Platform>().map_err(|_| {
            Diagnostic::error(format!("--platform: `{value}` is not a platform"))
                .with_help("write os/arch or just the architecture, e.g. linux/arm64 or arm64")
        })?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    Ok(Some(platforms))
}

pub fn plan_options(
    selection: &SelectionArgs,
    builder: String,
) -> Result<PlanOptions, Diagnostics> {
    let mut build_args = BTreeMap::new();
    for pair in &selection.build_args {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(
                Diagnostic::error(format!("--build-arg `{pair}` has no `=`"))
                    .with_help("write --build-arg KEY=VALUE")
                    .into(),
            );
        };
        build_args.insert(key.to_owned(), value.to_owned());
    }
    Ok(PlanOptions {
        targets: selection.targets.clone(),
        with_deps: !selection.no_deps,
        dependents: selection.dependents,
        force: selection.force,
        platforms: parse_platforms(&selection.platform)?,
        builder,
        build_args,
        external_digests: BTreeMap::new(),
    })
}

/// What `plan` and `why` compute: the plan without building, with the external bases as
/// `mode` resolves them (their problems are warnings here: nothing is built).
pub struct Planned {
    pub plan: im_plan::Plan,
    pub ledger: im_plan::Ledger,
    pub builder: String,
    pub bases: super::bases::Bases,
}

/// Plans `selection` for `plan` and `why`.
pub fn plan_only(
    context: &super::Context<'_>,
    prepared: &super::Prepared,
    selection: &SelectionArgs,
    mode: super::bases::Mode,
) -> anyhow::Result<Result<Planned, Diagnostics>> {
    let options = builder_settings(&prepared.project, selection.builder.as_deref())
        .and_then(|settings| planned_builder(&settings))
        .and_then(|builder| plan_options(selection, builder));
    let mut options = match options {
        Ok(options) => options,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    let mut session = None;
    let bases = match super::bases::resolve(context, prepared, &mut options, mode, &mut session)? {
        Ok(bases) => bases,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    context.printer.diagnostics(&bases.warnings());
    let ledger = match im_plan::Ledger::load(&context.dist) {
        Ok(ledger) => ledger,
        Err(error) => return Ok(Err(Diagnostic::error(format!("{error:#}")).into())),
    };
    Ok(im_plan::plan(
        &prepared.project,
        &prepared.graph,
        &prepared.rendered.tags,
        &ledger,
        &context.dist,
        &options,
    )
    .map(|plan| Planned {
        plan,
        ledger,
        builder: options.builder,
        bases,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_architecture_is_a_linux_platform() {
        let values: Vec<String> = ["amd64", "linux/arm64", "arm64", "linux/arm/v7"]
            .iter()
            .map(|v| (*v).to_owned())
            .collect();
        let platforms: Vec<String> = parse_platforms(&values)
            .unwrap()
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
        let error = parse_platforms(&["amd 64".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--platform: `amd 64` is not a platform"),
            "{error}"
        );
    }

    #[test]
    fn docker_buildkit_reads_like_the_docker_client_reads_it() {
        for on in ["1", "true", "TRUE", "t"] {
            assert_eq!(parse_docker_bool(on), Some(true), "{on}");
        }
        for off in ["0", "false", "False", "f"] {
            assert_eq!(parse_docker_bool(off), Some(false), "{off}");
        }
        assert_eq!(parse_docker_bool("yes"), None);
    }
}
