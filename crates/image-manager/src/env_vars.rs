//! Every environment variable image-manager reads, declared once.
//!
//! Nothing below the binary reads the environment: values are read here and passed in.

/// Log filter for `tracing` (e.g. `image_manager=debug`); overrides `-v`.
pub const IMAGE_MANAGER_LOG: &str = "IMAGE_MANAGER_LOG";
/// Disables colour when set to anything (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// Forces colour on when set to anything but `0`.
pub const FORCE_COLOR: &str = "FORCE_COLOR";

/// Seconds since the epoch for `org.opencontainers.image.created` and file times
/// (<https://reproducible-builds.org/specs/source-date-epoch/>); default: the last commit.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// The BuildKit daemon address for the `buildkit` builder.
pub const BUILDKIT_HOST: &str = "BUILDKIT_HOST";
/// The Docker daemon the `docker` builder talks to.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// `0`/`false`: the `docker` builder uses the classic builder; `1`/`true`: BuildKit (buildx
/// or the engine's). Overrides `buildkit:` of the `builder:` setting, as it does for `docker
/// build`.
pub const DOCKER_BUILDKIT: &str = "DOCKER_BUILDKIT";
/// GitHub Actions' cache service (set for actions; `buildctl` reads them, with
/// `ACTIONS_RUNTIME_TOKEN`, for a `gha` layer cache): either one chooses that cache when no S3
/// cache answers.
pub const ACTIONS_CACHE_URL: &str = "ACTIONS_CACHE_URL";
pub const ACTIONS_RESULTS_URL: &str = "ACTIONS_RESULTS_URL";
/// Where builders are looked for.
pub const PATH: &str = "PATH";
/// The folder holding Docker's `config.json` (registry credentials); default `~/.docker`.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The home folder, for `~/.docker/config.json`.
pub const HOME: &str = "HOME";
/// The loopback address `start registry` serves the local registry on (default
/// `127.0.0.1:5050`); `push` starts it by itself when the default registry is this address.
pub const IMAGE_MANAGER_REGISTRY_ADDR: &str = "IMAGE_MANAGER_REGISTRY_ADDR";
/// The container image `start registry` runs when no registry binary is installed (default
/// `registry:2`).
pub const IMAGE_MANAGER_REGISTRY_IMAGE: &str = "IMAGE_MANAGER_REGISTRY_IMAGE";

/// The loopback addresses of the other local services (defaults 127.0.0.1:3900, :8372, :2375).
pub const IMAGE_MANAGER_GARAGE_ADDR: &str = "IMAGE_MANAGER_GARAGE_ADDR";
pub const IMAGE_MANAGER_BUILDKITD_ADDR: &str = "IMAGE_MANAGER_BUILDKITD_ADDR";
pub const IMAGE_MANAGER_DIND_ADDR: &str = "IMAGE_MANAGER_DIND_ADDR";

/// The loopback address in `variable`, else `default`.
pub fn service_addr(
    variable: &str,
    default: &str,
) -> Result<std::net::SocketAddr, im_diag::Diagnostics> {
    let text = std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    im_services::Registry::parse_addr(&text).map_err(|_| {
        im_diag::Diagnostic::error(format!(
            "{variable} is `{text}`, which is not a loopback ip:port address"
        ))
        .with_help(format!("write e.g. {default}"))
        .into()
    })
}

/// Looks up a variable for `${VAR}` expansion in `.image-manager.yml`.
pub fn lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// The local registry `start registry` serves: on `IMAGE_MANAGER_REGISTRY_ADDR` (default
/// `127.0.0.1:5050`, loopback only), as `IMAGE_MANAGER_REGISTRY_IMAGE` when it runs as a
/// container.
pub fn local_registry() -> Result<im_services::Registry, im_diag::Diagnostics> {
    use im_diag::Diagnostic;
    use im_services::{AddrError, Registry};
    let text = std::env::var(IMAGE_MANAGER_REGISTRY_ADDR)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| Registry::DEFAULT_ADDR.to_owned());
    let addr = Registry::parse_addr(&text).map_err(|error| match error {
        AddrError::NotAnAddress(_) => Diagnostic::error(format!(
            "{IMAGE_MANAGER_REGISTRY_ADDR} is `{text}`, which is not an ip:port address"
        ))
        .with_help("write a loopback address such as 127.0.0.1:5050"),
        AddrError::NotLoopback(_) => Diagnostic::error(format!(
            "{IMAGE_MANAGER_REGISTRY_ADDR} is `{text}`: the local registry only listens on a loopback address"
        ))
        .with_help("use 127.0.0.1:PORT; a registry others reach belongs in `registry:` of .image-manager.yml"),
    })?;
    Ok(Registry::new(
        addr,
        std::env::var(IMAGE_MANAGER_REGISTRY_IMAGE).ok(),
    ))
}

/// The local services of the project at `root`, their programs looked for on `PATH`.
pub fn services(root: &std::path::Path) -> im_services::Services {
    im_services::Services::new(root, std::env::var_os(PATH))
}

/// `$GITHUB_STEP_SUMMARY`: the file GitHub Actions shows as the step's summary.
pub fn step_summary() -> Option<std::path::PathBuf> {
    std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|value| !value.is_empty())
        .map(std::path::PathBuf::from)
}

/// What the layers below the binary need from the environment, read once.
pub fn environment() -> im_exec::Environment {
    im_exec::Environment {
        source_date_epoch: std::env::var(SOURCE_DATE_EPOCH).ok(),
        docker_host: std::env::var(DOCKER_HOST).ok(),
        docker_buildkit: std::env::var(DOCKER_BUILDKIT).ok(),
        buildkit_host: std::env::var(BUILDKIT_HOST).ok(),
        github_actions_cache: [ACTIONS_CACHE_URL, ACTIONS_RESULTS_URL]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty())),
        path: std::env::var_os(PATH),
        docker_config_dir: docker_config_dir(),
    }
}

/// Where Docker keeps `config.json`: `DOCKER_CONFIG`, else `~/.docker`.
fn docker_config_dir() -> Option<std::path::PathBuf> {
    std::env::var_os(DOCKER_CONFIG)
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os(HOME)
                .filter(|home| !home.is_empty())
                .map(|home| std::path::PathBuf::from(home).join(".docker"))
        })
}
