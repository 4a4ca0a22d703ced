//! The SBOM formats syft writes that image-manager offers: what syft calls each, the file it
//! goes to, and the artifact type and media type it is attached to an image with.

use std::fmt;

/// An SBOM format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SbomFormat {
    /// CycloneDX JSON (the default: what most scanners read).
    #[default]
    CycloneDxJson,
    /// SPDX 2.3 JSON.
    SpdxJson,
    /// syft's own JSON (the most detail; not a standard).
    SyftJson,
}

impl SbomFormat {
    pub const ALL: [SbomFormat; 3] = [Self::CycloneDxJson, Self::SpdxJson, Self::SyftJson];

    /// The name on the command line and in syft's `-o`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CycloneDxJson => "cyclonedx-json",
            Self::SpdxJson => "spdx-json",
            Self::SyftJson => "syft-json",
        }
    }

    /// The file next to the archive.
    pub fn file_name(self) -> &'static str {
        match self {
            Self::CycloneDxJson => "sbom.cdx.json",
            Self::SpdxJson => "sbom.spdx.json",
            Self::SyftJson => "sbom.syft.json",
        }
    }

    /// The `artifactType` (and layer media type) of the SBOM attached to an image.
    pub fn artifact_type(self) -> &'static str {
        match self {
            Self::CycloneDxJson => "application/vnd.cyclonedx+json",
            Self::SpdxJson => "application/spdx+json",
            Self::SyftJson => "application/vnd.syft+json",
        }
    }

    /// The format of a name (`cyclonedx-json`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|format| format.name() == name)
    }
}

impl fmt::Display for SbomFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_files_differ() {
        for format in SbomFormat::ALL {
            assert_eq!(SbomFormat::from_name(format.name()), Some(format));
        }
        assert_eq!(SbomFormat::from_name("cyclonedx-xml"), None);
        assert_eq!(SbomFormat::default().file_name(), "sbom.cdx.json");
        assert_eq!(
            SbomFormat::SpdxJson.artifact_type(),
            "application/spdx+json"
        );
    }
}
