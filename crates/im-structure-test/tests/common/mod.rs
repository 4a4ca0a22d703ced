//! Real images and runtimes for the end-to-end tests, built once per test process.
//!
//! The images are made here from what `scripts/setup` provides (busybox base image, Debian
//! rootfs tarball, the private dockerd); nothing is pulled.

#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use im_structure_test::{CliRuntime, CstBackend, CstDriver, Runtime, RuntimeKind};

pub struct Images {
    pub dir: PathBuf,
    pub busybox: PathBuf,
    pub debian: PathBuf,
}

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The busybox-based and Debian images as `docker save` archives.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let docker = im_testkit::docker();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("structure-test-images");
        fs_err::create_dir_all(&dir).unwrap();
        im_testkit::busybox_base_image(im_testkit::Platform::LinuxAmd64)
            .load_into_docker(&docker, "im-st-diff/busybox-base");
        let context = tempfile::tempdir().unwrap();
        let mut build = docker.command();
        build.env("DOCKER_BUILDKIT", "0").args([
            "build",
            "--quiet",
            "--tag",
            "im-st-diff/busybox:1",
            "--file",
        ]);
        build.arg(data("busybox.Dockerfile")).arg(context.path());
        im_testkit::run(&mut build);
        let busybox = save(&docker, &dir, "busybox.tar", "im-st-diff/busybox:1");

        let mut import = docker.command();
        import.arg("import");
        for change in [
            "ENV LANG=C.UTF-8",
            "ENV HOME=/root",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LABEL org.opencontainers.image.title=debian-test",
            "WORKDIR /srv",
            "EXPOSE 80",
            "CMD [\"bash\"]",
        ] {
            import.args(["--change", change]);
        }
        import
            .arg(im_testkit::debian_rootfs_tar())
            .arg("im-st-diff/debian:12");
        im_testkit::run(&mut import);
        let debian = save(&docker, &dir, "debian.tar", "im-st-diff/debian:12");
        Images {
            dir,
            busybox,
            debian,
        }
    })
}

/// `docker save`s `image` to `dir/name`. Each test binary is its own process and several run at
/// once, so the archive is written under a name of this process and renamed into place: a
/// process reading the archive never sees another one rewriting it.
fn save(docker: &im_testkit::DockerEnv, dir: &Path, name: &str, image: &str) -> PathBuf {
    let path = dir.join(name);
    let partial = dir.join(format!("{name}.partial-{}", std::process::id()));
    docker.run([
        OsString::from("save"),
        "--output".into(),
        partial.clone().into(),
        image.into(),
    ]);
    fs_err::rename(&partial, &path).unwrap();
    path
}

pub fn docker_env() -> Vec<(OsString, OsString)> {
    vec![("DOCKER_HOST".into(), im_testkit::docker().host().into())]
}

pub fn log(name: &str) -> PathBuf {
    images().dir.join(format!("{name}.log"))
}

/// Docker as a runtime for command tests.
pub fn docker_runtime() -> Arc<dyn Runtime> {
    let docker = im_testkit::docker();
    Arc::new(CliRuntime::new(
        RuntimeKind::Docker,
        docker.bin().to_owned(),
        vec![],
        docker_env(),
        Some(log("docker")),
    ))
}

/// The real container-structure-test with one of its drivers.
pub fn cst(backend: CstBackend) -> Arc<CstDriver> {
    Arc::new(CstDriver::new(
        im_testkit::container_structure_test_bin(),
        backend,
        docker_env(),
        Some(log("cst")),
    ))
}
