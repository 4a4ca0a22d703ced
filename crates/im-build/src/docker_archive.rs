//! Converting between OCI archives and the docker-archive format (`docker save` /
//! `docker load`), natively. Docker Engine 20.10 can neither load nor save OCI archives,
//! so the docker backend loads parents and exports results through these.

use std::path::Path;

use oci_spec::image::{
    Descriptor, Digest, ImageIndexBuilder, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
};
use serde::Deserialize;

use crate::archive_write::{
    ArchiveError, append_bytes, append_layout_skeleton, blob_name, copy_entry, finish_single_image,
    sha256_digest, to_json,
};
use crate::atomic::write_atomically;
use im_oci::Platform;
use im_oci::digest::HashingReader;
use im_oci::{Algorithm, DockerManifestEntry, OciArchive, OciError, config_platform};

#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: Rootfs,
}

#[derive(Deserialize)]
struct Rootfs {
    diff_ids: Vec<String>,
}

/// What a conversion to OCI produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedImage {
    pub manifest_digest: String,
    pub config_digest: String,
    pub platform: Platform,
}

/// Writes `dest` (atomically) as a docker-archive of `oci`'s image, tagged `repo_tag`.
/// Blobs keep their OCI names; `manifest.json` points at them (`docker load` reads
/// compressed and uncompressed layers alike).
pub fn oci_to_docker_archive(oci: &Path, dest: &Path, repo_tag: &str) -> Result<(), ArchiveError> {
    let archive = OciArchive::open(oci)?;
    let image = archive.image()?;
    let config = blob_name(&image.config_digest);
    let layers: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|l| blob_name(l.digest().as_ref()))
        .collect();
    let manifest = vec![DockerManifestEntry {
        config: config.clone(),
        repo_tags: Some(vec![repo_tag.to_owned()]),
        layers: layers.clone(),
    }];
    write_atomically(dest, |out| {
        let mut tar = tar::Builder::new(out);
        let mut written = std::collections::BTreeSet::new();
        for name in std::iter::once(&config).chain(&layers) {
            if written.insert(name.clone()) {
                copy_entry(&archive, name, &mut tar, name, dest)?;
            }
        }
        append_bytes(&mut tar, "manifest.json", &to_json(&manifest), dest)?;
        tar.finish().map_err(|source| ArchiveError::Io {
            path: dest.to_owned(),
            source,
        })
    })
}

/// Writes `dest` (atomically) as an OCI archive of the single image in the
/// docker-archive `docker`, with `ref_name` as its `org.opencontainers.image.ref.name`.
/// Layers must be uncompressed tars (as `docker save` writes them); each is checked
/// against the config's `rootfs.diff_ids`.
pub fn docker_archive_to_oci(
    docker: &Path,
    dest: &Path,
    ref_name: &str,
) -> Result<ConvertedImage, ArchiveError> {
    let archive = OciArchive::open(docker)?;
    let manifests: Vec<DockerManifestEntry> = archive.read_json("manifest.json")?;
    let [manifest] = manifests.as_slice() else {
        return Err(OciError::NotSingleImage {
            archive: docker.to_owned(),
            count: manifests.len(),
        }
        .into());
    };
    let config_bytes = archive.read(&manifest.config)?;
    let config_digest = sha256_digest(&config_bytes);
    let json_err = |source| ArchiveError::Json {
        path: docker.to_owned(),
        entry: manifest.config.clone(),
        source,
    };
    let rootfs: ConfigRootfs = serde_json::from_slice(&config_bytes).map_err(json_err)?;
    let platform = config_platform(&config_bytes).map_err(json_err)?;
    if rootfs.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(ArchiveError::Invalid {
            path: docker.to_owned(),
            what: format!(
                "the config lists {} layers, manifest.json {}",
                rootfs.rootfs.diff_ids.len(),
                manifest.layers.len()
            ),
        });
    }
    let mut layer_descriptors = Vec::with_capacity(manifest.layers.len());
    for (layer, diff_id) in manifest.layers.iter().zip(&rootfs.rootfs.diff_ids) {
        layer_descriptors.push(Descriptor::new(
            MediaType::ImageLayer,
            archive.size(layer)?,
            parse_digest(diff_id, docker, layer)?,
        ));
    }
    let oci_manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            parse_digest(&config_digest, docker, &manifest.config)?,
        ))
        .layers(layer_descriptors)
        .build()
        .expect("all required manifest fields are set");
    let manifest_bytes = to_json(&oci_manifest);
    let manifest_digest = sha256_digest(&manifest_bytes);
    let mut descriptor = Descriptor::new(
        MediaType::ImageManifest,
        manifest_bytes.len() as u64,
        parse_digest(&manifest_digest, docker, "manifest")?,
    );
    descriptor.set_annotations(Some(
        [(
            "org.opencontainers.image.ref.name".to_owned(),
            ref_name.to_owned(),
        )]
        .into(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .manifests(vec![descriptor])
        .build()
        .expect("all required index fields are set");

    write_atomically(dest, |out| {
        let mut tar = tar::Builder::new(out);
        append_layout_skeleton(&mut tar, dest)?;
        append_bytes(&mut tar, &blob_name(&config_digest), &config_bytes, dest)?;
        let mut written = std::collections::BTreeSet::new();
        for (layer, diff_id) in manifest.layers.iter().zip(&rootfs.rootfs.diff_ids) {
            if !written.insert(diff_id.clone()) {
                continue;
            }
            let size = archive.size(layer)?;
            let mut hashing =
                HashingReader::new(archive.reader(layer)?, Some(Algorithm::Sha256), u64::MAX);
            let header = crate::archive_write::file_header(&blob_name(diff_id), size);
            tar.append(&header, &mut hashing)
                .map_err(|source| ArchiveError::Io {
                    path: dest.to_owned(),
                    source,
                })?;
            let (_, digest) = hashing.finish().map_err(|source| ArchiveError::Io {
                path: docker.to_owned(),
                source,
            })?;
            let actual = digest.map(|d| d.to_string()).unwrap_or_default();
            if &actual != diff_id {
                return Err(ArchiveError::DigestMismatch {
                    path: docker.to_owned(),
                    entry: layer.clone(),
                    expected: diff_id.clone(),
                    actual,
                });
            }
        }
        finish_single_image(tar, (&manifest_digest, &manifest_bytes), &index, dest)
    })?;
    Ok(ConvertedImage {
        manifest_digest,
        config_digest,
        platform,
    })
}

fn parse_digest(digest: &str, path: &Path, entry: &str) -> Result<Digest, ArchiveError> {
    digest.parse().map_err(|_| ArchiveError::Invalid {
        path: path.to_owned(),
        what: format!("{entry}: `{digest}` is not a valid digest"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::archive_write::tests::{test_image, write_oci_archive};

    #[test]
    fn an_image_survives_the_round_trip_through_a_docker_archive() {
        let dir = tempfile::tempdir().unwrap();
        let oci = dir.path().join("oci.tar");
        let image = test_image(&Platform::new("linux", "arm64", Some("v8")), "round");
        write_oci_archive(&oci, &image, &HashMap::new());
        let docker = dir.path().join("docker.tar");
        oci_to_docker_archive(&oci, &docker, "localhost/im-build/x:tag").unwrap();

        let d = OciArchive::open(&docker).unwrap();
        let manifest: Vec<DockerManifestEntry> = d.read_json("manifest.json").unwrap();
        assert_eq!(
            manifest[0].repo_tags.as_deref(),
            Some(&["localhost/im-build/x:tag".to_owned()][..])
        );
        assert_eq!(d.read(&manifest[0].config).unwrap(), image.config);

        let back = dir.path().join("back.tar");
        let converted = docker_archive_to_oci(&docker, &back, "x:1").unwrap();
        // The config is kept byte for byte, so the image ID (config digest) is the same.
        assert_eq!(converted.config_digest, sha256_digest(&image.config));
        assert_eq!(converted.platform.to_string(), "linux/arm64/v8");
        let read = OciArchive::open(&back).unwrap().image().unwrap();
        assert_eq!(read.manifest_digest, converted.manifest_digest);
        assert_eq!(
            read.manifest.layers()[0].digest().to_string(),
            sha256_digest(&image.layer)
        );
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let oci = dir.path().join("oci.tar");
        let image = test_image(&Platform::linux("amd64"), "x");
        let layer_name = crate::archive_write::blob_name(&sha256_digest(&image.layer));
        // The blob's name says one digest, its bytes (and so the diff_id check) another.
        let mut tampered = image.layer.clone();
        tampered[0] ^= 1;
        write_oci_archive(&oci, &image, &HashMap::from([(layer_name, tampered)]));
        let docker = dir.path().join("docker.tar");
        oci_to_docker_archive(&oci, &docker, "t:1").unwrap();
        let back = dir.path().join("back.tar");
        let err = docker_archive_to_oci(&docker, &back, "t:1").unwrap_err();
        assert!(matches!(err, ArchiveError::DigestMismatch { .. }), "{err}");
        assert!(!back.exists(), "a refused conversion leaves no archive");
    }
}
