//! buildah: `buildah bud` with no daemon. Parents are read straight from their OCI
//! archives (`FROM oci-archive:/…/image.tar` in a rewritten copy of the Dockerfile) and
//! the result is committed straight to an OCI archive, so nothing is named in the image
//! store and parallel builds cannot interfere.

use std::collections::BTreeMap;

use super::{
    Builder, BuilderKind, ContainersToolSettings, PlanError, Prepare, StepPlan, ToolOutput,
    args_and_labels, check_step, check_transport_path, rewritten_dockerfile,
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

/// The plan shared by buildah (`bud`) and podman (`build`), whose build commands take
/// the same flags.
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
    let mut replacements = BTreeMap::new();
    for parent in &step.parents {
        check_transport_path(step, kind, &parent.archive)?;
        replacements.insert(
            parent.reference.clone(),
            format!("oci-archive:{}", parent.archive.display()),
        );
    }
    let dockerfile = rewritten_dockerfile(step);
    let mut cmd = settings
        .global_args(CommandSpec::new(&settings.program))
        .arg(subcommand)
        .flag("--isolation", &settings.isolation)
        .flag("--platform", step.platform.to_string())
        .arg("--pull=never");
    if step.no_cache {
        cmd = cmd.arg("--no-cache");
    }
    if let Some(epoch) = step.source_date_epoch {
        cmd = cmd.flag("--timestamp", epoch.to_string());
    }
    cmd = cmd.flag("-f", &dockerfile);
    cmd = args_and_labels(step, cmd);
    let mut target = std::ffi::OsString::from("oci-archive:");
    target.push(&archive);
    target.push(":");
    target.push(&step.image);
    cmd = cmd.flag("-t", target).arg(&step.context_dir);
    Ok(StepPlan {
        prepare: vec![Prepare::RewriteDockerfile {
            source: step.dockerfile.clone(),
            dest: dockerfile,
            replacements,
            build_args: step.build_args.clone(),
        }],
        commands: vec![cmd],
        output: ToolOutput::OciArchive(archive),
        cleanup: Vec::new(),
        work_dir,
    })
}
