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
    settings.buildkit.addr = std::env::var(env_vars::BUILDKIT_HOST).ok();
    Ok(settings)
}

/// Detects (or checks) the builder on this machine.
pub fn choose_builder(settings: &BuilderSettings) -> Result<BackendChoice, Diagnostics> {
    let lookup = SystemLookup::new(std::env::var_os(env_vars::PATH));
    im_build::detect(settings, &lookup).map_err(|error| Diagnostic::error(error.to_string()).into())
}

/// The builder kind's name for keys when only planning (no detection needed when it is set).
pub fn planned_builder(settings: &BuilderSettings) -> Result<String, Diagnostics> {
    match settings.kind {
        Some(kind) => Ok(kind.as_str().to_owned()),
        None => choose_builder(settings).map(|choice| choice.kind.as_str().to_owned()),
    }
}

pub fn parse_platforms(values: &[String]) -> Result<Option<Vec<Platform>>, Diagnostics> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut platforms = Vec::new();
    for value in values {
        let platform = value.parse::<Platform>().map_err(|message| {
            Diagnostic::error(format!("--platform: {message}"))
                .with_help("write os/arch, e.g. linux/amd64 or linux/arm64")
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
