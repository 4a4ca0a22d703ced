//! buildah and podman commands with storage of the test's own.
//!
//! Every test passes its own storage directory (a `tempfile::TempDir`), so tests running in
//! parallel never share images, containers or locks. Storage uses the `vfs` driver (no
//! overlay mounts to leak) and builds run with chroot isolation (no daemon, no user
//! namespaces). buildah and podman given the same directory see the same images.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use crate::settings;

const BUILDAH: &str = "/usr/bin/buildah";
const PODMAN: &str = "/usr/bin/podman";

/// A `buildah` command using `vfs` storage under `storage_root` and chroot isolation:
/// append the subcommand and its arguments.
pub fn buildah_cmd(storage_root: &Path) -> Command {
    settings::assert_executable(Path::new(BUILDAH), "buildah");
    let mut cmd = Command::new(BUILDAH);
    cmd.args(storage_args(storage_root));
    cmd.env("BUILDAH_ISOLATION", "chroot");
    cmd
}

/// A `podman` command using `vfs` storage under `storage_root` (the same images as
/// [`buildah_cmd`] with that root), cgroupfs and file events (the machine has no systemd),
/// chroot isolation for `podman build`.
///
/// Its own `containers.conf` (written into `storage_root`) makes two things work on the
/// test VMs that do not by default: the runtime is runc (crun refuses the VMs' hybrid
/// cgroup v1/v2 layout), and containers get at most [`PODMAN_ULIMIT`] open files and
/// processes (podman otherwise asks for 1048576, which root without `CAP_SYS_RESOURCE`
/// may not set). Use `--network=none` or `--network=host` for `podman run`.
pub fn podman_cmd(storage_root: &Path) -> Command {
    settings::assert_executable(Path::new(PODMAN), "podman");
    let conf = storage_root.join("containers.conf");
    fs_err::create_dir_all(storage_root).expect("the podman storage root can be made");
    fs_err::write(&conf, containers_conf(&own_hard_limits()))
        .expect("podman's containers.conf can be written");
    let mut cmd = Command::new(PODMAN);
    cmd.env("CONTAINERS_CONF", &conf);
    cmd.env("BUILDAH_ISOLATION", "chroot");
    cmd.args(storage_args(storage_root));
    let mut tmpdir = OsString::from("--tmpdir=");
    tmpdir.push(storage_root.join("podman-tmp"));
    cmd.arg(tmpdir);
    cmd.args(["--cgroup-manager=cgroupfs", "--events-backend=file"]);
    cmd
}

/// The open-file and process limit of podman containers (lower than this process's hard
/// limit, a lower one is used).
pub const PODMAN_ULIMIT: u64 = 4096;

/// `containers.conf` for [`podman_cmd`]: runc, and `default_ulimits` at
/// [`PODMAN_ULIMIT`] or the given hard limit (name, limit) when that is lower.
fn containers_conf(hard_limits: &[(&str, u64)]) -> String {
    let ulimits: Vec<String> = ["nofile", "nproc"]
        .into_iter()
        .map(|name| {
            let hard = hard_limits
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(PODMAN_ULIMIT, |(_, hard)| *hard);
            let limit = hard.min(PODMAN_ULIMIT);
            format!("\"{name}={limit}:{limit}\"")
        })
        .collect();
    format!(
        "[containers]\ndefault_ulimits = [{}]\n\n[engine]\nruntime = \"runc\"\n",
        ulimits.join(", ")
    )
}

/// This process's hard limits on open files and processes, from `/proc/self/limits`
/// ("unlimited" ones are left out).
fn own_hard_limits() -> Vec<(&'static str, u64)> {
    let limits =
        fs_err::read_to_string("/proc/self/limits").expect("/proc/self/limits is readable");
    [("nofile", "Max open files"), ("nproc", "Max processes")]
        .into_iter()
        .filter_map(|(name, label)| {
            let line = limits.lines().find(|line| line.starts_with(label))?;
            let hard = line[label.len()..].split_whitespace().nth(1)?;
            Some((name, hard.parse().ok()?))
        })
        .collect()
}

fn storage_args(storage_root: &Path) -> Vec<OsString> {
    let mut root = OsString::from("--root=");
    root.push(storage_root.join("root"));
    let mut runroot = OsString::from("--runroot=");
    runroot.push(storage_root.join("runroot"));
    vec![root, runroot, OsString::from("--storage-driver=vfs")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_conf_uses_runc_and_the_lower_of_the_cap_and_the_hard_limit() {
        let conf = containers_conf(&[("nofile", 20000), ("nproc", 1000)]);
        assert_eq!(
            conf,
            "[containers]\ndefault_ulimits = [\"nofile=4096:4096\", \"nproc=1000:1000\"]\n\n\
             [engine]\nruntime = \"runc\"\n"
        );
    }

    #[test]
    fn own_hard_limits_include_open_files() {
        let limits = own_hard_limits();
        assert!(
            limits.iter().any(|(name, _)| *name == "nofile"),
            "{limits:?}"
        );
    }

    #[test]
    fn buildah_storage_is_under_the_given_root() {
        let cmd = buildah_cmd(Path::new("/tmp/t1"));
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "--root=/tmp/t1/root",
                "--runroot=/tmp/t1/runroot",
                "--storage-driver=vfs"
            ]
        );
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "BUILDAH_ISOLATION" && v == Some("chroot".as_ref()))
        );
    }
}
