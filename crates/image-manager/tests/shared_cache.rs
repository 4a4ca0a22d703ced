//! End-to-end tests of the shared layer cache: one project built on "machine A" (one builder
//! store) with the registry cache (`cache: {type: registry}`), then on "machine B" (a fresh store, another project
//! folder, the same registry) with `--force`. The `RUN` step writes the time it ran: B's image
//! has A's time (the step came from the cache) and B builds faster; with `--no-cache` B's
//! image has a new time. For buildah (its `--cache-from`/`--cache-to`) and Docker (the
//! engine's BuildKit with an inline cache; machine B is a Docker daemon `start dind` starts).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Run, succeeded, write};
use im_testkit::{Platform, Registry};

/// How long the `RUN` step takes: long enough that a cache hit is plainly faster.
const RUN_SECONDS: u64 = 4;

/// One "machine": a project folder and, for buildah, its own image store.
struct Machine {
    sandbox: common::Sandbox,
}

impl Machine {
    /// `run` names this test run in the `RUN` step: a daemon shared between runs (machine A's
    /// Docker) must not have the step in its own cache already.
    fn new(builder: &str, registry: &Registry, base: &str, run: &str) -> Self {
        let mut sandbox = common::Sandbox::new();
        sandbox.set("DOCKER_HOST", im_testkit::docker().host());
        sandbox.set("DOCKER_BUILDKIT", "1");
        let root = sandbox.root();
        write(
            &root.join(".image-manager.yml"),
            &format!(
                "{}platforms: [linux/amd64]\nregistry:\n  url: {}\n  insecure: true\ncache: {{type: registry}}\n",
                common::builder_settings(builder, &root.join(".storage")),
                registry.host_port()
            ),
        );
        write(&root.join("images/app/image.yml"), "tags: ['1']\n");
        write(
            &root.join("images/app/Dockerfile.jinja2"),
            &format!(
                "FROM {base}\nRUN echo {run} && sleep {RUN_SECONDS} && date +%s.%N > /stamp\n"
            ),
        );
        Machine { sandbox }
    }

    fn root(&self) -> &Path {
        self.sandbox.root()
    }

    fn ok(&self, args: &[&str]) -> Run {
        self.sandbox.ok(args)
    }

    /// Builds and returns how long it took and the time the `RUN` step wrote.
    fn build(&self, extra: &[&str]) -> (Duration, String, Run) {
        let mut args = vec!["-v", "build", "-j", "1"];
        args.extend(extra);
        let started = Instant::now();
        let run = self.ok(&args);
        (started.elapsed(), self.stamp(), run)
    }

    fn stamp(&self) -> String {
        let archive = self.root().join("dist/app/1/linux-amd64/image.tar");
        let image = im_oci::open_image(&archive, &im_oci::OpenOptions::default()).unwrap();
        let view = image.filesystem().unwrap();
        String::from_utf8(image.read_file(&view, "/stamp").unwrap()).unwrap()
    }
}

/// `image-manager ARGS` in `root` with `env` (a `None` value removes the variable).
fn cli(root: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut command = common::command(root);
    command.args(args);
    for (key, value) in env {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    Run::of(&command.output().unwrap())
}

/// Pushes the busybox base to `registry` and returns its reference: an external base, so
/// both machines start from the same image.
fn serve_base(registry: &Registry) -> String {
    let reference = format!("{}/library/base:1", registry.host_port());
    let archive = im_testkit::busybox_base_image(Platform::LinuxAmd64);
    let status = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            &format!("oci-archive:{}", archive.oci_archive().display()),
            &format!("docker://{reference}"),
        ])
        .status()
        .expect("skopeo runs (scripts/setup installs it)");
    assert!(status.success(), "skopeo copy to {reference}");
    reference
}

/// A's build, then B's with `--force` from the cache, then B's with `--no-cache`.
fn machine_b_reuses_machine_a_run_step(builder: &str, on_b: impl Fn(&mut Machine)) {
    let registry = Registry::start();
    let base = serve_base(&registry);
    let run = format!(
        "run-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let a = Machine::new(builder, &registry, &base, &run);
    let (cold, stamp_a, built) = a.build(&[]);
    assert!(
        built.stderr.contains("layer cache: registry"),
        "-v says which cache and why:\n{}",
        built.stderr
    );
    let mut b = Machine::new(builder, &registry, &base, &run);
    on_b(&mut b);
    let (cached, stamp_b, built) = b.build(&["--force"]);
    assert_eq!(
        stamp_b, stamp_a,
        "B's RUN step came from A's cache:\n{}",
        built.stderr
    );
    assert!(
        cached + Duration::from_secs(RUN_SECONDS - 1) < cold,
        "B ({cached:?}) is faster than A ({cold:?})"
    );
    let (_, fresh, built) = b.build(&["--force", "--no-cache"]);
    assert_ne!(fresh, stamp_a, "--no-cache runs the step");
    assert!(
        built.stderr.contains("no layer cache: --no-cache"),
        "{}",
        built.stderr
    );
    eprintln!("{builder}: cold {cold:?}, from the cache {cached:?}");
}

#[test]
fn buildah_machines_share_run_steps_through_the_registry() {
    machine_b_reuses_machine_a_run_step("buildah", |_| {});
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Stops the dind a test started, whatever happened: through `stop` while its project is
/// there, else by the pid `start` reported (a project folder is dropped before this guard when
/// a test fails).
struct Dind {
    addr: String,
    root: std::cell::RefCell<Option<PathBuf>>,
    pid: std::cell::Cell<Option<i32>>,
}

impl Dind {
    fn new() -> Self {
        Dind {
            addr: format!("127.0.0.1:{}", free_port()),
            root: std::cell::RefCell::new(None),
            pid: std::cell::Cell::new(None),
        }
    }

    /// Records what `start dind --format json` (or `status`) said.
    fn started(&self, root: &Path, status: &serde_json::Value) {
        *self.root.borrow_mut() = Some(root.to_owned());
        self.pid.set(
            status[0]["pid"]
                .as_i64()
                .and_then(|pid| i32::try_from(pid).ok()),
        );
    }
}

impl Drop for Dind {
    fn drop(&mut self) {
        if let Some(root) = self.root.borrow().as_ref().filter(|root| root.exists()) {
            cli(
                root,
                &["stop", "dind"],
                &[("IMAGE_MANAGER_DIND_ADDR", Some(self.addr.as_str()))],
            );
        }
        if let Some(pid) = self.pid.get() {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

#[test]
fn docker_machines_share_run_steps_through_an_inline_cache() {
    let dind = Dind::new();
    machine_b_reuses_machine_a_run_step("docker", |b| {
        // Machine B's Docker: a fresh daemon with its own data root, started by `start dind`.
        let started = cli(
            b.root(),
            &["start", "dind", "--format", "json"],
            &[
                ("IMAGE_MANAGER_DIND_ADDR", Some(dind.addr.as_str())),
                ("DOCKER_HOST", None),
            ],
        );
        let started = succeeded(started, &["start", "dind"]);
        let status = common::json(&started.stdout);
        dind.started(b.root(), &status);
        assert_eq!(status[0]["running"], true, "{}", started.stdout);
        b.sandbox.set("DOCKER_HOST", format!("tcp://{}", dind.addr));
    });
}

#[test]
fn without_docker_host_test_runs_command_tests_in_dind() {
    let dir = tempfile::tempdir().unwrap();
    let dind = Dind::new();
    let root = dir.path();
    write(
        &root.join(".image-manager.yml"),
        "builder: docker\nplatforms: [linux/amd64]\n",
    );
    im_testkit::write_busybox_base_definition(root, &[Platform::LinuxAmd64]);
    write(
        &root.join("images/base/test.yml"),
        "schemaVersion: 2.0.0\ncommandTests:\n  - name: busybox runs\n    command: echo\n    args: [hi]\n    expectedOutput: ['hi']\n",
    );
    let built = cli(
        root,
        &["build", "-j", "1"],
        &[
            ("SOURCE_DATE_EPOCH", Some("1700000000")),
            ("DOCKER_HOST", Some(im_testkit::docker().host())),
            ("DOCKER_BUILDKIT", Some("0")),
        ],
    );
    succeeded(built, &["build"]);
    *dind.root.borrow_mut() = Some(root.to_owned());
    let dind_env = [
        ("IMAGE_MANAGER_DIND_ADDR", Some(dind.addr.as_str())),
        ("DOCKER_HOST", None),
    ];
    let tested = succeeded(
        cli(root, &["test", "--driver", "docker"], &dind_env),
        &["test", "--driver", "docker"],
    );
    assert!(
        tested
            .stderr
            .contains(&format!("Started dind on {} (pid", dind.addr))
            && tested.stderr.contains("an isolated Docker for the tests"),
        "{}",
        tested.stderr
    );
    let status =
        common::json(&cli(root, &["status", "dind", "--format", "json"], &dind_env).stdout);
    dind.started(root, &status);
    assert_eq!(status[0]["running"], true);
    assert_eq!(status[0]["managed"], true);
}

#[test]
fn a_cache_the_builder_cannot_write_is_one_warning_and_the_build_succeeds() {
    // The registry answers but wants a login buildah does not have: pushing the cache fails.
    let registry = Registry::start_with_htpasswd("ci", "canary-Pw-51d0");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join(".image-manager.yml"),
        &format!(
            "{}platforms: [linux/amd64]\ncache:\n  ref: {}/cache\n",
            common::builder_settings("buildah", &root.join(".storage")),
            registry.host_port()
        ),
    );
    im_testkit::write_busybox_base_definition(root, &[Platform::LinuxAmd64]);
    write(&root.join("images/app/image.yml"), "tags: ['1']\n");
    write(
        &root.join("images/app/Dockerfile.jinja2"),
        "FROM {{ \"base\" | resolve_base_image }}\nRUN echo app > /app.txt\n",
    );
    let built = succeeded(
        cli(
            root,
            &["build", "-j", "1"],
            &[("SOURCE_DATE_EPOCH", Some("1700000000"))],
        ),
        &["build"],
    );
    assert_eq!(
        built.stderr.matches("failed, building without it").count(),
        1,
        "warned once:\n{}",
        built.stderr
    );
    assert!(
        built.stderr.contains("Finished 2 built"),
        "{}",
        built.stderr
    );
}
