//! End-to-end tests of external base images: a project whose Dockerfile starts `FROM` an
//! image it does not build, served by a real registry (the distribution registry standing in
//! for a public one), built with buildah, podman and the Docker engine from an empty store.
//!
//! The base is the static busybox image pushed to the registry with skopeo; the project
//! builds `app` on it, `child` on `app`, and an independent `solo`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Sandbox, builder_settings, json, write};
use im_testkit::{Platform, Registry};
use sha2::Digest as _;

const SKOPEO: &str = "/usr/bin/skopeo";
const BASE_DIGEST_LABEL: &str = "org.opencontainers.image.base.digest";

struct Fixture(Sandbox);

impl std::ops::Deref for Fixture {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl Fixture {
    /// The project, building with `builder` (`buildah`, `podman` or `docker`), `app` starting
    /// `FROM {from}`, and `registries` added to `.image-manager.yml`.
    fn new(builder: &str, from: &str, registries: &str) -> Self {
        let mut sandbox = Sandbox::new();
        let root = sandbox.root();
        let storage = root.join(".storage");
        let settings = builder_settings(builder, &storage);
        write(
            &root.join(".image-manager.yml"),
            &format!("{settings}platforms: [linux/amd64]\n{registries}"),
        );
        write(&root.join("images/app/image.yml"), "tags: ['1.0']\n");
        write(
            &root.join("images/app/Dockerfile"),
            &format!("FROM {from}\nRUN echo app > /app.txt\n"),
        );
        write(&root.join("images/child/image.yml"), "tags: ['1.0']\n");
        write(
            &root.join("images/child/Dockerfile"),
            "FROM app:1.0\nRUN cat /app.txt > /child.txt\n",
        );
        write(&root.join("images/solo/image.yml"), "tags: ['1']\n");
        write(
            &root.join("images/solo/Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        );
        write(&root.join("images/solo/rootfs/hello"), "hello\n");
        sandbox.empty_docker_config();
        if builder == "docker" {
            sandbox.set("DOCKER_HOST", im_testkit::docker().host());
        }
        Self(sandbox)
    }

    fn archive(&self, node: &str) -> PathBuf {
        let (name, tag) = node.split_once(':').unwrap();
        self.root()
            .join("dist")
            .join(name)
            .join(tag)
            .join("linux-amd64/image.tar")
    }

    /// The label of a built node's image.
    fn label(&self, node: &str, key: &str) -> Option<String> {
        let image =
            im_oci::open_image(&self.archive(node), &im_oci::OpenOptions::default()).unwrap();
        image
            .config()
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .and_then(|labels| labels.get(key).cloned())
    }

    fn read(&self, node: &str, path: &str) -> String {
        let image =
            im_oci::open_image(&self.archive(node), &im_oci::OpenOptions::default()).unwrap();
        let view = image.filesystem().unwrap();
        String::from_utf8(image.read_file(&view, path).unwrap()).unwrap()
    }

    /// The nodes a `plan` would build, with the reasons of each.
    fn plan(&self, extra: &[&str]) -> BTreeMap<String, Vec<serde_json::Value>> {
        let mut args = vec!["plan", "--format", "json"];
        args.extend(extra);
        common::rebuilds(&json(&self.ok(&args).stdout))
    }

    fn ledger_bases(&self, node: &str) -> serde_json::Value {
        let ledger = json(&fs_err::read_to_string(self.root().join("dist/ledger.json")).unwrap());
        ledger["nodes"][format!("{node} linux/amd64")]["bases"].clone()
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    assert!(
        Path::new(SKOPEO).exists(),
        "{SKOPEO} is missing: scripts/setup should have installed skopeo"
    );
    let output = Command::new(SKOPEO).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Copies the OCI archive `archive` to `reference` in a registry (`format`: `oci` or `v2s2`).
fn push_archive(archive: &Path, reference: &str, format: &str) {
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--format",
        format,
        &format!("oci-archive:{}", archive.display()),
        &format!("docker://{reference}"),
    ]);
}

/// The digest a registry serves for `reference`.
fn registry_digest(reference: &str) -> String {
    let bytes = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    format!("sha256:{:x}", sha2::Sha256::digest(&bytes))
}

/// Pushes the busybox base image as `<registry>/library/base:1` and returns its digest.
fn serve_base(registry: &Registry, format: &str) -> String {
    let reference = format!("{}/library/base:1", registry.host_port());
    push_archive(
        im_testkit::busybox_base_image(Platform::LinuxAmd64).oci_archive(),
        &reference,
        format,
    );
    registry_digest(&reference)
}

/// Builds from an empty store, checks the pin everywhere, then moves the base's tag.
fn builds_from_the_registry_and_rebuilds_exactly_the_dependents_when_the_base_moves(builder: &str) {
    let registry = Registry::start();
    let digest = serve_base(&registry, "oci");
    let from = format!("{}/library/base:1", registry.host_port());
    let fixture = Fixture::new(builder, &from, "");

    let build = fixture.ok(&["build", "-j", "2"]);
    assert!(
        build.stderr.contains("Resolved 1 external base"),
        "{}",
        build.stderr
    );
    assert!(build.stderr.contains("Pulled"), "{}", build.stderr);
    assert_eq!(fixture.read("app:1.0", "/app.txt"), "app\n");
    assert_eq!(fixture.read("child:1.0", "/child.txt"), "app\n");
    // The digest the registry serves is in the label, the ledger and bases.json.
    assert_eq!(
        fixture.label("app:1.0", BASE_DIGEST_LABEL).as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(fixture.ledger_bases("app:1.0")[&from], digest);
    let record = json(&fs_err::read_to_string(fixture.root().join("dist/bases.json")).unwrap());
    assert_eq!(record["bases"][&from]["platforms"]["linux/amd64"], digest);
    let cached = fixture.root().join(format!(
        ".image-manager/cache/bases/{}.tar",
        digest.replace(':', "-")
    ));
    assert!(cached.is_file(), "{} missing", cached.display());
    assert!(fixture.plan(&[]).is_empty());

    // New content under the same tag: the app's own image.
    push_archive(&fixture.archive("app:1.0"), &from, "oci");
    let moved = registry_digest(&from);
    assert_ne!(moved, digest);
    // An offline plan still knows only the old digest; a refreshed one sees the move and
    // rebuilds exactly the nodes built on the base.
    assert!(fixture.plan(&[]).is_empty());
    let refreshed = fixture.plan(&["--refresh-bases"]);
    assert_eq!(
        refreshed.keys().collect::<Vec<_>>(),
        ["app:1.0", "child:1.0"]
    );
    assert!(
        refreshed["app:1.0"]
            .iter()
            .any(|r| r["reason"] == "base-digest-changed" && r["digest"] == moved.as_str()),
        "{refreshed:?}"
    );
    let text = fixture.ok(&["plan", "--refresh-bases"]);
    assert!(
        text.stdout
            .contains(&format!("base {from} moved to {moved}")),
        "{}",
        text.stdout
    );
    let rebuilt = json(&fixture.ok(&["build", "-j", "2", "--format", "json"]).stdout);
    let results = common::node_results(&rebuilt);
    assert_eq!(results["app:1.0"], "built");
    assert_eq!(results["child:1.0"], "built");
    assert_eq!(results["solo:1"], "up-to-date");
    assert_eq!(
        fixture.label("app:1.0", BASE_DIGEST_LABEL).as_deref(),
        Some(moved.as_str())
    );

    // Without the registry: --offline builds from the record and the cache alone, and an
    // online build that cannot reach it keeps what it resolved before.
    drop(registry);
    fixture.ok(&["build", "--offline", "--force", "app"]);
    let down = fixture.ok(&["build"]);
    assert!(
        down.stderr.contains("as resolved before"),
        "{}",
        down.stderr
    );
}

#[test]
fn buildah_builds_from_an_external_base_and_follows_it_when_it_moves() {
    builds_from_the_registry_and_rebuilds_exactly_the_dependents_when_the_base_moves("buildah");
}

/// `outdated` asks the registry, names a base that moved with exactly the nodes built on it,
/// and `build --refresh-bases` rebuilds those and nothing else that changed.
#[test]
fn outdated_names_a_moved_base_with_its_dependents_and_refresh_rebuilds_only_those() {
    let registry = Registry::start();
    serve_base(&registry, "oci");
    let from = format!("{}/library/base:1", registry.host_port());
    let fixture = Fixture::new("buildah", &from, "");
    fixture.ok(&["build", "-j", "2"]);
    let same = fixture.ok(&["outdated"]);
    assert!(same.stdout.is_empty(), "{}", same.stdout);
    assert!(
        same.stderr
            .contains("no external base moved since the last build"),
        "{}",
        same.stderr
    );

    // New content under the same tag.
    push_archive(&fixture.archive("app:1.0"), &from, "oci");
    let moved = registry_digest(&from);
    let run = fixture.run(&["outdated", "--format", "json"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = json(&run.stdout);
    let outdated = report["outdated"].as_array().unwrap();
    assert_eq!(outdated.len(), 1, "{report}");
    assert_eq!(outdated[0]["reference"], from.as_str());
    assert_eq!(outdated[0]["direct"], serde_json::json!(["app:1.0"]));
    assert_eq!(
        outdated[0]["nodes"],
        serde_json::json!(["app:1.0", "child:1.0"])
    );
    assert_eq!(outdated[0]["platforms"][0]["platform"], "linux/amd64");
    assert_eq!(outdated[0]["platforms"][0]["now"], moved.as_str());
    assert_eq!(outdated[0]["platforms"][0]["since"], "ledger");
    // The report's outdated-bases page shows what outdated found.
    fixture.ok(&["report"]);
    let page = fs_err::read_to_string(fixture.root().join("dist/report/outdated.html")).unwrap();
    for expected in [from.as_str(), moved.as_str(), "child:1.0"] {
        assert!(page.contains(expected), "{expected} not in outdated.html");
    }
    let text = fixture.run(&["outdated", "--exit-zero"]);
    assert_eq!(text.status, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("rebuilds:    app:1.0, child:1.0"),
        "{}",
        text.stdout
    );
    // What outdated asked is recorded: a plain plan says why the same nodes rebuild.
    let plan = fixture.plan(&[]);
    assert_eq!(plan.keys().collect::<Vec<_>>(), ["app:1.0", "child:1.0"]);
    assert!(
        plan["app:1.0"]
            .iter()
            .any(|r| r["reason"] == "base-digest-changed"),
        "{plan:?}"
    );

    // Something else changed too: --refresh-bases leaves it for the next build.
    write(
        &fixture.root().join("images/solo/rootfs/hello"),
        "changed\n",
    );
    let rebuilt = json(
        &fixture
            .ok(&["build", "--refresh-bases", "-j", "2", "--format", "json"])
            .stdout,
    );
    let results = common::node_results(&rebuilt);
    assert_eq!(
        results,
        BTreeMap::from([
            ("app:1.0".to_owned(), "built".to_owned()),
            ("child:1.0".to_owned(), "built".to_owned()),
        ])
    );
    assert_eq!(fixture.plan(&[]).keys().collect::<Vec<_>>(), ["solo:1"]);
    fixture.ok(&["outdated"]);

    // A registry that cannot be reached: a warning, the nodes stay, exit 3.
    drop(registry);
    let down = fixture.run(&["outdated"]);
    assert_eq!(down.status, 3, "{}", down.stderr);
    assert!(
        down.stderr.contains("as resolved before"),
        "{}",
        down.stderr
    );
    let nothing = fixture.run(&["build", "--refresh-bases"]);
    assert_eq!(nothing.status, 3, "{}", nothing.stderr);
}

/// A refresh that fails is counted in the ledger; the next scheduled refresh leaves the node
/// and what is built on it alone (2^N hours), and `history` says until when.
#[test]
fn a_refresh_that_keeps_failing_backs_off() {
    let registry = Registry::start();
    serve_base(&registry, "oci");
    let from = format!("{}/library/base:1", registry.host_port());
    let fixture = Fixture::new("buildah", &from, "");
    fixture.ok(&["build", "-j", "2"]);
    // The base moves to an image without a shell: app's RUN fails.
    push_archive(&fixture.archive("solo:1"), &from, "oci");
    let failed = fixture.run(&["build", "--refresh-bases"]);
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    let history = json(&fixture.ok(&["history", "app", "--format", "json"]).stdout);
    assert_eq!(history[0]["failed"]["count"], 1, "{history}");
    assert_eq!(history[0]["failed"]["backing_off"], true, "{history}");

    let again = fixture.ok(&["build", "--refresh-bases"]);
    assert!(
        again
            .stderr
            .contains("Backing off app:1.0 (linux/amd64): failed 1 time with this key"),
        "{}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains("Backing off child:1.0 (linux/amd64): a node it is built on is backing off"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("Building"), "{}", again.stderr);
    // A plain build is not a scheduled run: it tries again.
    assert_eq!(fixture.run(&["build"]).status, 1);
}

#[test]
fn podman_builds_from_an_external_base_and_follows_it_when_it_moves() {
    builds_from_the_registry_and_rebuilds_exactly_the_dependents_when_the_base_moves("podman");
}

#[test]
fn docker_builds_from_a_mirror_of_docker_hub() {
    let registry = Registry::start();
    // A Docker (schema 2) manifest this time, as many registries still serve.
    let digest = serve_base(&registry, "v2s2");
    let fixture = Fixture::new(
        "docker",
        "library/base:1",
        &format!(
            "registries:\n  - {{url: {0}, mirror_of: docker.io}}\n  - {{url: {0}/acme}}\n",
            registry.host_port()
        ),
    );
    fixture.ok(&["build", "-j", "2"]);
    assert_eq!(fixture.read("child:1.0", "/child.txt"), "app\n");
    assert_eq!(
        fixture.label("app:1.0", BASE_DIGEST_LABEL).as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(fixture.ledger_bases("app:1.0")["library/base:1"], digest);
    // The mirror is not where images go: the other entry is; push finds what was built.
    let pushed = json(&fixture.ok(&["push", "--format", "json"]).stdout);
    assert_eq!(pushed["registry"], format!("{}/acme", registry.host_port()));
    assert_eq!(
        registry_digest(&format!("{}/acme/app:1.0", registry.host_port())),
        json(&fs_err::read_to_string(fixture.root().join("dist/ledger.json")).unwrap())["nodes"]["app:1.0 linux/amd64"]
            ["digest"]
    );
}

#[test]
fn a_missing_base_fails_only_the_nodes_built_on_it() {
    let registry = Registry::start();
    let from = format!("{}/library/nothere:1", registry.host_port());
    let fixture = Fixture::new("buildah", &from, "");
    let run = fixture.run(&["build", "--format", "json"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = json(&run.stdout);
    let result = |node: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .unwrap()["result"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(result("app:1.0"), "failed");
    assert_eq!(result("child:1.0"), "skipped");
    assert_eq!(result("solo:1"), "built");
    let error = report["nodes"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
        + &run.stderr;
    assert!(
        error.contains(&format!(
            "external base `{from}` was not found in {}",
            registry.host_port()
        )),
        "{error}"
    );

    // A private base and no credentials: said so, with the registry; nothing secret shown.
    let private = Registry::start_with_htpasswd("ci", "s3cret-canary");
    let locked = Fixture::new(
        "buildah",
        &format!("{}/library/base:1", private.host_port()),
        "",
    );
    let run = locked.run(&["build"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "{} refused access (no credentials are configured for it)",
            private.host_port()
        )),
        "{}",
        run.stderr
    );
    // With wrong ones: "credentials were sent", never their value.
    let wrong = Fixture::new(
        "buildah",
        &format!("{}/library/base:1", private.host_port()),
        &format!(
            "registries:\n  - {{url: {}, username: ci, password: wrong-canary}}\n",
            private.host_port()
        ),
    );
    let run = wrong.run(&["build"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("credentials were sent"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("wrong-canary") && !run.stdout.contains("wrong-canary"));

    // A registry nobody listens on: the same, with the address named.
    let dead = Fixture::new("buildah", "127.0.0.1:9/library/base:1", "");
    let run = dead.run(&["build"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot read it from 127.0.0.1:9"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Built solo:1"), "{}", run.stderr);
}
