//! Version schemes and the alias rules built on them.
//!
//! A scheme finds the numeric components of a tag (`9.0.100` → 9, 0, 100) and whether it is a
//! pre-release. For every proper prefix of the components an alias is formed by cutting the
//! tag's text from the end of the last kept component to the end of the last component, so
//! `3.13.2-bookworm` gives `3-bookworm` and `3.13-bookworm`; each alias points at the highest
//! version that produces it. Pre-releases never own a plain alias. Leading zeros are kept as
//! written (`2025.09` → `2025`), while comparison is numeric.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use regex::Regex;

/// How tags are read as versions.
#[derive(Debug, Clone)]
pub enum VersionScheme {
    /// `[v]MAJOR.MINOR.PATCH[-pre]`.
    Semver,
    /// Any number of numeric parts: `2025.09`, `24.04.1`.
    Dotted,
    /// No aliases at all.
    None,
    /// A user regex; its named groups are the numeric components in order, except a group
    /// named `pre`, which marks a pre-release when it matches.
    Regex(Regex),
}

impl VersionScheme {
    /// Parses the `version_scheme` value of an image definition.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "semver" => Ok(Self::Semver),
            "calver" | "dotted" => Ok(Self::Dotted),
            "none" => Ok(Self::None),
            pattern => {
                let regex = Regex::new(pattern).map_err(|error| {
                    format!("`{pattern}` is neither semver, calver, dotted, none nor a valid regex: {error}")
                })?;
                let numeric = regex
                    .capture_names()
                    .flatten()
                    .filter(|name| *name != "pre")
                    .count();
                if numeric == 0 {
                    return Err(format!(
                        "the regex `{pattern}` has no named groups, so it names no version components"
                    ));
                }
                Ok(Self::Regex(regex))
            }
        }
    }

    /// The version a tag stands for, or `None` when the tag is not a version under this scheme.
    pub fn parse_tag(&self, tag: &str) -> Option<Version> {
        match self {
            Self::None => None,
            Self::Semver => parse_semver(tag),
            Self::Dotted => parse_dotted(tag),
            Self::Regex(regex) => {
                let captures = regex.captures(tag)?;
                if captures.get(0)?.range() != (0..tag.len()) {
                    return None;
                }
                let mut components = Vec::new();
                let mut prerelease = None;
                for name in regex.capture_names().flatten() {
                    let Some(found) = captures.name(name) else {
                        continue;
                    };
                    if name == "pre" {
                        prerelease = Some(found.as_str().to_owned());
                    } else if !found.as_str().is_empty()
                        && found.as_str().bytes().all(|b| b.is_ascii_digit())
                    {
                        components.push(found.range());
                    } else {
                        return None;
                    }
                }
                components.sort_by_key(|range| range.start);
                (!components.is_empty()).then(|| Version::new(tag, components, prerelease))
            }
        }
    }
}

/// A tag read as a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    text: String,
    components: Vec<Range<usize>>,
    prerelease: Option<String>,
}

impl Version {
    fn new(text: &str, components: Vec<Range<usize>>, prerelease: Option<String>) -> Self {
        Self {
            text: text.to_owned(),
            components,
            prerelease: prerelease.filter(|p| !p.is_empty()),
        }
    }

    pub fn is_prerelease(&self) -> bool {
        self.prerelease.is_some()
    }

    fn component(&self, index: usize) -> &str {
        &self.text[self.components[index].clone()]
    }

    /// The alias names this version produces: one per proper prefix of its components.
    pub fn alias_names(&self) -> Vec<String> {
        let last_end = self.components.last().map_or(0, |range| range.end);
        (1..self.components.len())
            .map(|keep| {
                let cut = self.components[keep - 1].end;
                format!("{}{}", &self.text[..cut], &self.text[last_end..])
            })
            .collect()
    }
}

/// Which part of a version `bump` raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Major,
    Minor,
    Patch,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Major => "major",
            Level::Minor => "minor",
            Level::Patch => "patch",
        }
    }
}

/// Why a version cannot be bumped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BumpError {
    #[error("`{tag}` has {parts} version part(s); a bump needs exactly three (MAJOR.MINOR.PATCH)")]
    Parts { tag: String, parts: usize },
    #[error("`{tag}` is a pre-release; a bump does not know which release follows it")]
    Prerelease { tag: String },
    #[error("`{tag}` is too large to bump")]
    Overflow { tag: String },
}

impl Version {
    /// The tag with `level` raised and the parts after it reset to zero, everything around
    /// the numbers kept (`v1.2.3` → `v1.3.0`, `3.13.7-bookworm` → `3.13.8-bookworm`). A part
    /// written with leading zeros keeps its width (`24.04.1` → `24.05.0`).
    pub fn bump(&self, level: Level) -> Result<String, BumpError> {
        let tag = || self.text.clone();
        if self.components.len() != 3 {
            return Err(BumpError::Parts {
                tag: tag(),
                parts: self.components.len(),
            });
        }
        if self.is_prerelease() {
            return Err(BumpError::Prerelease { tag: tag() });
        }
        let raised = match level {
            Level::Major => 0,
            Level::Minor => 1,
            Level::Patch => 2,
        };
        let mut out = String::with_capacity(self.text.len() + 1);
        let mut at = 0;
        for (index, range) in self.components.iter().enumerate() {
            out.push_str(&self.text[at..range.start]);
            let written = &self.text[range.clone()];
            let value: u64 = match index.cmp(&raised) {
                Ordering::Less => {
                    out.push_str(written);
                    at = range.end;
                    continue;
                }
                Ordering::Equal => written
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .ok_or_else(|| BumpError::Overflow { tag: tag() })?,
                Ordering::Greater => 0,
            };
            let width = if written.len() > 1 && written.starts_with('0') {
                written.len()
            } else {
                1
            };
            out.push_str(&format!("{value:0width$}"));
            at = range.end;
        }
        out.push_str(&self.text[at..]);
        Ok(out)
    }
}

fn compare_numeric(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Semver precedence for pre-release strings (`rc.1` < `rc.2` < `rc.10`, numeric < alphanumeric).
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                let order = match (numeric(x), numeric(y)) {
                    (true, true) => compare_numeric(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let shared = self.components.len().min(other.components.len());
        for index in 0..shared {
            let order = compare_numeric(self.component(index), other.component(index));
            if order != Ordering::Equal {
                return order;
            }
        }
        self.components
            .len()
            .cmp(&other.components.len())
            .then_with(|| match (&self.prerelease, &other.prerelease) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => compare_prerelease(a, b),
            })
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn digits(text: &str, from: usize) -> usize {
    text[from..].bytes().take_while(u8::is_ascii_digit).count()
}

fn parse_semver(tag: &str) -> Option<Version> {
    let start = usize::from(tag.starts_with('v'));
    let mut components = Vec::new();
    let mut at = start;
    for index in 0..3 {
        if index > 0 {
            if tag.as_bytes().get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
        let len = digits(tag, at);
        if len == 0 {
            return None;
        }
        components.push(at..at + len);
        at += len;
    }
    let rest = &tag[at..];
    let prerelease = match rest.strip_prefix('-') {
        None if rest.is_empty() => None,
        Some(pre)
            if !pre.is_empty()
                && pre.split('.').all(|id| {
                    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                }) =>
        {
            Some(pre.to_owned())
        }
        _ => return None,
    };
    Some(Version::new(tag, components, prerelease))
}

fn parse_dotted(tag: &str) -> Option<Version> {
    let start = usize::from(tag.starts_with('v'));
    let mut components = Vec::new();
    let mut at = start;
    loop {
        let len = digits(tag, at);
        if len == 0 {
            return None;
        }
        components.push(at..at + len);
        at += len;
        match tag.as_bytes().get(at) {
            None => return Some(Version::new(tag, components, None)),
            Some(b'.') => at += 1,
            Some(_) => return None,
        }
    }
}

/// Generated aliases for a set of tags: alias name → the tag it points at.
///
/// `tags` are the real tag names of one image (or one variant, without its suffix).
pub fn generate_aliases<'a>(
    scheme: &VersionScheme,
    tags: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    let mut best: BTreeMap<String, Version> = BTreeMap::new();
    for tag in tags {
        let Some(version) = scheme.parse_tag(tag) else {
            continue;
        };
        if version.is_prerelease() {
            continue;
        }
        for alias in version.alias_names() {
            match best.get(&alias) {
                Some(current) if *current >= version => {}
                _ => {
                    best.insert(alias, version.clone());
                }
            }
        }
    }
    best.into_iter()
        .map(|(alias, version)| (alias, version.text))
        .collect()
}

/// The highest non-pre-release tag under `scheme`, the target of `latest`.
pub fn highest<'a>(
    scheme: &VersionScheme,
    tags: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    tags.into_iter()
        .filter_map(|tag| scheme.parse_tag(tag))
        .filter(|version| !version.is_prerelease())
        .max()
        .map(|version| version.text)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn aliases(scheme: &VersionScheme, tags: &[&str]) -> Vec<(String, String)> {
        generate_aliases(scheme, tags.iter().copied())
            .into_iter()
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn bumps_raise_one_part_and_reset_the_rest() {
        let bump =
            |scheme: &VersionScheme, tag: &str, level| scheme.parse_tag(tag).unwrap().bump(level);
        let semver = VersionScheme::Semver;
        assert_eq!(bump(&semver, "3.13.7", Level::Patch).unwrap(), "3.13.8");
        assert_eq!(bump(&semver, "3.13.7", Level::Minor).unwrap(), "3.14.0");
        assert_eq!(bump(&semver, "v3.13.7", Level::Major).unwrap(), "v4.0.0");
        assert_eq!(bump(&semver, "1.9.9", Level::Patch).unwrap(), "1.9.10");
        let dotted = VersionScheme::Dotted;
        assert_eq!(bump(&dotted, "24.04.1", Level::Minor).unwrap(), "24.05.0");
        assert_eq!(
            bump(&dotted, "2025.09", Level::Patch).unwrap_err(),
            BumpError::Parts {
                tag: "2025.09".into(),
                parts: 2
            }
        );
        let regex =
            VersionScheme::parse(r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)-bookworm$")
                .unwrap();
        assert_eq!(
            bump(&regex, "3.13.7-bookworm", Level::Patch).unwrap(),
            "3.13.8-bookworm"
        );
        assert!(matches!(
            bump(&semver, "1.0.0-rc.1", Level::Patch),
            Err(BumpError::Prerelease { .. })
        ));
    }

    #[test]
    fn semver_aliases_from_the_architecture_doc() {
        let got = aliases(&VersionScheme::Semver, &["9.0.100", "9.0.200", "9.1.50"]);
        assert_eq!(
            got,
            pairs(&[("9", "9.1.50"), ("9.0", "9.0.200"), ("9.1", "9.1.50")])
        );
    }

    #[test]
    fn semver_compares_numerically_and_skips_prereleases_and_others() {
        let got = aliases(
            &VersionScheme::Semver,
            &["3.9.1", "3.10.0", "3.11.0-rc.1", "latest", "3.13"],
        );
        assert_eq!(
            got,
            pairs(&[("3", "3.10.0"), ("3.10", "3.10.0"), ("3.9", "3.9.1")])
        );
    }

    #[test]
    fn v_prefix_is_kept_in_aliases() {
        let got = aliases(&VersionScheme::Semver, &["v1.2.3", "v1.3.0"]);
        assert_eq!(
            got,
            pairs(&[("v1", "v1.3.0"), ("v1.2", "v1.2.3"), ("v1.3", "v1.3.0")])
        );
    }

    #[test]
    fn dotted_keeps_leading_zeros_as_written() {
        let got = aliases(
            &VersionScheme::Dotted,
            &["2025.09", "2025.10", "24.04", "2024.12.1"],
        );
        assert_eq!(
            got,
            pairs(&[
                ("2024", "2024.12.1"),
                ("2024.12", "2024.12.1"),
                ("2025", "2025.10"),
                ("24", "24.04")
            ])
        );
    }

    #[test]
    fn regex_scheme_keeps_the_suffix() {
        let scheme =
            VersionScheme::parse(r"^(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)-bookworm$")
                .unwrap();
        let got = aliases(
            &scheme,
            &["3.13.2-bookworm", "3.13.10-bookworm", "3.12.9-bookworm"],
        );
        assert_eq!(
            got,
            pairs(&[
                ("3-bookworm", "3.13.10-bookworm"),
                ("3.12-bookworm", "3.12.9-bookworm"),
                ("3.13-bookworm", "3.13.10-bookworm")
            ])
        );
    }

    #[test]
    fn prerelease_order_follows_semver() {
        let mut versions: Vec<Version> = [
            "1.0.0",
            "1.0.0-rc.10",
            "1.0.0-rc.2",
            "1.0.0-alpha",
            "1.0.0-rc.2.x",
        ]
        .iter()
        .map(|t| parse_semver(t).unwrap())
        .collect();
        versions.sort();
        let order: Vec<&str> = versions.iter().map(|v| v.text.as_str()).collect();
        assert_eq!(
            order,
            [
                "1.0.0-alpha",
                "1.0.0-rc.2",
                "1.0.0-rc.2.x",
                "1.0.0-rc.10",
                "1.0.0"
            ]
        );
    }

    #[test]
    fn none_and_bad_schemes() {
        assert!(aliases(&VersionScheme::None, &["1.2.3"]).is_empty());
        assert!(VersionScheme::parse("(").is_err());
        assert!(VersionScheme::parse(r"^\d+$").is_err());
        assert_eq!(
            highest(&VersionScheme::Semver, ["1.2.3", "1.10.0", "2.0.0-rc.1"]),
            Some("1.10.0".into())
        );
    }

    proptest! {
        /// Every alias points at a tag that produces it, and no tag that produces it is higher.
        #[test]
        fn aliases_point_to_the_highest_version(raw in proptest::collection::vec((0u32..4, 0u32..12, 0u32..30, proptest::bool::ANY), 1..20)) {
            let tags: Vec<String> = raw.iter().map(|(a, b, c, pre)| {
                if *pre { format!("{a}.{b}.{c}-rc.1") } else { format!("{a}.{b}.{c}") }
            }).collect();
            let scheme = VersionScheme::Semver;
            let generated = generate_aliases(&scheme, tags.iter().map(String::as_str));
            for (alias, target) in &generated {
                let target_version = scheme.parse_tag(target).unwrap();
                prop_assert!(!target_version.is_prerelease());
                prop_assert!(target_version.alias_names().contains(alias));
                for tag in &tags {
                    let version = scheme.parse_tag(tag).unwrap();
                    if !version.is_prerelease() && version.alias_names().contains(alias) {
                        prop_assert!(version <= target_version);
                    }
                }
            }
            // Every release tag's aliases exist.
            for tag in &tags {
                let version = scheme.parse_tag(tag).unwrap();
                if !version.is_prerelease() {
                    for alias in version.alias_names() {
                        prop_assert!(generated.contains_key(&alias));
                    }
                }
            }
        }
    }
}
