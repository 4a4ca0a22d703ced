//! `Platform`: an `os/architecture[/variant]` triple as OCI image indexes and configs name it
//! (`linux/amd64`, `linux/arm64/v8`): parsing and display, its serde form (the string), the
//! slug used in folder names and per-platform tags, and how an image's platform satisfies a
//! requested one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OCI platform: operating system, CPU architecture and optional variant, in the
/// normalised spelling of the OCI image spec (`amd64`, `arm64`, not `x86_64`, `aarch64`).
/// Ordered by os, then architecture, then variant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform {
    /// The operating system (`linux`).
    pub os: String,
    /// The CPU architecture, in Go's names (`amd64`, `arm64`).
    pub architecture: String,
    /// The CPU variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

/// Why a platform string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform `{input}`: {reason} (expected os/arch[/variant], e.g. linux/arm64)")]
pub struct PlatformParseError {
    pub input: String,
    pub reason: &'static str,
}

impl Platform {
    /// A platform; an empty variant is no variant.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Self {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_owned),
        }
    }

    /// `linux/<architecture>`.
    pub fn linux(architecture: &str) -> Self {
        Self::new("linux", architecture, None)
    }

    /// The platform of the machine this code was compiled for.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Self::new(std::env::consts::OS, architecture, None)
    }

    /// `linux-arm64`, `linux-arm-v7`: the form used in folder names and per-platform tags.
    pub fn slug(&self) -> String {
        match &self.variant {
            Some(variant) => format!("{}-{}-{variant}", self.os, self.architecture),
            None => format!("{}-{}", self.os, self.architecture),
        }
    }

    /// The variant with the architecture's default filled in (`arm64` is `v8`).
    fn normalized_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            (_, variant) => variant,
        }
    }

    /// Whether an image for `self` satisfies a request for `wanted`: OS and architecture
    /// must be equal; a requested variant must be equal, an unrequested one matches any, and
    /// `arm64` without a variant is `arm64/v8`.
    pub fn satisfies(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none()
                || self.normalized_variant() == wanted.normalized_variant())
    }

    /// The platform an index entry's descriptor names.
    pub fn from_oci(platform: &oci_spec::image::Platform) -> Self {
        Self::new(
            &platform.os().to_string(),
            &platform.architecture().to_string(),
            platform.variant().as_deref(),
        )
    }

    /// The platform as an index entry's descriptor names it.
    pub fn to_oci(&self) -> oci_spec::image::Platform {
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
    type Err = PlatformParseError;

    /// Two or three non-empty parts of lowercase letters, digits and `_`, separated by `/`.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| PlatformParseError {
            input: input.chars().take(100).collect(),
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
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(err("parts may only hold lowercase letters, digits and `_`"));
            }
        }
        Ok(Self::new(parts[0], parts[1], parts.get(2).copied()))
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

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_displays_with_and_without_variant() {
        let platform = p("linux/arm64/v8");
        assert_eq!(platform, Platform::new("linux", "arm64", Some("v8")));
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!(platform.slug(), "linux-arm64-v8");
        let platform = p("linux/amd64");
        assert_eq!(platform.variant, None);
        assert_eq!(platform.to_string(), "linux/amd64");
        assert_eq!(platform.slug(), "linux-amd64");
        for s in ["linux/amd64", "linux/arm/v7", "windows/amd64"] {
            assert_eq!(p(s).to_string(), s);
        }
        assert_eq!(Platform::new("linux", "amd64", Some("")).variant, None);
    }

    #[test]
    fn rejects_malformed_platforms() {
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux//",
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
        let platform = Platform::new("linux", "arm", Some("v7"));
        let json = serde_json::to_string(&platform).unwrap();
        assert_eq!(json, "\"linux/arm/v7\"");
        assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), platform);
        assert!(serde_json::from_str::<Platform>("\"nope\"").is_err());
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
    fn orders_by_os_then_architecture_then_variant() {
        let mut platforms = vec![p("linux/arm64"), p("linux/amd64"), p("linux/arm/v7")];
        platforms.sort();
        assert_eq!(
            platforms,
            [p("linux/amd64"), p("linux/arm/v7"), p("linux/arm64")]
        );
    }

    #[test]
    fn converts_to_and_from_index_entries() {
        let platform = p("linux/arm/v7");
        assert_eq!(Platform::from_oci(&platform.to_oci()), platform);
    }
}
