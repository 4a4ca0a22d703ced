//! Immutable build revisions (`revision: true` in `image.yml`): publishing a tag `T` of such
//! an image also writes `T-r<N>`, a tag that names that one build forever, so consumers can
//! pin a build while `T` moves. This module holds the naming rule (`T-r<N>`, `N` a decimal
//! from 1 without leading zeros) and the check that no tag or alias of the image already has
//! such a name (it would collide with a revision tag).

use std::collections::BTreeMap;

use im_diag::{Diagnostic, Diagnostics};

use crate::definition::ImageFile;
use crate::model::Tag;

/// `<tag>-r<n>`.
pub fn revision_tag(tag: &str, n: u64) -> String {
    format!("{tag}-r{n}")
}

/// `N` when `candidate` is `<tag>-r<N>`: `N` is a decimal from 1, without leading zeros
/// (`1.0-r0`, `1.0-r01` and `1.0-rc1` are not revisions of `1.0`).
pub fn revision_number(tag: &str, candidate: &str) -> Option<u64> {
    let digits = candidate.strip_prefix(tag)?.strip_prefix("-r")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The highest revision of `tag` among `tags` (a repository's tag list).
pub fn latest_revision<'a>(tag: &str, tags: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    tags.into_iter()
        .filter_map(|candidate| revision_number(tag, candidate))
        .max()
}

/// The tag among `tags` whose revision tag `name` would be (`1.0` for `1.0-r3`), if any.
pub fn revision_of<'a>(name: &str, tags: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    tags.into_iter()
        .find(|tag| revision_number(tag, name).is_some())
}

/// For an image with `revision: true`: a tag or an explicit alias named like the revision of
/// one of its tags is an error at its line; a generated alias of that shape is dropped.
pub(crate) fn check_names(
    name: &str,
    indices: &[usize],
    files: &[ImageFile],
    tags: &[Tag],
    aliases: &mut BTreeMap<String, String>,
    diagnostics: &mut Diagnostics,
) {
    let names = || tags.iter().map(|t| t.name.as_str());
    for tag in tags {
        if let Some(of) = revision_of(&tag.name, names()) {
            diagnostics.push(
                Diagnostic::error(format!(
                    "the tag `{name}:{}` has the name of a revision tag of `{name}:{of}`, and `revision: true` writes those",
                    tag.name
                ))
                .at(files[tag.file].location(tag.span))
                .with_help("rename the tag, or remove `revision: true`"),
            );
        }
    }
    aliases.retain(|alias, _| {
        let Some(of) = revision_of(alias, names()) else {
            return true;
        };
        let explicit = indices.iter().find_map(|&index| {
            let file = &files[index];
            file.aliases
                .iter()
                .find(|a| &a.name.value == alias)
                .map(|a| file.location(a.name.span))
        });
        if let Some(location) = explicit {
            diagnostics.push(
                Diagnostic::error(format!(
                    "alias `{alias}` has the name of a revision tag of `{name}:{of}`, and `revision: true` writes those"
                ))
                .at(location)
                .with_help("choose another alias name, or remove `revision: true`"),
            );
        }
        false
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_numbers_are_decimals_from_one_without_leading_zeros() {
        assert_eq!(revision_number("3.13.7", "3.13.7-r1"), Some(1));
        assert_eq!(revision_number("3.13.7", "3.13.7-r42"), Some(42));
        for other in [
            "3.13.7",
            "3.13.7-r",
            "3.13.7-r0",
            "3.13.7-r01",
            "3.13.7-rc1",
            "3.13.7-r1a",
            "3.13.7-r-1",
            "3.13.7-dev-r1",
            "3.13.70-r1",
            "3.13-r1",
            "3.13.7-r99999999999999999999999",
        ] {
            assert_eq!(revision_number("3.13.7", other), None, "{other}");
        }
        assert_eq!(revision_tag("3.13.7", 3), "3.13.7-r3");
    }

    #[test]
    fn the_latest_revision_is_the_highest_number_not_the_last_in_text_order() {
        let tags = [
            "1.0",
            "1.0-r1",
            "1.0-r9",
            "1.0-r10",
            "1.0-rc2",
            "1.0-r2",
            "1.0-dev-r30",
            "1.0-r011",
        ];
        assert_eq!(latest_revision("1.0", tags), Some(10));
        assert_eq!(latest_revision("1.0-dev", tags), Some(30));
        assert_eq!(latest_revision("2.0", tags), None);
        assert_eq!(revision_of("1.0-r3", ["0.9", "1.0"]), Some("1.0"));
        assert_eq!(revision_of("1.0-rc3", ["1.0"]), None);
    }
}
