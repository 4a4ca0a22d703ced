//! Target platforms (`linux/arm64/v8`): parsing, display, the directory slug used in
//! output paths, and whether the host can run a platform's binaries (natively or through
//! a qemu binfmt_misc handler).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OCI platform: operating system, CPU architecture and optional variant, in the
/// normalised spelling of the OCI image spec (`amd64`, `arm64`, not `x86_64`, `aarch64`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

/// Why a platform string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform `{input}`: {reason} (expected os/arch[/variant], e.g. linux/arm64)")]
pub struct PlatformParseError {
    pub input: String,
    pub reason: &'static str,
}

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

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_owned(),
            arch: arch.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// `linux/amd64`.
    pub fn linux_amd64() -> Self {
        Self::new("linux", "amd64", None)
    }

    /// `linux/arm64`.
    pub fn linux_arm64() -> Self {
        Self::new("linux", "arm64", None)
    }

    /// The directory name for this platform's outputs: `linux-arm64`, `linux-arm-v7`.
    pub fn slug(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}-{}-{v}", self.os, self.arch),
            None => format!("{}-{}", self.os, self.arch),
        }
    }

    /// The name of the qemu binfmt_misc handler that runs this architecture's binaries
    /// (as registered by Debian's qemu-user-static), if one is known.
    pub fn binfmt_handler(&self) -> Option<&'static str> {
        Some(match self.arch.as_str() {
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

    /// Checks that binaries of this platform can run on a host of `host` (a platform
    /// such as `linux/amd64`): natively, or through a binfmt_misc handler registered in
    /// `binfmt_dir` (normally `/proc/sys/fs/binfmt_misc`).
    pub fn check_runnable(
        &self,
        host: &Platform,
        binfmt_dir: &Path,
    ) -> Result<(), PlatformSupportError> {
        if self.os == host.os && self.arch == host.arch {
            return Ok(());
        }
        // A 64-bit x86 host runs 32-bit x86 natively.
        if host.arch == "amd64" && self.arch == "386" {
            return Ok(());
        }
        let Some(handler) = self.binfmt_handler() else {
            return Err(PlatformSupportError::Unsupported {
                platform: self.clone(),
                host: host.to_string(),
            });
        };
        let path = binfmt_dir.join(handler);
        if path.exists() {
            Ok(())
        } else {
            Err(PlatformSupportError::MissingBinfmt {
                platform: self.clone(),
                host: host.to_string(),
                handler: handler.to_owned(),
                path,
            })
        }
    }

    /// The platform of the machine this code was compiled for.
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "riscv64" => "riscv64",
            "s390x" => "s390x",
            other => other,
        };
        Self::new(std::env::consts::OS, arch, None)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| PlatformParseError {
            input: input.to_owned(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(err("it needs two or three parts separated by `/`"));
        }
        for part in &parts {
            if part.is_empty() {
                return Err(err("a part is empty"));
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(err("parts may only hold lowercase letters, digits and `_`"));
            }
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl TryFrom<String> for Platform {
    type Error = PlatformParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Platform> for String {
    fn from(p: Platform) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_with_and_without_variant() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(p, Platform::new("linux", "arm64", Some("v8")));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(p.slug(), "linux-arm64-v8");
        let p: Platform = "linux/amd64".parse().unwrap();
        assert_eq!(p.variant, None);
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(p.slug(), "linux-amd64");
    }

    #[test]
    fn rejects_malformed_platforms() {
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "Linux/amd64",
            "linux/arm 64",
            "",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad} should not parse");
        }
        let e = "linux".parse::<Platform>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid platform `linux`: it needs two or three parts separated by `/` \
             (expected os/arch[/variant], e.g. linux/arm64)"
        );
    }

    #[test]
    fn serde_uses_the_string_form() {
        let p = Platform::new("linux", "arm", Some("v7"));
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"linux/arm/v7\"");
        assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Platform>("\"nope\"").is_err());
    }

    #[test]
    fn a_foreign_platform_needs_its_binfmt_handler() {
        let dir = tempfile::tempdir().unwrap();
        let host = Platform::linux_amd64();
        assert_eq!(
            Platform::linux_amd64().check_runnable(&host, dir.path()),
            Ok(())
        );
        let err = Platform::linux_arm64()
            .check_runnable(&host, dir.path())
            .unwrap_err();
        assert!(
            matches!(&err, PlatformSupportError::MissingBinfmt { handler, .. } if handler == "qemu-aarch64")
        );
        assert!(err.to_string().contains("qemu-aarch64"), "{err}");
        fs_err::write(dir.path().join("qemu-aarch64"), "enabled\n").unwrap();
        assert_eq!(
            Platform::linux_arm64().check_runnable(&host, dir.path()),
            Ok(())
        );
        let odd = Platform::new("linux", "sparc64", None);
        assert!(matches!(
            odd.check_runnable(&host, dir.path()),
            Err(PlatformSupportError::Unsupported { .. })
        ));
    }
}
