//! End-to-end tests of `image-manager build` with real builders: buildah (with a storage of
//! the test's own) and the Docker engine started by `scripts/setup`.
//!
//! The fixture is a chain base → app (two tags) → variant, plus an independent image, for
//! linux/amd64 and linux/arm64 (arm64 runs under qemu). The base is made locally: `FROM
//! scratch` plus the static busybox of each architecture; nothing is pulled.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Run, json, write};
use im_testkit::Platform;

struct Fixture {
    dir: tempfile::TempDir,
    builder: &'static str,
}

impl Fixture {
    /// The chain fixture, built with `builder` (`buildah` or `docker`).
    fn new(builder: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let storage = root.join(".storage");
        let settings = match builder {
            "buildah" => format!(
                "builder:\n  kind: buildah\n  storage_driver: vfs\n  root: {}\n  runroot: {}\n",
                storage.join("root").display(),
                storage.join("runroot").display()
            ),
            other => format!("builder: {other}\n"),
        };
        write(
            &root.join(".image-manager.yml"),
            &format!("{settings}labels:\n  vendor: ACME\n"),
        );
        im_testkit::write_busybox_base_definition(root, &Platform::ALL);
        write(
            &root.join("images/app/image.yml"),
            "description: the app\ntags: [1.0.0, 1.1.0]\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        );
        write(
            &root.join("images/app/Dockerfile.jinja2"),
            "FROM {{ \"base\" | resolve_base_image }}\nRUN echo \"app {{ tag.name }}\" > /app.txt && uname -m > /arch.txt\n",
        );
        write(&root.join("images/app/rootfs/etc/app.conf"), "setting=1\n");
        write(
            &root.join("images/app/dev/Dockerfile.jinja2"),
            "FROM {{ base_image }}\nRUN cat /app.txt > /dev.txt\n",
        );
        write(&root.join("images/app/dev/rootfs/etc/dev.conf"), "dev=1\n");
        write(
            &root.join("images/solo/image.yml"),
            "tags: ['1']\nplatforms: [linux/amd64]\n",
        );
        write(
            &root.join("images/solo/Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\n",
        );
        write(&root.join("images/solo/rootfs/hello"), "hello\n");
        Self { dir, builder }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = common::command(self.root());
        command.args(args).env("SOURCE_DATE_EPOCH", "1700000000");
        if self.builder == "docker" {
            let docker = im_testkit::docker();
            command.env("DOCKER_HOST", docker.host());
        }
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(&self.command(args).output().unwrap())
    }

    fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.status, 0,
            "image-manager {args:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run
    }

    fn dist(&self, relative: &str) -> PathBuf {
        self.root().join("dist").join(relative)
    }
}

/// `(node, platform)` pairs of a `plan --format json` that will be built.
fn to_build(plan: &serde_json::Value) -> Vec<String> {
    plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["action"] == "build")
        .map(|n| {
            format!(
                "{} {}",
                n["id"]["image"].as_str().unwrap().to_owned()
                    + ":"
                    + n["id"]["tag"].as_str().unwrap(),
                n["platform"].as_str().unwrap()
            )
        })
        .collect()
}

fn read_file(archive: &Path, platform: Option<&str>, path: &str) -> String {
    let options = im_oci::OpenOptions {
        platform: platform.map(|p| p.parse().unwrap()),
        ..im_oci::OpenOptions::default()
    };
    let image = im_oci::open_image(archive, &options)
        .unwrap_or_else(|e| panic!("{}: {e}", archive.display()));
    let view = image.filesystem().unwrap();
    String::from_utf8(
        image
            .read_file(&view, path)
            .unwrap_or_else(|e| panic!("{path} in {}: {e}", archive.display())),
    )
    .unwrap()
}

fn labels(archive: &Path) -> std::collections::HashMap<String, String> {
    let image = im_oci::open_image(archive, &im_oci::OpenOptions::default()).unwrap();
    image
        .config()
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
}

#[test]
fn buildah_builds_the_chain_for_both_platforms_then_only_what_changed() {
    let fixture = Fixture::new("buildah");
    let first = fixture.ok(&["build", "-j", "2"]);
    assert!(
        first
            .stderr
            .contains("Finished 11 built, 0 up to date, 0 failed, 0 skipped"),
        "{}",
        first.stderr
    );

    // Order: the base finished before anything built on it started.
    let position = |needle: &str| {
        first
            .stderr
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in {}", first.stderr))
    };
    assert!(position("Built base:1 (linux/amd64)") < position("Building app:1.0.0 (linux/amd64)"));
    assert!(
        position("Built app:1.0.0 (linux/arm64)")
            < position("Building app:1.0.0-dev (linux/arm64)")
    );

    // Contents: each platform's image has its own architecture and the parent's files.
    let arm = fixture.dist("app/1.0.0-dev/linux-arm64/image.tar");
    assert_eq!(read_file(&arm, None, "/arch.txt"), "aarch64\n");
    assert_eq!(read_file(&arm, None, "/dev.txt"), "app 1.0.0\n");
    assert_eq!(read_file(&arm, None, "/etc/dev.conf"), "dev=1\n");
    assert_eq!(
        read_file(
            &fixture.dist("app/1.1.0/linux-amd64/image.tar"),
            None,
            "/arch.txt"
        ),
        "x86_64\n"
    );
    assert_eq!(
        read_file(
            &fixture.dist("solo/1/linux-amd64/image.tar"),
            None,
            "/hello"
        ),
        "hello\n"
    );

    // Labels.
    let labels = labels(&fixture.dist("app/1.1.0/linux-amd64/image.tar"));
    assert_eq!(labels["org.opencontainers.image.version"], "1.1.0");
    assert_eq!(labels["org.opencontainers.image.title"], "app");
    assert_eq!(labels["org.opencontainers.image.description"], "the app");
    assert_eq!(labels["org.opencontainers.image.vendor"], "ACME");
    assert_eq!(labels["org.opencontainers.image.base.name"], "base:1");
    assert!(labels["org.opencontainers.image.base.digest"].starts_with("sha256:"));
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert!(labels["dev.image-manager.build-key"].starts_with("sha256:"));

    // The multi-platform layout lists both platforms, each readable by platform.
    let layout = fixture.dist("app/1.0.0/image.tar");
    assert_eq!(
        read_file(&layout, Some("linux/arm64"), "/arch.txt"),
        "aarch64\n"
    );
    assert_eq!(
        read_file(&layout, Some("linux/amd64"), "/arch.txt"),
        "x86_64\n"
    );
    assert!(
        !fixture.dist("solo/1/image.tar").exists(),
        "single-platform tags get no index"
    );

    // A second run builds nothing.
    let second = fixture.ok(&["build"]);
    assert!(
        second.stderr.contains("Finished 0 built, 11 up to date"),
        "{}",
        second.stderr
    );

    // Touching the variant's rootfs rebuilds exactly the variant tags, for both platforms.
    write(
        &fixture.root().join("images/app/dev/rootfs/etc/dev.conf"),
        "dev=2\n",
    );
    let plan = json(&fixture.ok(&["plan", "--format", "json"]).stdout);
    let mut planned = to_build(&plan);
    planned.sort();
    assert_eq!(
        planned,
        [
            "app:1.0.0-dev linux/amd64",
            "app:1.0.0-dev linux/arm64",
            "app:1.1.0-dev linux/amd64",
            "app:1.1.0-dev linux/arm64"
        ]
    );
    // Each node to build shows its labels and the builder's exact commands; a parent that is
    // up to date lends its recorded digest to the base label.
    let nodes = plan["nodes"].as_array().unwrap();
    let step_of = |tag: &str, platform: &str| {
        nodes
            .iter()
            .find(|n| n["id"]["tag"] == tag && n["platform"] == platform)
            .unwrap_or_else(|| panic!("{tag} {platform}: {plan}"))
    };
    let dev = step_of("1.0.0-dev", "linux/arm64");
    assert_eq!(
        dev["step"]["labels"]["dev.image-manager.build-key"],
        dev["key"]
    );
    let argv: Vec<String> = dev["step"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["argv"].as_array().unwrap().iter())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert!(argv.iter().any(|a| a.ends_with("buildah")), "{argv:?}");
    assert!(argv.contains(&"linux/arm64".to_owned()), "{argv:?}");
    let key_label = format!(
        "dev.image-manager.build-key={}",
        dev["key"].as_str().unwrap()
    );
    assert!(argv.contains(&key_label), "{argv:?}");
    let ledger = json(&fs_err::read_to_string(fixture.dist("ledger.json")).unwrap());
    let parent = &ledger["nodes"]["app:1.0.0 linux/arm64"]["digest"];
    assert_eq!(
        dev["step"]["labels"]["org.opencontainers.image.base.digest"], *parent,
        "{dev}"
    );
    assert!(step_of("1.0.0", "linux/arm64").get("step").is_none());
    let why = fixture.ok(&["why", "app:1.0.0-dev", "--platform", "linux/arm64"]);
    assert!(
        why.stdout
            .contains("context file rootfs/etc/dev.conf changed"),
        "{}",
        why.stdout
    );
    let third = fixture.ok(&["build"]);
    assert!(
        third.stderr.contains("Finished 4 built, 7 up to date"),
        "{}",
        third.stderr
    );
    assert_eq!(
        read_file(
            &fixture.dist("app/1.1.0-dev/linux-amd64/image.tar"),
            None,
            "/etc/dev.conf"
        ),
        "dev=2\n"
    );

    // Changing the base rebuilds every descendant.
    write(
        &fixture.root().join("images/base/Dockerfile.jinja2"),
        "FROM scratch\nARG TARGETARCH\nCOPY rootfs/busybox-${TARGETARCH} /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV CHANGED=1\n",
    );
    let plan = json(&fixture.ok(&["plan", "--format", "json"]).stdout);
    assert_eq!(to_build(&plan).len(), 10, "everything but solo: {plan}");
}

#[test]
fn a_failing_node_skips_only_its_dependents() {
    let fixture = Fixture::new("buildah");
    write(
        &fixture.root().join("images/app/Dockerfile.jinja2"),
        "FROM {{ \"base\" | resolve_base_image }}\n{% if tag.name == \"1.1.0\" %}RUN echo about to fail && exit 3\n{% endif %}RUN echo ok > /app.txt\n",
    );
    let run = fixture.run(&["build", "--platform", "linux/amd64", "--format", "json"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = json(&run.stdout);
    let result = |node: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .unwrap_or_else(|| panic!("{node}"))["result"]
            .clone()
    };
    assert_eq!(result("app:1.1.0"), "failed");
    assert_eq!(result("app:1.1.0-dev"), "skipped");
    assert_eq!(result("app:1.0.0"), "built");
    assert_eq!(result("app:1.0.0-dev"), "built");
    assert_eq!(result("solo:1"), "built");
    assert!(
        run.stderr.contains("app:1.1.0 (linux/amd64) failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("build.log"),
        "the error names the log: {}",
        run.stderr
    );
    let log = fs_err::read_to_string(fixture.dist("app/1.1.0/linux-amd64/build.log")).unwrap();
    assert!(log.contains("about to fail"), "{log}");
    assert!(!fixture.dist("app/1.1.0/linux-amd64/image.tar").exists());
    // The ledger knows the built nodes, not the failed one: a rerun builds only those two.
    let plan = json(
        &fixture
            .ok(&["plan", "--platform", "linux/amd64", "--format", "json"])
            .stdout,
    );
    assert_eq!(
        to_build(&plan),
        ["app:1.1.0 linux/amd64", "app:1.1.0-dev linux/amd64"]
    );
}

#[test]
fn independent_images_build_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let storage = root.join(".storage");
    write(
        &root.join(".image-manager.yml"),
        &format!(
            "builder:\n  kind: buildah\n  storage_driver: vfs\n  root: {}\n  runroot: {}\nplatforms: [linux/amd64]\n",
            storage.join("r").display(),
            storage.join("rr").display()
        ),
    );
    for name in ["left", "right"] {
        fs_err::create_dir_all(root.join(format!("images/{name}/rootfs/bin"))).unwrap();
        fs_err::copy(
            im_testkit::busybox_binary(Platform::LinuxAmd64),
            root.join(format!("images/{name}/rootfs/bin/busybox")),
        )
        .unwrap();
        write(
            &root.join(format!("images/{name}/image.yml")),
            "tags: ['1']\n",
        );
        write(
            &root.join(format!("images/{name}/Dockerfile")),
            "FROM scratch\nCOPY rootfs/ /\nRUN [\"/bin/busybox\", \"sleep\", \"2\"]\n",
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(root)
        .args(["build", "-j", "2", "--format", "json"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // Both started before either finished.
    let first_built = stderr.find("Built ").unwrap();
    assert!(
        stderr[..first_built].contains("Building left:1")
            && stderr[..first_built].contains("Building right:1"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_the_builder_and_leaves_no_partial_output() {
    let fixture = Fixture::new("buildah");
    let sleep = unique_sleep();
    let (mut child, before) = start_solo_build_until(&fixture, &sleep);
    std::thread::sleep(Duration::from_millis(500));
    let during = store_contents(&fixture.root().join(".storage"));
    assert_ne!(
        during, before,
        "the build works in the store (so the check below can fail)"
    );
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopped = Instant::now();
    let status = child.wait().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "took {:?} to stop",
        stopped.elapsed()
    );
    assert_eq!(status.code(), Some(130));
    assert!(
        !fixture.dist("solo/1/linux-amd64/image.tar").exists(),
        "no partial output"
    );
    let leftovers: Vec<_> = walk(&fixture.dist("solo/1"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("image.tar"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let ledger = json(&fs_err::read_to_string(fixture.dist("ledger.json")).unwrap());
    assert!(ledger["nodes"].get("solo:1 linux/amd64").is_none());
    assert!(
        ledger["nodes"].get("base:1 linux/amd64").is_some(),
        "the finished parent is recorded"
    );
    // No builder process is left behind: only this test's own sleep is looked for (other
    // tests run sleeps at the same time).
    assert!(
        processes_running(&sleep).is_empty(),
        "{sleep} is still running"
    );
    let after = store_contents(&fixture.root().join(".storage"));
    assert_eq!(after, before, "the builder's store is left as it was found");
}

/// Builds the base (so the store holds what a user's store would before the build), then
/// starts building `solo` with `RUN <sleep>` and returns once the build runs that step,
/// with the store's contents from before it started.
fn start_solo_build_until(fixture: &Fixture, sleep: &str) -> (std::process::Child, String) {
    let parent = fixture
        .command(&["build", "base", "--platform", "linux/amd64"])
        .output()
        .unwrap();
    assert!(
        parent.status.success(),
        "{}",
        String::from_utf8_lossy(&parent.stderr)
    );
    let before = store_contents(&fixture.root().join(".storage"));
    write(
        &fixture.root().join("images/solo/Dockerfile"),
        &format!("FROM base:1\nRUN {sleep}\n"),
    );
    (spawn_solo_build_until(fixture, sleep), before)
}

/// Starts building `solo` and returns once its build log mentions `text`.
fn spawn_solo_build_until(fixture: &Fixture, text: &str) -> std::process::Child {
    let child = fixture
        .command(&["build", "solo", "--platform", "linux/amd64"])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let solo_log = fixture.dist("solo/1/linux-amd64/build.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !fs_err::read_to_string(&solo_log).is_ok_and(|log| log.contains(text)) {
        assert!(
            Instant::now() < deadline,
            "the solo build never reached its RUN step"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Kills image-manager with no chance to clean up, and waits until the builder it left
/// running alone for `solo` has ended.
fn kill_and_wait_for_the_orphaned_builder(fixture: &Fixture, mut child: std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
    let work_dir = fixture.dist("solo/1/linux-amd64/.im-build");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !processes_mentioning(&work_dir.display().to_string()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the orphaned builder never ended"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A `sleep` command no other test runs: its duration is unique to this test process.
fn unique_sleep() -> String {
    format!("sleep {}", 1_000_000 + std::process::id())
}

/// The command lines of running processes that are exactly `args`.
fn processes_running(args: &str) -> Vec<String> {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| *line == args || line.ends_with(&format!(" {args}")))
        .map(str::to_owned)
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs_err::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            }
            out.push(path);
        }
    }
    out
}

#[test]
fn docker_engine_builds_the_chain_for_both_platforms() {
    let fixture = Fixture::new("docker");
    let run = fixture.ok(&["build", "-j", "2"]);
    assert!(run.stderr.contains("Finished 11 built"), "{}", run.stderr);
    assert_eq!(
        read_file(
            &fixture.dist("app/1.0.0-dev/linux-arm64/image.tar"),
            None,
            "/arch.txt"
        ),
        "aarch64\n"
    );
    assert_eq!(
        read_file(
            &fixture.dist("app/1.0.0-dev/linux-amd64/image.tar"),
            None,
            "/dev.txt"
        ),
        "app 1.0.0\n"
    );
    assert_eq!(
        labels(&fixture.dist("app/1.0.0/linux-amd64/image.tar"))["org.opencontainers.image.ref.name"],
        "app:1.0.0"
    );
    let layout = fixture.dist("app/1.1.0/image.tar");
    assert_eq!(
        read_file(&layout, Some("linux/arm64"), "/app.txt"),
        "app 1.1.0\n"
    );
    let again = fixture.ok(&["build"]);
    assert!(
        again.stderr.contains("Finished 0 built, 11 up to date"),
        "{}",
        again.stderr
    );
}

#[test]
fn a_second_build_waits_for_the_first() {
    let fixture = Fixture::new("buildah");
    write(
        &fixture.root().join("images/solo/Dockerfile"),
        "FROM base:1\nRUN sleep 3\n",
    );
    let mut first = fixture
        .command(&["build", "solo", "--platform", "linux/amd64"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = fixture.dist(".lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fixture.dist("solo/1/Dockerfile").exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(lock.exists());
    let second = fixture.run(&["build", "solo", "--platform", "linux/amd64"]);
    assert!(first.wait().unwrap().success());
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert!(
        second.stderr.contains(
            "Waiting for another image-manager run writing this project's dist/ to finish"
        ),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("0 built"),
        "the second run found the first one's work: {}",
        second.stderr
    );
}

#[test]
fn forced_rebuilds_of_unchanged_inputs_give_the_same_digest() {
    let fixture = Fixture::new("buildah");
    let digest = |fixture: &Fixture| {
        let ledger = json(&fs_err::read_to_string(fixture.dist("ledger.json")).unwrap());
        ledger["nodes"]["app:1.0.0 linux/amd64"]["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    fixture.ok(&["build", "app:1.0.0", "--platform", "linux/amd64"]);
    let first = digest(&fixture);
    let forced = fixture.ok(&["build", "app:1.0.0", "--platform", "linux/amd64", "--force"]);
    assert!(
        forced.stderr.contains("Finished 1 built"),
        "only the target is forced: {}",
        forced.stderr
    );
    assert_eq!(
        digest(&fixture),
        first,
        "SOURCE_DATE_EPOCH makes the build reproducible"
    );
}

#[test]
fn test_runs_each_tags_config_against_its_built_images() {
    let fixture = Fixture::new("buildah");
    write(
        &fixture.root().join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\nfileContentTests:\n  - name: app file\n    path: /app.txt\n    expectedContents: [\"^app {{ tag.name }}\\n$\"]\n\
         fileExistenceTests:\n  - name: busybox\n    path: /bin/busybox\n    shouldExist: true\n    permissions: \"-rwxr-xr-x\"\n\
         commandTests:\n  - name: arch\n    command: uname\n    args: [\"-m\"]\n    expectedOutput: [\"^(x86_64|aarch64)\\n$\"]\n\
         metadataTest:\n  labels:\n    - key: org.opencontainers.image.version\n      value: \"{{ tag.name }}\"\n",
    );
    // Not built yet: a clear error naming the command that fixes it.
    let early = fixture.run(&["test", "app:1.0.0", "--platform", "linux/amd64"]);
    assert_eq!(early.status, 2, "{}", early.stderr);
    assert!(
        early
            .stderr
            .contains("run `image-manager build app:1.0.0 --platform linux/amd64` first"),
        "{}",
        early.stderr
    );

    fixture.ok(&["build", "app:1.0.0"]);
    let junit_path = fixture.root().join("reports/junit.xml");
    let run = fixture.ok(&[
        "test",
        "app:1.0.0",
        "--output",
        &format!("junit:{}", junit_path.display()),
    ]);
    assert!(
        run.stderr
            .contains("Passed app:1.0.0 (linux/amd64): 4 passed, 0 failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Passed app:1.0.0 (linux/arm64): 4 passed, 0 failed"),
        "the arm64 command test ran under qemu: {}",
        run.stderr
    );
    let junit = fs_err::read_to_string(&junit_path).unwrap();
    assert!(
        junit.contains("<testsuite") && junit.contains("failures=\"0\""),
        "{junit}"
    );
    assert!(
        junit.contains("<testsuite name=\"app:1.0.0 (linux/arm64)\"")
            && !junit.contains("(linux/arm64) (linux/arm64)"),
        "one platform per suite name: {junit}"
    );
    assert!(
        junit.contains("<testcase name=\"Metadata Test\""),
        "container-structure-test's name: {junit}"
    );

    // A failing expectation: exit 1, and the report says what was expected and found.
    write(
        &fixture.root().join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\nfileContentTests:\n  - name: app file\n    path: /app.txt\n    expectedContents: [\"^something else$\"]\n",
    );
    fixture.ok(&["generate"]);
    let failed = fixture.run(&[
        "test",
        "app:1.0.0",
        "--platform",
        "linux/amd64",
        "--format",
        "json",
    ]);
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    let report = json(&failed.stdout);
    assert_eq!(report["totals"]["failed"], 1, "{report}");
    assert_eq!(report["images"][0]["image"], "app:1.0.0", "{report}");
    assert_eq!(report["images"][0]["platform"], "linux/amd64", "{report}");
    let result = &report["images"][0]["results"][0];
    assert_eq!(result["pass"], false);
    assert!(
        result["failures"][0]["expected"]
            .as_str()
            .unwrap()
            .contains("something else"),
        "{result}"
    );

    // One image and one config, as container-structure-test takes them.
    write(
        &fixture.root().join("direct.yml"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: hello\n    path: /hello\n    shouldExist: true\n",
    );
    fixture.ok(&["build", "solo"]);
    let config = fixture.root().join("direct.yml");
    let image = fixture.dist("solo/1/linux-amd64/image.tar");
    let direct = fixture.ok(&[
        "test",
        "--config",
        config.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
    ]);
    assert!(
        direct.stderr.contains("1 passed, 0 failed"),
        "{}",
        direct.stderr
    );
}

/// Every image and container in the buildah/podman store at `storage` (their shared store),
/// as `ID names` lines.
fn store_contents(storage: &Path) -> String {
    let images = im_testkit::run(im_testkit::buildah_cmd(storage).args([
        "images",
        "--all",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Name}}:{{.Tag}}",
    ]));
    let containers = im_testkit::run(im_testkit::buildah_cmd(storage).args([
        "containers",
        "--all",
        "--format",
        "{{.ContainerID}} {{.ContainerName}}",
    ]));
    format!("images:\n{images}containers:\n{containers}")
}

/// podman's settings for the test VMs: runc, no systemd, open-file and process limits root
/// may set (see `im_testkit::podman_cmd`); `runtime` replaces runc to break podman on purpose.
fn podman_conf(dir: &Path, runtime: Option<&str>) -> PathBuf {
    let path = dir.join(format!(
        "containers-{}.conf",
        runtime.map_or("ok", |_| "broken")
    ));
    let engine = match runtime {
        Some(program) => {
            format!("runtime = \"broken\"\n[engine.runtimes]\nbroken = [\"{program}\"]\n")
        }
        None => "runtime = \"runc\"\n".to_owned(),
    };
    write(
        &path,
        &format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n{engine}"
        ),
    );
    path
}

#[test]
fn test_leaves_the_builders_store_as_it_found_it() {
    let fixture = Fixture::new("buildah");
    write(
        &fixture.root().join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: app file\n    command: cat\n    args: [/app.txt]\n    expectedOutput: [\"^app {{ tag.name }}\\n$\"]\n",
    );
    fixture.ok(&[
        "build",
        "app:1.0.0",
        "app:1.1.0",
        "--platform",
        "linux/amd64",
    ]);
    let storage = fixture.root().join(".storage");
    // The user's own image under the name the proof of concept would have loaded over.
    im_testkit::busybox_base_image(Platform::LinuxAmd64)
        .load_into_buildah(&storage, "localhost/app:1.0.0");
    let before = store_contents(&storage);
    assert!(before.contains("localhost/app:1.0.0"), "{before}");

    let buildah = fixture.ok(&[
        "test",
        "app:1.0.0",
        "app:1.1.0",
        "--platform",
        "linux/amd64",
        "--driver",
        "buildah",
        "-j",
        "2",
    ]);
    assert!(
        buildah.stderr.contains("1 passed, 0 failed"),
        "{}",
        buildah.stderr
    );
    assert_eq!(
        store_contents(&storage),
        before,
        "buildah: {}",
        buildah.stderr
    );

    let confs = tempfile::tempdir().unwrap();
    let podman = fixture
        .command(&[
            "test",
            "app:1.0.0",
            "app:1.1.0",
            "--platform",
            "linux/amd64",
            "--driver",
            "podman",
            "-j",
            "2",
        ])
        .env("CONTAINERS_CONF", podman_conf(confs.path(), None))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&podman.stderr);
    assert_eq!(podman.status.code(), Some(0), "{stderr}");
    assert_eq!(store_contents(&storage), before, "podman: {stderr}");

    // A podman that cannot start containers: an error (exit 2) saying so, not failed tests.
    let broken = fixture
        .command(&[
            "test",
            "app:1.0.0",
            "--platform",
            "linux/amd64",
            "--driver",
            "podman",
        ])
        .env(
            "CONTAINERS_CONF",
            podman_conf(confs.path(), Some("/bin/false")),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert_eq!(broken.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("runtime unusable: podman cannot run containers here"),
        "{stderr}"
    );
    assert!(!stderr.contains("FAIL"), "no test is blamed: {stderr}");
    assert_eq!(store_contents(&storage), before, "broken podman: {stderr}");
}

#[test]
fn a_command_test_over_its_time_limit_fails_naming_it() {
    let fixture = Fixture::new("buildah");
    write(
        &fixture.root().join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: sleeps too long\n    command: sleep\n    args: ['600']\n",
    );
    fixture.ok(&["build", "app:1.0.0", "--platform", "linux/amd64"]);
    let started = Instant::now();
    let run = fixture.run(&[
        "test",
        "app:1.0.0",
        "--platform",
        "linux/amd64",
        "--timeout",
        "3",
        "--format",
        "json",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "killed at its limit"
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = json(&run.stdout);
    let result = &report["images"][0]["results"][0];
    assert_eq!(result["name"], "sleeps too long");
    let message = result["failures"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("Test 'sleeps too long' did not finish within its time limit of 3s"),
        "{message}"
    );
}

#[test]
fn native_passes_over_a_runtime_that_cannot_run_containers_with_a_warning() {
    let fixture = Fixture::new("buildah");
    write(
        &fixture.root().join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: app file\n    command: cat\n    args: [/app.txt]\n    expectedOutput: [\"^app {{ tag.name }}\\n$\"]\n",
    );
    fixture.ok(&["build", "app:1.0.0", "--platform", "linux/amd64"]);
    // podman is now the configured builder, and nothing says which builder made the image:
    // podman is tried first, cannot start a container, and Docker runs the tests instead.
    let settings = fs_err::read_to_string(fixture.root().join(".image-manager.yml")).unwrap();
    write(
        &fixture.root().join(".image-manager.yml"),
        &settings.replace("kind: buildah", "kind: podman"),
    );
    fs_err::remove_file(fixture.dist("ledger.json")).unwrap();
    let confs = tempfile::tempdir().unwrap();
    let run = fixture
        .command(&["test", "app:1.0.0", "--platform", "linux/amd64"])
        .env(
            "CONTAINERS_CONF",
            podman_conf(confs.path(), Some("/bin/false")),
        )
        .env("DOCKER_HOST", im_testkit::docker().host())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: podman cannot run containers here: command tests run in docker"),
        "{stderr}"
    );
    assert!(stderr.contains("1 passed, 0 failed"), "{stderr}");
}

#[test]
fn a_killed_build_leaves_state_that_the_next_build_removes() {
    let fixture = Fixture::new("buildah");
    // A short sleep no other test runs: the orphaned builder finishes by itself.
    let sleep = format!("sleep 3.{}", std::process::id());
    let (child, before) = start_solo_build_until(&fixture, &sleep);
    kill_and_wait_for_the_orphaned_builder(&fixture, child);
    assert_ne!(
        store_contents(&fixture.root().join(".storage")),
        before,
        "the killed run left state in the store (so the check below can fail)"
    );
    // The next build (of something quick) removes what the dead run left.
    write(
        &fixture.root().join("images/solo/Dockerfile"),
        "FROM base:1\nRUN true\n",
    );
    let next = fixture
        .command(&["build", "solo", "--platform", "linux/amd64"])
        .output()
        .unwrap();
    assert!(
        next.status.success(),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(store_contents(&fixture.root().join(".storage")), before);
}

#[test]
fn a_build_killed_in_a_from_scratch_step_leaves_a_working_container_the_next_build_removes() {
    let fixture = Fixture::new("buildah");
    let storage = fixture.root().join(".storage");
    // The user's own scratch container, made before: it takes buildah's `working-container`
    // name, so the build's container is `working-container-1`, and it must survive.
    let users = im_testkit::run(im_testkit::buildah_cmd(&storage).args(["from", "scratch"]));
    assert_eq!(users.trim(), "working-container");
    let before = store_contents(&storage);
    // A short sleep no other test runs: the orphaned builder reaches its next output line
    // (and dies writing it to the killed run's pipe) soon after.
    let sleep = format!("3.{}", std::process::id());
    let solo = fixture.root().join("images/solo");
    fs_err::create_dir_all(solo.join("rootfs/bin")).unwrap();
    fs_err::copy(
        im_testkit::busybox_binary(Platform::LinuxAmd64),
        solo.join("rootfs/bin/busybox"),
    )
    .unwrap();
    write(
        &solo.join("Dockerfile"),
        &format!("FROM scratch\nCOPY rootfs/ /\nRUN [\"/bin/busybox\", \"sleep\", \"{sleep}\"]\n"),
    );
    let child = spawn_solo_build_until(&fixture, &sleep);
    kill_and_wait_for_the_orphaned_builder(&fixture, child);
    let left = store_contents(&storage);
    assert!(
        left.contains("working-container-"),
        "the killed run left its scratch working container (so the check below can fail):\n{left}"
    );
    // Another scratch container of the user's, made after the killed run's.
    let late = im_testkit::run(im_testkit::buildah_cmd(&storage).args(["from", "scratch"]));
    // The next build (of something quick) removes what the dead run left, and only that.
    write(&solo.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n");
    fixture.ok(&["build", "solo", "--platform", "linux/amd64"]);
    // Fails if the build removed the user's late container.
    im_testkit::run(im_testkit::buildah_cmd(&storage).args(["rm", late.trim()]));
    assert_eq!(
        store_contents(&storage),
        before,
        "the user's first container is kept"
    );
}

/// The command lines of running processes that mention `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    let ps = Command::new("ps").args(["-eo", "args="]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|line| line.contains(text))
        .map(str::to_owned)
        .collect()
}
