//! Choosing the builder: its settings from `.image-manager.yml`, the command line and the
//! environment, detection on this machine, and the name build keys give it.

use im_build::{BackendChoice, BuilderKind, BuilderSettings, SystemLookup};
use im_diag::{Diagnostic, Diagnostics};
use im_project::Project;

use crate::context::Environment;

/// The builder settings from `.image-manager.yml`, the command line (`requested`) and the
/// environment.
pub fn builder_settings(
    project: &Project,
    requested: Option<BuilderKind>,
    environment: &Environment,
) -> Result<BuilderSettings, Diagnostics> {
    let mut settings = BuilderSettings::default();
    settings.kind = match requested {
        Some(kind) => Some(kind),
        None => project
            .settings
            .builder
            .as_deref()
            .map(|wanted| {
                wanted.parse::<BuilderKind>().map_err(|_| {
                    Diagnostic::error(format!("unknown builder `{wanted}`"))
                        .with_help("use buildah, docker, buildkit or podman")
                })
            })
            .transpose()?,
    };
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
    settings.docker.host.clone_from(&environment.docker_host);
    settings.docker.buildkit = match environment.docker_buildkit.as_deref() {
        Some(value) if !value.is_empty() => Some(parse_docker_bool(value).ok_or_else(|| {
            Diagnostic::error(format!(
                "DOCKER_BUILDKIT=`{value}` is neither true nor false"
            ))
            .with_help("set DOCKER_BUILDKIT=1 (BuildKit) or DOCKER_BUILDKIT=0 (the classic builder), or unset it")
        })?),
        _ => project.settings.buildkit,
    };
    settings
        .buildkit
        .addr
        .clone_from(&environment.buildkit_host);
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
pub fn choose_builder(
    settings: &BuilderSettings,
    environment: &Environment,
) -> Result<BackendChoice, Diagnostics> {
    let lookup = SystemLookup::new(environment.path.clone());
    im_build::detect(settings, &lookup).map_err(|error| Diagnostic::error(error.to_string()).into())
}

/// The builder kind's name for keys when only planning (no detection needed when it is set).
pub fn planned_builder(
    settings: &BuilderSettings,
    environment: &Environment,
) -> Result<String, Diagnostics> {
    match settings.kind {
        // Docker's flavor is part of the key, and only detection knows it.
        Some(kind) if kind != BuilderKind::Docker => Ok(kind.as_str().to_owned()),
        _ => choose_builder(settings, environment).map(|choice| key_name(&choice)),
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

#[cfg(test)]
mod tests {
    use super::*;

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
