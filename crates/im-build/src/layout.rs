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

use oci_spec::image::{
    Arch, Descriptor, ImageIndexBuilder, MediaType, Os, PlatformBuilder, SCHEMA_VERSION,
};

use crate::atomic::write_atomically;
use crate::oci_archive::{
    ArchiveError, OciArchive, append_bytes, append_layout_skeleton, blob_name, sha256_digest,
    to_json,
};
use crate::platform::Platform;

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
        let mut archive = OciArchive::open(path)?;
        let image = archive.image()?;
        if let Some(first) = seen.insert(image.platform.clone(), path.clone()) {
            return Err(ArchiveError::DuplicatePlatform {
                platform: image.platform,
                first,
                second: path.clone(),
            });
        }
        let mut platform = PlatformBuilder::default()
            .os(Os::from(image.platform.os.as_str()))
            .architecture(Arch::from(image.platform.arch.as_str()));
        if let Some(variant) = &image.platform.variant {
            platform = platform.variant(variant.clone());
        }
        let mut descriptor = Descriptor::new(
            MediaType::ImageManifest,
            image.descriptor.size(),
            image.descriptor.digest().clone(),
        );
        descriptor.set_platform(Some(platform.build().expect("os and architecture are set")));
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
        for (archive, image) in &mut opened {
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
                    archive.copy_entry(&name, &mut tar, &name, dest)?;
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
