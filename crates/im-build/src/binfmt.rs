//! Whether the host can run a platform's binaries: natively, or through a qemu
//! binfmt_misc handler (what a builder needs before it runs `RUN` steps for a foreign
//! platform).

use std::path::{Path, PathBuf};

use im_oci::Platform;

/// A foreign platform that the host cannot execute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformSupportError {
    #[error(
        "cannot build for {platform} on this {host} host: the binfmt_misc handler {handler} is \
         not registered ({path} is missing); install qemu-user-static and binfmt-support \
         (apt-get install qemu-user-static binfmt-support)"
    )]
    MissingBinfmt {
        platform: Platform,
        host: String,
        handler: String,
        path: PathBuf,
    },
    #[error("cannot build for {platform} on this {host} host: no emulator is known for it")]
    Unsupported { platform: Platform, host: String },
}

/// The name of the qemu binfmt_misc handler that runs `platform`'s binaries (as
/// registered by Debian's qemu-user-static), if one is known.
pub fn binfmt_handler(platform: &Platform) -> Option<&'static str> {
    Some(match platform.architecture.as_str() {
        "amd64" => "qemu-x86_64",
        "arm64" => "qemu-aarch64",
        "arm" => "qemu-arm",
        "386" => "qemu-i386",
        "ppc64le" => "qemu-ppc64le",
        "s390x" => "qemu-s390x",
        "riscv64" => "qemu-riscv64",
        "mips64le" => "qemu-mips64el",
        _ => return None,
    })
}

/// Checks that binaries of `platform` can run on a host of `host` (a platform such as
/// `linux/amd64`): natively, or through a binfmt_misc handler registered in `binfmt_dir`
/// (normally `/proc/sys/fs/binfmt_misc`).
pub fn check_runnable(
    platform: &Platform,
    host: &Platform,
    binfmt_dir: &Path,
) -> Result<(), PlatformSupportError> {
    if platform.os == host.os && platform.architecture == host.architecture {
        return Ok(());
    }
    // A 64-bit x86 host runs 32-bit x86 natively.
    if host.architecture == "amd64" && platform.architecture == "386" {
        return Ok(());
    }
    let Some(handler) = binfmt_handler(platform) else {
        return Err(PlatformSupportError::Unsupported {
            platform: platform.clone(),
            host: host.to_string(),
        });
    };
    let path = binfmt_dir.join(handler);
    if path.exists() {
        Ok(())
    } else {
        Err(PlatformSupportError::MissingBinfmt {
            platform: platform.clone(),
            host: host.to_string(),
            handler: handler.to_owned(),
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_foreign_platform_needs_its_binfmt_handler() {
        let dir = tempfile::tempdir().unwrap();
        let host = Platform::linux("amd64");
        assert_eq!(
            check_runnable(&Platform::linux("amd64"), &host, dir.path()),
            Ok(())
        );
        let err = check_runnable(&Platform::linux("arm64"), &host, dir.path()).unwrap_err();
        assert!(
            matches!(&err, PlatformSupportError::MissingBinfmt { handler, .. } if handler == "qemu-aarch64")
        );
        assert!(err.to_string().contains("qemu-aarch64"), "{err}");
        fs_err::write(dir.path().join("qemu-aarch64"), "enabled\n").unwrap();
        assert_eq!(
            check_runnable(&Platform::linux("arm64"), &host, dir.path()),
            Ok(())
        );
        let odd = Platform::linux("sparc64");
        assert!(matches!(
            check_runnable(&odd, &host, dir.path()),
            Err(PlatformSupportError::Unsupported { .. })
        ));
    }
}
