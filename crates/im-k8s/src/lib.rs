//! Kubernetes manifests that run image-manager in a cluster, as the Image Factory does (seeds
//! 003/004): a `Job` per build (one image tag, or one level of the graph), a `CronJob` for
//! scheduled refreshes (`build --refresh-bases --push`: rebuild what an upstream base update
//! reached), and a Kargo `AnalysisTemplate` whose job builds the image named in its args.
//!
//! Every pod is the same: an init container clones the project at a revision into an
//! `emptyDir`, and the builder container (an image with image-manager, buildah and skopeo,
//! see `examples/builder/`) runs image-manager with rootless buildah under seed 004's security
//! context (user 1000, no privilege escalation, only `SETUID`/`SETGID` added, the runtime's
//! default seccomp profile). Registry credentials come from a Secret of type
//! `kubernetes.io/dockerconfigjson` mounted as Docker's `config.json`; nothing secret is ever
//! written into a manifest. Pure: values in, YAML text out (im-ci's deterministic writer).

use std::borrow::Cow;

use im_ci::yaml::{Map, Yaml};

/// What every manifest shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    /// The builder image (image-manager, buildah, skopeo, git).
    pub image: String,
    /// The git repository holding the project, and the revision to build.
    pub repository: String,
    pub revision: String,
    /// The project's folder inside the repository (`.` for its root).
    pub project_dir: String,
    /// The Secret (type `kubernetes.io/dockerconfigjson`) with the registry credentials.
    pub registry_secret: String,
    /// The CronJob's schedule (cron syntax).
    pub schedule: String,
}

/// One build Job: its name and the targets it builds (`name:tag`).
#[derive(Debug, Clone)]
pub struct Build {
    pub name: String,
    pub targets: Vec<String>,
}

/// The user the builder runs as (seed 004).
const USER: &str = "1000";
/// Where the project is cloned, and rootless buildah keeps its store.
const WORKSPACE: &str = "/workspace";
const STORAGE: &str = "/home/builder/.local/share/containers";
const DOCKER_CONFIG: &str = "/home/builder/.docker";

/// A name Kubernetes accepts (RFC 1123 label, at most 63 characters) for `text`: lower case,
/// every other character `-`, trimmed; a long one keeps a stable hash of the whole.
pub fn object_name(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-').to_owned();
    if name.len() <= 63 {
        return name;
    }
    // FNV-1a: stable across runs and platforms, enough to keep long names apart.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!(
        "{}-{:08x}",
        name[..54].trim_end_matches('-'),
        hash & 0xffff_ffff
    )
}

fn s<'a>(text: impl Into<Cow<'a, str>>) -> Yaml<'a> {
    Yaml::str(text)
}

fn raw(text: &'static str) -> Yaml<'static> {
    Yaml::Raw(Cow::Borrowed(text))
}

fn metadata<'a>(settings: &'a Settings, name: String, component: &'static str) -> Yaml<'a> {
    Map::new()
        .with("name", s(name))
        .with("namespace", s(settings.namespace.as_str()))
        .with(
            "labels",
            Map::new()
                .with("app.kubernetes.io/name", s("image-manager"))
                .with("app.kubernetes.io/component", s(component))
                .build(),
        )
        .build()
}

/// Seed 004's container security context for rootless buildah.
fn security_context() -> Yaml<'static> {
    Map::new()
        .with("runAsUser", raw(USER))
        .with("runAsGroup", raw(USER))
        .with("runAsNonRoot", raw("true"))
        .with("allowPrivilegeEscalation", raw("false"))
        .with(
            "capabilities",
            Map::new()
                .with("drop", Yaml::strs(["ALL"]))
                .with("add", Yaml::strs(["SETUID", "SETGID"]))
                .build(),
        )
        .with(
            "seccompProfile",
            Map::new().with("type", s("RuntimeDefault")).build(),
        )
        .build()
}

fn mount(name: &'static str, path: &'static str, read_only: bool) -> Yaml<'static> {
    let mut map = Map::new().with("name", s(name)).with("mountPath", s(path));
    if read_only {
        map.push("readOnly", raw("true"));
    }
    map.build()
}

/// The pod: clone the project, then run `image-manager -C <project> <args>`.
fn pod<'a>(settings: &'a Settings, args: Vec<Yaml<'a>>) -> Yaml<'a> {
    let project = if settings.project_dir == "." {
        WORKSPACE.to_owned()
    } else {
        format!("{WORKSPACE}/{}", settings.project_dir.trim_matches('/'))
    };
    let clone = Map::new()
        .with("name", s("clone"))
        .with("image", s(settings.image.as_str()))
        .with(
            "command",
            Yaml::List(vec![
                s("git"),
                s("clone"),
                s("--depth=1"),
                s("--branch"),
                s(settings.revision.as_str()),
                s("--"),
                s(settings.repository.as_str()),
                s(WORKSPACE),
            ]),
        )
        .with("securityContext", security_context())
        .with(
            "volumeMounts",
            Yaml::List(vec![mount("workspace", WORKSPACE, false)]),
        )
        .build();
    let mut command = vec![s("image-manager"), s("-C"), s(project)];
    command.extend(args);
    let builder = Map::new()
        .with("name", s("builder"))
        .with("image", s(settings.image.as_str()))
        .with("command", Yaml::List(command))
        .with(
            "env",
            Yaml::List(vec![
                Map::new()
                    .with("name", s("DOCKER_CONFIG"))
                    .with("value", s(DOCKER_CONFIG))
                    .build(),
                Map::new()
                    .with("name", s("BUILDAH_ISOLATION"))
                    .with("value", s("chroot"))
                    .build(),
            ]),
        )
        .with("securityContext", security_context())
        .with(
            "volumeMounts",
            Yaml::List(vec![
                mount("workspace", WORKSPACE, false),
                mount("containers-storage", STORAGE, false),
                mount("registry-credentials", DOCKER_CONFIG, true),
            ]),
        )
        .build();
    let empty = |name: &'static str| {
        Map::new()
            .with("name", s(name))
            .with("emptyDir", Yaml::Map(Vec::new()))
            .build()
    };
    Map::new()
        .with("restartPolicy", s("Never"))
        .with(
            "securityContext",
            Map::new()
                .with("fsGroup", raw(USER))
                .with(
                    "seccompProfile",
                    Map::new().with("type", s("RuntimeDefault")).build(),
                )
                .build(),
        )
        .with("initContainers", Yaml::List(vec![clone]))
        .with("containers", Yaml::List(vec![builder]))
        .with(
            "volumes",
            Yaml::List(vec![
                empty("workspace"),
                empty("containers-storage"),
                Map::new()
                    .with("name", s("registry-credentials"))
                    .with(
                        "secret",
                        Map::new()
                            .with("secretName", s(settings.registry_secret.as_str()))
                            .with(
                                "items",
                                Yaml::List(vec![
                                    Map::new()
                                        .with("key", s(".dockerconfigjson"))
                                        .with("path", s("config.json"))
                                        .build(),
                                ]),
                            )
                            .build(),
                    )
                    .build(),
            ]),
        )
        .build()
}

fn job_spec<'a>(settings: &'a Settings, args: Vec<Yaml<'a>>) -> Yaml<'a> {
    Map::new()
        .with("backoffLimit", raw("1"))
        .with("ttlSecondsAfterFinished", raw("86400"))
        .with(
            "template",
            Map::new().with("spec", pod(settings, args)).build(),
        )
        .build()
}

/// A `Job` that runs `build --push` for the build's targets (each with what it is built on;
/// what the registry already holds is not built again).
pub fn job(settings: &Settings, build: &Build) -> String {
    let mut args = vec![s("build"), s("--push")];
    args.extend(build.targets.iter().map(|t| s(t.as_str())));
    Map::new()
        .with("apiVersion", s("batch/v1"))
        .with("kind", s("Job"))
        .with("metadata", metadata(settings, build.name.clone(), "build"))
        .with("spec", job_spec(settings, args))
        .build()
        .render()
}

/// A `CronJob` that rebuilds, on `settings.schedule`, exactly the images whose external bases
/// moved upstream (`outdated` → `build --refresh-bases --push`).
pub fn cron_job(settings: &Settings) -> String {
    let args = vec![s("build"), s("--refresh-bases"), s("--push")];
    Map::new()
        .with("apiVersion", s("batch/v1"))
        .with("kind", s("CronJob"))
        .with(
            "metadata",
            metadata(settings, "image-manager-refresh-bases".into(), "refresh"),
        )
        .with(
            "spec",
            Map::new()
                .with("schedule", s(settings.schedule.as_str()))
                .with("concurrencyPolicy", s("Forbid"))
                .with("successfulJobsHistoryLimit", raw("3"))
                .with("failedJobsHistoryLimit", raw("3"))
                .with(
                    "jobTemplate",
                    Map::new().with("spec", job_spec(settings, args)).build(),
                )
                .build(),
        )
        .build()
        .render()
}

/// A Kargo `AnalysisTemplate` (Argo Rollouts' `argoproj.io/v1alpha1` kind, which Kargo uses
/// for verification) whose job builds and pushes `{{args.image}}:{{args.tag}}`.
pub fn analysis_template(settings: &Settings) -> String {
    let args = vec![s("build"), s("--push"), s("{{args.image}}:{{args.tag}}")];
    let arg = |name: &'static str| Map::new().with("name", s(name)).build();
    Map::new()
        .with("apiVersion", s("argoproj.io/v1alpha1"))
        .with("kind", s("AnalysisTemplate"))
        .with(
            "metadata",
            metadata(settings, "image-manager-build".into(), "kargo"),
        )
        .with(
            "spec",
            Map::new()
                .with("args", Yaml::List(vec![arg("image"), arg("tag")]))
                .with(
                    "metrics",
                    Yaml::List(vec![
                        Map::new()
                            .with("name", s("build-image"))
                            .with(
                                "provider",
                                Map::new()
                                    .with(
                                        "job",
                                        Map::new()
                                            .with(
                                                "metadata",
                                                Map::new()
                                                    .with(
                                                        "labels",
                                                        Map::new()
                                                            .with(
                                                                "app.kubernetes.io/name",
                                                                s("image-manager"),
                                                            )
                                                            .build(),
                                                    )
                                                    .build(),
                                            )
                                            .with("spec", job_spec(settings, args))
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    ]),
                )
                .build(),
        )
        .build()
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            namespace: "images".into(),
            image: "registry.example.com/tools/image-manager-builder:1".into(),
            repository: "https://git.example.com/platform/images.git".into(),
            revision: "main".into(),
            project_dir: ".".into(),
            registry_secret: "registry-credentials".into(),
            schedule: "17 3 * * *".into(),
        }
    }

    #[test]
    fn names_are_rfc_1123_labels() {
        assert_eq!(object_name("build-python:3.13.7"), "build-python-3-13-7");
        assert_eq!(object_name("Build__App"), "build-app");
        let long = object_name(&format!("build-{}", "x".repeat(80)));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(long, object_name(&format!("build-{}", "x".repeat(81))));
    }

    #[test]
    fn a_build_job() {
        let build = Build {
            name: object_name("build-python:3.13.7"),
            targets: vec!["python:3.13.7".into()],
        };
        insta::assert_snapshot!(job(&settings(), &build));
    }

    #[test]
    fn the_refresh_cron_job() {
        insta::assert_snapshot!(cron_job(&settings()));
    }

    #[test]
    fn the_kargo_analysis_template() {
        insta::assert_snapshot!(analysis_template(&Settings {
            project_dir: "images/".into(),
            ..settings()
        }));
    }
}
