//! podman: `podman build`, which is buildah underneath and takes the same approach:
//! parents pulled from step-private docker-archives under step-unique names, named by a
//! rewritten Dockerfile, the result committed straight to an OCI archive.

use super::buildah::containers_tool_plan;
use super::{Builder, BuilderKind, ContainersToolSettings, PlanError, StepPlan};
use crate::step::BuildStep;

/// The podman backend.
#[derive(Clone, Debug)]
pub struct Podman {
    settings: ContainersToolSettings,
}

impl Podman {
    pub fn new(settings: ContainersToolSettings) -> Self {
        Podman { settings }
    }
}

impl Builder for Podman {
    fn kind(&self) -> BuilderKind {
        BuilderKind::Podman
    }

    fn plan(&self, step: &BuildStep, parent_digests: &[String]) -> Result<StepPlan, PlanError> {
        containers_tool_plan(
            step,
            parent_digests,
            &self.settings,
            BuilderKind::Podman,
            "build",
        )
    }
}
