//! buildah: `buildah bud` with no daemon. Parents are pulled from docker-archives made
//! for this step under names only this step uses, a copy of the Dockerfile names those,
//! and the result is committed straight to an OCI archive (`-t oci-archive:…`), so
//! parallel builds never share a name in the image store.

use std::ffi::OsString;

use super::{
    Builder, BuilderKind, ContainersToolSettings, PlanError, StepPlan, ToolOutput, args_and_labels,
    check_step, check_transport_path, load_parents_as_docker_archives, output_tag,
    rewritten_dockerfile,
};
use crate::cache::transport;
use crate::command::CommandSpec;
use crate::leftovers::{MarkedContainers, STEP_ARG};
use crate::step::BuildStep;

/// The buildah backend.
#[derive(Clone, Debug)]
pub struct Buildah {
    settings: ContainersToolSettings,
}

impl Buildah {
    pub fn new(settings: ContainersToolSettings) -> Self {
        Buildah { settings }
    }
}

impl Builder for Buildah {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Buildah
    }

    fn plan(&self, step: &BuildStep, parent_digests: &[String]) -> Result<StepPlan, PlanError> {
        containers_tool_plan(
            step,
            parent_digests,
            &self.settings,
            BuilderKind::Buildah,
            "bud",
        )
    }
}

/// The plan shared by buildah (`bud`) and podman (`build`), whose commands take the same
/// flags: each parent is converted to a docker-archive tagged with a name unique to this
/// step and pulled (the name comes from the archive, so no other build can move it), the
/// Dockerfile copy names those tags, and the result is committed straight to an OCI
/// archive in the work directory.
pub(super) fn containers_tool_plan(
    step: &BuildStep,
    parent_digests: &[String],
    settings: &ContainersToolSettings,
    kind: BuilderKind,
    subcommand: &str,
) -> Result<StepPlan, PlanError> {
    check_step(step, parent_digests, kind, None)?;
    let work_dir = step.work_dir();
    let archive = work_dir.join("image.tar");
    check_transport_path(step, kind, &archive)?;
    let tool = || settings.global_args(CommandSpec::new(&settings.program));
    let (prepare, loads, tags) = load_parents_as_docker_archives(step, |archive| {
        let mut source = OsString::from("docker-archive:");
        source.push(archive);
        tool().arg("pull").arg(source)
    });
    let dockerfile = rewritten_dockerfile(step);
    let mut cmd = tool()
        .arg(subcommand)
        .flag("--isolation", &settings.isolation)
        .flag("--platform", step.platform.to_string())
        .arg("--pull=never");
    cmd = match &step.cache {
        // One image per instruction, each pushed to and looked up in the cache repository.
        Some(cache) => crate::cache::containers_tool(cache, cmd.arg("--layers")),
        // One commit per build, as buildah does by default: podman's default intermediate
        // images make a tag's image depend on which other tags the store built before it.
        None => cmd.arg("--layers=false"),
    };
    if step.no_cache {
        cmd = cmd.arg("--no-cache");
    }
    if let Some(epoch) = step.source_date_epoch {
        cmd = cmd.flag("--timestamp", epoch.to_string());
    }
    cmd = cmd.flag("-f", &dockerfile);
    cmd = args_and_labels(step, cmd);
    // buildah marks the working containers of this build as the step's, so a later run can
    // remove those a killed build left (see `crate::leftovers`); podman's builds are not.
    let marked_containers = (kind == BuilderKind::Buildah).then(|| MarkedContainers {
        store: tool().arg("info").flag(
            "--format",
            "{{.store.GraphRoot}}|{{.store.GraphDriverName}}",
        ),
        list: tool().arg("containers").arg("--all").arg("--json"),
        remove: tool().arg("rm"),
        marker: work_dir.display().to_string(),
    });
    if let Some(marked) = &marked_containers {
        cmd = cmd.flag("--build-arg", format!("{STEP_ARG}={}", marked.marker));
    }
    let target = transport("oci-archive:", &archive, &step.image);
    let mut tags = tags;
    let commands = if step.cache.is_some() {
        // buildah 1.28 cannot push the last instruction's cache when it commits to an
        // `oci-archive:` destination: commit under a step-unique name, then push that.
        let local = output_tag(step);
        tags.push(local.clone());
        let mut push = tool().arg("push");
        if kind == BuilderKind::Buildah {
            // As committed; podman's push has no such flag.
            push = push.arg("--disable-compression");
        }
        vec![
            cmd.flag("-t", &local).arg(&step.context_dir),
            push.arg("--quiet").arg(&local).arg(target),
        ]
    } else {
        vec![cmd.flag("-t", target).arg(&step.context_dir)]
    };
    // `--force` also removes containers still using a parent tag: the working container of
    // a build that was killed before it could remove it.
    let cleanup = if tags.is_empty() {
        Vec::new()
    } else {
        vec![
            tags.into_iter()
                .fold(tool().arg("rmi").arg("--force"), CommandSpec::arg),
        ]
    };
    Ok(StepPlan {
        work_dir,
        prepare,
        loads,
        commands,
        output: ToolOutput::OciArchive(archive),
        cleanup,
        cache_exports: Vec::new(),
        marked_containers,
    })
}
