//! `ImageConfigSummary`: the few fields of an image config blob this crate reads (platform
//! and labels), parsed leniently so configs from any builder work.

use std::collections::BTreeMap;

use crate::{Error, Platform};

/// The platform and labels of an image config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfigSummary {
    /// `os/architecture[/variant]`, when the config names both os and architecture.
    pub platform: Option<Platform>,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct RawConfig {
    architecture: Option<String>,
    os: Option<String>,
    variant: Option<String>,
    config: Option<RawInner>,
}

#[derive(serde::Deserialize)]
struct RawInner {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

impl ImageConfigSummary {
    /// Parses a config blob; `what` names it in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, Error> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|source| Error::InvalidManifest {
                what: format!("config of {what}"),
                source,
            })?;
        let platform = match (raw.os, raw.architecture) {
            (Some(os), Some(architecture)) if !os.is_empty() && !architecture.is_empty() => {
                Some(Platform::new(&os, &architecture, raw.variant.as_deref()))
            }
            _ => None,
        };
        Ok(Self {
            platform,
            labels: raw.config.and_then(|c| c.labels).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_platform_and_labels() {
        let c = ImageConfigSummary::parse(
            br#"{"architecture":"arm","os":"linux","variant":"v7","config":{"Labels":{"k":"v"}},"rootfs":{"type":"layers","diff_ids":[]}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(c.platform, Some("linux/arm/v7".parse().unwrap()));
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        let bare = ImageConfigSummary::parse(b"{}", "x").unwrap();
        assert_eq!(bare, ImageConfigSummary::default());
    }
}
