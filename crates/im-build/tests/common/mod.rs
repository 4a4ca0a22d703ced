//! Shared fixture for the end-to-end tests: a tiny monorepo in a temp dir laid out like
//! `dist/<name>/<tag>/` (Dockerfile, `.dockerignore`, `<os>-<arch>/image.tar`), steps for
//! it, and readers for the built OCI archives (config, labels, files in the layers).
//! Real builders only: buildah and podman with storage of the test's own, the private
//! dockerd that `scripts/setup` starts (through im-testkit, which fails loudly when a
//! component is missing).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use im_build::backend::{Buildah, ContainersToolSettings, Docker, DockerSettings, Podman};
use im_build::{
    BuildError, BuildOutput, BuildStep, Builder, CancelToken, Dag, DockerFlavor, Event,
    NodeOutcome, OciArchive, Parent, Platform, PullPolicy, ScheduleOptions, execute_step, schedule,
};

pub const EPOCH: i64 = 1_700_000_000;

/// A project directory with images under `dist/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Project {
            dir: tempfile::Builder::new()
                .prefix("im-build-e2e")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn dist(&self, name: &str, tag: &str) -> PathBuf {
        self.dir.path().join("dist").join(name).join(tag)
    }

    /// Writes `dist/<name>/<tag>/Dockerfile` (and a `.dockerignore` that keeps the
    /// per-platform output directories out of the context).
    pub fn image(&self, name: &str, tag: &str, dockerfile: &str) {
        let dir = self.dist(name, tag);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(dir.join("Dockerfile"), dockerfile).unwrap();
        fs_err::write(dir.join(".dockerignore"), "linux-*\n").unwrap();
    }

    /// The step for `name:tag` on `platform`; `parents` are `(reference, archive)`.
    pub fn step(
        &self,
        name: &str,
        tag: &str,
        platform: &Platform,
        parents: Vec<Parent>,
    ) -> BuildStep {
        let dir = self.dist(name, tag);
        let out = dir.join(platform.slug());
        BuildStep {
            node: format!("{name}:{tag}"),
            platform: platform.clone(),
            context_dir: dir.clone(),
            dockerfile: dir.join("Dockerfile"),
            image: format!("{name}:{tag}"),
            build_args: BTreeMap::new(),
            labels: BTreeMap::from([
                ("org.opencontainers.image.title".to_owned(), name.to_owned()),
                (
                    "org.opencontainers.image.version".to_owned(),
                    tag.to_owned(),
                ),
            ]),
            parents,
            output: out.join("image.tar"),
            log: out.join("build.log"),
            source_date_epoch: Some(EPOCH),
            no_cache: false,
            cache: None,
            pull: PullPolicy::Never,
        }
    }

    /// The output archive of `name:tag` on `platform`.
    pub fn output(&self, name: &str, tag: &str, platform: &Platform) -> PathBuf {
        self.dist(name, tag).join(platform.slug()).join("image.tar")
    }
}

pub fn platform(p: im_testkit::Platform) -> Platform {
    p.as_str().parse().unwrap()
}

/// The busybox base image (made by im-testkit, `FROM scratch`) as the parent `busybox:stable`.
pub fn busybox_parent(p: im_testkit::Platform) -> Parent {
    Parent {
        reference: "im-test/busybox:stable".to_owned(),
        archive: im_testkit::busybox_base_image(p).oci_archive().to_owned(),
    }
}

pub fn parent(reference: &str, archive: PathBuf) -> Parent {
    Parent {
        reference: reference.to_owned(),
        archive,
    }
}

/// buildah with vfs storage under `storage` and chroot isolation.
pub fn buildah(storage: &Path) -> Buildah {
    Buildah::new(containers_settings("/usr/bin/buildah", storage))
}

/// podman with vfs storage under `storage` and chroot isolation.
pub fn podman(storage: &Path) -> Podman {
    Podman::new(containers_settings("/usr/bin/podman", storage))
}

fn containers_settings(program: &str, storage: &Path) -> ContainersToolSettings {
    ContainersToolSettings {
        program: program.into(),
        storage_driver: Some("vfs".to_owned()),
        root: Some(storage.join("root")),
        runroot: Some(storage.join("runroot")),
        isolation: "chroot".to_owned(),
    }
}

/// The Docker backend aimed at the private dockerd of `scripts/setup`.
pub fn docker(flavor: DockerFlavor) -> Docker {
    let env = im_testkit::docker();
    Docker::new(
        DockerSettings {
            program: env.bin().to_owned(),
            host: Some(env.host().to_owned()),
            buildkit: None,
            flavor: Some(flavor),
        },
        flavor,
    )
}

/// When each node started and finished, relative to the run's start.
#[derive(Debug, Default, Clone)]
pub struct Timeline {
    pub started: BTreeMap<usize, f64>,
    pub finished: BTreeMap<usize, f64>,
    pub progress: BTreeMap<usize, Vec<String>>,
    pub skipped: BTreeMap<usize, usize>,
}

impl Timeline {
    pub fn overlap(&self, a: usize, b: usize) -> bool {
        self.started[&a] < self.finished[&b] && self.started[&b] < self.finished[&a]
    }
}

/// Builds `steps` (with `deps[i]` the indices step `i` needs) on `jobs` workers.
pub fn build_all(
    builder: &dyn Builder,
    steps: &[BuildStep],
    deps: Vec<Vec<usize>>,
    jobs: usize,
    cancel: &CancelToken,
) -> (Vec<NodeOutcome<BuildOutput, BuildError>>, Timeline) {
    let dag = Dag::new(deps).unwrap();
    let t0 = Instant::now();
    let timeline = Mutex::new(Timeline::default());
    let outcomes = schedule(
        &dag,
        ScheduleOptions {
            jobs,
            fail_fast: false,
        },
        cancel,
        |task| {
            execute_step(
                builder,
                &steps[task.node()],
                task.cancel_token(),
                &mut |line| task.progress(line),
            )
        },
        &mut |event| {
            let now = t0.elapsed().as_secs_f64();
            let mut t = timeline.lock().unwrap();
            match event {
                Event::Started { node } => {
                    t.started.insert(node, now);
                }
                Event::Finished { node, .. } | Event::Failed { node, .. } => {
                    t.finished.insert(node, now);
                }
                Event::Progress { node, line } => {
                    t.progress.entry(node).or_default().push(line.to_owned());
                }
                Event::Skipped { node, because } => {
                    t.skipped.insert(node, because);
                }
                Event::Cancelled { .. } => {}
            }
        },
    );
    (outcomes, timeline.into_inner().unwrap())
}

/// Panics with the error (and its sources) unless the node succeeded.
pub fn expect_built<'a>(
    outcome: &'a NodeOutcome<BuildOutput, BuildError>,
    step: &BuildStep,
) -> &'a BuildOutput {
    match outcome {
        NodeOutcome::Succeeded { value, .. } => value,
        NodeOutcome::Failed { error, .. } => {
            panic!("{} failed: {}", step.display_name(), chain(error))
        }
        other => panic!("{} did not build: {other:?}", step.display_name()),
    }
}

/// An error and all its sources, one per line.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str("\ncaused by: ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// The image config of the single image in an OCI archive.
pub fn config(archive: &Path) -> serde_json::Value {
    let a = OciArchive::open(archive).unwrap();
    let image = a.image().unwrap();
    serde_json::from_slice(&a.read_blob(&image.config_digest).unwrap()).unwrap()
}

/// The content of the regular file `path` in the image (layers flattened by im-oci, an
/// independent reader), or `None` if there is no such file.
pub fn file_in_image(archive: &Path, path: &str) -> Option<String> {
    let image = im_oci::open_image(archive, &im_oci::OpenOptions::default()).unwrap();
    let view = image.filesystem().unwrap();
    match image.read_file(&view, path) {
        Ok(bytes) => Some(String::from_utf8(bytes).unwrap()),
        Err(im_oci::ReadFileError::Lookup(_)) => None,
        Err(e) => panic!("{}: {e}", archive.display()),
    }
}

/// Files under `dir` (recursively), relative.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs_err::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

pub const BASE_DOCKERFILE: &str = "\
FROM im-test/busybox:stable
RUN echo \"base on $(uname -m)\" > /base.txt
";

pub const APP_DOCKERFILE: &str = "\
FROM base:1
RUN cat /base.txt > /app-saw.txt && uname -m > /app-arch.txt
COPY --from=base:1 /base.txt /copied-from-base.txt
";

pub const VARIANT_DOCKERFILE: &str = "\
ARG APP=app:1
FROM ${APP}
RUN test -f /app-arch.txt && echo variant > /variant.txt
";

/// base → app → variant for every platform: the steps and their dependencies.
pub fn chain_steps(
    project: &Project,
    platforms: &[im_testkit::Platform],
) -> (Vec<BuildStep>, Vec<Vec<usize>>) {
    project.image("base", "1", BASE_DOCKERFILE);
    project.image("app", "1", APP_DOCKERFILE);
    project.image("variant", "1", VARIANT_DOCKERFILE);
    let mut steps = Vec::new();
    let mut deps = Vec::new();
    for &p in platforms {
        let plat = platform(p);
        let i = steps.len();
        steps.push(project.step("base", "1", &plat, vec![busybox_parent(p)]));
        deps.push(vec![]);
        steps.push(project.step(
            "app",
            "1",
            &plat,
            vec![parent("base:1", project.output("base", "1", &plat))],
        ));
        deps.push(vec![i]);
        steps.push(project.step(
            "variant",
            "1",
            &plat,
            vec![parent("app:1", project.output("app", "1", &plat))],
        ));
        deps.push(vec![i + 1]);
    }
    (steps, deps)
}

/// Checks the chain's outputs: every image is for its platform and the variant holds what
/// its ancestors built on that platform.
pub fn check_chain(project: &Project, platforms: &[im_testkit::Platform]) {
    for &p in platforms {
        let plat = platform(p);
        for name in ["base", "app", "variant"] {
            let out = project.output(name, "1", &plat);
            let cfg = config(&out);
            assert_eq!(cfg["architecture"], p.architecture(), "{name} {plat}");
            assert_eq!(cfg["os"], "linux");
            assert_eq!(
                cfg["config"]["Labels"]["org.opencontainers.image.title"], name,
                "{name} {plat}"
            );
            let a = OciArchive::open(&out).unwrap();
            let image = a.image().unwrap();
            let ref_name = image
                .descriptor
                .annotations()
                .as_ref()
                .and_then(|m| m.get("org.opencontainers.image.ref.name").cloned());
            assert_eq!(ref_name.as_deref(), Some(format!("{name}:1").as_str()));
            assert!(
                !project
                    .dist(name, "1")
                    .join(plat.slug())
                    .join(".im-build")
                    .exists(),
                "work dir left behind"
            );
        }
        let variant = project.output("variant", "1", &plat);
        let machine = p.uname_machine();
        assert_eq!(
            file_in_image(&variant, "/base.txt").as_deref(),
            Some(format!("base on {machine}\n").as_str())
        );
        assert_eq!(
            file_in_image(&variant, "/app-saw.txt").as_deref(),
            Some(format!("base on {machine}\n").as_str())
        );
        assert_eq!(
            file_in_image(&variant, "/copied-from-base.txt").as_deref(),
            Some(format!("base on {machine}\n").as_str())
        );
        assert_eq!(
            file_in_image(&variant, "/app-arch.txt").as_deref(),
            Some(format!("{machine}\n").as_str())
        );
        assert_eq!(
            file_in_image(&variant, "/variant.txt").as_deref(),
            Some("variant\n")
        );
    }
}
