//! A tiny `FROM scratch` base image for tests: Debian's static busybox with every applet
//! linked into `/bin`, a root user and `/tmp`, for linux/amd64 and linux/arm64.
//!
//! No image can be pulled on the test machines, so this is the base every builder test
//! starts `FROM`. The image is written here, not built by a tool, so it is byte-for-byte
//! deterministic (fixed mtimes and order) and takes milliseconds; the archive is kept in
//! `IM_TEST_CACHE_DIR/busybox-images/`, named by its manifest digest. `scripts/setup`
//! extracts both busybox binaries from the busybox-static packages of each architecture
//! (the two packages cannot be installed side by side).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::buildah::buildah_cmd;
use crate::docker::DockerEnv;
use crate::oci_archive::{self, ImageSpec, LayerTree};
use crate::platform::Platform;
use crate::process;
use crate::settings;

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// A busybox base image for one platform, as an archive on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyboxImage {
    platform: Platform,
    archive: PathBuf,
    image_id: String,
    manifest_digest: String,
}

/// The busybox base image for `platform`, made (or found in the cache) now.
///
/// Panics with "scripts/setup should have installed ..." if the busybox binary for the
/// platform or the cache directory setting is missing.
pub fn busybox_base_image(platform: Platform) -> BusyboxImage {
    let busybox = busybox_binary(platform);
    let cache_dir = PathBuf::from(settings::required("IM_TEST_CACHE_DIR", "its cache dir"))
        .join("busybox-images");
    make(platform, &busybox, &cache_dir)
}

/// Writes the definition of a managed base image `base:1` into the image-manager project at
/// `root` (`images/base/`): built `FROM scratch` from the static busybox of each of
/// `platforms` (its rootfs holds `busybox-<arch>`; the Dockerfile copies the one for
/// `TARGETARCH` and installs the applets into `/bin`). The fixture the end-to-end tests of
/// build, push and test start from.
pub fn write_busybox_base_definition(root: &Path, platforms: &[Platform]) {
    let base = root.join("images/base");
    fs_err::create_dir_all(base.join("rootfs")).expect("the base image folder can be made");
    for &platform in platforms {
        fs_err::copy(
            busybox_binary(platform),
            base.join(format!("rootfs/busybox-{}", platform.architecture())),
        )
        .expect("busybox is copied into the base image's rootfs");
    }
    fs_err::write(
        base.join("image.yml"),
        "is_base_image: true\nrootfs_copy: false\ntags: ['1']\n",
    )
    .expect("image.yml is written");
    fs_err::write(
        base.join("Dockerfile.jinja2"),
        "FROM scratch\nARG TARGETARCH\nCOPY rootfs/busybox-${TARGETARCH} /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
    )
    .expect("the Dockerfile template is written");
}

/// The static busybox binary for `platform`, checked to be an ELF binary of that platform
/// (for tests that build their own base image from it).
pub fn busybox_binary(platform: Platform) -> PathBuf {
    let (setting, what) = match platform {
        Platform::LinuxAmd64 => ("IM_TEST_BUSYBOX_AMD64", "busybox-static"),
        Platform::LinuxArm64 => ("IM_TEST_BUSYBOX_ARM64", "busybox-static:arm64"),
    };
    let busybox = settings::required_executable(setting, what);
    let binary = fs_err::read(&busybox).expect("the busybox binary is readable");
    assert_eq!(
        elf_machine(&binary),
        Some(platform),
        "{} is not a {platform} ELF binary: scripts/setup should have installed busybox-static for {platform}",
        busybox.display()
    );
    busybox
}

/// Makes the image from `busybox` and stores its archive in `cache_dir` unless the same
/// archive is already there.
fn make(platform: Platform, busybox: &Path, cache_dir: &Path) -> BusyboxImage {
    let binary = fs_err::read(busybox).expect("the busybox binary is readable");
    assert_eq!(
        elf_machine(&binary),
        Some(platform),
        "{} is not a {platform} ELF binary: scripts/setup should have installed busybox-static for {platform}",
        busybox.display()
    );
    // The binary itself lists its applets; for arm64 this runs under qemu-aarch64.
    let applets = process::run(Command::new(busybox).arg("--list"));
    let mut tree = LayerTree::default();
    tree.dir("bin", 0o755);
    tree.file("bin/busybox", 0o755, binary);
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        assert!(
            applet
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.[".contains(c)),
            "{} --list printed an odd applet name {applet:?}",
            busybox.display()
        );
        if applet != "busybox" {
            tree.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    tree.dir("etc", 0o755);
    tree.file("etc/passwd", 0o644, PASSWD.as_bytes().to_vec());
    tree.file("etc/group", 0o644, GROUP.as_bytes().to_vec());
    tree.dir("root", 0o700);
    tree.dir("tmp", 0o1777);

    let archive = oci_archive::image_archive(
        &tree.to_tar(),
        &ImageSpec {
            platform,
            env: &[PATH_ENV],
            cmd: &["/bin/sh"],
            created_by: "im-testkit busybox base image",
        },
    );
    let hex = archive
        .manifest_digest
        .strip_prefix("sha256:")
        .expect("a sha256 digest");
    let path = cache_dir.join(format!(
        "busybox-{}-{}.tar",
        platform.architecture(),
        &hex[..16]
    ));
    if !path.is_file() {
        fs_err::create_dir_all(cache_dir).expect("the busybox image cache dir can be made");
        // Write then rename, so a test running in parallel never reads half an archive.
        let mut tmp = tempfile::NamedTempFile::new_in(cache_dir)
            .expect("a temp file can be made in the busybox image cache dir");
        std::io::Write::write_all(&mut tmp, &archive.bytes)
            .expect("the busybox image archive can be written");
        tmp.persist(&path)
            .expect("the busybox image archive can be renamed into place");
    }
    BusyboxImage {
        platform,
        archive: path,
        image_id: archive.config_digest,
        manifest_digest: archive.manifest_digest,
    }
}

/// The platform an ELF executable is for, from its header's `e_machine` field.
fn elf_machine(binary: &[u8]) -> Option<Platform> {
    const EM_X86_64: u16 = 0x3e;
    const EM_AARCH64: u16 = 0xb7;
    // 64-bit (class 2), little-endian (data 1) ELF only.
    if binary.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    match u16::from_le_bytes([*binary.get(18)?, *binary.get(19)?]) {
        EM_X86_64 => Some(Platform::LinuxAmd64),
        EM_AARCH64 => Some(Platform::LinuxArm64),
        _ => None,
    }
}

impl BusyboxImage {
    /// The platform the image is for.
    pub fn platform(&self) -> Platform {
        self.platform
    }

    /// The archive: an OCI image layout tar (`oci-archive:PATH`) that is also a
    /// `docker load` tarball.
    pub fn oci_archive(&self) -> &Path {
        &self.archive
    }

    /// `sha256:...` of the image config: the image ID in Docker and containers-storage.
    pub fn image_id(&self) -> &str {
        &self.image_id
    }

    /// `sha256:...` of the image manifest.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest_digest
    }

    /// Loads the image into the buildah/podman storage at `storage_root` (see
    /// [`buildah_cmd`]) as `name` (a short name becomes `localhost/NAME:latest`).
    pub fn load_into_buildah(&self, storage_root: &Path, name: &str) {
        let mut source = OsString::from("oci-archive:");
        source.push(&self.archive);
        let id = process::run(
            buildah_cmd(storage_root)
                .args(["pull", "--quiet", "--platform", self.platform.as_str()])
                .arg(source),
        );
        let id = id.trim();
        assert!(
            self.image_id.ends_with(id) && !id.is_empty(),
            "buildah pull printed image ID {id:?}, expected {}",
            self.image_id
        );
        process::run(buildah_cmd(storage_root).args(["tag", id, name]));
    }

    /// Loads the image into the Docker daemon as `name` (a short name becomes
    /// `NAME:latest`).
    ///
    /// The name goes into the loaded archive's `RepoTags`, so loading and naming are one
    /// step: a test that removes its own name of the same image at that moment cannot make
    /// this load fail.
    pub fn load_into_docker(&self, docker: &DockerEnv, name: &str) {
        let name_has_tag = name
            .rsplit_once('/')
            .map_or(name, |(_, last)| last)
            .contains(':');
        let tagged = if name_has_tag {
            name.to_owned()
        } else {
            format!("{name}:latest")
        };
        let archive = fs_err::read(&self.archive).expect("the busybox image archive is readable");
        let archive = oci_archive::with_repo_tags(&archive, &[tagged.as_str()]);
        let mut load = docker.command();
        load.args(["load", "--quiet"]);
        let out = process::run_with_stdin(&mut load, &archive);
        assert!(
            out.contains(&tagged),
            "docker load did not report {tagged}: {out}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_machine_tells_the_two_busyboxes_apart() {
        for (setting, platform) in [
            ("IM_TEST_BUSYBOX_AMD64", Platform::LinuxAmd64),
            ("IM_TEST_BUSYBOX_ARM64", Platform::LinuxArm64),
        ] {
            let binary = fs_err::read(settings::required_executable(setting, "busybox")).unwrap();
            assert_eq!(elf_machine(&binary), Some(platform), "{setting}");
        }
        assert_eq!(elf_machine(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn the_same_busybox_gives_the_same_archive_in_two_caches() {
        let busybox = settings::required_executable("IM_TEST_BUSYBOX_AMD64", "busybox-static");
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = make(Platform::LinuxAmd64, &busybox, a.path());
        let second = make(Platform::LinuxAmd64, &busybox, b.path());
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(
            fs_err::read(first.oci_archive()).unwrap(),
            fs_err::read(second.oci_archive()).unwrap()
        );
        // A second call finds the archive in the cache and names the same file.
        assert_eq!(make(Platform::LinuxAmd64, &busybox, a.path()), first);
    }
}
