//! Naming parents in a built image as the Dockerfile does. Builders record the image a
//! build started from: buildah writes `FROM localhost/im-build/<step>:…-parent-0` into the
//! config's history and the `org.opencontainers.image.base.name`/`.base.digest` manifest
//! annotations, with the name and the store's digest of the step-unique copy of the parent
//! that the build loaded. Those would make the image depend on where and how it was built
//! (the names carry a hash of the output path), so two checkouts of one commit would not
//! give one digest. This rewrites them to the reference the Dockerfile wrote (`base:1.0.0`)
//! and the parent's real manifest digest; layers are never touched, only the manifest and
//! config are written again (so their digests change, deterministically). podman's notes of
//! the intermediate images of its own store are dropped for the same reason.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::archive_write::{
    ArchiveError, append_bytes, append_layout_skeleton, blob_name, copy_entry, finish_single_image,
    sha256_digest, to_json,
};
use crate::atomic::write_atomically;

const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// One parent as the builder knew it and as it really is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParentName {
    /// The step-unique name the builder loaded it under.
    pub temporary: String,
    /// The reference the Dockerfile wrote.
    pub reference: String,
    /// The parent's manifest digest.
    pub digest: String,
}

/// Writes `archive` to `dest` with every temporary parent name replaced and podman's
/// intermediate IDs dropped; returns `false` (and writes nothing) when there is none.
pub(crate) fn rename_parents(
    archive: &Path,
    dest: &Path,
    parents: &[ParentName],
) -> Result<bool, ArchiveError> {
    let source = im_oci::OciArchive::open(archive)?;
    let image = source.image()?;
    let json = |bytes: &[u8], entry: &str| {
        serde_json::from_slice::<Value>(bytes).map_err(|error| ArchiveError::Json {
            path: archive.to_owned(),
            entry: entry.to_owned(),
            source: error,
        })
    };
    let mut manifest = json(
        &source.read_blob(&image.manifest_digest)?,
        &blob_name(&image.manifest_digest),
    )?;
    let mut config = json(
        &source.read_blob(&image.config_digest)?,
        &blob_name(&image.config_digest),
    )?;
    let mut changed = false;
    if let Some(history) = config.get_mut("history").and_then(Value::as_array_mut) {
        for entry in history {
            for field in ["created_by", "comment"] {
                if let Some(Value::String(text)) = entry.get_mut(field) {
                    changed |= replace_names(text, parents);
                }
            }
            // podman's layered builds note the intermediate image each step started from
            // (`FROM 0786af7d5c9d`): an ID of its store, meaningless anywhere else.
            if let Some(object) = entry.as_object_mut()
                && object
                    .get("comment")
                    .and_then(Value::as_str)
                    .is_some_and(is_intermediate_id)
            {
                object.remove("comment");
                changed = true;
            }
        }
    }
    if let Some(annotations) = manifest
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        let named = annotations
            .get(BASE_NAME)
            .and_then(Value::as_str)
            .and_then(|name| parents.iter().find(|p| same_name(name, &p.temporary)));
        if let Some(parent) = named {
            annotations.insert(BASE_NAME.to_owned(), parent.reference.clone().into());
            annotations.insert(BASE_DIGEST.to_owned(), parent.digest.clone().into());
            changed = true;
        }
    }
    if !changed {
        return Ok(false);
    }
    let config_bytes = to_json(&config);
    let config_digest = sha256_digest(&config_bytes);
    manifest["config"]["digest"] = config_digest.clone().into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = to_json(&manifest);
    let manifest_digest = sha256_digest(&manifest_bytes);
    let mut index: Value = source.read_json("index.json")?;
    let descriptor = &mut index["manifests"][0];
    descriptor["digest"] = manifest_digest.clone().into();
    descriptor["size"] = manifest_bytes.len().into();
    let layers: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    write_atomically(dest, |out| {
        let mut tar = tar::Builder::new(out);
        append_layout_skeleton(&mut tar, dest)?;
        let mut written = std::collections::BTreeSet::new();
        for digest in &layers {
            if written.insert(digest.clone()) {
                let name = blob_name(digest);
                copy_entry(&source, &name, &mut tar, &name, dest)?;
            }
        }
        append_bytes(&mut tar, &blob_name(&config_digest), &config_bytes, dest)?;
        finish_single_image(tar, (&manifest_digest, &manifest_bytes), &index, dest)
    })?;
    Ok(true)
}

/// `FROM <hex image ID>`, as podman records intermediate images.
fn is_intermediate_id(comment: &str) -> bool {
    comment.strip_prefix("FROM ").is_some_and(|id| {
        (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// Whether `name` is `temporary`, with or without the `localhost/` a store adds.
fn same_name(name: &str, temporary: &str) -> bool {
    name == temporary
        || name.strip_prefix("localhost/") == Some(temporary)
        || temporary.strip_prefix("localhost/") == Some(name)
}

/// Replaces every temporary name in `text` by its reference; whether anything changed.
fn replace_names(text: &mut String, parents: &[ParentName]) -> bool {
    let mut changed = false;
    for parent in parents {
        let bare = parent
            .temporary
            .strip_prefix("localhost/")
            .unwrap_or(&parent.temporary);
        // The full name first, so `localhost/` is not left behind.
        for name in [parent.temporary.as_str(), bare] {
            if text.contains(name) {
                *text = text.replace(name, &parent.reference);
                changed = true;
            }
        }
    }
    changed
}

/// The parents of a step by temporary name, from the rewrite's replacements (reference →
/// temporary name) and the parents' digests (reference → digest).
pub(crate) fn parent_names(
    replacements: &BTreeMap<String, String>,
    digests: &BTreeMap<String, String>,
) -> Vec<ParentName> {
    replacements
        .iter()
        .filter_map(|(reference, temporary)| {
            Some(ParentName {
                temporary: temporary.clone(),
                reference: reference.clone(),
                digest: digests.get(reference)?.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_replaced_with_or_without_localhost() {
        let parents = [ParentName {
            temporary: "localhost/im-build/app-1-abcd:linux-amd64-parent-0".into(),
            reference: "base:1".into(),
            digest: "sha256:b".into(),
        }];
        let mut comment = "FROM localhost/im-build/app-1-abcd:linux-amd64-parent-0".to_owned();
        assert!(replace_names(&mut comment, &parents));
        assert_eq!(comment, "FROM base:1");
        let mut bare = "FROM im-build/app-1-abcd:linux-amd64-parent-0".to_owned();
        assert!(replace_names(&mut bare, &parents));
        assert_eq!(bare, "FROM base:1");
        assert!(is_intermediate_id("FROM 0786af7d5c9d"));
        assert!(!is_intermediate_id("FROM base:1"));
        let mut other = "RUN echo hi".to_owned();
        assert!(!replace_names(&mut other, &parents));
        assert!(same_name(
            "im-build/app-1-abcd:linux-amd64-parent-0",
            &parents[0].temporary
        ));
    }
}
