//! Go's `os.FileMode.String()`, the permission strings container-structure-test compares
//! (`-rwxr-xr-x`, `drwxrwxrwt`-style bits written as Go does: `dtrwxrwxrwx`, `urwxr-xr-x`,
//! `Lrwxrwxrwx`, `Dcrw-rw-rw-`).

use im_oci::{FileInfo, FileKind};

/// The string Go prints for a file with this metadata.
pub fn mode_string(info: &FileInfo) -> String {
    const RWX: &[u8; 9] = b"rwxrwxrwx";
    // Go's type letters, in its bit order: d a l T L D p S u g c t ?
    let mut out = String::with_capacity(13);
    match info.kind {
        FileKind::Directory => out.push('d'),
        FileKind::Symlink => out.push('L'),
        FileKind::BlockDevice | FileKind::CharDevice => out.push('D'),
        FileKind::Fifo => out.push('p'),
        FileKind::Regular => {}
    }
    if info.mode & 0o4000 != 0 {
        out.push('u');
    }
    if info.mode & 0o2000 != 0 {
        out.push('g');
    }
    if info.kind == FileKind::CharDevice {
        out.push('c');
    }
    if info.mode & 0o1000 != 0 {
        out.push('t');
    }
    if out.is_empty() {
        out.push('-');
    }
    for (i, letter) in RWX.iter().enumerate() {
        out.push(if info.mode & (1 << (8 - i)) != 0 {
            char::from(*letter)
        } else {
            '-'
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: FileKind, mode: u32) -> FileInfo {
        FileInfo {
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            link_target: None,
            device: None,
            inode: 0,
        }
    }

    #[test]
    fn matches_go_file_mode_strings() {
        assert_eq!(mode_string(&info(FileKind::Regular, 0o755)), "-rwxr-xr-x");
        assert_eq!(mode_string(&info(FileKind::Directory, 0o755)), "drwxr-xr-x");
        assert_eq!(mode_string(&info(FileKind::Symlink, 0o777)), "Lrwxrwxrwx");
        assert_eq!(mode_string(&info(FileKind::Regular, 0o4755)), "urwxr-xr-x");
        assert_eq!(mode_string(&info(FileKind::Regular, 0o2755)), "grwxr-xr-x");
        assert_eq!(
            mode_string(&info(FileKind::Directory, 0o1777)),
            "dtrwxrwxrwx"
        );
        assert_eq!(
            mode_string(&info(FileKind::CharDevice, 0o666)),
            "Dcrw-rw-rw-"
        );
        assert_eq!(
            mode_string(&info(FileKind::BlockDevice, 0o660)),
            "Drw-rw----"
        );
        assert_eq!(mode_string(&info(FileKind::Fifo, 0o600)), "prw-------");
    }
}
