//! The Debian bookworm minbase root filesystem `scripts/setup` made with debootstrap, as a
//! tarball: the base for tests that need a real distribution (apt, glibc, a shell).
//!
//! Turn it into an image with `docker import TAR NAME`, or with buildah from `scratch` and
//! `buildah add CONTAINER TAR /`.

use std::path::PathBuf;

use crate::settings;

/// The path of the rootfs tarball (`IM_TEST_DEBIAN_ROOTFS_TAR`, an uncompressed tar of the
/// tree's contents, paths starting with `./`).
///
/// Panics with "scripts/setup should have installed ..." if it is missing.
pub fn debian_rootfs_tar() -> PathBuf {
    let path = PathBuf::from(settings::required(
        "IM_TEST_DEBIAN_ROOTFS_TAR",
        "the debootstrap'd Debian rootfs tarball",
    ));
    match fs_err::metadata(&path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 => path,
        Ok(_) => panic!(
            "{} is empty or not a file: scripts/setup should have made the Debian rootfs tarball",
            path.display()
        ),
        Err(err) => {
            panic!("{err}: scripts/setup should have made the Debian rootfs tarball")
        }
    }
}

/// Pushes the Debian rootfs as a one-layer image to `reference` (`127.0.0.1:PORT/debian:bookworm`
/// in a test registry): imported into the test Docker engine, pushed, and untagged there
/// again. Returns the pushed manifest's digest.
pub fn push_debian_image(reference: &str) -> String {
    let docker = crate::docker();
    let tar = debian_rootfs_tar();
    docker.run([
        "import".to_owned(),
        tar.display().to_string(),
        reference.to_owned(),
    ]);
    let pushed = docker.run(["push", reference]);
    docker.run(["rmi", reference]);
    pushed
        .split_whitespace()
        .find(|word| word.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("docker push {reference} printed no digest: {pushed}"))
        .to_owned()
}
