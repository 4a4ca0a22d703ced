//! End-to-end tests of `push`, `promote`, `manifest`, `sync`, `inspect`, `build --push`,
//! `plan --registry-keys` and the local registry service: real buildah builds (storage of
//! each test's own), the real distribution registry (`docker-registry`, started per test by
//! im-testkit or by image-manager itself), and skopeo as the independent reader.
//!
//! The fixture is a chain base → app (1.0.0, 1.1.0, `latest`) → app's `dev` variant; the
//! base is `FROM scratch` plus the static busybox of each architecture, so nothing is pulled.
//! Most tests build for linux/amd64 only; one builds linux/arm64 too (under qemu).

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Run, Sandbox, files_containing, json, write};
use im_testkit::{Platform, Registry};
use sha2::Digest as _;

const SKOPEO: &str = "/usr/bin/skopeo";
const BUILD_KEY: &str = "dev.image-manager.build-key";

// Builds run with `-j 1`: two buildah pulls of parent archives that share a layer, at once
// into one vfs store, sometimes fail with "layer not known" (a race in the store, not in what
// these tests check).

/// A loopback address nobody listens on right now.
fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .to_string()
}

/// A free loopback address below the kernel's ephemeral port range (32768 and up), so that no
/// registry another test starts on port 0 can take it over once it is free again.
fn free_fixed_addr() -> String {
    let seed = std::process::id() as usize
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as usize;
    (0..2000)
        .map(|i| 20_000 + (seed + i * 7919) % 10_000)
        .find_map(|port| {
            std::net::TcpListener::bind(("127.0.0.1", u16::try_from(port).unwrap()))
                .ok()
                .map(|listener| listener.local_addr().unwrap().to_string())
        })
        .expect("a free port between 20000 and 30000")
}

/// A project in a temp dir with its own buildah storage and its own environment.
struct Project {
    sandbox: Sandbox,
    /// Every command's output, for the canary check.
    transcript: std::cell::RefCell<String>,
}

impl Project {
    /// `.image-manager.yml` with the buildah store in the project, `platforms`, and
    /// `registry_yaml` (which may use `${IM_TEST_REGISTRY}`).
    fn with_settings(platforms: &[&str], registry_yaml: &str) -> Self {
        let mut sandbox = Sandbox::new();
        let root = sandbox.root();
        let storage = root.join(".storage");
        write(
            &root.join(".image-manager.yml"),
            &format!(
                "builder:\n  kind: buildah\n  storage_driver: vfs\n  root: {}\n  runroot: {}\nplatforms: [{}]\nlabels:\n  vendor: ACME\n{registry_yaml}",
                storage.join("root").display(),
                storage.join("runroot").display(),
                platforms.join(", ")
            ),
        );
        sandbox.empty_docker_config();
        // Never the machine's 127.0.0.1:5050 unless a test asks for it.
        sandbox.set("IMAGE_MANAGER_REGISTRY_ADDR", free_addr());
        Self {
            sandbox,
            transcript: std::cell::RefCell::new(String::new()),
        }
    }

    /// The chain fixture, pushing to `${IM_TEST_REGISTRY}/acme`.
    fn chain(platforms: &[&str]) -> Self {
        let project =
            Self::with_settings(platforms, "registry:\n  url: ${IM_TEST_REGISTRY}/acme\n");
        let root = project.root();
        let wanted: Vec<Platform> = Platform::ALL
            .into_iter()
            .filter(|platform| platforms.contains(&platform.as_str()))
            .collect();
        im_testkit::write_busybox_base_definition(root, &wanted);
        write(
            &root.join("images/app/image.yml"),
            "tags: [1.0.0, 1.1.0]\nlatest: true\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        );
        write(
            &root.join("images/app/Dockerfile.jinja2"),
            "FROM {{ \"base\" | resolve_base_image }}\nRUN echo \"app {{ tag.name }}\" > /app.txt\n",
        );
        write(
            &root.join("images/app/dev/Dockerfile.jinja2"),
            "FROM {{ base_image }}\nRUN cat /app.txt > /dev.txt\n",
        );
        write(&root.join("images/app/dev/rootfs/etc/dev.conf"), "dev=1\n");
        project
    }

    /// One image `solo:1.0.0` (aliases `1`, `1.0`, `latest`) that builds in a second.
    fn solo(registry_yaml: &str) -> Self {
        let project = Self::with_settings(&["linux/amd64"], registry_yaml);
        let root = project.root();
        write(
            &root.join("images/solo/image.yml"),
            "tags: [1.0.0]\nlatest: true\n",
        );
        write(
            &root.join("images/solo/Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        );
        write(&root.join("images/solo/rootfs/hello"), "hello\n");
        project
    }

    fn root(&self) -> &Path {
        self.sandbox.root()
    }

    fn set(&mut self, key: &str, value: &str) {
        self.sandbox.set(key, value);
    }

    fn registry(mut self, registry: &Registry) -> Self {
        self.set("IM_TEST_REGISTRY", &registry.host_port());
        self
    }

    /// Two registries instead of one: `ci` (`${IM_TEST_SOURCE}/acme`, the default) and
    /// `mirror` (`${IM_TEST_TARGET}/mirror`).
    fn ci_and_mirror(mut self, source: &Registry, target: &Registry) -> Self {
        let settings = self.root().join(".image-manager.yml");
        write(
            &settings,
            &fs_err::read_to_string(&settings).unwrap().replace(
                "registry:\n  url: ${IM_TEST_REGISTRY}/acme\n",
                "registries:\n  - {name: ci, url: \"${IM_TEST_SOURCE}/acme\", default: true}\n  - {name: mirror, url: \"${IM_TEST_TARGET}/mirror\"}\n",
            ),
        );
        self.set("IM_TEST_SOURCE", &source.host_port());
        self.set("IM_TEST_TARGET", &target.host_port());
        self
    }

    fn run(&self, args: &[&str]) -> Run {
        let run = self.sandbox.run(args);
        let mut transcript = self.transcript.borrow_mut();
        transcript.push_str(&run.stdout);
        transcript.push_str(&run.stderr);
        run
    }

    fn ok(&self, args: &[&str]) -> Run {
        common::succeeded(self.run(args), args)
    }

    fn ledger(&self) -> serde_json::Value {
        json(&fs_err::read_to_string(self.root().join("dist/ledger.json")).unwrap())
    }

    /// The ledger's `(key, digest)` of a node.
    fn built(&self, node: &str, platform: &str) -> (String, String) {
        let ledger = self.ledger();
        let entry = &ledger["nodes"][format!("{node} {platform}")];
        assert!(entry.is_object(), "{node} {platform} not in {ledger}");
        (
            entry["key"].as_str().unwrap().to_owned(),
            entry["digest"].as_str().unwrap().to_owned(),
        )
    }
}

/// Runs skopeo, panicking with its stderr when it fails.
fn skopeo(args: &[&str]) -> std::process::Output {
    assert!(
        Path::new(SKOPEO).exists(),
        "{SKOPEO} is missing: scripts/setup should have installed skopeo"
    );
    Command::new(SKOPEO)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SKOPEO}: {e}"))
}

fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let output = skopeo(args);
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The manifest bytes as the registry stores them, and their digest.
fn raw(reference: &str, authfile: Option<&Path>) -> (serde_json::Value, String) {
    let target = format!("docker://{reference}");
    let authfile = authfile.map(|p| p.display().to_string());
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if let Some(file) = &authfile {
        args.extend(["--authfile", file.as_str()]);
    }
    args.push(&target);
    let bytes = skopeo_ok(&args);
    let digest = format!("sha256:{}", hex(&sha2::Sha256::digest(&bytes)));
    (serde_json::from_slice(&bytes).unwrap(), digest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{b:02x}"));
        out
    })
}

/// Whether a tag exists (skopeo can read it).
fn exists(reference: &str) -> bool {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ])
    .status
    .success()
}

/// Whether a tag exists in a registry that wants credentials.
fn exists_with(reference: &str, authfile: &Path) -> bool {
    skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--authfile",
        &authfile.display().to_string(),
        &format!("docker://{reference}"),
    ])
    .status
    .success()
}

/// skopeo's view of one platform of a reference (config labels and all).
fn inspect_platform(reference: &str, arch: &str) -> serde_json::Value {
    json(
        &String::from_utf8(skopeo_ok(&[
            "inspect",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
            &format!("docker://{reference}"),
        ]))
        .unwrap(),
    )
}

fn tag_result<'a>(report: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    common::report_entry(report, "tags", node)
}

#[test]
fn push_publishes_every_tag_and_alias_and_a_second_push_uploads_nothing() {
    let registry = Registry::start();
    let host = registry.host_port();
    let project = Project::chain(&["linux/amd64"]).registry(&registry);
    project.ok(&["build", "-j", "1"]);

    let first = json(&project.ok(&["push", "--format", "json"]).stdout);
    assert_eq!(first["registry"], format!("{host}/acme"));
    for node in [
        "base:1",
        "app:1.0.0",
        "app:1.1.0",
        "app:1.0.0-dev",
        "app:1.1.0-dev",
    ] {
        assert_eq!(tag_result(&first, node)["result"], "pushed", "{first}");
    }
    // What the registry holds is what was built: each tag's manifest has the ledger's digest
    // and carries the build key.
    for node in [
        "base:1",
        "app:1.0.0",
        "app:1.1.0",
        "app:1.0.0-dev",
        "app:1.1.0-dev",
    ] {
        let (key, digest) = project.built(node, "linux/amd64");
        let reference = format!("{host}/acme/{node}");
        let (_, stored) = raw(&reference, None);
        assert_eq!(stored, digest, "{reference}");
        assert_eq!(
            inspect_platform(&reference, "amd64")["Labels"][BUILD_KEY],
            key
        );
    }
    // Aliases point at their targets.
    for (alias, target) in [
        ("1", "1.1.0"),
        ("1.1", "1.1.0"),
        ("1.0", "1.0.0"),
        ("latest", "1.1.0"),
        ("1-dev", "1.1.0-dev"),
        ("1.0-dev", "1.0.0-dev"),
        ("latest-dev", "1.1.0-dev"),
    ] {
        let (_, alias_digest) = raw(&format!("{host}/acme/app:{alias}"), None);
        let (_, target_digest) = raw(&format!("{host}/acme/app:{target}"), None);
        assert_eq!(alias_digest, target_digest, "app:{alias} → app:{target}");
    }
    // app's repository mounts the base layer from base's instead of uploading it again.
    assert_eq!(
        tag_result(&first, "app:1.0.0")["blobs_mounted"],
        1,
        "{first}"
    );
    assert_eq!(
        tag_result(&first, "app:1.1.0")["tags"],
        serde_json::json!(["1.1.0", "1", "1.1", "latest"])
    );

    // A second push sends nothing and writes no manifest.
    let second = project.ok(&["push", "--format", "json"]);
    let second = json(&second.stdout);
    for tag in second["tags"].as_array().unwrap() {
        assert_eq!(tag["result"], "up-to-date", "{tag}");
        assert_eq!(tag["blobs_uploaded"], 0, "{tag}");
        assert_eq!(tag["manifests_written"], 0, "{tag}");
    }
    let text = project.ok(&["push", "app:1"]);
    assert!(
        text.stderr.contains("Up to date app:1.1.0 →") && text.stderr.contains("0 failed"),
        "{}",
        text.stderr
    );

    // inspect, by a project name (default registry) and by a full reference.
    let (key, digest) = project.built("app:1.1.0", "linux/amd64");
    let shown = project.ok(&["inspect", "app:latest"]).stdout;
    assert!(shown.contains(&format!("digest      {digest}")), "{shown}");
    assert!(shown.contains(&format!("build key   {key}")), "{shown}");
    assert!(shown.contains("platforms   linux/amd64"), "{shown}");
    assert!(shown.contains("org.opencontainers.image.vendor"), "{shown}");
    let inspected = json(
        &project
            .ok(&["inspect", &format!("{host}/acme/app:1"), "--format", "json"])
            .stdout,
    );
    assert_eq!(inspected["digest"], digest);
    assert_eq!(inspected["platforms"][0]["platform"], "linux/amd64");
    assert_eq!(inspected["platforms"][0]["build_key"], key);
    assert_eq!(
        inspected["platforms"][0]["labels"]["org.opencontainers.image.version"],
        "1.1.0"
    );

    // A stale node is refused before anything is sent.
    write(
        &project.root().join("images/app/dev/rootfs/etc/dev.conf"),
        "dev=2\n",
    );
    let stale = project.run(&["push", "app:1.1.0-dev"]);
    assert_eq!(stale.status, 2, "{}", stale.stderr);
    assert!(
        stale
            .stderr
            .contains("app:1.1.0-dev (linux/amd64) changed since it was built (context file rootfs/etc/dev.conf changed)"),
        "{}",
        stale.stderr
    );
}

#[test]
fn images_built_with_two_builders_push_with_the_keys_each_was_built_with() {
    let registry = Registry::start();
    let project = Project::solo("registry:\n  url: ${IM_TEST_REGISTRY}/acme\n").registry(&registry);
    write(
        &project.root().join("images/other/image.yml"),
        "tags: [2.0.0]\n",
    );
    write(
        &project.root().join("images/other/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\n",
    );
    write(&project.root().join("images/other/rootfs/other"), "other\n");
    project.ok(&["build", "solo", "--builder", "buildah"]);
    project.ok(&["build", "other", "--builder", "podman"]);
    // Each image's key is computed with the builder that built it, so both are up to date.
    let report = json(&project.ok(&["push", "--format", "json"]).stdout);
    assert_eq!(
        tag_result(&report, "solo:1.0.0")["result"],
        "pushed",
        "{report}"
    );
    assert_eq!(
        tag_result(&report, "other:2.0.0")["result"],
        "pushed",
        "{report}"
    );
}

#[test]
fn a_multi_arch_tag_becomes_an_index_and_platform_tags_combine_into_the_same_shape() {
    let registry = Registry::start();
    let host = registry.host_port();
    // Machine A publishes linux/amd64 only.
    let a = Project::chain(&["linux/amd64", "linux/arm64"]).registry(&registry);
    a.ok(&[
        "build",
        "-j",
        "1",
        "--push",
        "--platform",
        "linux/amd64",
        "app:1.1.0",
    ]);
    let (single, _) = raw(&format!("{host}/acme/app:1.1.0"), None);
    assert_eq!(
        single["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    // Machine B builds both platforms: amd64 is in the registry, arm64 is not. The amd64
    // images are fetched (the index needs them), only arm64 is built, and the tags become
    // indexes of both.
    let project = Project::chain(&["linux/amd64", "linux/arm64"]).registry(&registry);
    let both = project.ok(&["build", "-j", "1", "--push", "app:1.1.0"]);
    for line in [
        "Fetched base:1 (linux/amd64)",
        "Fetched app:1.1.0 (linux/amd64)",
        "Built base:1 (linux/arm64)",
        "Built app:1.1.0 (linux/arm64)",
        "Finished 2 built, 2 up to date",
    ] {
        assert!(both.stderr.contains(line), "{line}: {}", both.stderr);
    }
    assert_eq!(
        project.built("app:1.1.0", "linux/amd64"),
        a.built("app:1.1.0", "linux/amd64")
    );

    let (index, index_digest) = raw(&format!("{host}/acme/app:1.1.0"), None);
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let children: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        children,
        [
            (
                "amd64".to_owned(),
                project.built("app:1.1.0", "linux/amd64").1
            ),
            (
                "arm64".to_owned(),
                project.built("app:1.1.0", "linux/arm64").1
            ),
        ]
    );
    for alias in ["1", "1.1", "latest"] {
        assert_eq!(
            raw(&format!("{host}/acme/app:{alias}"), None).1,
            index_digest
        );
    }
    let arm = inspect_platform(&format!("{host}/acme/app:1"), "arm64");
    assert_eq!(arm["Architecture"], "arm64");
    assert_eq!(
        arm["Labels"][BUILD_KEY],
        project.built("app:1.1.0", "linux/arm64").0
    );

    // Platform-split CI: each platform's job pushes its own tag, then `manifest` joins them.
    let split = Registry::start();
    let split_host = split.host_port();
    let mut project = project;
    project.set("IM_TEST_REGISTRY", &split_host);
    project.ok(&[
        "push",
        "app:1.1.0",
        "--platform",
        "linux/amd64",
        "--platform-tags",
    ]);
    assert!(exists(&format!("{split_host}/acme/app:1.1.0-linux-amd64")));
    assert!(!exists(&format!("{split_host}/acme/app:1.1.0")));
    // The arm64 job has not pushed yet: nothing is combined.
    let early = project.run(&["manifest", "app:1.1.0"]);
    assert_eq!(early.status, 1, "{}", early.stderr);
    assert!(
        early
            .stderr
            .contains(&format!("app:1.1.0 (linux/arm64) has no per-platform tag: {split_host}/acme/app:1.1.0-linux-arm64 does not exist")),
        "{}",
        early.stderr
    );
    assert!(!exists(&format!("{split_host}/acme/app:1.1.0")));
    project.ok(&[
        "push",
        "app:1.1.0",
        "--platform",
        "linux/arm64",
        "--platform-tags",
    ]);
    let combined = json(
        &project
            .ok(&["manifest", "app:1.1.0", "--format", "json"])
            .stdout,
    );
    assert_eq!(tag_result(&combined, "app:1.1.0")["result"], "pushed");
    assert_eq!(tag_result(&combined, "app:1.1.0")["blobs_uploaded"], 0);
    let (joined, joined_digest) = raw(&format!("{split_host}/acme/app:1.1.0"), None);
    let joined_children: Vec<&str> = joined["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    let children: Vec<&str> = children.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(joined_children, children);
    for alias in ["1", "1.1", "latest"] {
        assert_eq!(
            raw(&format!("{split_host}/acme/app:{alias}"), None).1,
            joined_digest
        );
    }
    let again = json(
        &project
            .ok(&["manifest", "app:1.1.0", "--format", "json"])
            .stdout,
    );
    assert_eq!(tag_result(&again, "app:1.1.0")["result"], "up-to-date");
}

#[test]
fn a_snapshot_is_pushed_under_its_own_tags_and_promotion_keeps_its_digests() {
    let registry = Registry::start();
    let host = registry.host_port();
    let project = Project::chain(&["linux/amd64"]).registry(&registry);
    let built = project.ok(&[
        "build",
        "-j",
        "1",
        "--push",
        "--snapshot-id",
        "rc1",
        "app:1.1.0",
    ]);
    assert!(
        built.stderr.contains("Pushed app:1.1.0 →"),
        "{}",
        built.stderr
    );
    let (_, snapshot) = raw(&format!("{host}/acme/app:1.1.0-rc1"), None);
    assert!(exists(&format!("{host}/acme/base:1-rc1")));
    for absent in ["app:1.1.0", "app:1", "app:latest", "base:1"] {
        assert!(
            !exists(&format!("{host}/acme/{absent}")),
            "a snapshot writes no release tag or alias: {absent}"
        );
    }
    // The snapshot's app was built FROM the snapshot's base; its label names the base's
    // release tag, which promotion makes true (the digest is the snapshot base's).
    let labels = &inspect_platform(&format!("{host}/acme/app:1.1.0-rc1"), "amd64")["Labels"];
    assert_eq!(labels["org.opencontainers.image.base.name"], "base:1");
    let base = inspect_platform(&format!("{host}/acme/base:1-rc1"), "amd64");
    assert_eq!(
        labels["org.opencontainers.image.base.digest"], base["Digest"],
        "{base}"
    );

    // A snapshot that does not exist promotes nothing.
    let missing = project.run(&["promote", "--snapshot-id", "nope", "app:1.1.0"]);
    assert_eq!(missing.status, 1, "{}", missing.stderr);
    assert!(
        missing.stderr.contains(&format!(
            "app:1.1.0 has no snapshot `nope`: {host}/acme/app:1.1.0-nope does not exist"
        )),
        "{}",
        missing.stderr
    );
    assert!(!exists(&format!("{host}/acme/app:1.1.0")));

    let promoted = json(
        &project
            .ok(&[
                "promote",
                "--snapshot-id",
                "rc1",
                "base",
                "app:1.1.0",
                "--format",
                "json",
            ])
            .stdout,
    );
    assert_eq!(
        tag_result(&promoted, "app:1.1.0")["tags"],
        serde_json::json!(["1.1.0", "1", "1.1", "latest"])
    );
    assert_eq!(tag_result(&promoted, "app:1.1.0")["blobs_uploaded"], 0);
    for tag in ["1.1.0", "1", "1.1", "latest"] {
        assert_eq!(
            raw(&format!("{host}/acme/app:{tag}"), None).1,
            snapshot,
            "{tag}"
        );
    }
    assert_eq!(
        raw(&format!("{host}/acme/base:1"), None).1,
        raw(&format!("{host}/acme/base:1-rc1"), None).1
    );
    let again = json(
        &project
            .ok(&[
                "promote",
                "--snapshot-id",
                "rc1",
                "app:1.1.0",
                "--format",
                "json",
            ])
            .stdout,
    );
    assert_eq!(tag_result(&again, "app:1.1.0")["result"], "up-to-date");
}

#[test]
fn sync_copies_every_tag_once_and_then_nothing() {
    let source = Registry::start();
    let target = Registry::start();
    let project = Project::chain(&["linux/amd64"]).ci_and_mirror(&source, &target);
    project.ok(&["build", "-j", "1", "app:1.1.0"]);
    project.ok(&["push", "base", "app:1.1.0"]);

    // The source has only some of the tags: that fails, and says what to do...
    let partial = project.run(&["sync", "--from", "ci", "--to", "mirror"]);
    assert_eq!(partial.status, 1, "{}", partial.stderr);
    assert!(
        partial.stderr.contains(&format!(
            "3 image tags are missing from {}/acme: check --from, or pass --allow-missing",
            source.host_port()
        )),
        "{}",
        partial.stderr
    );
    // ...though what it has was copied.
    assert!(
        partial
            .stderr
            .contains("2 copied, 0 up to date, 0 failed, 3 missing"),
        "{}",
        partial.stderr
    );
    let first = json(
        &project
            .ok(&[
                "sync",
                "--from",
                "ci",
                "--to",
                "mirror",
                "--allow-missing",
                "--format",
                "json",
            ])
            .stdout,
    );
    assert_eq!(first["registry"], format!("{}/mirror", target.host_port()));
    assert_eq!(tag_result(&first, "base:1")["result"], "up-to-date");
    assert_eq!(tag_result(&first, "app:1.1.0")["result"], "up-to-date");
    // Up to date or not, a tag's platforms are what the registry holds.
    assert_eq!(
        tag_result(&first, "app:1.1.0")["platforms"],
        serde_json::json!(["linux/amd64"])
    );
    for never_pushed in ["app:1.0.0", "app:1.0.0-dev", "app:1.1.0-dev"] {
        assert_eq!(tag_result(&first, never_pushed)["result"], "missing");
    }
    for tag in ["base:1", "app:1.1.0", "app:1", "app:1.1", "app:latest"] {
        assert_eq!(
            raw(&format!("{}/mirror/{tag}", target.host_port()), None).1,
            raw(&format!("{}/acme/{tag}", source.host_port()), None).1,
            "{tag}"
        );
    }

    // The partial run copied everything there was: this one copied nothing.
    for tag in first["tags"].as_array().unwrap() {
        assert!(
            tag["result"] == "up-to-date" || tag["result"] == "missing",
            "{tag}"
        );
        assert_eq!(tag["blobs_uploaded"], 0, "{tag}");
        assert_eq!(tag["manifests_written"], 0, "{tag}");
    }

    // A registry named by host works too, and an unknown name is a usage error.
    let by_host = project.ok(&[
        "sync",
        "--from",
        &format!("{}/mirror", target.host_port()),
        "--to",
        &format!("{}/third", source.host_port()),
        "base",
    ]);
    assert!(by_host.stderr.contains("1 copied"), "{}", by_host.stderr);
    let unknown = project.run(&["sync", "--from", "mirorr", "--to", "ci"]);
    assert_eq!(unknown.status, 2);
    assert!(
        unknown.stderr.contains("did you mean `mirror`?"),
        "{}",
        unknown.stderr
    );
}

/// What `build` wrote into a multi-platform layout (`dist/<name>/<tag>/image.tar`): the digest
/// of the index its `index.json` names (checked against the index's bytes) and the manifest
/// digests the index lists, in order.
fn layout_index(layout: &Path) -> (String, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(fs_err::File::open(layout).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        files.insert(name.trim_start_matches("./").to_owned(), bytes);
    }
    let top: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let digest = top["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let bytes = &files[&format!("blobs/sha256/{}", &digest["sha256:".len()..])];
    assert_eq!(
        format!("sha256:{}", hex(&sha2::Sha256::digest(bytes))),
        digest
    );
    let index: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    (digest, children(&index))
}

/// The manifest digests an index lists, in order.
fn children(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}"))
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks that `repository:tag` serves exactly the index `build` recorded, and each of its
/// platform manifests by digest.
fn serves(repository: &str, tag: &str, index: &str, manifests: &[String]) {
    let (document, digest) = raw(&format!("{repository}:{tag}"), None);
    assert_eq!(digest, index, "{repository}:{tag}");
    assert_eq!(children(&document), manifests, "{repository}:{tag}");
    for manifest in manifests {
        assert_eq!(
            raw(&format!("{repository}@{manifest}"), None).1,
            *manifest,
            "{repository}@{manifest}"
        );
    }
}

#[test]
fn every_digest_build_recorded_is_served_after_push_promote_sync_and_manifest() {
    let ci = Registry::start();
    let mirror = Registry::start();
    let mut project = Project::chain(&["linux/amd64", "linux/arm64"]).ci_and_mirror(&ci, &mirror);
    // (`amd64,arm64`: the proof of concept's short form of linux/amd64,linux/arm64.)
    let built = project.ok(&[
        "build",
        "-j",
        "1",
        "--snapshot-id",
        "rc1",
        "--platform",
        "amd64,arm64",
        "app:1.1.0",
    ]);

    // What build recorded: each multi-platform layout's index, listing the ledger's manifests.
    let mut recorded = BTreeMap::new();
    for (node, image, tag) in [("base:1", "base", "1"), ("app:1.1.0", "app", "1.1.0")] {
        let (index, manifests) = layout_index(
            &project
                .root()
                .join("dist")
                .join(image)
                .join(tag)
                .join("image.tar"),
        );
        let ledger: Vec<String> = ["linux/amd64", "linux/arm64"]
            .iter()
            .map(|platform| project.built(node, platform).1)
            .collect();
        assert_eq!(manifests, ledger, "{node}");
        assert!(
            built
                .stderr
                .contains(&format!("Indexed {node}: 2 platforms, {index}")),
            "{}",
            built.stderr
        );
        recorded.insert(image, (index, manifests));
    }
    let ci_repo = |image: &str| format!("{}/acme/{image}", ci.host_port());

    // push: the snapshot tags are the built indexes, byte for byte.
    project.ok(&["push", "--snapshot-id", "rc1", "base", "app:1.1.0"]);
    for (image, tag) in [("base", "1-rc1"), ("app", "1.1.0-rc1")] {
        let (index, manifests) = &recorded[image];
        serves(&ci_repo(image), tag, index, manifests);
    }

    // promote: the release tags and aliases, the same digests.
    project.ok(&["promote", "--snapshot-id", "rc1", "base", "app:1.1.0"]);
    let release = [
        ("base", "1"),
        ("app", "1.1.0"),
        ("app", "1"),
        ("app", "1.1"),
        ("app", "latest"),
    ];
    for (image, tag) in release {
        let (index, manifests) = &recorded[image];
        serves(&ci_repo(image), tag, index, manifests);
    }

    // sync to another registry: the same digests there.
    project.ok(&[
        "sync",
        "--from",
        "ci",
        "--to",
        "mirror",
        "base",
        "app:1.1.0",
    ]);
    for (image, tag) in release {
        let (index, manifests) = &recorded[image];
        serves(
            &format!("{}/mirror/{image}", mirror.host_port()),
            tag,
            index,
            manifests,
        );
    }

    // Platform-split CI: per-platform tags, then `manifest` joins them into the index build
    // made (the same encoding), so it finds the snapshot tags already right.
    let pushed = project.ok(&[
        "push",
        "--snapshot-id",
        "rc1",
        "--platform-tags",
        "app:1.1.0",
    ]);
    assert!(
        pushed.stderr.contains(&format!(
            "app:1.1.0 → {}:1.1.0-rc1-linux-amd64 (",
            ci_repo("app")
        )) && pushed.stderr.contains("also 1.1.0-rc1-linux-arm64)"),
        "the status line names the tags written: {}",
        pushed.stderr
    );
    let combined = json(
        &project
            .ok(&[
                "manifest",
                "--snapshot-id",
                "rc1",
                "app:1.1.0",
                "--format",
                "json",
            ])
            .stdout,
    );
    let (index, manifests) = &recorded["app"];
    assert_eq!(
        tag_result(&combined, "app:1.1.0")["result"],
        "up-to-date",
        "{combined}"
    );
    serves(&ci_repo("app"), "1.1.0-rc1", index, manifests);
    // Into an empty registry, `manifest` writes that same index.
    let split = Registry::start();
    project.set("IM_TEST_SOURCE", &split.host_port());
    project.ok(&[
        "push",
        "--snapshot-id",
        "rc1",
        "--platform-tags",
        "base",
        "app:1.1.0",
    ]);
    project.ok(&["manifest", "--snapshot-id", "rc1", "base", "app:1.1.0"]);
    for (image, tag) in [("base", "1-rc1"), ("app", "1.1.0-rc1")] {
        let (index, manifests) = &recorded[image];
        serves(
            &format!("{}/acme/{image}", split.host_port()),
            tag,
            index,
            manifests,
        );
    }
}

/// Stops the project's local registry even when the test fails half-way.
struct StopOnDrop<'a>(&'a Project);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["stop", "registry"]);
    }
}

#[test]
fn the_local_registry_starts_once_reports_its_status_and_stops() {
    let addr = free_fixed_addr();
    let mut project = Project::solo("registry:\n  url: ${IM_TEST_REGISTRY}/acme\n");
    project.set("IMAGE_MANAGER_REGISTRY_ADDR", &addr);
    project.set("IM_TEST_REGISTRY", &addr);
    let _stop = StopOnDrop(&project);
    let stopped = project.ok(&["status"]);
    assert!(
        stopped
            .stdout
            .contains(&format!("registry  stopped  (would listen on {addr})")),
        "{}",
        stopped.stdout
    );

    // push starts it by itself: the default registry is its address.
    project.ok(&["build", "-j", "1"]);
    let pushed = project.ok(&["push"]);
    assert!(
        pushed
            .stderr
            .contains(&format!("Started registry on {addr}")),
        "{}",
        pushed.stderr
    );
    assert!(exists(&format!("{addr}/acme/solo:latest")));
    let status = json(&project.ok(&["status", "--format", "json"]).stdout);
    assert_eq!(status[0]["running"], true);
    assert_eq!(status[0]["managed"], true);
    assert_eq!(status[0]["address"], addr);
    let pid = status[0]["pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let state = project.root().join(".image-manager/registry");
    assert!(state.join("data").is_dir());
    assert!(state.join("registry.log").is_file());
    assert_eq!(
        fs_err::read_to_string(project.root().join(".image-manager/.gitignore")).unwrap(),
        "*\n"
    );

    // Starting again leaves the running one alone.
    let again = project.ok(&["start", "registry"]);
    assert!(
        again
            .stderr
            .contains(&format!("Running registry on {addr} (pid {pid},")),
        "{}",
        again.stderr
    );
    let text = project.ok(&["status"]).stdout;
    assert!(
        text.contains(&format!("registry  running  registry on {addr} (pid {pid}")),
        "{text}"
    );

    let stop = project.ok(&["stop", "registry"]);
    assert!(stop.stderr.contains("Stopped registry"), "{}", stop.stderr);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || fs_err::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.contains(") Z ")),
        "the registry process is gone"
    );
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "nothing listens on {addr} any more: {}",
        String::from_utf8_lossy(
            &Command::new("ss")
                .args(["-ltnp"])
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
    );
    let after = project.ok(&["status"]).stdout;
    assert!(after.contains("registry  stopped"), "{after}");
    let twice = project.ok(&["stop", "registry"]);
    assert!(
        twice.stderr.contains("it was not running"),
        "{}",
        twice.stderr
    );

    // `start registry` brings it back with the data it had.
    project.ok(&["start", "registry"]);
    assert!(exists(&format!("{addr}/acme/solo:1.0.0")));
    project.ok(&["stop", "registry"]);
}

/// The distribution registry as a container image, made locally (no image can be pulled):
/// Debian's `docker-registry` binary with the `registry:2` image's layout — the program at
/// `/bin/registry`, its config at `/etc/docker/registry/config.yml`, data in
/// `/var/lib/registry`, port 5000.
fn registry_container_image(docker: &im_testkit::DockerEnv) -> &'static str {
    const IMAGE: &str = "im-test/registry:2";
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path();
    fs_err::copy("/usr/bin/docker-registry", context.join("registry")).unwrap();
    fs_err::copy("/lib/x86_64-linux-gnu/libc.so.6", context.join("libc.so.6")).unwrap();
    fs_err::copy("/lib64/ld-linux-x86-64.so.2", context.join("ld.so")).unwrap();
    write(
        &context.join("config.yml"),
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n",
    );
    write(
        &context.join("Dockerfile"),
        "FROM scratch\nCOPY registry /bin/registry\nCOPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\nCOPY ld.so /lib64/ld-linux-x86-64.so.2\nCOPY config.yml /etc/docker/registry/config.yml\nEXPOSE 5000\nENTRYPOINT [\"/bin/registry\", \"serve\"]\nCMD [\"/etc/docker/registry/config.yml\"]\n",
    );
    let os = std::ffi::OsStr::new;
    docker.run([
        os("build"),
        os("--quiet"),
        os("--tag"),
        os(IMAGE),
        context.as_os_str(),
    ]);
    IMAGE
}

#[test]
fn without_a_registry_binary_the_registry_runs_as_a_docker_container() {
    let docker = im_testkit::docker();
    let image = registry_container_image(&docker);
    let addr = free_fixed_addr();
    let mut project = Project::solo("registry:\n  url: ${IM_TEST_REGISTRY}/acme\n");
    project.set("IMAGE_MANAGER_REGISTRY_ADDR", &addr);
    project.set("IM_TEST_REGISTRY", &addr);
    project.ok(&["build", "-j", "1"]);
    // A PATH with docker and no registry binary.
    let bin = project.root().join(".bin");
    fs_err::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(docker.bin(), bin.join("docker")).unwrap();
    project.set("PATH", &bin.display().to_string());
    project.set("DOCKER_HOST", docker.host());
    project.set("IMAGE_MANAGER_REGISTRY_IMAGE", image);
    let _stop = StopOnDrop(&project);

    let pushed = project.ok(&["push"]);
    assert!(
        pushed.stderr.contains(&format!(
            "Started registry on {addr} (container image-manager-registry-"
        )),
        "{}",
        pushed.stderr
    );
    assert!(exists(&format!("{addr}/acme/solo:latest")));
    let status = json(&project.ok(&["status", "--format", "json"]).stdout);
    assert_eq!(status[0]["running"], true);
    assert_eq!(status[0]["runner"], "docker");
    let container = status[0]["container"].as_str().unwrap().to_owned();
    let running = docker.run([
        "inspect",
        "--format",
        "{{.State.Running}}",
        container.as_str(),
    ]);
    assert_eq!(running.trim(), "true");
    // The data lives in the project's state folder, not in the container.
    assert!(
        project
            .root()
            .join(".image-manager/registry/data/docker/registry/v2/repositories/acme/solo")
            .is_dir()
    );

    project.ok(&["stop", "registry"]);
    let gone = docker
        .command()
        .args(["inspect", container.as_str()])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the container is removed");
    assert!(std::net::TcpStream::connect(&addr).is_err());
    assert!(project.ok(&["status"]).stdout.contains("registry  stopped"));
}

#[test]
fn build_push_on_a_fresh_machine_builds_only_what_the_registry_lacks() {
    let registry = Registry::start();
    let host = registry.host_port();
    // Machine A builds and pushes everything.
    let a = Project::chain(&["linux/amd64"]).registry(&registry);
    let first = a.ok(&["build", "-j", "1", "--push"]);
    assert!(
        first.stderr.contains("Finished 5 built"),
        "{}",
        first.stderr
    );

    // Machine B: the same sources, an empty dist/ and an empty image store.
    let b = Project::chain(&["linux/amd64"]).registry(&registry);
    let plan = json(
        &b.ok(&["plan", "--registry-keys", "--format", "json"])
            .stdout,
    );
    assert_eq!(plan["to_build"], 0, "{plan}");
    assert_eq!(
        plan["nodes"][0]["in_registry"],
        format!("{host}/acme/base:1"),
        "{plan}"
    );
    let nothing = b.ok(&["build", "-j", "1", "--push"]);
    assert!(
        nothing.stderr.contains("In registry base:1 (linux/amd64)")
            && nothing.stderr.contains("Up to date 0 nodes")
            && nothing
                .stderr
                .contains("Finished 0 built, 0 up to date, 5 in registry, 0 failed"),
        "{}",
        nothing.stderr
    );
    assert!(!nothing.stderr.contains("Fetched"), "{}", nothing.stderr);
    assert!(!b.root().join("dist/base/1/linux-amd64/image.tar").exists());

    // Only the dev variants change on B: their parents come from the registry.
    write(
        &b.root().join("images/app/dev/rootfs/etc/dev.conf"),
        "dev=2\n",
    );
    let plan = b.ok(&["plan", "--registry-keys"]).stdout;
    for line in ["base:1", "app:1.0.0 ", "app:1.1.0 "] {
        let row = plan.lines().find(|l| l.starts_with(line)).unwrap();
        assert!(row.ends_with("up to date (in registry)"), "{plan}");
    }
    assert!(
        plan.lines()
            .any(|l| l.starts_with("app:1.1.0-dev") && l.contains("build")),
        "{plan}"
    );
    let run = b.ok(&["build", "-j", "1", "--push", "--format", "json"]);
    let report = json(&run.stdout);
    let results = common::node_results(&report);
    assert_eq!(
        results,
        BTreeMap::from([
            ("app:1.0.0".to_owned(), "up-to-date".to_owned()),
            ("app:1.0.0-dev".to_owned(), "built".to_owned()),
            ("app:1.1.0".to_owned(), "up-to-date".to_owned()),
            ("app:1.1.0-dev".to_owned(), "built".to_owned()),
        ]),
        "base stays remote; the dev tags' parents were fetched: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "Fetched app:1.1.0 (linux/amd64) from {host}/acme/app:1.1.0"
        )),
        "{}",
        run.stderr
    );
    // The fetched parent is the registry's image, recorded so later plans agree.
    let (a_key, a_digest) = a.built("app:1.1.0", "linux/amd64");
    assert_eq!(
        b.built("app:1.1.0", "linux/amd64"),
        (a_key, a_digest.clone())
    );
    assert!(
        b.root()
            .join("dist/app/1.1.0/linux-amd64/image.tar")
            .is_file()
    );
    let plan = json(&b.ok(&["plan", "app:1.1.0", "--format", "json"]).stdout);
    let app = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"]["tag"] == "1.1.0")
        .unwrap();
    assert_eq!(app["action"], "up-to-date", "{plan}");

    // B's new dev images are in the registry, built on A's app, and their aliases moved.
    let (dev_key, dev_digest) = b.built("app:1.1.0-dev", "linux/amd64");
    assert_eq!(
        raw(&format!("{host}/acme/app:1.1.0-dev"), None).1,
        dev_digest
    );
    assert_eq!(
        raw(&format!("{host}/acme/app:latest-dev"), None).1,
        dev_digest
    );
    let labels = &inspect_platform(&format!("{host}/acme/app:1-dev"), "amd64")["Labels"];
    assert_eq!(labels[BUILD_KEY], dev_key);
    assert_eq!(labels["org.opencontainers.image.base.digest"], a_digest);
    assert_eq!(
        tag_result(&report["push"], "app:1.1.0-dev")["result"],
        "pushed"
    );
    assert_eq!(
        tag_result(&report["push"], "app:1.1.0")["result"],
        "up-to-date"
    );
    assert_eq!(
        tag_result(&report["push"], "base:1")["result"],
        "up-to-date"
    );
}

/// A containers auth file for skopeo (the password never goes in an argv).
fn authfile(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join("auth.json");
    let mut file = fs_err::File::create(&path).unwrap();
    file.write_all(
        serde_json::json!({"auths": {host: {"auth": auth}}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    path
}

#[test]
fn credentials_from_settings_reach_an_htpasswd_registry_and_never_show() {
    const USER: &str = "ci";
    const CANARY: &str = "canary-Pw-7c1e9b2f";
    let registry = Registry::start_with_htpasswd(USER, CANARY);
    let host = registry.host_port();
    let mut project = Project::solo(
        "registry:\n  url: ${IM_TEST_REGISTRY}/acme\n  username: ci\n  password: ${IM_TEST_PASSWORD}\n",
    )
    .registry(&registry);
    project.set("IM_TEST_PASSWORD", CANARY);
    project.ok(&["build", "-j", "1"]);
    project.ok(&["-vv", "push"]);
    let auth_dir = tempfile::tempdir().unwrap();
    let auth = authfile(auth_dir.path(), &host, USER, CANARY);
    let (_, digest) = raw(&format!("{host}/acme/solo:latest"), Some(&auth));
    assert_eq!(digest, project.built("solo:1.0.0", "linux/amd64").1);
    let shown = project.ok(&["-vv", "inspect", "solo:1", "--format", "json"]);
    assert_eq!(json(&shown.stdout)["digest"], digest);
    project.ok(&["-vv", "plan", "--registry-keys"]);
    project.ok(&["-vv", "build", "-j", "1", "--push"]);
    // A platform-split job on a fresh machine finds its key under the per-platform tag.
    project.ok(&["-vv", "build", "-j", "1", "--push", "--platform-tags"]);
    assert!(exists_with(
        &format!("{host}/acme/solo:1.0.0-linux-amd64"),
        &auth
    ));
    fs_err::remove_dir_all(project.root().join("dist")).unwrap();
    let fresh = project.ok(&["-vv", "build", "-j", "1", "--push", "--platform-tags"]);
    assert!(
        fresh.stderr.contains(&format!(
            "In registry solo:1.0.0 (linux/amd64): {host}/acme/solo:1.0.0-linux-amd64 has its build key; not built"
        )),
        "{}",
        fresh.stderr
    );
    assert!(!fresh.stderr.contains("Built solo"), "{}", fresh.stderr);

    // With the wrong password the registry refuses, and the error says so.
    project.ok(&["build", "-j", "1"]);
    project.set("IM_TEST_PASSWORD", "wrong-password");
    let refused = project.run(&["-vv", "push"]);
    assert_eq!(refused.status, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not authorized"),
        "{}",
        refused.stderr
    );

    let transcript = project.transcript.borrow();
    assert!(!transcript.is_empty());
    assert!(
        !transcript.contains(CANARY),
        "the password appeared in image-manager's output"
    );
    assert!(!transcript.contains("wrong-password"));
    assert!(transcript.contains("Pushed solo:1.0.0"), "{transcript}");
    assert!(
        transcript.contains("TRACE"),
        "the trace logs were searched too"
    );
    // The file search finds a planted copy, so an empty result means something.
    let planted = project.root().join("dist/planted");
    write(&planted, CANARY);
    assert_eq!(
        files_containing(project.root(), CANARY.as_bytes()),
        std::slice::from_ref(&planted)
    );
    fs_err::remove_file(&planted).unwrap();
    let leaked = files_containing(project.root(), CANARY.as_bytes());
    assert!(leaked.is_empty(), "the password was written to {leaked:?}");
}

#[test]
fn test_checks_an_image_straight_from_the_registry() {
    let registry = Registry::start();
    let host = registry.host_port();
    let project = Project::chain(&["linux/amd64"]).registry(&registry);
    project.ok(&["build", "-j", "1", "base"]);
    project.ok(&["push", "base"]);
    write(
        &project.root().join("remote.yml"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: busybox\n    path: /bin/busybox\n    shouldExist: true\nmetadataTest:\n  labels:\n    - key: org.opencontainers.image.version\n      value: \"1\"\n",
    );
    let config = project.root().join("remote.yml");
    let run = project.ok(&[
        "test",
        "--config",
        config.to_str().unwrap(),
        "--image",
        &format!("{host}/acme/base:1"),
        "--platform",
        "linux/amd64",
    ]);
    assert!(run.stderr.contains("Fetching"), "{}", run.stderr);
    assert!(run.stderr.contains("2 passed, 0 failed"), "{}", run.stderr);
    // A tag the registry does not have is an error, not a pass.
    let missing = project.run(&[
        "test",
        "--config",
        config.to_str().unwrap(),
        "--image",
        &format!("{host}/acme/base:nope"),
    ]);
    assert_ne!(missing.status, 0, "{}", missing.stderr);
}

/// A TCP forwarder in front of a real registry that passes at most `rate` bytes a second
/// from client to registry (a slow uplink), and counts what it passed: a push through it takes
/// long enough to interrupt half-way, at a known point.
struct SlowLink {
    addr: String,
    forwarded: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SlowLink {
    fn to(registry: &Registry, rate: u64) -> Self {
        use std::io::{Read as _, Write as _};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = registry.addr();
        let forwarded = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = forwarded.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(upstream) else {
                    return;
                };
                let (mut client_in, mut server_in) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (mut client_out, mut server_out) = (client, server);
                let counter = counter.clone();
                // Client → registry, `rate` bytes a second in slices of a tenth of it.
                std::thread::spawn(move || {
                    let mut buffer = vec![0; usize::try_from(rate / 10).unwrap().max(1)];
                    while let Ok(read) = client_in.read(&mut buffer) {
                        if read == 0 || server_out.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                        counter.fetch_add(read as u64, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                // Registry → client, at full speed.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self { addr, forwarded }
    }

    fn forwarded(&self) -> u64 {
        self.forwarded.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `len` bytes that do not compress (a xorshift stream), so the layer is as large as the file.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn ctrl_c_during_a_push_writes_no_tag_and_a_second_push_completes() {
    let registry = Registry::start();
    let host = registry.host_port();
    // 4 MiB through a 1 MiB/s link: the layer upload takes about four seconds.
    let link = SlowLink::to(&registry, 1024 * 1024);
    let mut project =
        Project::solo("registry:\n  url: ${IM_TEST_REGISTRY}/acme\n").registry(&registry);
    fs_err::write(
        project.root().join("images/solo/rootfs/payload"),
        incompressible(4 * 1024 * 1024),
    )
    .unwrap();
    project.ok(&["build", "-j", "1"]);
    project.set("IM_TEST_REGISTRY", &link.addr);

    let mut push = Command::new(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(project.root())
        .args(["push", "--format", "json"])
        .envs(&project.sandbox.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once a quarter of the layer is through (everything else is a few KiB).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while link.forwarded() < 1024 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "the push never got going"
        );
        assert!(push.try_wait().unwrap().is_none(), "the push ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let interrupted = std::time::Instant::now();
    let kill = Command::new("/bin/kill")
        .args(["-INT", &push.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let output = push.wait_with_output().unwrap();
    let stopped = interrupted.elapsed();
    let run = common::Run::of(&output);
    assert_eq!(run.status, 130, "{}", run.stderr);
    assert!(
        stopped < std::time::Duration::from_secs(3),
        "stopping took {stopped:?}"
    );
    let report = json(&run.stdout);
    assert_eq!(report["interrupted"], true, "{report}");
    // Nothing points at the half-sent image: neither the tag nor any alias.
    for tag in ["1.0.0", "1", "1.0", "latest"] {
        assert!(
            !exists(&format!("{host}/acme/solo:{tag}")),
            "solo:{tag} was written for an incomplete image"
        );
    }

    // The push, run again at full speed, completes.
    project.set("IM_TEST_REGISTRY", &host);
    project.ok(&["push"]);
    let (_, digest) = project.built("solo:1.0.0", "linux/amd64");
    for tag in ["1.0.0", "1", "1.0", "latest"] {
        assert_eq!(raw(&format!("{host}/acme/solo:{tag}"), None).1, digest);
    }
}

/// A pipeline under a new snapshot id builds nothing another pipeline already released:
/// a snapshot build has the key of the release build of the same inputs, so the release
/// tags count, a parent comes from them, and a parent that stays remote gets the per-platform
/// snapshot tag the manifest job joins.
#[test]
fn a_new_snapshot_reuses_what_the_release_tags_hold() {
    let registry = Registry::start();
    let host = registry.host_port();
    let a = Project::chain(&["linux/amd64"]).registry(&registry);
    a.ok(&["build", "-j", "1", "--push"]);

    let b = Project::chain(&["linux/amd64"]).registry(&registry);
    write(
        &b.root().join("images/app/dev/rootfs/etc/dev.conf"),
        "dev=2\n",
    );
    let run = b.ok(&[
        "build",
        "-j",
        "1",
        "--push",
        "--platform-tags",
        "--platform",
        "linux/amd64",
        "--snapshot-id",
        "mr-9",
        "--format",
        "json",
        "app:1.1.0-dev",
    ]);
    assert!(
        run.stderr.contains(&format!(
            "Fetched app:1.1.0 (linux/amd64) from {host}/acme/app:1.1.0"
        )) && run.stderr.contains("In registry base:1 (linux/amd64)"),
        "{}",
        run.stderr
    );
    let report = json(&run.stdout);
    let built: Vec<&str> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["result"] == "built")
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["app:1.1.0-dev"], "{}", run.stderr);
    // The parent that stayed remote gets its snapshot platform tag from its own job (a
    // leaf's job leaves it alone), on the released manifest.
    assert!(!exists(&format!("{host}/acme/base:1-mr-9-linux-amd64")));
    let own = b.ok(&[
        "build",
        "-j",
        "1",
        "--push",
        "--platform-tags",
        "--platform",
        "linux/amd64",
        "--snapshot-id",
        "mr-9",
        "base:1",
    ]);
    assert!(
        own.stderr.contains("In registry base:1 (linux/amd64)"),
        "{}",
        own.stderr
    );
    assert_eq!(
        raw(&format!("{host}/acme/base:1-mr-9-linux-amd64"), None).1,
        raw(&format!("{host}/acme/base:1"), None).1
    );
    let (_, app_digest) = a.built("app:1.1.0", "linux/amd64");
    let labels = &inspect_platform(
        &format!("{host}/acme/app:1.1.0-dev-mr-9-linux-amd64"),
        "amd64",
    )["Labels"];
    assert_eq!(labels["org.opencontainers.image.base.name"], "app:1.1.0");
    assert_eq!(labels["org.opencontainers.image.base.digest"], app_digest);
    // The manifest job of the snapshot joins what is there.
    b.ok(&["manifest", "--snapshot-id", "mr-9", "base:1"]);
    assert!(exists(&format!("{host}/acme/base:1-mr-9")));
}

/// `generate-ci --registry-keys` leaves out the image tags whose release tags already hold
/// their build keys; what is built on a changed image stays in.
#[test]
fn generate_ci_leaves_out_what_the_registry_already_released() {
    let registry = Registry::start();
    let a = Project::chain(&["linux/amd64"]).registry(&registry);
    let nodes = |project: &Project| -> Vec<String> {
        let graph = json(
            &project
                .ok(&[
                    "generate-ci",
                    "--provider",
                    "gitlab",
                    "--registry-keys",
                    "--format",
                    "json",
                ])
                .stdout,
        );
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["node"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(nodes(&a).len(), 5, "nothing is released yet");
    a.ok(&["build", "-j", "1", "--push"]);
    assert!(nodes(&a).is_empty());
    write(
        &a.root().join("images/app/dev/rootfs/etc/dev.conf"),
        "dev=2\n",
    );
    assert_eq!(nodes(&a), ["app:1.0.0-dev", "app:1.1.0-dev"]);
}

/// `openssl` with `args`; whether it succeeded and what it said.
fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A blob of `repository` (`host/acme/base`) through the registry API.
fn blob(repository: &str, digest: &str) -> Vec<u8> {
    let (host, name) = repository.split_once('/').unwrap();
    let output = Command::new("curl")
        .args(["-fsS", &format!("http://{host}/v2/{name}/blobs/{digest}")])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `sign` writes cosign's simple-signing signature next to the image, which openssl verifies
/// on its own; `verify` accepts it only with the right key, and refuses an unsigned image.
#[test]
fn signatures_are_cosign_shaped_verify_independently_and_fail_for_another_key() {
    use base64::Engine as _;
    let registry = Registry::start();
    let host = registry.host_port();
    let mut project = Project::chain(&["linux/amd64"]).registry(&registry);
    project.ok(&["build", "-j", "1", "--push"]);
    let keys = project.root().join("keys");
    fs_err::create_dir_all(&keys).unwrap();
    for (name, args) in [
        (
            "ec.pem",
            vec![
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
                "ec.pem",
            ],
        ),
        (
            "cosign.key",
            vec![
                "pkcs8",
                "-topk8",
                "-nocrypt",
                "-in",
                "ec.pem",
                "-out",
                "cosign.key",
            ],
        ),
        (
            "cosign.pub",
            vec!["ec", "-in", "ec.pem", "-pubout", "-out", "cosign.pub"],
        ),
        (
            "other.pem",
            vec![
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
                "other.pem",
            ],
        ),
        (
            "other.pub",
            vec!["ec", "-in", "other.pem", "-pubout", "-out", "other.pub"],
        ),
        (
            "locked.key",
            vec![
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                "other.pem",
                "-out",
                "locked.key",
                "-passout",
                "pass:s3cret-canary",
            ],
        ),
    ] {
        let (ok, said) = openssl(&args, &keys);
        assert!(ok, "openssl for {name}: {said}");
    }
    let key = keys.join("cosign.key").display().to_string();
    let public = keys.join("cosign.pub").display().to_string();

    let run = project.ok(&["sign", "--key", &key, "base:1", "--format", "json"]);
    let report = json(&run.stdout);
    assert_eq!(report["tags"][0]["result"], "signed", "{report}");
    let digest = report["tags"][0]["digest"].as_str().unwrap().to_owned();
    assert_eq!(digest, raw(&format!("{host}/acme/base:1"), None).1);
    let again = json(
        &project
            .ok(&["sign", "--key", &key, "base:1", "--format", "json"])
            .stdout,
    );
    assert_eq!(again["tags"][0]["result"], "already-signed");

    // The stored signature, read with the registry API and checked by openssl.
    let (manifest, _) = raw(
        &format!("{host}/acme/base:{}.sig", digest.replace(':', "-")),
        None,
    );
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = blob(
        &format!("{host}/acme/base"),
        layer["digest"].as_str().unwrap(),
    );
    let text: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(text["critical"]["image"]["docker-manifest-digest"], digest);
    assert_eq!(
        text["critical"]["identity"]["docker-reference"],
        format!("{host}/acme/base")
    );
    let signature = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    fs_err::write(keys.join("payload"), &payload).unwrap();
    fs_err::write(keys.join("sig.der"), &signature).unwrap();
    let openssl_verify = |public: &str, payload: &str| {
        openssl(
            &[
                "dgst",
                "-sha256",
                "-verify",
                public,
                "-signature",
                "sig.der",
                payload,
            ],
            &keys,
        )
    };
    let (ok, said) = openssl_verify("cosign.pub", "payload");
    assert!(ok && said.contains("Verified OK"), "{said}");
    let mut changed = payload.clone();
    let at = changed.len() - 20;
    changed[at] ^= 1;
    fs_err::write(keys.join("changed"), &changed).unwrap();
    assert!(
        !openssl_verify("cosign.pub", "changed").0,
        "a changed payload fails"
    );
    assert!(
        !openssl_verify("other.pub", "payload").0,
        "another key fails"
    );

    // verify: the right key passes; another key, or an unsigned image, fails with exit 1.
    project.ok(&["verify", "--key", &public, "base:1"]);
    let other = keys.join("other.pub").display().to_string();
    let wrong = project.run(&["verify", "--key", &other, "base:1", "--format", "json"]);
    assert_eq!(wrong.status, 1, "{}", wrong.stderr);
    let report = json(&wrong.stdout);
    assert_eq!(report["tags"][0]["result"], "rejected", "{report}");
    assert!(
        report["tags"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not made by this key"),
        "{report}"
    );
    let unsigned = project.run(&["verify", "--key", &public, "app:1.0.0"]);
    assert_eq!(unsigned.status, 1, "{}", unsigned.stderr);
    assert!(
        unsigned.stderr.contains("no signature"),
        "{}",
        unsigned.stderr
    );

    // A password-protected key: its password comes from the environment, never shown.
    let locked = keys.join("locked.key").display().to_string();
    let refused = project.run(&["sign", "--key", &locked, "app:1.0.0"]);
    assert_eq!(refused.status, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("set COSIGN_PASSWORD"),
        "{}",
        refused.stderr
    );
    project.set("COSIGN_PASSWORD", "s3cret-canary");
    let signed = project.ok(&["-vv", "sign", "--key", &locked, "app:1.0.0"]);
    assert!(!signed.stderr.contains("s3cret-canary") && !signed.stdout.contains("s3cret-canary"));
    project.ok(&["verify", "--key", &other, "app:1.0.0"]);
    // Both keys' signatures now sit on base:1 once it is signed by the other key too.
    project.set("COSIGN_PASSWORD", "s3cret-canary");
    project.ok(&["sign", "--key", &locked, "base:1"]);
    project.ok(&["verify", "--key", &public, "base:1"]);
    project.ok(&["verify", "--key", &other, "base:1"]);
    // push --sign signs what it pushed.
    assert_eq!(
        project
            .run(&["verify", "--key", &public, "app:1.1.0"])
            .status,
        1
    );
    project.ok(&["push", "--sign", &key, "app:1.1.0"]);
    project.ok(&["verify", "--key", &public, "app:1.1.0"]);
}

/// In GitHub Actions (`$GITHUB_STEP_SUMMARY` set), `build --push` and `push` append a Markdown
/// summary: each node with its result and why, each pushed tag with its digest.
#[test]
fn build_and_push_append_a_markdown_summary_for_github_actions() {
    let registry = Registry::start();
    let host = registry.host_port();
    let mut project = Project::chain(&["linux/amd64"]).registry(&registry);
    let summary = project.root().join("step-summary.md");
    project.set("GITHUB_STEP_SUMMARY", &summary.display().to_string());
    project.ok(&["build", "-j", "1", "--push", "base:1"]);
    let text = fs_err::read_to_string(&summary).unwrap();
    assert!(text.starts_with("### image-manager build\n\n"), "{text}");
    assert!(
        text.contains("| `base:1` | linux/amd64 | built | new |"),
        "{text}"
    );
    let (_, digest) = raw(&format!("{host}/acme/base:1"), None);
    assert!(
        text.contains(&format!(
            "Registry `{host}/acme`:\n\n| image tag | result | tags | digest |\n|---|---|---|---|\n| `base:1` | pushed | `1` | `{}` |",
            &digest[..19]
        )),
        "{text}"
    );
    project.ok(&["push", "base:1"]);
    let text = fs_err::read_to_string(&summary).unwrap();
    let pushed = text
        .split("### image-manager push\n\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(pushed.contains("| `base:1` | up-to-date |"), "{pushed}");

    // `test` adds each image's counts and every failed test.
    let config = project.root().join("checks.yml");
    write(
        &config,
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: busybox, path: /bin/busybox, shouldExist: true}\n  - {name: no shell here, path: /bin/sh, shouldExist: false}\n",
    );
    let image = format!("{host}/acme/base:1");
    let run = project.run(&[
        "test",
        "--config",
        config.to_str().unwrap(),
        "--image",
        &image,
        "--platform",
        "linux/amd64",
    ]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let text = fs_err::read_to_string(&summary).unwrap();
    let tested = text
        .split("### image-manager test\n\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(tested.starts_with("1 passed, 1 failed."), "{tested}");
    assert!(tested.contains("| failed | 1 | 1 |"), "{tested}");
    assert!(tested.contains("Failed tests:\n\n- `"), "{tested}");
    assert!(tested.contains("no shell here"), "{tested}");
}

/// The tags of a repository, sorted (skopeo's list).
fn list_tags(repository: &str) -> Vec<String> {
    let listed = json(
        &String::from_utf8(skopeo_ok(&[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repository}"),
        ]))
        .unwrap(),
    );
    let mut tags: Vec<String> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| tag.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

#[test]
fn revision_tags_name_each_build_once_and_move_only_when_the_build_changes() {
    let (registry, mirror) = (Registry::start(), Registry::start());
    let host = registry.host_port();
    let project = Project::solo("registry:\n  url: ${IM_TEST_REGISTRY}/acme\n")
        .ci_and_mirror(&registry, &mirror);
    let root = project.root();
    write(
        &root.join("images/solo/image.yml"),
        "tags: [1.0.0]\nlatest: true\nrevision: true\n",
    );
    let repository = format!("{host}/acme/solo");
    project.ok(&["build"]);

    // The first push writes revision 1 of the tag, and none of the aliases.
    let first = json(&project.ok(&["push", "--format", "json"]).stdout);
    let solo = tag_result(&first, "solo:1.0.0");
    assert_eq!(
        solo["revision"],
        serde_json::json!({"tag": "1.0.0-r1", "result": "written", "reason": "first", "previous": null}),
        "{first}"
    );
    assert_eq!(
        solo["tags"],
        serde_json::json!(["1.0.0", "1", "1.0", "latest", "1.0.0-r1"])
    );
    let (_, built) = raw(&format!("{repository}:1.0.0"), None);
    assert_eq!(raw(&format!("{repository}:1.0.0-r1"), None).1, built);

    // Tags that only look like revisions do not count.
    for lookalike in ["1.0.0-rc1", "1.0.0-r010", "1.0.0-r7x"] {
        skopeo_ok(&[
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{repository}:1.0.0"),
            &format!("docker://{repository}:{lookalike}"),
        ]);
    }
    // Nothing changed: the revision stays, nothing is written.
    let again = json(&project.ok(&["push", "--format", "json"]).stdout);
    let solo = tag_result(&again, "solo:1.0.0");
    assert_eq!(solo["result"], "up-to-date", "{again}");
    assert_eq!(solo["manifests_written"], 0, "{again}");
    assert_eq!(solo["revision"]["tag"], "1.0.0-r1", "{again}");
    assert_eq!(solo["revision"]["result"], "unchanged", "{again}");
    let text = project.ok(&["push"]);
    assert!(
        text.stderr.contains("revision 1.0.0-r1 unchanged"),
        "{}",
        text.stderr
    );
    assert_eq!(
        list_tags(&repository),
        [
            "1",
            "1.0",
            "1.0.0",
            "1.0.0-r010",
            "1.0.0-r1",
            "1.0.0-r7x",
            "1.0.0-rc1",
            "latest"
        ]
    );

    // A changed image is revision 2; revision 1 keeps the first build.
    write(
        &root.join("images/solo/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nLABEL changed=2\n",
    );
    project.ok(&["build"]);
    let dotenv = root.join("push.env");
    let changed = json(
        &project
            .ok(&[
                "push",
                "--format",
                "json",
                "--output",
                &format!("dotenv:{}", dotenv.display()),
            ])
            .stdout,
    );
    let dotenv = fs_err::read_to_string(&dotenv).unwrap();
    assert!(
        dotenv.contains("IM_REVISION_SOLO_1_0_0=1.0.0-r2\n"),
        "{dotenv}"
    );
    assert_eq!(
        tag_result(&changed, "solo:1.0.0")["revision"],
        serde_json::json!({"tag": "1.0.0-r2", "result": "written", "reason": "key-changed", "previous": "1.0.0-r1"}),
        "{changed}"
    );
    let (_, rebuilt) = raw(&format!("{repository}:1.0.0"), None);
    assert_ne!(rebuilt, built);
    assert_eq!(raw(&format!("{repository}:1.0.0-r2"), None).1, rebuilt);
    assert_eq!(raw(&format!("{repository}:1.0.0-r1"), None).1, built);

    // A snapshot writes no revision; promoting it writes the release tag's next one.
    write(
        &root.join("images/solo/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nLABEL changed=3\n",
    );
    project.ok(&["build", "--push", "--snapshot-id", "s1"]);
    let (_, snapshot) = raw(&format!("{repository}:1.0.0-s1"), None);
    assert!(!exists(&format!("{repository}:1.0.0-r3")));
    assert!(!exists(&format!("{repository}:1.0.0-s1-r1")));
    let promoted = json(
        &project
            .ok(&["promote", "--snapshot-id", "s1", "--format", "json"])
            .stdout,
    );
    assert_eq!(
        tag_result(&promoted, "solo:1.0.0")["revision"]["tag"],
        "1.0.0-r3",
        "{promoted}"
    );
    assert_eq!(raw(&format!("{repository}:1.0.0-r3"), None).1, snapshot);
    assert_eq!(raw(&format!("{repository}:1.0.0"), None).1, snapshot);

    // Per-platform tags are no release: `manifest` writes the index and its revision.
    write(
        &root.join("images/solo/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\nLABEL changed=4\n",
    );
    project.ok(&["build"]);
    project.ok(&["push", "--platform-tags"]);
    assert!(!exists(&format!("{repository}:1.0.0-r4")));
    let combined = json(&project.ok(&["manifest", "--format", "json"]).stdout);
    assert_eq!(
        tag_result(&combined, "solo:1.0.0")["revision"]["tag"],
        "1.0.0-r4",
        "{combined}"
    );
    let (index, combined_digest) = raw(&format!("{repository}:1.0.0"), None);
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(1),
        "{index}"
    );
    assert_eq!(
        raw(&format!("{repository}:1.0.0-r4"), None).1,
        combined_digest
    );

    // The same build pushed as a single image instead of that index is another manifest with
    // the same build key: it gets a revision of its own, so each revision names one manifest.
    let pushed = project.ok(&["build", "--push"]);
    assert!(
        pushed.stderr.contains("revision 1.0.0-r5"),
        "{}",
        pushed.stderr
    );
    assert_eq!(
        raw(&format!("{repository}:1.0.0-r5"), None).1,
        raw(&format!("{repository}:1.0.0"), None).1
    );
    let last = json(&project.ok(&["push", "--format", "json"]).stdout);
    assert_eq!(
        tag_result(&last, "solo:1.0.0")["revision"],
        serde_json::json!({"tag": "1.0.0-r5", "result": "unchanged", "reason": "same-build", "previous": null}),
        "{last}"
    );

    // `sync` copies the revision tag that names the build, and only that one.
    let synced = json(
        &project
            .ok(&["sync", "--from", "ci", "--to", "mirror", "--format", "json"])
            .stdout,
    );
    assert_eq!(
        tag_result(&synced, "solo:1.0.0")["revision"],
        serde_json::json!({"tag": "1.0.0-r5", "result": "written", "reason": "copied", "previous": null}),
        "{synced}"
    );
    let mirrored = format!("{}/mirror/solo", mirror.host_port());
    assert_eq!(
        list_tags(&mirrored),
        ["1", "1.0", "1.0.0", "1.0.0-r5", "latest"]
    );
    assert_eq!(
        raw(&format!("{mirrored}:1.0.0-r5"), None).1,
        raw(&format!("{repository}:1.0.0-r5"), None).1
    );
    let resynced = json(
        &project
            .ok(&["sync", "--from", "ci", "--to", "mirror", "--format", "json"])
            .stdout,
    );
    let solo = tag_result(&resynced, "solo:1.0.0");
    assert_eq!(solo["result"], "up-to-date", "{resynced}");
    assert_eq!(solo["revision"]["result"], "unchanged", "{resynced}");
}
