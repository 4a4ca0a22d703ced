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
        // Every test binary is its own process and several run at once: the first one makes
        // the archives, the others wait for it and reuse them, so no process ever reads an
        // archive another one is replacing. The Debian archive's name carries the rootfs
        // tarball's size and time, so a new rootfs makes a new archive.
        let lock = fs_err::File::create(dir.join(".lock")).unwrap();
        let mut lock = fd_lock::RwLock::new(lock);
        let _guard = lock.write().unwrap();
        let busybox = dir.join("busybox.tar");
        if !busybox.is_file() {
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
            save(&docker, &busybox, "im-st-diff/busybox:1");
        }
        let rootfs = im_testkit::debian_rootfs_tar();
        let meta = fs_err::metadata(&rootfs).unwrap();
        let stamp = meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let debian = dir.join(format!("debian-{}-{stamp}.tar", meta.len()));
        if !debian.is_file() {
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
            import.arg(&rootfs).arg("im-st-diff/debian:12");
            im_testkit::run(&mut import);
            save(&docker, &debian, "im-st-diff/debian:12");
        }
        Images {
            dir,
            busybox,
            debian,
        }
    })
}

/// `docker save`s `image` to `path`, written under another name and renamed into place.
fn save(docker: &im_testkit::DockerEnv, path: &Path, image: &str) {
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    docker.run([
        OsString::from("save"),
        "--output".into(),
        partial.clone().into(),
        image.into(),
    ]);
    fs_err::rename(&partial, path).unwrap();
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
