//! End-to-end tests of how `build` drives the Docker Engine (the private dockerd of
//! `scripts/setup`): which `docker` client it runs (the first in `PATH`), how it builds with
//! it (buildx, the engine's BuildKit or the classic builder, from what the client can do,
//! `DOCKER_BUILDKIT` and `builder: {kind: docker, buildkit: ...}`), and that the classic
//! builder builds what Docker 20.10's BuildKit cannot: `USER 0` then `RUN` in an image built
//! `FROM scratch`.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, succeeded, write};
use im_testkit::Platform;

/// The client in `/usr/local/bin`: newer, without buildx, so it refuses BuildKit builds.
const NEWER_CLIENT: &str = "/usr/local/bin/docker";

/// A base made of busybox `FROM scratch`, `app:1.0.0` on it, and its `root` variant that
/// switches to `USER 0` before a `RUN` (the sample monorepo's variant shape), with a test
/// config checking what that `RUN` wrote.
struct Fixture {
    dir: tempfile::TempDir,
    /// Folders put first in `PATH`, each holding one `docker`.
    path_first: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Fixture {
    fn new(builder: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            &root.join(".image-manager.yml"),
            &format!("builder: {builder}\nplatforms: [linux/amd64]\n"),
        );
        im_testkit::write_busybox_base_definition(root, &[Platform::LinuxAmd64]);
        write(
            &root.join("images/app/image.yml"),
            "tags: [1.0.0]\nvariants:\n  - {name: root, tag_suffix: -root}\n",
        );
        write(
            &root.join("images/app/Dockerfile.jinja2"),
            "FROM {{ \"base\" | resolve_base_image }}\nRUN echo app > /app.txt\n",
        );
        write(
            &root.join("images/app/root/Dockerfile.jinja2"),
            "FROM {{ base_image }}\nUSER 0\nRUN id -u > /uid.txt && cat /app.txt > /copied.txt\n",
        );
        write(
            &root.join("images/app/root/test.yml"),
            "schemaVersion: 2.0.0\nfileContentTests:\n  - name: RUN ran as root\n    path: /uid.txt\n    expectedContents: ['^0\\n$']\n  - name: on the app\n    path: /copied.txt\n    expectedContents: ['^app\\n$']\n",
        );
        Self {
            dir,
            path_first: Vec::new(),
            env: Vec::new(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Puts `client` first in `PATH` (through a folder holding a `docker` link to it).
    fn client_first(mut self, client: &Path) -> Self {
        let folder = self.root().join(format!(".bin-{}", self.path_first.len()));
        fs_err::create_dir_all(&folder).unwrap();
        std::os::unix::fs::symlink(client, folder.join("docker")).unwrap();
        self.path_first.push(folder);
        self
    }

    fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn run(&self, args: &[&str]) -> Run {
        let path = std::env::join_paths(
            self.path_first
                .iter()
                .cloned()
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        let output = common::command(self.root())
            .args(args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("DOCKER_HOST", im_testkit::docker().host())
            .env_remove("DOCKER_BUILDKIT")
            .env("PATH", path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        Run::of(&output)
    }

    fn ok(&self, args: &[&str]) -> Run {
        succeeded(self.run(args), args)
    }
}

fn debian_client() -> PathBuf {
    im_testkit::docker().bin().to_owned()
}

#[test]
fn the_classic_builder_builds_user_0_and_run_on_a_scratch_image_when_the_settings_ask() {
    // Debian's 20.10 client first: it could use the engine's BuildKit, but the project says
    // `buildkit: false`.
    let fixture = Fixture::new("{kind: docker, buildkit: false}").client_first(&debian_client());
    let built = fixture.ok(&["-v", "build", "-j", "1"]);
    assert!(
        built.stderr.contains(&format!(
            "docker with the classic builder ({} talking to {}",
            fixture.path_first[0].join("docker").display(),
            im_testkit::docker().host()
        )),
        "{}",
        built.stderr
    );
    assert!(
        built.stderr.contains("Finished 3 built"),
        "{}",
        built.stderr
    );
    fixture.ok(&["test", "app:1.0.0-root", "--platform", "amd64"]);

    // DOCKER_BUILDKIT=1 wins over the file, as it does for `docker build`: the same variant
    // with 20.10's BuildKit fails the way the classic builder avoids.
    let buildkit = Fixture {
        env: vec![("DOCKER_BUILDKIT".to_owned(), "1".to_owned())],
        ..fixture
    };
    let failed = buildkit.run(&["-v", "build", "-j", "1", "--force", "app:1.0.0-root"]);
    assert_eq!(failed.status, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("docker with the engine BuildKit"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("unable to find user 0"),
        "{}",
        failed.stderr
    );
}

#[test]
fn docker_buildkit_0_picks_the_classic_builder_with_the_plain_builder_setting() {
    let fixture = Fixture::new("docker")
        .client_first(&debian_client())
        .with_env("DOCKER_BUILDKIT", "0");
    let built = fixture.ok(&["-v", "build", "-j", "1"]);
    assert!(
        built.stderr.contains("docker with the classic builder"),
        "{}",
        built.stderr
    );
    fixture.ok(&["test", "app:1.0.0-root"]);
    // The classic builder and BuildKit make different images: switching rebuilds.
    let fixture = fixture.with_env("DOCKER_BUILDKIT", "1");
    let plan = fixture.ok(&["plan", "base"]);
    assert!(
        plan.stdout
            .contains("build  (builder changed from docker-classic to docker"),
        "{}",
        plan.stdout
    );
}

#[test]
fn buildkit_comes_from_a_client_further_along_path_and_its_absence_is_explained() {
    assert!(
        Path::new(NEWER_CLIENT).exists(),
        "{NEWER_CLIENT} is missing: this machine's newer Docker client (without buildx) is what this test is about"
    );
    // The newer client first, Debian's after it: BuildKit, through Debian's client, rather
    // than the classic builder of the first.
    let fixture = Fixture::new("docker")
        .client_first(Path::new(NEWER_CLIENT))
        .client_first(&debian_client());
    let built = fixture.ok(&["-v", "build", "-j", "1", "base"]);
    assert!(
        built.stderr.contains(&format!(
            "docker with the engine BuildKit ({} talking to",
            fixture.path_first[1].join("docker").display()
        )),
        "{}",
        built.stderr
    );

    // Only the newer client in PATH, and BuildKit asked for: an error that says why and
    // what to do.
    let only_newer = fixture.path_first[0].display().to_string();
    let refused = Fixture {
        env: vec![
            ("DOCKER_BUILDKIT".to_owned(), "1".to_owned()),
            ("PATH".to_owned(), only_newer.clone()),
        ],
        ..fixture
    }
    .run(&["build", "-j", "1"]);
    assert_eq!(refused.status, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "no docker client in PATH can build with BuildKit (DOCKER_BUILDKIT=1 or `buildkit: true`): {only_newer}/docker can use the classic builder; install the buildx plugin, or build with the classic builder"
        )),
        "{}",
        refused.stderr
    );
}
