//! Real images against an independent reader.
//!
//! The Debian rootfs tarball `scripts/setup` made with debootstrap becomes the single layer of
//! a docker-archive; the view must list exactly what the `tar` crate reads from the same
//! stream (kinds, modes, owners, sizes, link targets, hardlink identity) and return the same
//! bytes for files. The busybox base image (an OCI archive written by im-testkit) checks
//! the OCI path and symlinked applets.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use im_oci::{FileKind, OpenOptions, open_image};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    kind: FileKind,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    link: Option<String>,
    hardlink_of: Option<String>,
}

fn clean(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

#[test]
fn debian_rootfs_view_matches_the_tar_crate() {
    let rootfs = im_testkit::debian_rootfs_tar();
    // What the tar crate sees, later entries replacing earlier ones.
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(fs_err::File::open(&rootfs).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        if path == "/" {
            continue;
        }
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let (kind, hardlink_of) = match header.entry_type() {
            tar::EntryType::Directory => (FileKind::Directory, None),
            tar::EntryType::Symlink => (FileKind::Symlink, None),
            tar::EntryType::Link => (FileKind::Regular, link.as_deref().map(clean)),
            tar::EntryType::Char => (FileKind::CharDevice, None),
            tar::EntryType::Block => (FileKind::BlockDevice, None),
            tar::EntryType::Fifo => (FileKind::Fifo, None),
            _ => (FileKind::Regular, None),
        };
        let (mode, uid, gid, size) = match &hardlink_of {
            Some(target) => {
                let t = expected[target].clone();
                (t.mode, t.uid, t.gid, t.size)
            }
            None => (
                header.mode().unwrap() & 0o7777,
                header.uid().unwrap(),
                header.gid().unwrap(),
                if kind == FileKind::Regular {
                    header.size().unwrap()
                } else {
                    0
                },
            ),
        };
        if kind == FileKind::Regular
            && hardlink_of.is_none()
            && (path.starts_with("/etc/") || path.ends_with("/copyright"))
        {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            contents.insert(path.clone(), data);
        }
        let link = if kind == FileKind::Symlink {
            link
        } else {
            None
        };
        let size = if kind == FileKind::Symlink {
            link.as_ref().map_or(0, |l| l.len() as u64)
        } else {
            size
        };
        expected.insert(
            path,
            Expected {
                kind,
                mode,
                uid,
                gid,
                size,
                link,
                hardlink_of,
            },
        );
    }

    // The rootfs as the one layer of a docker-archive, written next to the test binary.
    let layer = fs_err::read(&rootfs).unwrap();
    let members = common::docker_members(&[layer], "amd64");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("debian-rootfs-image.tar");
    fs_err::write(&path, common::outer_tar(&members, &[])).unwrap();
    let image = open_image(&path, &OpenOptions::default()).unwrap();
    let view = image.filesystem().unwrap();

    let seen: BTreeMap<String, im_oci::FileInfo> = view.walk_all().into_iter().collect();
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "the same paths"
    );
    for (path, want) in &expected {
        let got = &seen[path];
        let got_link = got
            .link_target
            .as_ref()
            .map(|l| String::from_utf8_lossy(l).into_owned());
        assert_eq!(
            (got.kind, got.mode, got.uid, got.gid, got.size, &got_link),
            (
                want.kind, want.mode, want.uid, want.gid, want.size, &want.link
            ),
            "{path}"
        );
        if let Some(target) = &want.hardlink_of {
            assert_eq!(
                got.inode, seen[target].inode,
                "{path} is a hardlink of {target}"
            );
        }
    }
    let paths: Vec<&str> = contents.keys().map(String::as_str).collect();
    assert!(paths.len() > 50, "enough files compared");
    for (path, result) in paths.iter().zip(image.read_files(&view, &paths)) {
        assert_eq!(&result.unwrap(), &contents[*path], "{path}");
    }
}

#[test]
fn busybox_oci_archive_resolves_applet_symlinks() {
    let busybox = im_testkit::busybox_base_image(im_testkit::Platform::LinuxAmd64);
    let image = open_image(
        busybox.oci_archive(),
        &OpenOptions {
            platform: Some("linux/amd64".parse().unwrap()),
            ..OpenOptions::default()
        },
    )
    .unwrap();
    let view = image.filesystem().unwrap();
    let sh = view.lstat("/bin/sh").unwrap();
    assert_eq!(sh.kind, FileKind::Symlink);
    let target = view.stat("/bin/sh").unwrap();
    assert_eq!(target.inode, view.stat("/bin/busybox").unwrap().inode);
    let bytes = image.read_file(&view, "/bin/sh").unwrap();
    assert!(bytes.starts_with(b"\x7fELF"));
    assert_eq!(image.platform().to_string(), "linux/amd64");
}
