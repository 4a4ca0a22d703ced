//! Platforms (`linux/amd64`, `linux/arm64/v8`) and how a requested one matches an image's.

use std::fmt;
use std::str::FromStr;

/// An OS, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// Whether an image for `self` satisfies a request for `requested`: OS and architecture
    /// must be equal; a requested variant must be equal, an unrequested one matches any, and
    /// `arm64` without a variant is `arm64/v8`.
    pub fn satisfies(&self, requested: &Platform) -> bool {
        if self.os != requested.os || self.architecture != requested.architecture {
            return false;
        }
        match (&requested.variant, &self.variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            (Some(want), None) => self.architecture == "arm64" && want == "v8",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A platform string that is not `os/arch[/variant]`.
#[derive(Debug, thiserror::Error)]
#[error("platform `{0}` is not of the form os/arch[/variant]")]
pub struct BadPlatform(pub String);

impl FromStr for Platform {
    type Err = BadPlatform;

    fn from_str(text: &str) -> Result<Self, BadPlatform> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Self::new(os, arch, None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Self::new(os, arch, Some(variant)))
            }
            _ => Err(BadPlatform(text.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_platforms() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let arm64v8: Platform = "linux/arm64/v8".parse().unwrap();
        let arm64 = Platform::new("linux", "arm64", None);
        assert_eq!(arm64v8.to_string(), "linux/arm64/v8");
        assert!(arm64.satisfies(&arm64v8));
        assert!(arm64v8.satisfies(&arm64));
        assert!(!amd64.satisfies(&arm64));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
    }
}
