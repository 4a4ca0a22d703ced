//! The modes `generate` gives what it writes into `dist/`, under a restrictive umask: rootfs
//! folders are `0755` (`COPY rootfs/ /` carries them into images, so a build must not depend
//! on who ran it), files keep their source's mode. Runs the real binary under `umask 077`
//! through `sh`.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Run, succeeded, write};

/// Runs `image-manager -C root ARGS` under `umask 077`.
fn generate_under_umask_077(root: &Path, args: &[&str]) {
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg("umask 077 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(root)
        .arg("generate")
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    succeeded(Run::of(&output), args);
}

fn mode(path: &Path) -> u32 {
    fs_err::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every folder under `dir` (itself included) with its mode.
fn folder_modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out = vec![(dir.display().to_string(), mode(dir))];
    for entry in fs_err::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs_err::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(folder_modes(&path));
        }
    }
    out
}

fn all_0755(dir: &Path) -> Vec<(String, u32)> {
    folder_modes(dir)
        .into_iter()
        .map(|(path, _)| (path, 0o755))
        .collect()
}

#[test]
fn rootfs_folders_are_0755_and_files_keep_their_modes_under_umask_077() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("images/app/image.yml"), "tags: ['1', '2']\n");
    write(
        &root.join("images/app/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\n",
    );
    let rootfs = root.join("images/app/rootfs");
    write(&rootfs.join("etc/app/app.conf"), "a=1\n");
    write(&rootfs.join("usr/local/bin/run"), "#!/bin/sh\n");
    write(&rootfs.join("etc/secret.conf"), "s=1\n");
    // The sources' own folders are private: that must not reach dist/ either.
    for folder in ["", "etc", "etc/app", "usr", "usr/local", "usr/local/bin"] {
        set_mode(&rootfs.join(folder), 0o700);
    }
    set_mode(&rootfs.join("usr/local/bin/run"), 0o755);
    set_mode(&rootfs.join("etc/secret.conf"), 0o600);
    set_mode(&rootfs.join("etc/app/app.conf"), 0o644);

    // A fresh dist/ (the image folder is staged whole).
    generate_under_umask_077(root, &[]);
    let tag = root.join("dist/app/1/rootfs");
    assert_eq!(folder_modes(&tag), all_0755(&tag));
    assert_eq!(folder_modes(&tag).len(), 6);
    assert_eq!(mode(&tag.join("usr/local/bin/run")), 0o755);
    assert_eq!(mode(&tag.join("etc/secret.conf")), 0o600);
    assert_eq!(mode(&tag.join("etc/app/app.conf")), 0o644);

    // A new folder in an existing tag (the tag is updated in place).
    write(&rootfs.join("opt/new/file"), "new\n");
    set_mode(&rootfs.join("opt"), 0o700);
    generate_under_umask_077(root, &[]);
    assert_eq!(mode(&tag.join("opt/new")), 0o755);
    assert_eq!(folder_modes(&tag), all_0755(&tag));

    // A folder changed by hand is repaired by a full generate.
    set_mode(&tag.join("etc"), 0o700);
    generate_under_umask_077(root, &["--full"]);
    assert_eq!(folder_modes(&tag), all_0755(&tag));
    let other = root.join("dist/app/2/rootfs");
    assert_eq!(folder_modes(&other), all_0755(&other));
}
