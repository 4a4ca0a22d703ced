//! BuildKit through `buildctl`: the Dockerfile frontend with each parent passed as a
//! named context from an OCI layout directory unpacked from its archive
//! (`--oci-layout parentN=DIR`, `--opt context:<ref>=oci-layout://parentN@<digest>`),
//! and the result exported with `--output type=oci`. The Dockerfile is used unchanged.

use std::ffi::OsString;

use super::{
    Builder, BuilderKind, BuildkitSettings, PlanError, Prepare, StepPlan, ToolOutput, check_step,
};
use crate::command::CommandSpec;
use crate::step::BuildStep;

/// The BuildKit backend.
#[derive(Clone, Debug)]
pub struct Buildkit {
    settings: BuildkitSettings,
}

impl Buildkit {
    pub fn new(settings: BuildkitSettings) -> Self {
        Buildkit { settings }
    }
}

impl Builder for Buildkit {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Buildkit
    }

    fn plan(&self, step: &BuildStep, parent_digests: &[String]) -> Result<StepPlan, PlanError> {
        check_step(step, parent_digests, BuilderKind::Buildkit, None)?;
        let work_dir = step.work_dir();
        let archive = work_dir.join("image.tar");
        let mut cmd = CommandSpec::new(&self.settings.program);
        if let Some(addr) = &self.settings.addr {
            cmd = cmd.flag("--addr", addr);
        }
        let dockerfile_dir = step.dockerfile.parent().unwrap_or(&step.context_dir);
        let dockerfile_name = step
            .dockerfile
            .file_name()
            .map_or_else(|| OsString::from("Dockerfile"), ToOwned::to_owned);
        let mut filename = OsString::from("filename=");
        filename.push(dockerfile_name);
        cmd = cmd
            .arg("build")
            .flag("--progress", "plain")
            .flag("--frontend", "dockerfile.v0")
            .flag("--local", prefixed("context=", &step.context_dir))
            .flag("--local", prefixed("dockerfile=", dockerfile_dir))
            .flag("--opt", filename)
            .flag("--opt", format!("platform={}", step.platform))
            .flag("--opt", "image-resolve-mode=local");
        if step.no_cache {
            cmd = cmd.arg("--no-cache");
        }
        if let Some(cache) = &step.cache {
            cmd = crate::cache::buildctl(cache, cmd);
        }
        for (k, v) in &step.build_args {
            cmd = cmd.flag("--opt", format!("build-arg:{k}={v}"));
        }
        let epoch = step
            .source_date_epoch
            .filter(|_| !step.build_args.contains_key("SOURCE_DATE_EPOCH"));
        if let Some(epoch) = epoch {
            cmd = cmd.flag("--opt", format!("build-arg:SOURCE_DATE_EPOCH={epoch}"));
        }
        for (k, v) in &step.labels {
            cmd = cmd.flag("--opt", format!("label:{k}={v}"));
        }
        let mut prepare = Vec::new();
        for (i, (parent, digest)) in step.parents.iter().zip(parent_digests).enumerate() {
            let layout = work_dir.join(format!("parent-{i}"));
            prepare.push(Prepare::OciLayout {
                parent: parent.archive.clone(),
                dest: layout.clone(),
            });
            cmd = cmd
                .flag("--oci-layout", prefixed(&format!("parent{i}="), &layout))
                .flag(
                    "--opt",
                    format!(
                        "context:{}=oci-layout://parent{i}@{digest}",
                        parent.reference
                    ),
                );
        }
        let mut output = OsString::from("type=oci,dest=");
        output.push(&archive);
        output.push(format!(",name={}", step.image));
        cmd = cmd.flag("--output", output);
        Ok(StepPlan {
            work_dir,
            prepare,
            loads: Vec::new(),
            commands: vec![cmd],
            output: ToolOutput::OciArchive(archive),
            cleanup: Vec::new(),
            cache_exports: Vec::new(),
            marked_containers: None,
        })
    }
}

fn prefixed(prefix: &str, path: &std::path::Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path);
    s
}
