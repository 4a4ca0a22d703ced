//! Target platforms (`os/arch[/variant]`), as OCI image indexes name them.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux(arch: &str) -> Self {
        Self {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    /// `linux-amd64`, the form used in folder names and platform tags.
    pub fn slug(&self) -> String {
        match &self.variant {
            Some(variant) => format!("{}-{}-{variant}", self.os, self.arch),
            None => format!("{}-{}", self.os, self.arch),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = |part: &str| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, arch] if valid(os) && valid(arch) => Ok(Self {
                os: (*os).into(),
                arch: (*arch).into(),
                variant: None,
            }),
            [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Self {
                os: (*os).into(),
                arch: (*arch).into(),
                variant: Some((*variant).into()),
            }),
            _ => Err(format!("`{text}` is not a platform")),
        }
    }
}

impl Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let platform: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(platform.to_string(), "linux/arm64/v8");
        assert_eq!(platform.slug(), "linux-arm64-v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/".parse::<Platform>().is_err());
        assert!("linux/amd64/v1/x".parse::<Platform>().is_err());
    }
}
