//! Every helper of im-testkit against the real component it hands out: the registry
//! process, buildah and podman storage, the private dockerd (classic and BuildKit builds),
//! arm64 under qemu, the Debian rootfs and the peer tools.

use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use im_testkit::{
    DockerEnv, Platform, Registry, buildah_cmd, busybox_base_image, check_jsonschema_bin,
    container_structure_test_bin, debian_rootfs_tar, docker, hadolint_bin, http_status, podman_cmd,
    run, syft_bin,
};

/// A name no other test (or concurrent test run) uses.
fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "im-testkit-{what}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes Docker images when the test ends, passed or not.
struct DockerImages<'a> {
    docker: &'a DockerEnv,
    names: Vec<String>,
}

impl Drop for DockerImages<'_> {
    fn drop(&mut self) {
        if !self.names.is_empty() {
            let _ = self
                .docker
                .command()
                .args(["rmi", "--force"])
                .args(&self.names)
                .output();
        }
    }
}

fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

#[test]
fn basic_auth_header_is_rfc4648_base64() {
    assert_eq!(
        basic_auth("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(basic_auth("a", "b"), "Basic YTpi");
}

#[test]
fn registry_answers_v2_and_is_gone_after_drop() {
    let registry = Registry::start();
    assert!(registry.host_port().starts_with("127.0.0.1:"));
    assert_eq!(registry.url(), format!("http://{}", registry.host_port()));
    assert_eq!(http_status(registry.addr(), "/v2/", None).unwrap(), 200);
    assert_eq!(
        http_status(registry.addr(), "/v2/no/such/repo/manifests/latest", None).unwrap(),
        404
    );
    let addr = registry.addr();
    drop(registry);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "the registry still listens on {addr} after drop"
    );
}

#[test]
fn registry_with_htpasswd_wants_the_right_password() {
    let registry = Registry::start_with_htpasswd("tester", "s3cret pass");
    let addr = registry.addr();
    assert_eq!(http_status(addr, "/v2/", None).unwrap(), 401);
    let good = basic_auth("tester", "s3cret pass");
    assert_eq!(http_status(addr, "/v2/", Some(&good)).unwrap(), 200);
    let wrong = basic_auth("tester", "wrong");
    assert_eq!(http_status(addr, "/v2/", Some(&wrong)).unwrap(), 401);
}

#[test]
fn two_registries_run_side_by_side_on_different_ports() {
    let (a, b) = (Registry::start(), Registry::start());
    assert_ne!(a.addr(), b.addr());
    assert_ne!(a.storage_dir(), b.storage_dir());
}

#[test]
fn a_cached_busybox_image_comes_back_fast_and_the_same() {
    let first = busybox_base_image(Platform::LinuxAmd64);
    let start = Instant::now();
    let second = busybox_base_image(Platform::LinuxAmd64);
    let took = start.elapsed();
    assert_eq!(first, second);
    assert!(
        took < Duration::from_secs(5),
        "a cached busybox image took {took:?}"
    );
    assert_ne!(
        busybox_base_image(Platform::LinuxArm64).image_id(),
        first.image_id(),
        "the arm64 image must differ from the amd64 one"
    );
}

/// Builds `FROM base` + a `RUN` with buildah for `platform`, then runs the result.
fn buildah_builds_and_runs(platform: Platform) {
    let storage = tempfile::tempdir().unwrap();
    let base = busybox_base_image(platform);
    base.load_into_buildah(storage.path(), "busybox-base");

    let context = tempfile::tempdir().unwrap();
    fs_err::write(
        context.path().join("Containerfile"),
        "FROM busybox-base\nRUN uname -m > /machine && echo built > /marker\n",
    )
    .unwrap();
    run(buildah_cmd(storage.path())
        .args([
            "bud",
            "--quiet",
            "--platform",
            platform.as_str(),
            "-t",
            "built",
        ])
        .arg("-f")
        .arg(context.path().join("Containerfile"))
        .arg(context.path()));

    let container = run(buildah_cmd(storage.path()).args(["from", "--quiet", "built"]));
    let container = container.trim();
    let out =
        run(buildah_cmd(storage.path())
            .args(["run", container, "--", "cat", "/machine", "/marker"]));
    assert_eq!(out, format!("{}\nbuilt\n", platform.uname_machine()));
    run(buildah_cmd(storage.path()).args(["rm", container]));
}

#[test]
fn buildah_builds_from_the_amd64_busybox_base() {
    buildah_builds_and_runs(Platform::LinuxAmd64);
}

#[test]
fn buildah_builds_from_the_arm64_busybox_base_under_qemu() {
    buildah_builds_and_runs(Platform::LinuxArm64);
}

#[test]
fn buildah_storage_is_private_to_each_test() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    busybox_base_image(Platform::LinuxAmd64).load_into_buildah(a.path(), "only-in-a");
    let in_a = run(buildah_cmd(a.path()).args(["images", "--format", "{{.Name}}"]));
    let in_b = run(buildah_cmd(b.path()).args(["images", "--format", "{{.Name}}"]));
    assert!(in_a.contains("localhost/only-in-a"), "{in_a}");
    assert!(in_b.trim().is_empty(), "{in_b}");
}

#[test]
fn podman_builds_and_runs_from_the_busybox_base_in_buildah_storage() {
    let storage = tempfile::tempdir().unwrap();
    busybox_base_image(Platform::LinuxAmd64).load_into_buildah(storage.path(), "busybox-base");
    let context = tempfile::tempdir().unwrap();
    fs_err::write(
        context.path().join("Containerfile"),
        "FROM localhost/busybox-base\nRUN echo built-by-podman > /marker\n",
    )
    .unwrap();
    run(podman_cmd(storage.path())
        .args(["build", "--quiet", "-t", "built", "-f"])
        .arg(context.path().join("Containerfile"))
        .arg(context.path()));
    let out = run(podman_cmd(storage.path()).args([
        "run",
        "--rm",
        "--network=none",
        "localhost/built",
        "sh",
        "-c",
        "cat /marker; uname -m",
    ]));
    assert_eq!(out, "built-by-podman\nx86_64\n");
}

/// Loads the base for `platform` into dockerd and runs `busybox true` and `uname -m`.
fn docker_runs(platform: Platform) {
    let docker = docker();
    let name = unique_name(&format!("busybox-{}", platform.architecture()));
    let images = DockerImages {
        docker: &docker,
        names: vec![name.clone()],
    };
    busybox_base_image(platform).load_into_docker(&docker, &name);
    docker.run([
        "run",
        "--rm",
        "--platform",
        platform.as_str(),
        &name,
        "busybox",
        "true",
    ]);
    let machine = docker.run([
        "run",
        "--rm",
        "--platform",
        platform.as_str(),
        &name,
        "uname",
        "-m",
    ]);
    assert_eq!(machine.trim(), platform.uname_machine());
    drop(images);
}

#[test]
fn docker_runs_the_amd64_busybox_base() {
    docker_runs(Platform::LinuxAmd64);
}

#[test]
fn docker_runs_the_arm64_busybox_base_under_qemu() {
    docker_runs(Platform::LinuxArm64);
}

/// Builds `FROM` the loaded base with the classic builder or BuildKit, then runs it.
fn docker_builds(buildkit: bool) {
    let docker = docker();
    let base = unique_name("base");
    let built = unique_name("built");
    let _images = DockerImages {
        docker: &docker,
        names: vec![base.clone(), built.clone()],
    };
    busybox_base_image(Platform::LinuxAmd64).load_into_docker(&docker, &base);
    let context = tempfile::tempdir().unwrap();
    fs_err::write(
        context.path().join("Dockerfile"),
        format!("FROM {base}\nRUN echo built-by-docker > /marker\n"),
    )
    .unwrap();
    let mut docker_build = docker.command();
    docker_build
        .env("DOCKER_BUILDKIT", if buildkit { "1" } else { "0" })
        .args(["build", "--quiet", "-t", &built])
        .arg(context.path());
    run(&mut docker_build);
    let out = docker.run(["run", "--rm", &built, "cat", "/marker"]);
    assert_eq!(out, "built-by-docker\n");
}

#[test]
fn docker_classic_builder_builds_from_the_busybox_base() {
    docker_builds(false);
}

#[test]
fn docker_buildkit_builds_from_the_busybox_base() {
    docker_builds(true);
}

#[test]
fn the_debian_rootfs_is_bookworm() {
    let tar_path = debian_rootfs_tar();
    let file = fs_err::File::open(&tar_path).unwrap();
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut version = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap() == Path::new("./etc/debian_version") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            version = Some(text);
            break;
        }
    }
    let version = version.expect("the rootfs has ./etc/debian_version");
    assert!(version.starts_with("12."), "not bookworm: {version}");
}

#[test]
fn the_peer_tools_run() {
    let version = |bin: &Path, arg: &str| run(std::process::Command::new(bin).arg(arg));
    assert!(version(&container_structure_test_bin(), "version").contains('.'));
    assert!(version(&syft_bin(), "version").contains("Version"));
    assert!(version(&hadolint_bin(), "--version").contains("Haskell Dockerfile Linter"));
    assert!(version(&check_jsonschema_bin(), "--version").contains("check-jsonschema"));
}
