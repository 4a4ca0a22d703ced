//! The platforms test images are made for: the machine's own (linux/amd64) and linux/arm64,
//! which runs under qemu-user-static through binfmt_misc.

use std::fmt;

/// A platform a test base image can be made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    /// `linux/amd64`, the machine's own.
    LinuxAmd64,
    /// `linux/arm64` (variant v8), emulated by qemu-aarch64.
    LinuxArm64,
}

impl Platform {
    /// Every platform, in a stable order.
    pub const ALL: [Platform; 2] = [Platform::LinuxAmd64, Platform::LinuxArm64];

    /// The `os/arch` form builders take: `linux/amd64`, `linux/arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "linux/amd64",
            Platform::LinuxArm64 => "linux/arm64",
        }
    }

    /// The OCI architecture: `amd64`, `arm64`.
    pub fn architecture(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "amd64",
            Platform::LinuxArm64 => "arm64",
        }
    }

    /// The OCI architecture variant, if the platform has one.
    pub fn variant(self) -> Option<&'static str> {
        match self {
            Platform::LinuxAmd64 => None,
            Platform::LinuxArm64 => Some("v8"),
        }
    }

    /// What `uname -m` prints inside a container of this platform.
    pub fn uname_machine(self) -> &'static str {
        match self {
            Platform::LinuxAmd64 => "x86_64",
            Platform::LinuxArm64 => "aarch64",
        }
    }

    /// Parses `linux/amd64`, `linux/arm64` or `linux/arm64/v8`.
    pub fn parse(text: &str) -> Option<Platform> {
        match text {
            "linux/amd64" => Some(Platform::LinuxAmd64),
            "linux/arm64" | "linux/arm64/v8" => Some(Platform::LinuxArm64),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_parses_back_from_its_name() {
        for platform in Platform::ALL {
            assert_eq!(Platform::parse(platform.as_str()), Some(platform));
        }
        assert_eq!(
            Platform::parse("linux/arm64/v8"),
            Some(Platform::LinuxArm64)
        );
        assert_eq!(Platform::parse("linux/s390x"), None);
    }
}
