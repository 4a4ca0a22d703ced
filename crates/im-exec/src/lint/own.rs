//! image-manager's own rules ([`im_lint::rules`]) applied to the selected tags: what they need
//! from the project (locks, the graph's external bases, rootfs files, test configs) is
//! gathered here.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use im_diag::display_path;
use im_dockerfile::RefKind;
use im_graph::{EdgeKind, NodeId};
use im_lint::rules::{self, LOCK_FILE, NO_TEST_CONFIG, SECRET_IN_ROOTFS, UNPINNED_BASE};
use im_lint::{Finding, Place, Tool};
use im_render::RenderedTag;
use im_render::rootfs::Entry;
use im_render::source_map::SourceMap;

use super::{LintError, at_line, tag_name};
use crate::prepare::Prepared;

fn shown(root: &Path, path: &Path) -> String {
    display_path(root, path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn finding(rule: rules::Rule, message: String, location: Place, tag: &RenderedTag) -> Finding {
    Finding {
        rule: rule.id.to_owned(),
        level: rule.level,
        tool: Tool::ImageManager,
        message,
        location,
        rendered: None,
        tags: vec![tag_name(tag)],
        help_uri: None,
    }
}

/// The findings of the own rules for `tags`; `map_of` gives a tag's source map.
pub fn findings(
    prepared: &Prepared,
    tags: &[&RenderedTag],
    map_of: &dyn Fn(&RenderedTag) -> Result<SourceMap, LintError>,
) -> Result<Vec<Finding>, LintError> {
    let mut out = Vec::new();
    for tag in tags {
        out.extend(unpinned_bases(prepared, tag, map_of)?);
        out.extend(no_test_config(prepared, tag));
    }
    out.extend(secrets(&prepared.project.root, tags));
    Ok(out)
}

/// `IM001`: the tag's external `FROM`s without a digest, when its image folder has a lock.
fn unpinned_bases(
    prepared: &Prepared,
    tag: &RenderedTag,
    map_of: &dyn Fn(&RenderedTag) -> Result<SourceMap, LintError>,
) -> Result<Vec<Finding>, LintError> {
    let project = &prepared.project;
    let Some(definition) = project.tag_of(&tag.image, &tag.tag) else {
        return Ok(Vec::new());
    };
    let lock = project.file_of(definition).dir.join(LOCK_FILE);
    if !lock.is_file() {
        return Ok(Vec::new());
    }
    let Some(node) = prepared.graph.index_of(&NodeId::new(&tag.image, &tag.tag)) else {
        return Ok(Vec::new());
    };
    let externals = &prepared.graph.externals[node];
    let unpinned: Vec<_> = tag
        .parsed
        .external_refs()
        .iter()
        .filter(|reference| reference.kind == RefKind::From && reference.image.digest().is_none())
        .filter(|reference| {
            let written = reference.image.to_string();
            externals
                .iter()
                .any(|e| e.kind == EdgeKind::From && e.reference == written)
        })
        .collect();
    if unpinned.is_empty() {
        return Ok(Vec::new());
    }
    let map = map_of(tag)?;
    let lock = shown(&project.root, &lock);
    Ok(unpinned
        .into_iter()
        .map(|reference| {
            let (location, rendered) = at_line(tag, &map, reference.position.line, None);
            Finding {
                rendered,
                ..finding(
                    UNPINNED_BASE,
                    rules::unpinned_base_message(&reference.image.to_string(), &lock),
                    location,
                    tag,
                )
            }
        })
        .collect())
}

/// `IM003`: a tag without a test config, reported at its `image.yml`.
fn no_test_config(prepared: &Prepared, tag: &RenderedTag) -> Option<Finding> {
    if tag.has_test {
        return None;
    }
    let project = &prepared.project;
    let definition = project.tag_of(&tag.image, &tag.tag)?;
    let file = &project.file_of(definition).file;
    Some(finding(
        NO_TEST_CONFIG,
        rules::no_test_config_message(),
        Place::file(shown(&project.root, file)),
        tag,
    ))
}

/// The first [`rules::SECRET_SCAN_BYTES`] of `path` (an unreadable file reads as empty: the
/// rootfs sync reports it).
fn head(path: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    if let Ok(file) = fs_err::File::open(path) {
        let _ = file
            .take(rules::SECRET_SCAN_BYTES as u64)
            .read_to_end(&mut bytes);
    }
    bytes
}

/// `IM002`: rootfs files that look like secrets, each source file read once.
fn secrets(root: &Path, tags: &[&RenderedTag]) -> Vec<Finding> {
    let mut verdicts: HashMap<PathBuf, Option<(&'static str, Option<usize>)>> = HashMap::new();
    let mut out = Vec::new();
    for tag in tags {
        for (inside, entry) in &tag.overlay.entries {
            let Entry::File { source, .. } = entry else {
                continue;
            };
            let inside = inside.to_string_lossy();
            let verdict = *verdicts
                .entry(source.clone())
                .or_insert_with(|| rules::secret(&inside, &head(source)));
            let Some((what, line)) = verdict else {
                continue;
            };
            let file = shown(root, source);
            let location = match line {
                Some(line) => Place::line(file, line, None),
                None => Place::file(file),
            };
            out.push(finding(
                SECRET_IN_ROOTFS,
                rules::secret_message(&inside, what),
                location,
                tag,
            ));
        }
    }
    out
}
