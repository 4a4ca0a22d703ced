//! buildah: `buildah bud` with no daemon. Parents are pulled from docker-archives made
//! for this step under names only this step uses, a copy of the Dockerfile names those,
//! and the result is committed straight to an OCI archive (`-t oci-archive:…`), so
//! parallel builds never share a name in the image store.

use std::collections::BTreeMap;
use std::ffi::OsString;

use super::{
    Builder, BuilderKind, ContainersToolSettings, PlanError, Prepare, StepPlan, ToolOutput,
    args_and_labels, check_step, check_transport_path, parent_tag, rewritten_dockerfile,
};
use crate::command::CommandSpec;
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
    check_step(step, parent_digests)?;
    let work_dir = step.work_dir();
    let archive = work_dir.join("image.tar");
    check_transport_path(step, kind, &archive)?;
    let tool = || settings.global_args(CommandSpec::new(&settings.program));
    let mut prepare = Vec::new();
    let mut loads = Vec::new();
    let mut replacements = BTreeMap::new();
    let mut tags = Vec::new();
    for (i, parent) in step.parents.iter().enumerate() {
        let tag = parent_tag(step, i);
        let docker_archive = work_dir.join(format!("parent-{i}.docker.tar"));
        prepare.push(Prepare::DockerArchive {
            parent: parent.archive.clone(),
            dest: docker_archive.clone(),
            tag: tag.clone(),
        });
        let mut source = OsString::from("docker-archive:");
        source.push(&docker_archive);
        loads.push(tool().arg("pull").arg(source));
        replacements.insert(parent.reference.clone(), tag.clone());
        tags.push(tag);
    }
    let dockerfile = rewritten_dockerfile(step);
    prepare.insert(
        0,
        Prepare::RewriteDockerfile {
            source: step.dockerfile.clone(),
            dest: dockerfile.clone(),
            replacements,
            build_args: step.build_args.clone(),
        },
    );
    let mut cmd = tool()
        .arg(subcommand)
        .flag("--isolation", &settings.isolation)
        .flag("--platform", step.platform.to_string())
        .arg("--pull=never")
        // One commit per build, as buildah does by default: podman's default intermediate
        // images make a tag's image depend on which other tags the store built before it.
        .arg("--layers=false");
    if step.no_cache {
        cmd = cmd.arg("--no-cache");
    }
    if let Some(epoch) = step.source_date_epoch {
        cmd = cmd.flag("--timestamp", epoch.to_string());
    }
    cmd = cmd.flag("-f", &dockerfile);
    cmd = args_and_labels(step, cmd);
    let mut target = OsString::from("oci-archive:");
    target.push(&archive);
    target.push(":");
    target.push(&step.image);
    let commands = vec![cmd.flag("-t", target).arg(&step.context_dir)];
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
    })
}
