//! Which shared layer cache a build uses, and why ([`select`]), in the proof of concept's
//! order: the configured cache (an S3 one only when it answers), else the project's Garage
//! when `cache:` is unset, then GitHub Actions' cache when `ACTIONS_CACHE_URL` /
//! `ACTIONS_RESULTS_URL` are set, else none. A registry cache is used when `cache:` asks for
//! it (`type: registry`, by default `<default registry>/cache/<image>`), never on its own:
//! the builders push it with their own registry credentials (not image-manager's), so an
//! automatic one would fail the builds of a registry that needs a login, and would write
//! cache images into every project's release registry unasked. `build --no-cache` and
//! `cache: false` turn it off. A configured cache the builder cannot use is an error before
//! anything builds; a chosen cache that does not answer is a warning and the build goes on
//! without it. The choice never enters a build key.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use im_build::cache::{S3Credentials, StepCache, check, scope};
use im_build::{BackendChoice, Platform};
use im_diag::{Diagnostic, Secret};
use im_project::Settings;

/// The cache of a whole build; [`Selected::for_node`] scopes it to one step.
#[derive(Clone, Debug)]
enum Target {
    S3 {
        endpoint: Option<String>,
        bucket: String,
        region: String,
        use_path_style: bool,
        credentials: Option<S3Credentials>,
    },
    Registry {
        /// Configured (`ref:`), else `<default registry>/cache/<image>`.
        repository: Option<String>,
        registry: String,
        insecure: bool,
    },
    Gha,
    Local {
        dir: PathBuf,
    },
}

/// The layer cache chosen for a build.
#[derive(Clone, Debug)]
pub struct Selected {
    target: Option<Target>,
    /// One sentence for `-v`: which cache and why.
    pub reason: String,
    /// A chosen cache that does not answer (shown once; the build goes on without it).
    pub warning: Option<Diagnostic>,
}

/// What the choice depends on besides the settings.
pub struct CacheInputs<'a> {
    pub root: &'a Path,
    pub builder: &'a BackendChoice,
    /// `build --no-cache`.
    pub no_cache: bool,
    /// `ACTIONS_CACHE_URL` or `ACTIONS_RESULTS_URL` is set.
    pub github_actions: bool,
}

impl Selected {
    fn none(reason: impl Into<String>) -> Self {
        Selected {
            target: None,
            reason: reason.into(),
            warning: None,
        }
    }

    /// The cache's kind (`s3`, `registry`, `gha`, `local`), if one was chosen.
    pub fn kind(&self) -> Option<&'static str> {
        self.target.as_ref().map(|t| match t {
            Target::S3 { .. } => "s3",
            Target::Registry { .. } => "registry",
            Target::Gha => "gha",
            Target::Local { .. } => "local",
        })
    }

    /// The cache of the step building `image` for `platform`.
    pub fn for_node(&self, image: &str, platform: &Platform) -> Option<StepCache> {
        let scope = scope(image, platform);
        Some(match self.target.as_ref()? {
            Target::S3 {
                endpoint,
                bucket,
                region,
                use_path_style,
                credentials,
            } => StepCache::S3 {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: region.clone(),
                use_path_style: *use_path_style,
                name: scope,
                credentials: credentials.clone(),
            },
            Target::Registry {
                repository,
                registry,
                insecure,
            } => StepCache::Registry {
                repository: repository
                    .clone()
                    .unwrap_or_else(|| format!("{registry}/cache/{}", image.to_ascii_lowercase())),
                tag: scope,
                insecure: *insecure,
            },
            Target::Gha => StepCache::Gha { scope },
            Target::Local { dir } => StepCache::Local {
                dir: dir.join(scope),
            },
        })
    }
}

/// Whether a TCP connection to `host:port` opens within two seconds.
fn answers(host_port: &str) -> bool {
    let Ok(addrs) = host_port.to_socket_addrs() else {
        return false;
    };
    addrs
        .take(2)
        .any(|addr: SocketAddr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok())
}

/// `host:port` of an S3 endpoint URL (AWS's regional endpoint when none is set).
fn s3_host(endpoint: Option<&str>, region: &str) -> String {
    let Some(url) = endpoint else {
        return format!("s3.{region}.amazonaws.com:443");
    };
    let (https, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (scheme == "https", rest),
        None => (true, url),
    };
    let host = rest.split('/').next().unwrap_or(rest);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{}", if https { 443 } else { 80 })
    }
}

/// `host:port` of a registry URL (`host[:port][/namespace]`).
fn registry_host(url: &str, insecure: bool) -> String {
    let host = url.split('/').next().unwrap_or(url);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:{}", if insecure { 80 } else { 443 })
    }
}

/// A registry on this machine speaks plain HTTP unless configured otherwise.
fn is_local(url: &str) -> bool {
    let host = url.split('/').next().unwrap_or(url);
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    name == "localhost"
        || name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Chooses the layer cache of a build (see the module's documentation).
pub fn select(settings: &Settings, inputs: &CacheInputs<'_>) -> Result<Selected, Diagnostic> {
    let builder = inputs.builder;
    if inputs.no_cache {
        return Ok(Selected::none("no layer cache: --no-cache"));
    }
    let usable = |target: &Target| {
        let probe = Selected {
            target: Some(target.clone()),
            reason: String::new(),
            warning: None,
        };
        let step = probe
            .for_node("image", &Platform::linux("amd64"))
            .expect("a target");
        check(builder.kind, builder.docker_flavor, &step)
    };
    let mut notes = Vec::new();
    if let Some(cache) = &settings.cache {
        if cache.is_off() {
            return Ok(Selected::none(
                "no layer cache: `cache: false` in .image-manager.yml",
            ));
        }
        let target = match cache.kind.as_str() {
            "s3" => Target::S3 {
                endpoint: cache.endpoint.clone(),
                bucket: cache.bucket.clone().unwrap_or_default(),
                region: cache
                    .region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".to_owned()),
                use_path_style: cache.use_path_style.unwrap_or(cache.endpoint.is_some()),
                credentials: cache
                    .access_key
                    .clone()
                    .zip(cache.secret_key.clone())
                    .map(|(access_key, secret_key)| S3Credentials {
                        access_key,
                        secret_key,
                    }),
            },
            "registry" => registry_target(settings, cache.reference.clone()).ok_or_else(|| {
                Diagnostic::error("`cache: {type: registry}` has no `ref` and the project has no default registry")
                    .with_help("add `ref: registry.example.com/cache` to `cache`, or a default registry")
            })?,
            "gha" => Target::Gha,
            _ => Target::Local {
                dir: inputs.root.join(cache.path.clone().unwrap_or_default()),
            },
        };
        if let Err(error) = usable(&target) {
            return Err(Diagnostic::error(error.to_string()).with_help(error.fix));
        }
        let (reachable, place) = reach(&target);
        if reachable {
            return Ok(Selected {
                target: Some(target),
                reason: format!("layer cache: {place} (`cache:` in .image-manager.yml)"),
                warning: None,
            });
        }
        let warning = Diagnostic::warning(format!(
            "the layer cache at {place} does not answer: building without it"
        ))
        .with_help(
            "start it (`image-manager start garage` for the local one), or set `cache: false`",
        );
        if cache.kind != "s3" {
            return Ok(Selected {
                target: None,
                reason: format!("no layer cache: {place} does not answer"),
                warning: Some(warning),
            });
        }
        // An S3 cache that does not answer: the order goes on (GitHub Actions, the registry).
        notes.push(format!("{place} does not answer"));
        let mut next = automatic(settings, inputs, &usable, &mut notes);
        next.warning = Some(warning);
        return Ok(next);
    }
    Ok(automatic(settings, inputs, &usable, &mut notes))
}

/// The cache when `cache:` does not say: the project's Garage, GitHub Actions, the registry.
fn automatic(
    settings: &Settings,
    inputs: &CacheInputs<'_>,
    usable: &dyn Fn(&Target) -> Result<(), im_build::CacheError>,
    notes: &mut Vec<String>,
) -> Selected {
    let mut candidates = Vec::new();
    if settings.cache.is_none()
        && let Some(garage) = im_services::garage::Credentials::read(inputs.root)
    {
        candidates.push((
            Target::S3 {
                endpoint: Some(garage.endpoint.clone()),
                bucket: garage.bucket.clone(),
                region: garage.region.clone(),
                use_path_style: true,
                credentials: Some(S3Credentials {
                    access_key: Secret::new(garage.access_key_id.clone()),
                    secret_key: garage.secret(),
                }),
            },
            "the project's Garage (`image-manager start garage`)",
        ));
    }
    if inputs.github_actions {
        candidates.push((Target::Gha, "ACTIONS_CACHE_URL/ACTIONS_RESULTS_URL are set"));
    }
    for (target, why) in candidates {
        if let Err(error) = usable(&target) {
            notes.push(format!("not {why}: {error}"));
            continue;
        }
        let (reachable, place) = reach(&target);
        if reachable {
            let mut reason = format!("layer cache: {place} ({why})");
            if !notes.is_empty() {
                reason.push_str(&format!("; {}", notes.join("; ")));
            }
            return Selected {
                target: Some(target),
                reason,
                warning: None,
            };
        }
        notes.push(format!("{place} does not answer"));
    }
    let mut reason = "no layer cache".to_owned();
    if notes.is_empty() {
        reason.push_str(": no `cache:`, no Garage, not in GitHub Actions");
    } else {
        reason.push_str(&format!(": {}", notes.join("; ")));
    }
    Selected::none(reason)
}

fn registry_target(settings: &Settings, reference: Option<String>) -> Option<Target> {
    let registry = settings.default_registry();
    let url = reference
        .as_deref()
        .or(registry.map(|r| r.url.as_str()))?
        .to_owned();
    let insecure = registry.is_some_and(|r| r.insecure) || is_local(&url);
    Some(Target::Registry {
        repository: reference,
        registry: registry.map_or_else(|| url.clone(), |r| r.url.clone()),
        insecure,
    })
}

/// Whether `target` answers, and how to name it.
fn reach(target: &Target) -> (bool, String) {
    match target {
        Target::S3 {
            endpoint,
            bucket,
            region,
            ..
        } => {
            let host = s3_host(endpoint.as_deref(), region);
            (
                answers(&host),
                format!(
                    "S3 bucket {bucket} at {}",
                    endpoint.as_deref().unwrap_or(&host)
                ),
            )
        }
        Target::Registry {
            repository,
            registry,
            insecure,
        } => {
            let url = repository.as_deref().unwrap_or(registry);
            (
                answers(&registry_host(url, *insecure)),
                format!(
                    "registry {}",
                    repository
                        .clone()
                        .unwrap_or_else(|| format!("{registry}/cache/<image>"))
                ),
            )
        }
        Target::Gha => (true, "GitHub Actions' cache".to_owned()),
        Target::Local { dir } => (true, format!("folder {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buildah() -> BackendChoice {
        BackendChoice {
            kind: im_build::BuilderKind::Buildah,
            program: "/usr/bin/buildah".into(),
            docker_flavor: None,
            reason: String::new(),
        }
    }

    fn settings(yaml: &str) -> Settings {
        Settings::parse(Path::new(".image-manager.yml"), yaml.into(), &|_| None).unwrap()
    }

    fn inputs<'a>(root: &'a Path, builder: &'a BackendChoice) -> CacheInputs<'a> {
        CacheInputs {
            root,
            builder,
            no_cache: false,
            github_actions: false,
        }
    }

    #[test]
    fn no_cache_and_cache_false_turn_it_off() {
        let root = tempfile::tempdir().unwrap();
        let builder = buildah();
        let mut off = inputs(root.path(), &builder);
        off.no_cache = true;
        let chosen = select(&settings("cache: {type: gha}\n"), &off).unwrap();
        assert_eq!(chosen.kind(), None);
        assert_eq!(chosen.reason, "no layer cache: --no-cache");
        let chosen = select(&settings("cache: false\n"), &inputs(root.path(), &builder)).unwrap();
        assert!(
            chosen.reason.contains("`cache: false`"),
            "{}",
            chosen.reason
        );
    }

    #[test]
    fn a_configured_cache_the_builder_cannot_use_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let builder = buildah();
        let error = select(
            &settings("cache: {bucket: b, endpoint: 'http://127.0.0.1:1'}\n"),
            &inputs(root.path(), &builder),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("cannot use an s3 layer cache"),
            "{error}"
        );
    }

    #[test]
    fn the_registry_cache_is_scoped_per_image_and_platform_and_never_automatic() {
        let root = tempfile::tempdir().unwrap();
        let builder = buildah();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let registry = format!("registry:\n  url: 127.0.0.1:{port}/team\n");
        let chosen = select(
            &settings(&format!("{registry}cache: {{type: registry}}\n")),
            &inputs(root.path(), &builder),
        )
        .unwrap();
        assert_eq!(chosen.kind(), Some("registry"), "{}", chosen.reason);
        assert_eq!(
            chosen.for_node("App", &Platform::linux("arm64")),
            Some(StepCache::Registry {
                repository: format!("127.0.0.1:{port}/team/cache/app"),
                tag: "App-linux-arm64".into(),
                insecure: true,
            })
        );
        let chosen = select(&settings(&registry), &inputs(root.path(), &builder)).unwrap();
        assert_eq!(chosen.kind(), None, "{}", chosen.reason);
        assert!(chosen.warning.is_none());
    }

    #[test]
    fn a_configured_registry_cache_that_does_not_answer_warns() {
        let root = tempfile::tempdir().unwrap();
        let builder = buildah();
        let chosen = select(
            &settings("cache:\n  ref: 127.0.0.1:1/cache\n"),
            &inputs(root.path(), &builder),
        )
        .unwrap();
        assert_eq!(chosen.kind(), None);
        let warning = chosen.warning.unwrap().to_string();
        assert!(
            warning.contains("does not answer: building without it"),
            "{warning}"
        );
    }

    #[test]
    fn s3_hosts_default_their_ports() {
        assert_eq!(
            s3_host(Some("http://127.0.0.1:3900"), "x"),
            "127.0.0.1:3900"
        );
        assert_eq!(s3_host(Some("https://r2.example/x"), "x"), "r2.example:443");
        assert_eq!(s3_host(None, "eu-west-1"), "s3.eu-west-1.amazonaws.com:443");
    }
}
