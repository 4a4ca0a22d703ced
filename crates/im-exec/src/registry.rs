//! Talking to registries for a command: which registry it means (the default of
//! `.image-manager.yml`, an entry named on the command line, or `host[:port][/namespace]`),
//! the repository an image has there, a client built from the project settings and Docker's
//! `config.json`, the tokio runtime it runs on, and cancellation. Also reading one platform
//! image out of a registry into an OCI archive in `dist/`, for the skip across machines.

use std::future::Future;
use std::path::Path;

use anyhow::Context as _;
use im_build::CancelToken;
use im_diag::{Diagnostic, Diagnostics};
use im_project::Settings;
use im_registry::{
    Client, ClientConfig, Digest, DockerConfig, Reference, RegistrySettings, Repository,
};

/// The label every built image carries with its build key (see `build`).
pub const BUILD_KEY_LABEL: &str = "dev.image-manager.build-key";

/// A registry and the namespace images go under in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// How the user named it: the `name` of a `registries:` entry, else its URL.
    pub label: String,
    /// `host[:port]`.
    pub host: String,
    /// The repository prefix (`acme` in `reg.example.com/acme`), maybe empty.
    pub namespace: String,
}

impl Target {
    /// Splits `[scheme://]host[:port][/namespace]`.
    pub fn parse(label: &str, url: &str) -> Result<Self, Diagnostic> {
        let bare = url
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let (host, namespace) = bare.split_once('/').unwrap_or((bare, ""));
        let target = Self {
            label: label.to_owned(),
            host: host.to_ascii_lowercase(),
            namespace: namespace.to_owned(),
        };
        // Validates the host and the namespace with the distribution grammar.
        target.repository("x").map_err(|error| {
            Diagnostic::error(format!("`{url}` is not a usable registry: {error:#}")).with_help(
                "write host[:port][/namespace], e.g. registry.example.com/team or 127.0.0.1:5050",
            )
        })?;
        Ok(target)
    }

    /// The repository of `image`: `<namespace>/<image>`.
    pub fn repository(&self, image: &str) -> anyhow::Result<Repository> {
        let name = if self.namespace.is_empty() {
            image.to_owned()
        } else {
            format!("{}/{image}", self.namespace)
        };
        Repository::new(&self.host, &name).map_err(Into::into)
    }

    /// `<host>/<namespace>/<image>:<tag>`.
    pub fn reference(&self, image: &str, tag: &str) -> anyhow::Result<Reference> {
        Ok(self.repository(image)?.tag(tag)?)
    }

    /// Where a user reads it: `host[:port][/namespace]`.
    pub fn url(&self) -> String {
        if self.namespace.is_empty() {
            self.host.clone()
        } else {
            format!("{}/{}", self.host, self.namespace)
        }
    }
}

/// The registry `push`, `manifest` and `promote` write to.
pub fn default_target(settings: &Settings) -> Result<Target, Diagnostics> {
    let Some(registry) = settings.default_registry() else {
        let message = if settings.registries.is_empty() {
            "no registry is configured"
        } else {
            "several registries are configured and none is marked `default: true`"
        };
        return Err(Diagnostic::error(message)
            .with_help(
                "add `registry: {url: 127.0.0.1:5050/acme}` to .image-manager.yml, or mark one entry of `registries:` with `default: true`",
            )
            .into());
    };
    Target::parse(
        registry.name.as_deref().unwrap_or(&registry.url),
        &registry.url,
    )
    .map_err(Into::into)
}

/// A registry named on the command line: the `name` (or `url`) of a `registries:` entry, else
/// `host[:port][/namespace]`.
pub fn named_target(settings: &Settings, spec: &str) -> Result<Target, Diagnostics> {
    if let Some(registry) = settings
        .registries
        .iter()
        .find(|r| r.name.as_deref() == Some(spec) || r.url == spec)
    {
        return Target::parse(spec, &registry.url).map_err(Into::into);
    }
    if !spec.contains(['.', ':', '/']) && spec != "localhost" {
        let names: Vec<&str> = settings
            .registries
            .iter()
            .filter_map(|r| r.name.as_deref())
            .collect();
        let help = im_diag::did_you_mean(spec, names.iter().copied()).map_or_else(
            || {
                if names.is_empty() {
                    "name a registry as host[:port][/namespace], or give `registries:` entries a `name`".to_owned()
                } else {
                    format!("registries: {}", names.join(", "))
                }
            },
            |hint| format!("did you mean `{hint}`?"),
        );
        return Err(Diagnostic::error(format!(
            "`{spec}` is neither a configured registry nor a host"
        ))
        .with_help(help)
        .into());
    }
    Target::parse(spec, spec).map_err(Into::into)
}

/// The client's view of the project's registries (credentials and `insecure`).
fn client_registries(settings: &Settings) -> Vec<RegistrySettings> {
    settings
        .registries
        .iter()
        .map(|registry| RegistrySettings {
            url: registry.url.clone(),
            username: registry.username.clone(),
            password: registry.password.clone(),
            insecure: registry.insecure,
        })
        .collect()
}

/// A registry client and the runtime it runs on, for one command. Cancelling the command's
/// token (Ctrl-C) cancels every transfer of the client within about a second; the command then
/// reports it was interrupted.
pub struct Session {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The tag lists the revision step read, one per repository (an image's tags share it).
    revision_tags: crate::publish::revision::TagLists,
}

impl Session {
    /// A client for the project's registries, with Docker's `config.json` from
    /// `docker_config_dir` (`DOCKER_CONFIG`, else `~/.docker`) when given.
    pub fn new(
        settings: &Settings,
        docker_config_dir: Option<&Path>,
        cancel: &CancelToken,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("image-manager-registry")
            .build()
            .context("starting the async runtime")?;
        let docker_config = match docker_config_dir {
            Some(dir) => DockerConfig::load(dir)?,
            None => None,
        };
        let config = ClientConfig {
            registries: client_registries(settings),
            docker_config,
            // The command's one token: Ctrl-C stops every transfer.
            cancel: cancel.clone(),
            ..ClientConfig::default()
        };
        let client = Client::new(config)?;
        Ok(Self {
            runtime,
            client,
            revision_tags: crate::publish::revision::TagLists::default(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The tag lists of the repositories this session writes revision tags in.
    pub fn revision_tags(&self) -> &crate::publish::revision::TagLists {
        &self.revision_tags
    }

    /// Runs `future` to completion on the session's runtime.
    pub fn run<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Whether Ctrl-C was pressed (or the client was cancelled otherwise).
    pub fn interrupted(&self) -> bool {
        self.client.cancellation().is_cancelled()
    }
}

/// The build key the registry holds for `platform` under `reference`, if any.
pub async fn build_key(
    client: &Client,
    reference: &Reference,
    platform: &im_project::Platform,
) -> Result<Option<String>, im_registry::Error> {
    im_registry::ops::inspect::read_metadata(client, reference, BUILD_KEY_LABEL, Some(platform))
        .await
}

/// Downloads the `platform` image of `reference` into `dest` as an OCI archive whose
/// `index.json` names it `ref_name` (see [`im_registry::ops::pull`]). Returns the manifest
/// digest.
pub async fn fetch_archive(
    client: &Client,
    reference: &Reference,
    platform: &im_project::Platform,
    dest: &Path,
    ref_name: &str,
) -> anyhow::Result<Digest> {
    let pulled =
        im_registry::ops::pull::pull_archive(client, reference, platform, dest, ref_name).await?;
    Ok(pulled.manifest_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join(".image-manager.yml"), yaml).unwrap();
        Settings::load(dir.path(), &|_| None).unwrap()
    }

    #[test]
    fn a_target_splits_host_and_namespace() {
        let target = Target::parse("x", "https://Reg.Example.com:5000/team/sub/").unwrap();
        assert_eq!(target.host, "reg.example.com:5000");
        assert_eq!(target.namespace, "team/sub");
        assert_eq!(
            target.reference("app", "1.0").unwrap().to_string(),
            "reg.example.com:5000/team/sub/app:1.0"
        );
        let bare = Target::parse("y", "127.0.0.1:5050").unwrap();
        assert_eq!(
            bare.reference("app", "1").unwrap().to_string(),
            "127.0.0.1:5050/app:1"
        );
        assert_eq!(bare.url(), "127.0.0.1:5050");
        assert!(Target::parse("z", "reg.example.com/Upper").is_err());
        assert!(Target::parse("z", "not a host").is_err());
    }

    #[test]
    fn registries_are_named_by_name_or_given_as_hosts() {
        let settings = settings(
            "registries:\n  - {name: local, url: 127.0.0.1:5050/acme, default: true}\n  - {name: remote, url: reg.example.com/acme}\n",
        );
        assert_eq!(
            default_target(&settings).unwrap().url(),
            "127.0.0.1:5050/acme"
        );
        assert_eq!(
            named_target(&settings, "remote").unwrap().host,
            "reg.example.com"
        );
        assert_eq!(
            named_target(&settings, "other.example.com:443/x")
                .unwrap()
                .url(),
            "other.example.com:443/x"
        );
        let unknown = named_target(&settings, "remot").unwrap_err().to_string();
        assert!(unknown.contains("did you mean `remote`?"), "{unknown}");
    }

    #[test]
    fn no_default_registry_is_an_error_with_a_fix() {
        let none = default_target(&Settings::default())
            .unwrap_err()
            .to_string();
        assert!(none.contains("no registry is configured"), "{none}");
        let two = settings("registries:\n  - {url: a.example.com}\n  - {url: b.example.com}\n");
        let text = default_target(&two).unwrap_err().to_string();
        assert!(text.contains("none is marked `default: true`"), "{text}");
    }
}
