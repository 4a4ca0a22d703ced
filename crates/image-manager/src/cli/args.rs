//! The arguments of each command (the command tree and its help are in [`super`]).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use im_build::BuilderKind;
use im_project::Platform;

use super::{Format, GraphFormat, parse_builder, parse_platform};

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Render for a snapshot: base images resolve to `<tag>-<ID>`.
    #[arg(long, value_name = "ID")]
    pub snapshot_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Render and compare every output file, even where the last generate says nothing
    /// changed (repairs files edited or deleted in dist/ by hand).
    #[arg(long)]
    pub full: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct GenerateCiArgs {
    /// What the pipeline builds: `name`, `name:tag`, `name:alias` or globs, with everything
    /// they are built on. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The CI system (default: `ci.provider` in .image-manager.yml).
    #[arg(long, value_enum)]
    pub provider: Option<CiProvider>,
    /// Where to write the file (default: `ci.output`, else the provider's path); `-` prints it.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Write nothing; exit 1 when the file on disk is not what would be generated.
    #[arg(long)]
    pub check: bool,
    /// Only the image tags that changed since this git revision (branch, tag or commit),
    /// and everything built on them.
    #[arg(long, value_name = "REF", conflicts_with = "check")]
    pub affected_since: Option<String>,
    /// Leave out image tags whose release tag in the default registry already holds their
    /// build key.
    #[arg(long, conflicts_with = "check")]
    pub registry_keys: bool,
    /// `nodes`: one job per node; `dynamic`: a small file whose first job generates the jobs
    /// at pipeline time; `auto` (default, or `ci.shape`): nodes while the provider can hold
    /// them. `child` and `matrices` are what a dynamic pipeline's first job runs.
    #[arg(long, value_enum)]
    pub shape: Option<CiShape>,
    /// With `--shape matrices`: the matrix layout the committed workflow was generated for.
    #[arg(long, value_name = "ID")]
    pub layout: Option<String>,
    /// `json` prints the job graph (jobs, needs, scripts) instead of writing the file; with
    /// `--template`, everything the template sees (`jobs` among it).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Render DIR/pipeline.yml.j2 (a folder in the project) instead of a built-in pipeline
    /// (default: `ci.template`); `--provider` is then only a value templates see.
    #[arg(long, value_name = "DIR")]
    pub template: Option<PathBuf>,
    /// Tell templates to keep image archives as job artifacts (`artifacts`; default:
    /// `ci.artifacts`).
    #[arg(long)]
    pub artifacts: bool,
}

/// The shape of a generated pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiShape {
    Auto,
    Nodes,
    Dynamic,
    Child,
    Matrices,
}

impl std::str::FromStr for CiShape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as ValueEnum>::from_str(s, false)
    }
}

/// A CI system `generate-ci` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiProvider {
    Gitlab,
    Github,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: GraphFormat,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SelectionArgs {
    /// What to work on: `name`, `name:tag`, `name:alias` or globs (`py*`, `python:3.13.*`).
    /// Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Only the targets: fail instead of building ancestors that are not up to date.
    #[arg(long)]
    pub no_deps: bool,
    /// Also rebuild everything built on the targets.
    #[arg(long)]
    pub dependents: bool,
    /// Rebuild the targets even when they are up to date.
    #[arg(long)]
    pub force: bool,
    /// Build for these platforms instead of each image's own (comma-separated; `arm64` is
    /// short for linux/arm64).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    /// The builder: buildah, docker, buildkit or podman (default: `builder:` in
    /// .image-manager.yml, else detected).
    #[arg(long, value_name = "KIND", value_parser = parse_builder)]
    pub builder: Option<BuilderKind>,
    /// A build arg for every build (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Also ask the default registry: a node whose build key it already holds (at
    /// `<name>:<tag>` or `<name>:<tag>-<os>-<arch>`) is up to date.
    #[arg(long)]
    pub registry_keys: bool,
    /// With `--format json`: include every input of each node's build key.
    #[arg(long)]
    pub show_inputs: bool,
    /// Ask the registries what each external base (`FROM debian:bookworm-slim`) points at now,
    /// instead of using what the last build resolved (`dist/bases.json`). A base that moved
    /// shows as a rebuild of exactly the nodes that use it.
    #[arg(long)]
    pub refresh_bases: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The tag to explain: `name:tag` or `name:alias`.
    #[arg(value_name = "NAME:TAG")]
    pub target: String,
    /// Only this platform (`arm64` is short for linux/arm64).
    #[arg(long, value_name = "OS/ARCH", value_parser = parse_platform)]
    pub platform: Option<Platform>,
    #[arg(long, value_name = "KIND", value_parser = parse_builder)]
    pub builder: Option<BuilderKind>,
    /// Ask the registries what each external base points at now (see `plan --refresh-bases`).
    #[arg(long)]
    pub refresh_bases: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// How many builds run at once (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Stop at the first failure (default: keep building what does not depend on it).
    #[arg(long)]
    pub fail_fast: bool,
    /// Build without the builder's layer cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Ask no registry for external bases: use the digests the last build resolved
    /// (`dist/bases.json`) and the bases already pulled (`.image-manager/cache/bases/`).
    #[arg(long)]
    pub offline: bool,
    /// Push to the default registry after a successful build (see `push`). Nodes whose build
    /// key the registry already holds are not built; one a local build needs is fetched.
    #[arg(long)]
    pub push: bool,
    /// With --push: push per-platform tags `<tag>-<os>-<arch>` only (see `push`).
    #[arg(long, requires = "push")]
    pub platform_tags: bool,
    /// Also write a report for CI: `junit:FILE` (one test case per node and platform) or
    /// `dotenv:FILE` (counts and digests as variables; GitLab `artifacts:reports`), repeatable.
    #[arg(long, value_name = "KIND:FILE")]
    pub output: Vec<String>,
    /// Build only the nodes whose external bases or source repositories (`source:`) moved
    /// upstream since their last build (see `outdated`) and everything built on them; nothing
    /// else that changed. A source's tag is asked about again instead of read from the lock.
    #[arg(long, conflicts_with = "offline")]
    pub refresh_bases: bool,
    /// Then load the built images into the local Docker or podman store as `name:tag` (this
    /// machine's platform); `auto`: podman when building with podman, else Docker.
    #[arg(long, value_enum, value_name = "STORE", num_args = 0..=1, default_missing_value = "auto")]
    pub load: Option<LoadStore>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// What to check: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Only these platforms (comma-separated).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    /// Builds at once in the scratch copy (default 4).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Keep the scratch copy even when every digest matches.
    #[arg(long)]
    pub keep: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// What to push: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Push only these platforms (comma-separated, `arm64` is short for linux/arm64;
    /// default: each image's own).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    /// Push each platform as its own tag, `<tag>-<os>-<arch>`, instead of the index and the
    /// aliases (for CI jobs split by platform; `image-manager manifest` joins them).
    #[arg(long)]
    pub platform_tags: bool,
    /// Then sign each pushed tag with this private key, as `sign` does (an encrypted key's
    /// password comes from $COSIGN_PASSWORD).
    #[arg(long, value_name = "KEY", conflicts_with = "platform_tags")]
    pub sign: Option<PathBuf>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// Also write a report for CI: `junit:FILE` (one test case per image tag) or
    /// `dotenv:FILE` (the registry and each tag's digest as variables; GitLab
    /// `artifacts:reports`), repeatable.
    #[arg(long, value_name = "KIND:FILE")]
    pub output: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// What to promote: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The snapshot whose `<tag>-<ID>` tags become the release tags.
    #[arg(long, value_name = "ID", required = true)]
    pub snapshot_id: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// What to sign: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The environment variable holding an encrypted key's password.
    #[arg(long, value_name = "VAR", default_value = "COSIGN_PASSWORD")]
    pub password_env: String,
    /// Sign the snapshot's `<tag>-<ID>` images.
    #[arg(long, value_name = "ID")]
    pub snapshot_id: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct VerifySignArgs {
    /// What to check: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The public key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Check the snapshot's `<tag>-<ID>` images.
    #[arg(long, value_name = "ID")]
    pub snapshot_id: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// What to combine: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The platforms to combine (comma-separated, `arm64` is short for linux/arm64;
    /// default: each image's own).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// What to copy: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The registry to copy from: a `registries:` name or host[:port][/namespace].
    #[arg(long, value_name = "REGISTRY")]
    pub from: String,
    /// The registry to copy to: a `registries:` name or host[:port][/namespace].
    #[arg(long, value_name = "REGISTRY")]
    pub to: String,
    /// Succeed even when the source lacks some of the tags (a partly published project);
    /// without it, a missing tag fails the sync.
    #[arg(long)]
    pub allow_missing: bool,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// `name:tag` (in the default registry) or `host[:port]/repository[:tag][@digest]`.
    #[arg(value_name = "REF")]
    pub reference: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// An SBOM format (syft's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SbomFormatArg {
    /// CycloneDX JSON: sbom.cdx.json.
    #[default]
    #[value(name = "cyclonedx-json")]
    Cyclonedx,
    /// SPDX JSON: sbom.spdx.json.
    #[value(name = "spdx-json")]
    Spdx,
    /// syft's own JSON: sbom.syft.json.
    #[value(name = "syft-json")]
    Syft,
}

#[derive(Debug, Args)]
pub struct SbomArgs {
    /// What to describe: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The SBOM format.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub format: SbomFormatArg,
    /// Only these platforms (comma-separated; `arm64` is short for linux/arm64).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    /// How many images are scanned at once (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Scan again even where the SBOM describes the image the archive holds.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    /// How the command reports: `text` for people, `json` (per node: the SBOM file, its
    /// package count, the image digest) for scripts.
    #[arg(long, value_enum, default_value_t, value_name = "FORMAT")]
    pub report: Format,
}

/// The services `start` and `stop` manage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The distribution registry on 127.0.0.1:5050.
    Registry,
    /// Garage, the S3 layer cache, on 127.0.0.1:3900.
    Garage,
    /// BuildKit's daemon for the buildkit builder, on 127.0.0.1:8372.
    Buildkitd,
    /// An isolated Docker daemon for tests, on 127.0.0.1:2375.
    Dind,
    /// Every service (installed ones, for `start`).
    All,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// The service (default: all of them).
    #[arg(value_enum, value_name = "SERVICE")]
    pub service: Option<Service>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The service (default: all of them).
    #[arg(value_enum, value_name = "SERVICE")]
    pub service: Option<Service>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// How `lint` writes its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LintFormat {
    /// One line per finding, for people.
    #[default]
    #[value(alias = "text")]
    Tty,
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
    Checkstyle,
    Junit,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Whose locks: `name`, `name:tag` or globs (the lock of each image file they name).
    /// Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Resolve every base digest and package version again.
    #[arg(long, conflicts_with = "check")]
    pub update: bool,
    /// Write nothing; exit 1 when a lock is missing or does not match the Dockerfiles.
    #[arg(long)]
    pub check: bool,
    /// The container runtime that reads versions inside the bases (default: the first that
    /// can run containers here).
    #[arg(long, value_enum, value_name = "RUNTIME")]
    pub runtime: Option<LockRuntime>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// A container runtime for `lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockRuntime {
    Docker,
    Podman,
    Buildah,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// What to lint: `name`, `name:tag`, `name:alias` or globs. Nothing means every tag.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: LintFormat,
    /// Fail on warnings too (errors always fail).
    #[arg(long)]
    pub strict: bool,
    /// How many hadolint processes run at once (default: the number of CPUs).
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Write the report to FILE (relative to the project) instead of stdout; it is written
    /// whole or not at all.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run hadolint on every Dockerfile, even those whose findings are cached in
    /// dist/.lint-cache.json (same Dockerfile, hadolint version and .hadolint.yaml).
    #[arg(long)]
    pub no_cache: bool,
    /// Also ask the default registry where each alias points now: an alias that would move
    /// to a lower version is IM004.
    #[arg(long)]
    pub registry: bool,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
}

/// Where a test's checks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TestDriver {
    /// Files and metadata read from the image; command tests in the runtime found first.
    #[default]
    Native,
    /// Command tests in Docker.
    Docker,
    /// Command tests in podman.
    Podman,
    /// Command tests in buildah (`from` + `run`).
    Buildah,
    /// Everything through the real container-structure-test binary.
    Cst,
}

impl TestDriver {
    pub fn as_str(self) -> &'static str {
        match self {
            TestDriver::Native => "native",
            TestDriver::Docker => "docker",
            TestDriver::Podman => "podman",
            TestDriver::Buildah => "buildah",
            TestDriver::Cst => "cst",
        }
    }
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// What to test: `name`, `name:tag`, `name:alias` or globs. Nothing means every tag.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Test these platforms instead of each image's own (comma-separated; `arm64` is short
    /// for linux/arm64).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    #[arg(long, value_enum, default_value_t)]
    pub driver: TestDriver,
    /// Test one image with this config instead of the project (with --image).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The image to test with --config: a docker-archive or OCI archive tar, or an OCI layout.
    #[arg(long, value_name = "TAR")]
    pub image: Option<PathBuf>,
    /// How many images are tested at once.
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// How long one command test may run (setup, command, teardown) before it is killed
    /// and fails [default: 300].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Also write the report: `junit:FILE` or `json:FILE` (repeatable).
    #[arg(long, value_name = "KIND:FILE")]
    pub output: Vec<String>,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Which image tags get pages: `name`, `name:tag`, `name:alias` or globs. Nothing means
    /// every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Where the site goes (relative to the project) [default: <dist>/report].
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Open the overview in a browser (xdg-open or open) once written.
    #[arg(long)]
    pub open: bool,
    /// Serve the site on a loopback address until Ctrl-C [default: 127.0.0.1:8088; port 0
    /// picks a free one].
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8088")]
    pub serve: Option<std::net::SocketAddr>,
    /// Also show the digest of every tag and alias in this registry: the `name` of a
    /// `registries:` entry or `host[:port][/namespace]`.
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct BumpArgs {
    /// Which part to raise: `patch` (1.2.3 → 1.2.4), `minor` (1.3.0) or `major` (2.0.0).
    #[arg(value_enum, value_name = "LEVEL")]
    pub level: BumpLevel,
    /// The tag: `name:tag`, `name:alias` (a variant tag bumps its base tag), or `name` for an
    /// image with one tag.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Also bump the patch version of every tag built on it, directly or not.
    #[arg(long)]
    pub cascade: bool,
    /// Print the diff only; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// `json`: the renamed tags and each file's diff.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The part of a version `bump` raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BumpLevel {
    Patch,
    Minor,
    Major,
}

#[derive(Debug, Args)]
pub struct OutdatedArgs {
    /// Whose external bases to check: `name`, `name:tag`, `name:alias` or globs, with the
    /// images they are built on. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Check these platforms instead of each image's own (comma-separated).
    #[arg(long, value_name = "OS/ARCH", value_delimiter = ',', value_parser = parse_platform)]
    pub platform: Vec<Platform>,
    /// Exit 0 even when a base moved or could not be checked (for reports).
    #[arg(long)]
    pub exit_zero: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct GenerateK8sArgs {
    /// What the Jobs build: `name`, `name:tag`, `name:alias` or globs, with everything they
    /// are built on. Nothing means every image tag.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// The folder to write the manifests into (relative to the current folder).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
    /// The builder image the pods run: image-manager, buildah, skopeo and git (see
    /// examples/builder/).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// The git repository the pods clone the project from.
    #[arg(long, value_name = "URL")]
    pub repository: String,
    /// The branch or tag to clone.
    #[arg(long, value_name = "REF", default_value = "main")]
    pub revision: String,
    /// The project's folder inside the repository.
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub project_path: String,
    #[arg(long, value_name = "NAME", default_value = "image-manager")]
    pub namespace: String,
    /// The Secret (type kubernetes.io/dockerconfigjson) holding the registry credentials.
    #[arg(long, value_name = "NAME", default_value = "registry-credentials")]
    pub registry_secret: String,
    /// When the CronJob rebuilds what upstream base updates reached (cron syntax).
    #[arg(long, value_name = "CRON", default_value = "0 3 * * *")]
    pub schedule: String,
    /// One Job per level of the graph instead of one per image tag.
    #[arg(long)]
    pub per_level: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Whose history: `name`, `name:tag`, `name:alias` or globs. Nothing means every image.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Also read the build key and creation time labels of each tag in the default registry
    /// (what this or another machine pushed).
    #[arg(long)]
    pub registry: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Where `build --load` puts images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadStore {
    Auto,
    Docker,
    Podman,
}
