//! Carrying out one step: check the parents' archives, ask the builder for its plan,
//! prepare the work directory, run the commands with the process runner (full output to
//! the step's log, step lines to the caller), check the image's platform, move the OCI
//! archive into place atomically, clean up. A failed or cancelled step leaves no
//! `image.tar` at its output path (a stale one from an earlier build is removed first).

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use crate::archive_write::ArchiveError;
use crate::atomic::rename_into_place;
use crate::backend::{Builder, PlanError, Prepare, StepPlan, ToolOutput};
use crate::docker_archive::{docker_archive_to_oci, oci_to_docker_archive};
use crate::parent_names::{ParentName, parent_names, rename_parents};
use crate::progress::step_line;
use crate::rewrite::rewrite_parents;
use crate::step::BuildStep;
use im_oci::OciArchive;
use im_oci::Platform;
use im_process::{CancelToken, Log, RunError, run};

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutput {
    /// The OCI archive (the step's output path).
    pub archive: PathBuf,
    pub manifest_digest: String,
    pub config_digest: String,
    pub platform: Platform,
    pub duration: Duration,
}

/// Why a step did not produce its image.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{node}: cannot create the build log {}", log.display())]
    Log {
        node: String,
        log: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{node}: cannot read the archive of parent {reference}")]
    Parent {
        node: String,
        reference: String,
        #[source]
        source: ArchiveError,
    },
    #[error("{node}: parent {reference} ({}) is an image for {found}, not {expected}", archive.display())]
    ParentPlatform {
        node: String,
        reference: String,
        archive: PathBuf,
        expected: Platform,
        found: Platform,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{node}: {} never names parent(s) {} in FROM, COPY --from or RUN --mount=from", dockerfile.display(), parents.join(", "))]
    UnusedParents {
        node: String,
        dockerfile: PathBuf,
        parents: Vec<String>,
    },
    #[error("{node}: cannot prepare the build's work files")]
    Prepare {
        node: String,
        #[source]
        source: io::Error,
    },
    #[error("{node}: cannot prepare a parent's archive for the builder")]
    PrepareArchive {
        node: String,
        #[source]
        source: ArchiveError,
    },
    #[error("{node} ({platform}) failed to build")]
    Command {
        node: String,
        platform: Platform,
        #[source]
        source: RunError,
    },
    #[error("{node} ({platform}): cancelled; log: {}", log.display())]
    Cancelled {
        node: String,
        platform: Platform,
        log: PathBuf,
    },
    #[error("{node}: cannot store the built image at {}", output.display())]
    Output {
        node: String,
        output: PathBuf,
        #[source]
        source: ArchiveError,
    },
    #[error("{node} ({platform}): cannot start from the external base `{reference}`")]
    Base {
        node: String,
        platform: Platform,
        reference: String,
        #[source]
        source: std::sync::Arc<dyn std::error::Error + Send + Sync>,
    },
    #[error("{node}: the builder produced an image for {found}, not {expected}")]
    WrongPlatform {
        node: String,
        expected: Platform,
        found: Platform,
    },
}

/// Builds `step` with `builder`. `on_step` receives each "current step" line
/// (`3/7 RUN ...`) as the builder reaches it.
pub fn execute_step(
    builder: &dyn Builder,
    step: &BuildStep,
    cancel: &CancelToken,
    on_step: &mut dyn FnMut(&str),
) -> Result<BuildOutput, BuildError> {
    let started = Instant::now();
    let node = step.node.clone();
    let mut log = Log::create(&step.log).map_err(|source| BuildError::Log {
        node: node.clone(),
        log: step.log.clone(),
        source,
    })?;
    // Whatever happens next, no archive from an earlier build stays to look current.
    remove_file_if_exists(&step.output).map_err(|source| BuildError::Prepare {
        node: node.clone(),
        source,
    })?;

    let mut digests = Vec::with_capacity(step.parents.len());
    for parent in &step.parents {
        let image = OciArchive::open(&parent.archive)
            .and_then(|a| a.image())
            .map_err(|source| BuildError::Parent {
                node: node.clone(),
                reference: parent.reference.clone(),
                source: source.into(),
            })?;
        if !image.platform.satisfies(&step.platform) {
            return Err(BuildError::ParentPlatform {
                node,
                reference: parent.reference.clone(),
                archive: parent.archive.clone(),
                expected: step.platform.clone(),
                found: image.platform,
            });
        }
        digests.push(image.manifest_digest);
    }
    let plan = builder.plan(step, &digests)?;
    let prepare_err = |source| BuildError::Prepare {
        node: node.clone(),
        source,
    };
    for line in plan.to_string().lines() {
        log.line(&format!("# {line}")).map_err(prepare_err)?;
    }

    if plan.work_dir.exists() {
        clean_up_earlier_run(&node, &plan, &mut log)?;
        fs_err::remove_dir_all(&plan.work_dir).map_err(prepare_err)?;
    }
    fs_err::create_dir_all(&plan.work_dir).map_err(prepare_err)?;
    fs_err::write(
        plan.work_dir.join(OWNER_FILE),
        std::process::id().to_string(),
    )
    .map_err(prepare_err)?;

    let result = {
        // The Docker CLI keys BuildKit's cache of the Dockerfile upload by the build
        // context's path, so two builds of one context at once (two platforms of a tag) can
        // be handed each other's Dockerfile: builds of one context take turns with Docker.
        let context_lock = (builder.kind() == crate::backend::BuilderKind::Docker)
            .then(|| context_lock(&step.context_dir));
        let _turn = context_lock.as_ref().map(|lock| {
            lock.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        let by_reference: BTreeMap<String, String> = step
            .parents
            .iter()
            .map(|p| p.reference.clone())
            .zip(digests.iter().cloned())
            .collect();
        let replacements = plan
            .prepare
            .iter()
            .find_map(|p| match p {
                Prepare::RewriteDockerfile { replacements, .. } => Some(replacements.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let parents = parent_names(&replacements, &by_reference);
        build_in_work_dir(step, &plan, &parents, &mut log, cancel, on_step)
    };
    if result.is_ok() {
        for cmd in &plan.cache_exports {
            // Best effort: a cache that cannot be written makes the next build slower, not
            // this one wrong.
            if let Err(error) = run(cmd, &mut log, cancel, &mut |_| {}) {
                let _ = log.line(&format!("# the layer cache was not written: {error}"));
                tracing::warn!("{node}: the layer cache was not written: {error}");
            }
        }
    }
    for cmd in &plan.cleanup {
        // Best effort: the outcome is in the log, and a leftover tag is harmless.
        let _store = store_lock();
        let _ = run(cmd, &mut log, &CancelToken::new(), &mut |_| {});
    }
    let removed = fs_err::remove_dir_all(&plan.work_dir);
    let (manifest_digest, config_digest, platform) = result?;
    removed.map_err(prepare_err)?;
    Ok(BuildOutput {
        archive: step.output.clone(),
        manifest_digest,
        config_digest,
        platform,
        duration: started.elapsed(),
    })
}

/// The file in a step's work directory naming the process that builds in it.
const OWNER_FILE: &str = "owner.pid";

/// A work directory that is still there was left by a run that was killed (a finished or
/// cancelled step removes its own). If that run's process is gone, what it left in the
/// builder's store — the step's parent tags and the working containers on them, and the
/// working containers its builds marked (`FROM scratch` ones included, see
/// [`crate::leftovers`]) — is removed (best effort, logged). If it still runs, the step stops.
fn clean_up_earlier_run(node: &str, plan: &StepPlan, log: &mut Log) -> Result<(), BuildError> {
    let owner = fs_err::read_to_string(plan.work_dir.join(OWNER_FILE))
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .filter(|&pid| u32::try_from(pid).is_ok_and(|pid| pid != std::process::id()));
    // Alive, and the same program (a recycled process id is some other program).
    let running = |pid: i32| {
        rustix::process::Pid::from_raw(pid)
            .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
            && match (
                fs_err::read_link(format!("/proc/{pid}/exe")),
                fs_err::read_link("/proc/self/exe"),
            ) {
                (Ok(theirs), Ok(ours)) => theirs == ours,
                _ => true,
            }
    };
    if let Some(pid) = owner.filter(|&pid| running(pid)) {
        return Err(BuildError::Prepare {
            node: node.to_owned(),
            source: io::Error::other(format!(
                "process {pid} is still building in {}; wait for it or stop it",
                plan.work_dir.display()
            )),
        });
    }
    let _ = log.line(
        "# an earlier run of this step was killed: removing what it left in the builder's store",
    );
    for cmd in &plan.cleanup {
        let _store = store_lock();
        let _ = run(cmd, log, &CancelToken::new(), &mut |_| {});
    }
    if let Some(marked) = &plan.marked_containers {
        let _store = store_lock();
        marked.remove_all(log);
    }
    Ok(())
}

/// One lock per build context folder (see `execute_step`).
fn context_lock(dir: &Path) -> std::sync::Arc<std::sync::Mutex<()>> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<std::sync::Mutex<()>>>>,
    > = std::sync::OnceLock::new();
    let locks = LOCKS.get_or_init(Default::default);
    locks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(dir.to_path_buf())
        .or_default()
        .clone()
}

/// Held while a command adds or removes images in the builder's store (a step's loads and
/// cleanup): buildah's vfs store sometimes fails with "layer not known" when two pulls land
/// at once.
static STORE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn store_lock() -> std::sync::MutexGuard<'static, ()> {
    STORE_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn build_in_work_dir(
    step: &BuildStep,
    plan: &StepPlan,
    parents: &[ParentName],
    log: &mut Log,
    cancel: &CancelToken,
    on_step: &mut dyn FnMut(&str),
) -> Result<(String, String, Platform), BuildError> {
    let node = &step.node;
    for prepare in &plan.prepare {
        prepare_one(node, prepare)?;
    }
    // Progress names parents as the Dockerfile does, not as rewritten for the builder.
    let renames: Vec<(&str, &str)> = plan
        .prepare
        .iter()
        .filter_map(|p| match p {
            Prepare::RewriteDockerfile { replacements, .. } => Some(replacements),
            _ => None,
        })
        .flatten()
        .map(|(original, rewritten)| (rewritten.as_str(), original.as_str()))
        .collect();
    let loads = plan.loads.iter().map(|cmd| (cmd, true));
    for (cmd, loads_parents) in loads.chain(plan.commands.iter().map(|cmd| (cmd, false))) {
        let _store = loads_parents.then(store_lock);
        run(cmd, log, cancel, &mut |line| {
            if let Some(mut current) = step_line(line) {
                for (rewritten, original) in &renames {
                    if current.contains(rewritten) {
                        current = current.replace(rewritten, original);
                    }
                }
                on_step(&current);
            }
        })
        .map_err(|source| match source {
            RunError::Cancelled { .. } => BuildError::Cancelled {
                node: node.clone(),
                platform: step.platform.clone(),
                log: step.log.clone(),
            },
            source => BuildError::Command {
                node: node.clone(),
                platform: step.platform.clone(),
                source,
            },
        })?;
    }
    if cancel.is_cancelled() {
        return Err(BuildError::Cancelled {
            node: node.clone(),
            platform: step.platform.clone(),
            log: log.path().to_owned(),
        });
    }
    let output_err = |source| BuildError::Output {
        node: node.clone(),
        output: step.output.clone(),
        source,
    };
    let archive = match &plan.output {
        ToolOutput::OciArchive(path) => path.clone(),
        ToolOutput::DockerArchive(path) => {
            let converted = plan.work_dir.join("image.oci.tar");
            docker_archive_to_oci(path, &converted, &step.image).map_err(output_err)?;
            converted
        }
    };
    // The image names its parents as the Dockerfile does, never by the step's names.
    let renamed = plan.work_dir.join("image.named.tar");
    let archive = if rename_parents(&archive, &renamed, parents).map_err(output_err)? {
        renamed
    } else {
        archive
    };
    let image = OciArchive::open(&archive)
        .and_then(|a| a.image())
        .map_err(|e| output_err(e.into()))?;
    if !image.platform.satisfies(&step.platform) {
        return Err(BuildError::WrongPlatform {
            node: node.clone(),
            expected: step.platform.clone(),
            found: image.platform,
        });
    }
    rename_into_place(&archive, &step.output).map_err(|e| output_err(e.into()))?;
    // The builder named each layer blob by its digest: `test` trusts those while the archive
    // is this very file (im_oci::trust) instead of hashing every layer again. Best effort: a
    // missing record only means the layers are verified when read.
    let layers: Vec<im_oci::Digest> = image
        .manifest
        .layers()
        .iter()
        .filter_map(|layer| im_oci::Digest::try_from(layer.digest()).ok())
        .collect();
    let _ = im_oci::trust::record(&step.output, &layers);
    Ok((image.manifest_digest, image.config_digest, image.platform))
}

fn prepare_one(node: &str, prepare: &Prepare) -> Result<(), BuildError> {
    let io_err = |source| BuildError::Prepare {
        node: node.to_owned(),
        source,
    };
    let archive_err = |source| BuildError::PrepareArchive {
        node: node.to_owned(),
        source,
    };
    match prepare {
        Prepare::RewriteDockerfile {
            source,
            dest,
            replacements,
            build_args,
        } => {
            let text = fs_err::read_to_string(source).map_err(io_err)?;
            let rewritten = rewrite_parents(&text, replacements, build_args);
            if !rewritten.unused.is_empty() {
                return Err(BuildError::UnusedParents {
                    node: node.to_owned(),
                    dockerfile: source.clone(),
                    parents: rewritten.unused,
                });
            }
            fs_err::write(dest, rewritten.text).map_err(io_err)
        }
        Prepare::DockerArchive { parent, dest, tag } => {
            oci_to_docker_archive(parent, dest, tag).map_err(archive_err)
        }
        Prepare::OciLayout { parent, dest } => {
            fs_err::create_dir_all(dest).map_err(io_err)?;
            let file = fs_err::File::open(parent).map_err(io_err)?;
            tar::Archive::new(file).unpack(dest).map_err(|source| {
                archive_err(ArchiveError::Io {
                    path: parent.clone(),
                    source,
                })
            })
        }
    }
}

fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match fs_err::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use super::*;
    use crate::archive_write::tests::{test_image, write_oci_archive};
    use crate::backend::{Buildah, BuilderSettings};
    use crate::step::{Parent, PullPolicy};

    /// A step in a temp dir whose Dockerfile is `dockerfile`, with a stale output archive.
    fn step(dir: &Path, dockerfile: &str, parents: Vec<Parent>) -> BuildStep {
        let context = dir.join("dist/app/1");
        fs_err::create_dir_all(context.join("linux-amd64")).unwrap();
        fs_err::write(context.join("Dockerfile"), dockerfile).unwrap();
        fs_err::write(context.join("linux-amd64/image.tar"), b"stale").unwrap();
        BuildStep {
            node: "app:1".to_owned(),
            platform: Platform::linux("amd64"),
            dockerfile: context.join("Dockerfile"),
            image: "app:1".to_owned(),
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            parents,
            output: context.join("linux-amd64/image.tar"),
            log: context.join("linux-amd64/build.log"),
            context_dir: context,
            source_date_epoch: None,
            no_cache: false,
            cache: None,
            pull: PullPolicy::Never,
        }
    }

    fn parent_archive(dir: &Path, platform: &Platform) -> Parent {
        let archive = dir.join(format!("base-{}.tar", platform.slug()));
        write_oci_archive(&archive, &test_image(platform, "base"), &HashMap::new());
        Parent {
            reference: "base:1".to_owned(),
            archive,
        }
    }

    fn buildah(program: &str) -> Buildah {
        let mut settings = BuilderSettings::default().buildah;
        settings.program = program.into();
        Buildah::new(settings)
    }

    #[test]
    fn a_parent_built_for_another_platform_is_refused_before_building() {
        let dir = tempfile::tempdir().unwrap();
        let parent = parent_archive(dir.path(), &Platform::linux("arm64"));
        let step = step(dir.path(), "FROM base:1\n", vec![parent]);
        let err = execute_step(
            &buildah("/nonexistent/buildah"),
            &step,
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            matches!(&err, BuildError::ParentPlatform { expected, found, .. } if expected.architecture == "amd64" && found.architecture == "arm64"),
            "{err}"
        );
        assert!(!step.output.exists(), "the stale archive must go");
    }

    #[test]
    fn a_dockerfile_that_never_names_a_parent_fails_and_leaves_no_output() {
        let dir = tempfile::tempdir().unwrap();
        let parent = parent_archive(dir.path(), &Platform::linux("amd64"));
        let step = step(dir.path(), "FROM other:2\n", vec![parent]);
        let err = execute_step(
            &buildah("/nonexistent/buildah"),
            &step,
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "app:1: {} never names parent(s) base:1 in FROM, COPY --from or RUN --mount=from",
                step.dockerfile.display()
            )
        );
        assert!(!step.output.exists(), "the stale archive must go");
        assert!(!step.work_dir().exists());
    }

    #[test]
    fn a_builder_that_cannot_start_is_a_command_error_naming_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let step = step(dir.path(), "FROM scratch\n", vec![]);
        let err = execute_step(
            &buildah("/nonexistent/buildah"),
            &step,
            &CancelToken::new(),
            &mut |_| {},
        )
        .unwrap_err();
        let BuildError::Command {
            source: RunError::Spawn { program, log, .. },
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(program, "buildah");
        assert_eq!(log.as_ref(), Some(&step.log));
        assert!(
            fs_err::read_to_string(&step.log)
                .unwrap()
                .contains("$ /nonexistent/buildah --storage-driver vfs bud")
        );
        assert!(!step.output.exists());
        assert!(!step.work_dir().exists());
    }
}
