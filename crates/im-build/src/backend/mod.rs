//! The `Builder` trait, one implementation per tool (buildah, Docker, BuildKit's
//! `buildctl`, podman), and the data a builder produces for a step: a [`StepPlan`] with
//! the files to prepare, the exact argv and environment of every command, where the
//! tool leaves the image and what to clean up. Planning is a pure function of the step,
//! the parents' manifest digests and the backend's settings; [`crate::execute_step`]
//! carries the plan out.

mod buildah;
mod buildkit;
mod docker;
mod podman;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use buildah::Buildah;
pub use buildkit::Buildkit;
pub use docker::Docker;
pub use podman::Podman;

use crate::command::CommandSpec;
use crate::leftovers::MarkedContainers;
pub use crate::settings::{
    BackendChoice, BuilderKind, BuilderSettings, BuildkitSettings, ContainersToolSettings,
    DockerFlavor, DockerSettings, UnknownBuilder,
};
use crate::step::BuildStep;

/// Files a step needs before its commands run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prepare {
    /// Copy `source` to `dest` with references to parents replaced
    /// ([`crate::rewrite::rewrite_parents`]); every parent must be referenced.
    RewriteDockerfile {
        source: PathBuf,
        dest: PathBuf,
        replacements: BTreeMap<String, String>,
        build_args: BTreeMap<String, String>,
    },
    /// Convert a parent's OCI archive to a docker-archive tagged `tag`.
    DockerArchive {
        parent: PathBuf,
        dest: PathBuf,
        tag: String,
    },
    /// Unpack a parent's OCI archive into an OCI layout directory.
    OciLayout { parent: PathBuf, dest: PathBuf },
}

/// Where the tool leaves the built image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolOutput {
    /// An OCI archive, renamed into place as is.
    OciArchive(PathBuf),
    /// A docker-archive, converted to the OCI archive.
    DockerArchive(PathBuf),
}

/// Everything a backend does for one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepPlan {
    /// Scratch space; created empty before and removed after the step.
    pub work_dir: PathBuf,
    pub prepare: Vec<Prepare>,
    /// Commands that add the parents to the tool's image store (`pull`, `load`): run one
    /// at a time across parallel steps, since a shared store mishandles concurrent loads.
    pub loads: Vec<CommandSpec>,
    /// The build itself and what exports its image, after the loads.
    pub commands: Vec<CommandSpec>,
    pub output: ToolOutput,
    /// Run after the step whatever happened, one at a time like the loads (they remove
    /// what the loads added); failures are only logged.
    pub cleanup: Vec<CommandSpec>,
    /// Run after a successful build, before the cleanup: what writes the layer cache
    /// (`docker push` of the inline cache); a failure is logged and the build stands.
    pub cache_exports: Vec<CommandSpec>,
    /// The working containers the step's builds mark as theirs, which a later run removes
    /// when this one was killed (buildah; see [`crate::leftovers`]).
    pub marked_containers: Option<MarkedContainers>,
}

impl fmt::Display for StepPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "work dir: {}", self.work_dir.display())?;
        for p in &self.prepare {
            match p {
                Prepare::RewriteDockerfile {
                    source,
                    dest,
                    replacements,
                    ..
                } => {
                    writeln!(
                        f,
                        "prepare: rewrite {} -> {}",
                        source.display(),
                        dest.display()
                    )?;
                    for (from, to) in replacements {
                        writeln!(f, "    {from} => {to}")?;
                    }
                }
                Prepare::DockerArchive { parent, dest, tag } => writeln!(
                    f,
                    "prepare: docker-archive {} -> {} as {tag}",
                    parent.display(),
                    dest.display()
                )?,
                Prepare::OciLayout { parent, dest } => writeln!(
                    f,
                    "prepare: oci-layout {} -> {}",
                    parent.display(),
                    dest.display()
                )?,
            }
        }
        for c in self.loads.iter().chain(&self.commands) {
            writeln!(f, "run: {}", c.display())?;
        }
        match &self.output {
            ToolOutput::OciArchive(p) => writeln!(f, "output: oci-archive {}", p.display())?,
            ToolOutput::DockerArchive(p) => writeln!(f, "output: docker-archive {}", p.display())?,
        }
        for c in &self.cache_exports {
            writeln!(f, "cache: {}", c.display())?;
        }
        for c in &self.cleanup {
            writeln!(f, "cleanup: {}", c.display())?;
        }
        if let Some(marked) = &self.marked_containers {
            writeln!(
                f,
                "after a killed run: remove the containers marked {}={}",
                crate::leftovers::STEP_ARG,
                marked.marker
            )?;
        }
        Ok(())
    }
}

/// A step a backend cannot plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{node}: the {field} path {} is relative; the plan must give absolute paths", path.display())]
    RelativePath {
        node: String,
        field: &'static str,
        path: PathBuf,
    },
    #[error("{node}: the path {} cannot be used with {builder}: {reason}", path.display())]
    UnsupportedPath {
        node: String,
        builder: BuilderKind,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("{node}: the layer cache cannot be used")]
    Cache {
        node: String,
        #[source]
        source: crate::cache::CacheError,
    },
    #[error("{node}: {given} parent digests were given for {expected} parents")]
    ParentDigests {
        node: String,
        expected: usize,
        given: usize,
    },
}

/// A builder tool: turns a step into a [`StepPlan`].
pub trait Builder: Send + Sync {
    fn kind(&self) -> BuilderKind;

    /// Everything this tool does for `step`. `parent_digests[i]` is the manifest digest
    /// (`sha256:…`) of `step.parents[i].archive`.
    fn plan(&self, step: &BuildStep, parent_digests: &[String]) -> Result<StepPlan, PlanError>;
}

/// The builder `choice` names, configured from `settings`, running the program detection
/// found.
pub fn builder_for(choice: &BackendChoice, settings: &BuilderSettings) -> Box<dyn Builder> {
    let program = choice.program.clone();
    match choice.kind {
        BuilderKind::Buildah => Box::new(Buildah::new(ContainersToolSettings {
            program,
            ..settings.buildah.clone()
        })),
        BuilderKind::Podman => Box::new(Podman::new(ContainersToolSettings {
            program,
            ..settings.podman.clone()
        })),
        BuilderKind::Docker => Box::new(Docker::new(
            DockerSettings {
                program,
                ..settings.docker.clone()
            },
            choice.docker_flavor.unwrap_or(DockerFlavor::Classic),
        )),
        BuilderKind::Buildkit => Box::new(Buildkit::new(BuildkitSettings {
            program,
            ..settings.buildkit.clone()
        })),
    }
}

/// Checks that every path of `step` is absolute, the digests match the parents and the
/// builder (`builder_kind`, with Docker's `docker_flavor`) can use the step's cache.
fn check_step(
    step: &BuildStep,
    parent_digests: &[String],
    builder_kind: BuilderKind,
    docker_flavor: Option<DockerFlavor>,
) -> Result<(), PlanError> {
    let paths = [
        ("context", &step.context_dir),
        ("Dockerfile", &step.dockerfile),
        ("output", &step.output),
        ("log", &step.log),
    ];
    let parents = step.parents.iter().map(|p| ("parent archive", &p.archive));
    for (field, path) in paths.into_iter().chain(parents) {
        if !path.is_absolute() {
            return Err(PlanError::RelativePath {
                node: step.node.clone(),
                field,
                path: path.clone(),
            });
        }
    }
    if let Some(cache) = &step.cache
        && let Err(source) = crate::cache::check(builder_kind, docker_flavor, cache)
    {
        return Err(PlanError::Cache {
            node: step.node.clone(),
            source,
        });
    }
    if parent_digests.len() != step.parents.len() {
        return Err(PlanError::ParentDigests {
            node: step.node.clone(),
            expected: step.parents.len(),
            given: parent_digests.len(),
        });
    }
    Ok(())
}

/// A path inside an `oci-archive:PATH:NAME` reference cannot hold `:`, the transport's
/// separator.
fn check_transport_path(
    step: &BuildStep,
    builder: BuilderKind,
    path: &Path,
) -> Result<(), PlanError> {
    if !path.to_string_lossy().contains(':') {
        return Ok(());
    }
    Err(PlanError::UnsupportedPath {
        node: step.node.clone(),
        builder,
        path: path.to_owned(),
        reason: "it contains `:`, which separates an oci-archive path from its image name",
    })
}

/// How the buildah-style tools (buildah, podman, docker) get a step's parents: each parent's
/// OCI archive becomes a docker-archive tagged with a name unique to the step, which `load`
/// adds to the tool's store, and the Dockerfile copy names those tags instead of the
/// references it had. Returns the files to prepare (the Dockerfile rewrite first), the loads
/// and the parent tags (for the cleanup).
fn load_parents_as_docker_archives(
    step: &BuildStep,
    load: impl Fn(&Path) -> CommandSpec,
) -> (Vec<Prepare>, Vec<CommandSpec>, Vec<String>) {
    let work_dir = step.work_dir();
    let mut prepare = vec![Prepare::RewriteDockerfile {
        source: step.dockerfile.clone(),
        dest: rewritten_dockerfile(step),
        replacements: BTreeMap::new(),
        build_args: step.build_args.clone(),
    }];
    let mut loads = Vec::new();
    let mut tags = Vec::new();
    for (i, parent) in step.parents.iter().enumerate() {
        let tag = parent_tag(step, i);
        let docker_archive = work_dir.join(format!("parent-{i}.docker.tar"));
        prepare.push(Prepare::DockerArchive {
            parent: parent.archive.clone(),
            dest: docker_archive.clone(),
            tag: tag.clone(),
        });
        loads.push(load(&docker_archive));
        if let Prepare::RewriteDockerfile { replacements, .. } = &mut prepare[0] {
            replacements.insert(parent.reference.clone(), tag.clone());
        }
        tags.push(tag);
    }
    (prepare, loads, tags)
}

/// The rewritten Dockerfile's path.
fn rewritten_dockerfile(step: &BuildStep) -> PathBuf {
    step.work_dir().join("Dockerfile")
}

/// Common build flags of the buildah-style CLIs (buildah, podman, docker):
/// `--build-arg`, `--label`, `SOURCE_DATE_EPOCH`.
fn args_and_labels(step: &BuildStep, mut cmd: CommandSpec) -> CommandSpec {
    for (k, v) in &step.build_args {
        cmd = cmd.flag("--build-arg", format!("{k}={v}"));
    }
    let epoch = step
        .source_date_epoch
        .filter(|_| !step.build_args.contains_key("SOURCE_DATE_EPOCH"));
    if let Some(epoch) = epoch {
        cmd = cmd.flag("--build-arg", format!("SOURCE_DATE_EPOCH={epoch}"));
    }
    for (k, v) in &step.labels {
        cmd = cmd.flag("--label", format!("{k}={v}"));
    }
    cmd
}

/// The local name under which parent `index` of `step` is loaded: unique to the step
/// (node, output path, platform), so parallel builds never move each other's names.
fn parent_tag(step: &BuildStep, index: usize) -> String {
    format!(
        "localhost/im-build/{}:{}-parent-{index}",
        step_slug(step),
        step.platform.slug()
    )
}

/// The local name the docker backend tags its result with, unique to the step.
fn output_tag(step: &BuildStep) -> String {
    format!(
        "localhost/im-build/{}:{}-output",
        step_slug(step),
        step.platform.slug()
    )
}

/// A name component unique to this step: `<node slug>-<hash of the output path>`.
fn step_slug(step: &BuildStep) -> String {
    let mut slug = String::new();
    for c in step.node.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = im_oci::Digest::of_bytes(
        im_oci::Algorithm::Sha256,
        step.output.as_os_str().as_encoded_bytes(),
    );
    let hash = &hash.hex()[..8];
    if slug.is_empty() {
        format!("image-{hash}")
    } else {
        format!("{slug}-{hash}")
    }
}

#[cfg(test)]
mod tests;
