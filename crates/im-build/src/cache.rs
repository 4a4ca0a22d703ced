//! The shared layer cache of one build step ([`StepCache`]) and how each builder reads and
//! writes it, with the builder's own mechanism (never a layer store of ours):
//!
//! - **buildkit** (`buildctl`): `--import-cache` / `--export-cache` of type `s3`,
//!   `registry`, `gha` or `local`, exported with `mode=max` (every intermediate layer). S3
//!   credentials go to `buildctl` as `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` in its
//!   environment, never in argv; the GitHub Actions cache reads `ACTIONS_CACHE_URL`,
//!   `ACTIONS_RESULTS_URL` and `ACTIONS_RUNTIME_TOKEN` from the environment `buildctl`
//!   inherits.
//! - **docker**: a registry cache only. The engine's BuildKit and buildx's `docker` driver
//!   (the only one that sees the images a step loads) can export an *inline* cache only, so
//!   the image is built with `BUILDKIT_INLINE_CACHE=1` (buildx: `--cache-to type=inline`),
//!   also tagged as the cache reference, pushed there after the build, and read back with
//!   `--cache-from`. The classic builder has no cache import from a registry.
//! - **buildah, podman**: a registry cache only: `--layers --cache-from REPO --cache-to REPO`
//!   (one image per instruction, tagged with buildah's cache key). The image is committed
//!   under a step-unique local name and pushed to the OCI archive afterwards, because
//!   buildah 1.28 cannot push the last instruction's cache when it commits to an
//!   `oci-archive:` destination.
//!
//! A builder and cache that cannot work together are a [`CacheError`] before anything runs
//! ([`check`]). The cache never changes a build key or whether a step builds.

use std::ffi::OsString;
use std::path::PathBuf;

use im_diag::Secret;
use serde::{Deserialize, Serialize};

use crate::command::CommandSpec;
use crate::settings::{BuilderKind, DockerFlavor};

/// The build arg that makes BuildKit write its cache metadata into the image.
pub const INLINE_CACHE_ARG: &str = "BUILDKIT_INLINE_CACHE";

/// S3 credentials, passed through the environment of the builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Credentials {
    pub access_key: Secret,
    pub secret_key: Secret,
}

/// The layer cache of one step (its scope already applied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StepCache {
    /// An S3 bucket (AWS, Garage, MinIO, R2); `name` is the step's scope.
    S3 {
        /// `http://127.0.0.1:3900`; none means AWS.
        endpoint: Option<String>,
        bucket: String,
        region: String,
        use_path_style: bool,
        name: String,
        /// None: the builder's own (its environment, an instance role).
        #[serde(skip)]
        credentials: Option<S3Credentials>,
    },
    /// A registry repository; `tag` is the step's scope (buildah and podman tag each cached
    /// instruction with its cache key instead).
    Registry {
        repository: String,
        tag: String,
        /// Plain HTTP or an unverified certificate (a loopback or `insecure` registry).
        insecure: bool,
    },
    /// GitHub Actions' cache service, scoped.
    Gha { scope: String },
    /// A folder on this machine, one subfolder per scope.
    Local { dir: PathBuf },
}

impl StepCache {
    /// What kind of cache this is: `s3`, `registry`, `gha`, `local`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::S3 { .. } => "s3",
            Self::Registry { .. } => "registry",
            Self::Gha { .. } => "gha",
            Self::Local { .. } => "local",
        }
    }

    /// Where the cache is, for messages (never a credential): `S3 bucket B at E`.
    pub fn describe(&self) -> String {
        match self {
            Self::S3 {
                endpoint, bucket, ..
            } => format!(
                "S3 bucket {bucket} at {}",
                endpoint.as_deref().unwrap_or("AWS")
            ),
            Self::Registry { repository, .. } => format!("registry {repository}"),
            Self::Gha { scope } => format!("GitHub Actions' cache ({scope})"),
            Self::Local { dir } => format!("folder {}", dir.display()),
        }
    }

    /// `repository:tag` of a registry cache.
    pub fn reference(&self) -> Option<String> {
        match self {
            Self::Registry {
                repository, tag, ..
            } => Some(format!("{repository}:{tag}")),
            _ => None,
        }
    }
}

/// A cache scope: `<image>-<os>-<arch>[-<variant>]`, in the characters a registry tag, an S3
/// key and a GitHub cache scope all accept (at most 128).
pub fn scope(image: &str, platform: &im_oci::Platform) -> String {
    let raw = format!("{image}-{}", platform.slug());
    let mut out = String::new();
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_start_matches(['.', '-']);
    out.chars().take(128).collect()
}

/// A builder that cannot use a cache.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {builder} builder cannot use a{} {cache} layer cache: {why}", if *cache == "s3" { "n" } else { "" })]
pub struct CacheError {
    pub builder: String,
    pub cache: &'static str,
    pub why: &'static str,
    /// What to change.
    pub fix: &'static str,
}

/// Whether `kind` (with Docker's `flavor`) can read and write `cache`.
pub fn check(
    kind: BuilderKind,
    flavor: Option<DockerFlavor>,
    cache: &StepCache,
) -> Result<(), CacheError> {
    let error = |builder: String, why, fix| CacheError {
        builder,
        cache: cache.kind(),
        why,
        fix,
    };
    if kind == BuilderKind::Docker && flavor == Some(DockerFlavor::Classic) {
        return Err(error(
            "docker (classic)".to_owned(),
            "the classic builder imports no cache from a registry",
            "build with BuildKit (unset DOCKER_BUILDKIT=0, remove `buildkit: false`), or set `cache: false`",
        ));
    }
    match (kind, cache) {
        (BuilderKind::Buildkit, _) | (_, StepCache::Registry { .. }) => Ok(()),
        (BuilderKind::Docker, _) => Err(error(
            "docker".to_owned(),
            "the daemon's BuildKit exports an inline cache only, which lives in a registry",
            "use `cache: {type: registry}`, or `builder: buildkit` for S3, GitHub Actions or a local folder",
        )),
        (BuilderKind::Buildah | BuilderKind::Podman, _) => Err(error(
            kind.as_str().to_owned(),
            "it caches layers in a registry repository only (--cache-to/--cache-from)",
            "use `cache: {type: registry}`, or `builder: buildkit` for S3, GitHub Actions or a local folder",
        )),
    }
}

/// `key=value` pairs joined by `,`, as buildctl's cache options.
fn options(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// buildctl's `--import-cache` and `--export-cache` for `cache`, and its credentials.
pub(crate) fn buildctl(cache: &StepCache, mut cmd: CommandSpec) -> CommandSpec {
    let (import, export) = match cache {
        StepCache::S3 {
            endpoint,
            bucket,
            region,
            use_path_style,
            name,
            credentials,
        } => {
            let mut common = vec![
                ("region", region.clone()),
                ("bucket", bucket.clone()),
                ("name", name.clone()),
            ];
            if let Some(endpoint) = endpoint {
                common.push(("endpoint_url", endpoint.clone()));
            }
            if *use_path_style {
                common.push(("use_path_style", "true".to_owned()));
            }
            if let Some(credentials) = credentials {
                cmd = cmd
                    .secret_env("AWS_ACCESS_KEY_ID", credentials.access_key.clone())
                    .secret_env("AWS_SECRET_ACCESS_KEY", credentials.secret_key.clone());
            }
            let mut import = vec![("type", "s3".to_owned())];
            import.extend(common.iter().cloned());
            let mut export = import.clone();
            export.push(("mode", "max".to_owned()));
            (import, export)
        }
        StepCache::Registry { insecure, .. } => {
            let mut import = vec![
                ("type", "registry".to_owned()),
                ("ref", cache.reference().unwrap_or_default()),
            ];
            if *insecure {
                import.push(("registry.insecure", "true".to_owned()));
            }
            let mut export = import.clone();
            export.push(("mode", "max".to_owned()));
            (import, export)
        }
        StepCache::Gha { scope } => {
            let import = vec![("type", "gha".to_owned()), ("scope", scope.clone())];
            let mut export = import.clone();
            export.push(("mode", "max".to_owned()));
            (import, export)
        }
        StepCache::Local { dir } => {
            let dir = dir.display().to_string();
            (
                vec![("type", "local".to_owned()), ("src", dir.clone())],
                vec![
                    ("type", "local".to_owned()),
                    ("dest", dir),
                    ("mode", "max".to_owned()),
                ],
            )
        }
    };
    cmd.flag("--export-cache", options(&export))
        .flag("--import-cache", options(&import))
}

/// The flags of `docker build` (engine BuildKit) or `docker buildx build` that read a
/// registry cache and write an inline one, and the extra tag the image is pushed under.
pub(crate) fn docker(cache: &StepCache, flavor: DockerFlavor, mut cmd: CommandSpec) -> CommandSpec {
    let Some(reference) = cache.reference() else {
        return cmd;
    };
    if flavor == DockerFlavor::Buildx {
        cmd = cmd
            .flag("--cache-from", format!("type=registry,ref={reference}"))
            .flag("--cache-to", "type=inline");
    } else {
        cmd = cmd
            .flag("--build-arg", format!("{INLINE_CACHE_ARG}=1"))
            .flag("--cache-from", &reference);
    }
    cmd.flag("-t", reference)
}

/// The flags of `buildah bud` / `podman build` that read and write a registry cache.
pub(crate) fn containers_tool(cache: &StepCache, mut cmd: CommandSpec) -> CommandSpec {
    let StepCache::Registry {
        repository,
        insecure,
        ..
    } = cache
    else {
        return cmd;
    };
    if *insecure {
        cmd = cmd.arg("--tls-verify=false");
    }
    cmd.flag("--cache-from", repository)
        .flag("--cache-to", repository)
}

/// `docker-archive:` / `oci-archive:` style transport references.
pub(crate) fn transport(prefix: &str, path: &std::path::Path, name: &str) -> OsString {
    let mut target = OsString::from(prefix);
    target.push(path);
    target.push(":");
    target.push(name);
    target
}

#[cfg(test)]
mod tests {
    use super::*;
    use im_oci::Platform;

    fn registry() -> StepCache {
        StepCache::Registry {
            repository: "127.0.0.1:5050/cache/app".into(),
            tag: "app-linux-amd64".into(),
            insecure: true,
        }
    }

    #[test]
    fn a_scope_is_image_os_and_arch_in_tag_characters() {
        assert_eq!(scope("app", &Platform::linux("amd64")), "app-linux-amd64");
        assert_eq!(
            scope("team/app", &"linux/arm/v7".parse().unwrap()),
            "team-app-linux-arm-v7"
        );
    }

    #[test]
    fn impossible_pairs_say_what_to_change() {
        let s3 = StepCache::S3 {
            endpoint: None,
            bucket: "b".into(),
            region: "us-east-1".into(),
            use_path_style: false,
            name: "n".into(),
            credentials: None,
        };
        let error = check(BuilderKind::Buildah, None, &s3).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the buildah builder cannot use an s3 layer cache: it caches layers in a registry \
             repository only (--cache-to/--cache-from)"
        );
        assert!(check(BuilderKind::Buildkit, None, &s3).is_ok());
        assert!(check(BuilderKind::Podman, None, &registry()).is_ok());
        assert!(
            check(
                BuilderKind::Docker,
                Some(DockerFlavor::BuildKit),
                &registry()
            )
            .is_ok()
        );
        assert!(
            check(
                BuilderKind::Docker,
                Some(DockerFlavor::Classic),
                &registry()
            )
            .is_err()
        );
        assert!(check(BuilderKind::Docker, Some(DockerFlavor::Buildx), &s3).is_err());
    }
}
