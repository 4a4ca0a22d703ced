//! `Platform`: an `os/architecture[/variant]` triple, how one is written on the command line,
//! and how a wanted platform matches what an index or an image config says.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The platform an image runs on, for example `linux/arm64` or `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// The operating system (`linux`).
    pub os: String,
    /// The CPU architecture, in Go's names (`amd64`, `arm64`).
    pub architecture: String,
    /// The CPU variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform without a variant.
    pub fn new(os: &str, architecture: &str) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: None,
        }
    }

    /// The variant with the architecture's default filled in (`arm64` is `v8`).
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, variant) => variant,
        }
    }

    /// Whether an image for `self` satisfies a request for `wanted`: same OS and
    /// architecture, and the same variant when `wanted` names one.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none()
                || self.normalized_variant() == wanted.normalized_variant())
    }

    /// The suffix per-platform tags carry, `linux-arm64` or `linux-arm-v7`.
    pub fn tag_suffix(&self) -> String {
        match &self.variant {
            Some(variant) => format!("{}-{}-{variant}", self.os, self.architecture),
            None => format!("{}-{}", self.os, self.architecture),
        }
    }

    pub(crate) fn from_oci(platform: &oci_spec::image::Platform) -> Self {
        Self {
            os: platform.os().to_string(),
            architecture: platform.architecture().to_string(),
            variant: platform.variant().clone(),
        }
    }

    pub(crate) fn to_oci(&self) -> oci_spec::image::Platform {
        let mut platform = oci_spec::image::Platform::default();
        platform.set_os(self.os.as_str().into());
        platform.set_architecture(self.architecture.as_str().into());
        platform.set_variant(self.variant.clone());
        platform
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

impl FromStr for Platform {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = input.split('/').collect();
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
            return Err(Error::InvalidPlatform {
                input: input.chars().take(100).collect(),
            });
        }
        Ok(Self {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Platform;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["linux/amd64", "linux/arm/v7", "windows/amd64"] {
            assert_eq!(p(s).to_string(), s);
        }
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
        assert!("Linux/amd64".parse::<Platform>().is_err());
    }

    #[test]
    fn arm64_without_variant_is_v8() {
        assert!(p("linux/arm64").satisfies(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").satisfies(&p("linux/arm64")));
        assert!(!p("linux/arm/v6").satisfies(&p("linux/arm/v7")));
        assert!(p("linux/arm/v7").satisfies(&p("linux/arm")));
        assert!(!p("linux/amd64").satisfies(&p("linux/arm64")));
    }

    #[test]
    fn tag_suffix_names_the_variant() {
        assert_eq!(p("linux/arm/v7").tag_suffix(), "linux-arm-v7");
        assert_eq!(p("linux/amd64").tag_suffix(), "linux-amd64");
    }
}
