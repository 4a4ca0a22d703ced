//! Assembling a multi-platform OCI image layout tar (`dist/<name>/<tag>/image.tar`) from
//! the per-platform OCI archives, natively: blobs are copied (each once), and an image
//! index lists every platform's manifest with the platform read from that image's config.
//!
//! The layout's `index.json` holds one descriptor, for that image index, annotated with
//! `org.opencontainers.image.ref.name`: the shape BuildKit's OCI exporter writes for a
//! multi-platform build, which skopeo, containerd and registry clients read as one
//! multi-platform image whose digest is the index's.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType, SCHEMA_VERSION};

use crate::archive_write::{
    ArchiveError, append_bytes, append_layout_skeleton, blob_name, copy_entry, sha256_digest,
    to_json,
};
use crate::atomic::write_atomically;
use im_oci::{OciArchive, Platform};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What [`write_multi_platform_layout`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiPlatformLayout {
    /// `sha256:…` of the image index: the multi-platform image's digest.
    pub index_digest: String,
    /// Each platform and its manifest digest, in the index's order.
    pub manifests: Vec<(Platform, String)>,
}

/// Writes `dest` (atomically) as an OCI image layout tar holding every image of
/// `archives` (each an OCI archive with one image) under one image index named `ref_name`.
pub fn write_multi_platform_layout(
    archives: &[PathBuf],
    dest: &Path,
    ref_name: &str,
) -> Result<MultiPlatformLayout, ArchiveError> {
    let mut opened = Vec::with_capacity(archives.len());
    let mut seen: HashMap<Platform, PathBuf> = HashMap::new();
    let mut descriptors = Vec::with_capacity(archives.len());
    let mut manifests = Vec::with_capacity(archives.len());
    for path in archives {
        let archive = OciArchive::open(path)?;
        let image = archive.image()?;
        if let Some(first) = seen.insert(image.platform.clone(), path.clone()) {
            return Err(ArchiveError::DuplicatePlatform {
                platform: image.platform,
                first,
                second: path.clone(),
            });
        }
        let mut descriptor = Descriptor::new(
            MediaType::ImageManifest,
            image.descriptor.size(),
            image.descriptor.digest().clone(),
        );
        descriptor.set_platform(Some(image.platform.to_oci()));
        descriptors.push(descriptor);
        manifests.push((image.platform.clone(), image.manifest_digest.clone()));
        opened.push((archive, image));
    }

    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors)
        .build()
        .expect("all required index fields are set");
    let index_bytes = to_json(&index);
    let index_digest = sha256_digest(&index_bytes);
    let mut top = Descriptor::new(
        MediaType::ImageIndex,
        index_bytes.len() as u64,
        index_digest
            .parse::<oci_spec::image::Digest>()
            .expect("sha256 digest"),
    );
    top.set_annotations(Some([(REF_NAME.to_owned(), ref_name.to_owned())].into()));
    let top_index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .manifests(vec![top])
        .build()
        .expect("all required index fields are set");

    write_atomically(dest, |out| {
        let mut tar = tar::Builder::new(out);
        append_layout_skeleton(&mut tar, dest)?;
        let mut written = BTreeSet::new();
        for (archive, image) in &opened {
            let blobs = std::iter::once(image.manifest_digest.clone())
                .chain(std::iter::once(image.config_digest.clone()))
                .chain(
                    image
                        .manifest
                        .layers()
                        .iter()
                        .map(|l| l.digest().to_string()),
                );
            for digest in blobs {
                if written.insert(digest.clone()) {
                    let name = blob_name(&digest);
                    copy_entry(archive, &name, &mut tar, &name, dest)?;
                }
            }
        }
        append_bytes(&mut tar, &blob_name(&index_digest), &index_bytes, dest)?;
        append_bytes(&mut tar, "index.json", &to_json(&top_index), dest)?;
        tar.finish().map_err(|source| ArchiveError::Io {
            path: dest.to_owned(),
            source,
        })?;
        Ok::<(), ArchiveError>(())
    })?;
    Ok(MultiPlatformLayout {
        index_digest,
        manifests,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use oci_spec::image::ImageIndex;

    use super::*;
    use crate::archive_write::tests::{test_image, write_oci_archive};

    #[test]
    fn the_layout_indexes_every_platform_and_stores_each_blob_once() {
        let dir = tempfile::tempdir().unwrap();
        let amd = dir.path().join("amd64.tar");
        let arm = dir.path().join("arm64.tar");
        // Same content: the layer blob is shared, the configs differ by architecture.
        write_oci_archive(
            &amd,
            &test_image(&Platform::linux("amd64"), "same"),
            &HashMap::new(),
        );
        write_oci_archive(
            &arm,
            &test_image(&Platform::new("linux", "arm64", Some("v8")), "same"),
            &HashMap::new(),
        );
        let dest = dir.path().join("out/image.tar");
        let layout =
            write_multi_platform_layout(&[amd.clone(), arm.clone()], &dest, "x:1").unwrap();

        let out = OciArchive::open(&dest).unwrap();
        let top: ImageIndex = out.read_json("index.json").unwrap();
        assert_eq!(top.manifests().len(), 1);
        let annotations = top.manifests()[0].annotations().clone().unwrap();
        assert_eq!(annotations[REF_NAME], "x:1");
        assert_eq!(top.manifests()[0].digest().to_string(), layout.index_digest);
        let index: ImageIndex =
            serde_json::from_slice(&out.read_blob(&layout.index_digest).unwrap()).unwrap();
        let platforms: Vec<String> = index
            .manifests()
            .iter()
            .map(|d| {
                let p = d.platform().clone().unwrap();
                format!(
                    "{}/{}/{}",
                    p.os(),
                    p.architecture(),
                    p.variant().clone().unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(platforms, ["linux/amd64/", "linux/arm64/v8"]);
        for (i, source) in [amd, arm].iter().enumerate() {
            let image = OciArchive::open(source).unwrap().image().unwrap();
            assert_eq!(
                index.manifests()[i].digest().to_string(),
                image.manifest_digest
            );
            assert_eq!(layout.manifests[i].1, image.manifest_digest);
            out.read_blob(&image.manifest_digest).unwrap();
            out.read_blob(&image.config_digest).unwrap();
        }
        // oci-layout, index.json, the index, 2 manifests, 2 configs, 1 shared layer.
        let files = tar::Archive::new(fs_err::File::open(&dest).unwrap())
            .entries()
            .unwrap()
            .filter(|e| e.as_ref().unwrap().header().entry_type().is_file())
            .count();
        assert_eq!(files, 8);
    }

    #[test]
    fn two_images_for_one_platform_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.tar");
        let b = dir.path().join("b.tar");
        write_oci_archive(
            &a,
            &test_image(&Platform::linux("amd64"), "a"),
            &HashMap::new(),
        );
        write_oci_archive(
            &b,
            &test_image(&Platform::linux("amd64"), "b"),
            &HashMap::new(),
        );
        let dest = dir.path().join("image.tar");
        let err = write_multi_platform_layout(&[a, b], &dest, "x:1").unwrap_err();
        assert!(
            matches!(err, ArchiveError::DuplicatePlatform { .. }),
            "{err}"
        );
        assert!(!dest.exists());
    }
}
