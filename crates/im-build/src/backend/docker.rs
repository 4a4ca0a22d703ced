//! Docker Engine: `docker buildx build --load` when buildx exists, else `docker build`
//! with the engine's BuildKit (`DOCKER_BUILDKIT=1`), else the classic builder
//! (`DOCKER_BUILDKIT=0`, given the `TARGET*` platform args BuildKit would define). Parents are converted to docker-archives tagged with names
//! unique to this step and `docker load`ed; the Dockerfile copy names those tags; the
//! result, tagged with another step-unique name, is `docker save`d and converted to the
//! OCI archive; the step's tags are removed afterwards.
//!
//! With buildx, the builder must be the daemon's own (the `docker` driver, buildx's
//! default): a `docker-container` builder cannot see images loaded into the daemon. The
//! `buildkit` backend is the one for a separate BuildKit.

use super::{
    Builder, BuilderKind, DockerSettings, PlanError, StepPlan, ToolOutput, args_and_labels,
    check_step, load_parents_as_docker_archives, output_tag, rewritten_dockerfile,
};
use crate::command::CommandSpec;
use crate::settings::DockerFlavor;
use crate::step::BuildStep;

/// BuildKit, buildah and podman define `TARGETPLATFORM`, `TARGETOS`, `TARGETARCH` and
/// `TARGETVARIANT` for every build; the classic builder does not, so a Dockerfile's `ARG
/// TARGETARCH` would be empty there. They are passed as build args (a build arg of the
/// step with the same name wins).
fn platform_args(step: &BuildStep) -> Vec<(&'static str, String)> {
    let platform = &step.platform;
    [
        ("TARGETPLATFORM", Some(platform.to_string())),
        ("TARGETOS", Some(platform.os.clone())),
        ("TARGETARCH", Some(platform.architecture.clone())),
        ("TARGETVARIANT", platform.variant.clone()),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .filter(|(name, _)| !step.build_args.contains_key(*name))
    .collect()
}

/// The Docker Engine backend.
#[derive(Clone, Debug)]
pub struct Docker {
    settings: DockerSettings,
    flavor: DockerFlavor,
}

impl Docker {
    pub fn new(settings: DockerSettings, flavor: DockerFlavor) -> Self {
        Docker { settings, flavor }
    }

    fn command(&self) -> CommandSpec {
        let mut cmd = CommandSpec::new(&self.settings.program);
        if let Some(host) = &self.settings.host {
            cmd = cmd.env("DOCKER_HOST", host);
        }
        cmd
    }
}

impl Builder for Docker {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Docker
    }

    fn plan(&self, step: &BuildStep, parent_digests: &[String]) -> Result<StepPlan, PlanError> {
        check_step(step, parent_digests, BuilderKind::Docker, Some(self.flavor))?;
        let work_dir = step.work_dir();
        let output_tag = output_tag(step);
        let (prepare, loads, parent_tags) = load_parents_as_docker_archives(step, |archive| {
            self.command().arg("load").flag("-i", archive)
        });
        let mut commands = Vec::new();
        let mut tags = vec![output_tag.clone()];
        tags.extend(parent_tags);
        let dockerfile = rewritten_dockerfile(step);
        let mut build = match self.flavor {
            DockerFlavor::Buildx => self
                .command()
                .arg("buildx")
                .arg("build")
                .flag("--progress", "plain")
                .arg("--load"),
            DockerFlavor::BuildKit => self
                .command()
                .env("DOCKER_BUILDKIT", "1")
                .arg("build")
                .flag("--progress", "plain"),
            DockerFlavor::Classic => {
                let mut classic = self.command().env("DOCKER_BUILDKIT", "0").arg("build");
                for (name, value) in platform_args(step) {
                    classic = classic.flag("--build-arg", format!("{name}={value}"));
                }
                classic
            }
        };
        build = build.flag("--platform", step.platform.to_string());
        if step.no_cache {
            build = build.arg("--no-cache");
        }
        build = build.flag("-f", &dockerfile).flag("-t", &output_tag);
        let mut cache_exports = Vec::new();
        if let Some(cache) = &step.cache {
            build = crate::cache::docker(cache, self.flavor, build);
            if let Some(reference) = cache.reference() {
                cache_exports.push(self.command().arg("push").arg(&reference));
                tags.push(reference);
            }
        }
        build = args_and_labels(step, build).arg(&step.context_dir);
        commands.push(build);
        let saved = work_dir.join("image.docker.tar");
        commands.push(
            self.command()
                .arg("save")
                .flag("-o", &saved)
                .arg(&output_tag),
        );
        let mut rmi = self.command().arg("rmi");
        for tag in tags {
            rmi = rmi.arg(tag);
        }
        Ok(StepPlan {
            work_dir,
            prepare,
            loads,
            commands,
            output: ToolOutput::DockerArchive(saved),
            cleanup: vec![rmi],
            cache_exports,
            marked_containers: None,
        })
    }
}
