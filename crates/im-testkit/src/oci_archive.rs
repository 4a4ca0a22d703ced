//! Deterministic one-image archives that both `oci-archive:` readers (buildah, skopeo,
//! podman, container-structure-test) and Docker 20.10's `docker load` accept.
//!
//! The archive is an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) with a
//! `docker save`-style `manifest.json` beside it pointing at the same blobs, the layout
//! newer `docker save` writes. Every tar entry has a fixed mtime, owner and order, and the
//! JSON documents have a fixed field order, so equal inputs give byte-identical archives.

use std::collections::BTreeMap;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    PlatformBuilder, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use crate::platform::Platform;

/// The modification time of every entry: the epoch, so nothing depends on when or where
/// the archive was made.
pub(crate) const MTIME: u64 = 0;

/// A filesystem tree to turn into a layer; entries are written sorted by path.
#[derive(Debug, Default)]
pub(crate) struct LayerTree {
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug)]
enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
}

impl LayerTree {
    pub(crate) fn dir(&mut self, path: &str, mode: u32) {
        self.entries.insert(format!("{path}/"), Entry::Dir { mode });
    }

    pub(crate) fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        self.entries
            .insert(path.to_owned(), Entry::File { mode, data });
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) {
        self.entries.insert(
            path.to_owned(),
            Entry::Symlink {
                target: target.to_owned(),
            },
        );
    }

    /// The uncompressed layer tar.
    pub(crate) fn to_tar(&self) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir { mode } => {
                    let mut header = header(tar::EntryType::Directory, *mode, 0);
                    tar.append_data(&mut header, path, std::io::empty())
                        .expect("writing a tar to memory cannot fail");
                }
                Entry::File { mode, data } => append_file(&mut tar, path, *mode, data),
                Entry::Symlink { target } => {
                    let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                    tar.append_link(&mut header, path, target)
                        .expect("writing a tar to memory cannot fail");
                }
            }
        }
        tar.into_inner()
            .expect("writing a tar to memory cannot fail")
    }
}

/// What goes into the image configuration besides the layer.
#[derive(Debug)]
pub(crate) struct ImageSpec<'a> {
    pub(crate) platform: Platform,
    pub(crate) env: &'a [&'a str],
    pub(crate) cmd: &'a [&'a str],
    pub(crate) created_by: &'a str,
}

/// A finished archive and the digests that name its image.
#[derive(Debug)]
pub(crate) struct Archive {
    pub(crate) bytes: Vec<u8>,
    /// `sha256:...` of the config blob: the image ID in Docker and containers-storage.
    pub(crate) config_digest: String,
    /// `sha256:...` of the manifest blob: the digest a registry would report.
    pub(crate) manifest_digest: String,
}

/// Builds the archive of a one-layer image from an uncompressed layer tar.
pub(crate) fn image_archive(layer_tar: &[u8], spec: &ImageSpec<'_>) -> Archive {
    let layer_digest = sha256(layer_tar);

    let mut config = ImageConfigurationBuilder::default()
        .architecture(Arch::from(spec.platform.architecture()))
        .os(Os::Linux)
        .config(
            ConfigBuilder::default()
                .env(spec.env.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .cmd(spec.cmd.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .build()
                .expect("the config has every required field"),
        )
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![layer_digest.clone()])
                .build()
                .expect("the rootfs has every required field"),
        )
        .history(vec![
            HistoryBuilder::default()
                .created_by(spec.created_by)
                .build()
                .expect("the history has every required field"),
        ]);
    if let Some(variant) = spec.platform.variant() {
        config = config.variant(variant);
    }
    let config = config
        .build()
        .expect("the image configuration has every required field");
    let config_json = serde_json::to_vec(&config).expect("an image config serializes");
    let config_digest = sha256(&config_json);

    let manifest = ImageManifestBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            MediaType::ImageConfig,
            &config_digest,
            &config_json,
        ))
        .layers(vec![descriptor(
            MediaType::ImageLayer,
            &layer_digest,
            layer_tar,
        )])
        .build()
        .expect("the manifest has every required field");
    let manifest_json = serde_json::to_vec(&manifest).expect("a manifest serializes");
    let manifest_digest = sha256(&manifest_json);

    let mut platform = PlatformBuilder::default()
        .architecture(Arch::from(spec.platform.architecture()))
        .os(Os::Linux);
    if let Some(variant) = spec.platform.variant() {
        platform = platform.variant(variant);
    }
    let mut manifest_descriptor =
        descriptor(MediaType::ImageManifest, &manifest_digest, &manifest_json);
    manifest_descriptor.set_platform(Some(
        platform
            .build()
            .expect("the platform has every required field"),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2_u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest_descriptor])
        .build()
        .expect("the index has every required field");
    let index_json = serde_json::to_vec(&index).expect("an index serializes");

    let blob_path = |digest: &str| format!("blobs/sha256/{}", hex_of(digest));
    let docker_manifest = serde_json::json!([{
        "Config": blob_path(&config_digest),
        "RepoTags": null,
        "Layers": [blob_path(&layer_digest)],
    }]);
    let docker_manifest_json =
        serde_json::to_vec(&docker_manifest).expect("a docker manifest serializes");

    let mut outer = LayerTree::default();
    outer.dir("blobs", 0o755);
    outer.dir("blobs/sha256", 0o755);
    outer.file(&blob_path(&layer_digest), 0o644, layer_tar.to_vec());
    outer.file(&blob_path(&config_digest), 0o644, config_json);
    outer.file(&blob_path(&manifest_digest), 0o644, manifest_json);
    outer.file("index.json", 0o644, index_json);
    outer.file("manifest.json", 0o644, docker_manifest_json);
    outer.file(
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );

    Archive {
        bytes: outer.to_tar(),
        config_digest,
        manifest_digest,
    }
}

/// A copy of `archive` whose `manifest.json` names the image `repo_tags`, for
/// `docker load` to load and tag in one step. Every other entry is copied unchanged.
pub(crate) fn with_repo_tags(archive: &[u8], repo_tags: &[&str]) -> Vec<u8> {
    let mut input = tar::Archive::new(archive);
    let mut output = tar::Builder::new(Vec::new());
    for entry in input.entries().expect("the archive is a tar") {
        let mut entry = entry.expect("the archive's entries read");
        let mut header = entry.header().clone();
        let path = entry.path().expect("entry paths are valid").into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("the archive's entries read");
        if path == std::path::Path::new("manifest.json") {
            let mut manifest: serde_json::Value =
                serde_json::from_slice(&data).expect("manifest.json is JSON");
            manifest[0]["RepoTags"] = serde_json::json!(repo_tags);
            data = serde_json::to_vec(&manifest).expect("a docker manifest serializes");
            header.set_size(u64::try_from(data.len()).expect("a size fits in u64"));
        }
        output
            .append_data(&mut header, &path, data.as_slice())
            .expect("writing a tar to memory cannot fail");
    }
    output
        .into_inner()
        .expect("writing a tar to memory cannot fail")
}

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn descriptor(media_type: MediaType, digest: &str, data: &[u8]) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest.parse::<Digest>().expect("a sha256 digest parses"))
        .size(u64::try_from(data.len()).expect("a blob size fits in u64"))
        .build()
        .expect("the descriptor has every required field")
}

fn header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
    let size = u64::try_from(data.len()).expect("a file size fits in u64");
    let mut header = header(tar::EntryType::Regular, mode, size);
    tar.append_data(&mut header, path, data)
        .expect("writing a tar to memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let mut tree = LayerTree::default();
        tree.dir("bin", 0o755);
        tree.file("bin/tool", 0o755, b"#!/bin/sh\n".to_vec());
        tree.symlink("bin/alias", "tool");
        image_archive(
            &tree.to_tar(),
            &ImageSpec {
                platform: Platform::LinuxArm64,
                env: &["PATH=/bin"],
                cmd: &["/bin/sh"],
                created_by: "test",
            },
        )
    }

    fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                assert_eq!(entry.header().mtime().unwrap(), MTIME);
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
                (path, data)
            })
            .collect()
    }

    #[test]
    fn with_repo_tags_changes_only_the_docker_manifest() {
        let archive = sample();
        let tagged = with_repo_tags(&archive.bytes, &["name:latest"]);
        let (before, after) = (entries(&archive.bytes), entries(&tagged));
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        for (path, data) in &before {
            if path != "manifest.json" {
                assert_eq!(data, &after[path], "{path} changed");
            }
        }
        let docker: serde_json::Value = serde_json::from_slice(&after["manifest.json"]).unwrap();
        assert_eq!(docker[0]["RepoTags"], serde_json::json!(["name:latest"]));
    }

    #[test]
    fn the_same_input_gives_byte_identical_archives() {
        let (a, b) = (sample(), sample());
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.manifest_digest, b.manifest_digest);
    }

    #[test]
    fn index_manifest_config_and_docker_manifest_agree() {
        let archive = sample();
        let files = entries(&archive.bytes);
        let blob = |digest: &str| &files[&format!("blobs/sha256/{}", hex_of(digest))];

        let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
        assert_eq!(index["manifests"][0]["digest"], archive.manifest_digest);
        assert_eq!(index["manifests"][0]["platform"]["architecture"], "arm64");
        assert_eq!(index["manifests"][0]["platform"]["variant"], "v8");
        assert_eq!(
            sha256(blob(&archive.manifest_digest)),
            archive.manifest_digest
        );

        let manifest: serde_json::Value =
            serde_json::from_slice(blob(&archive.manifest_digest)).unwrap();
        assert_eq!(manifest["config"]["digest"], archive.config_digest);
        let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
        assert_eq!(sha256(blob(layer_digest)), layer_digest);

        let config: serde_json::Value =
            serde_json::from_slice(blob(&archive.config_digest)).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
        assert_eq!(config["config"]["Cmd"][0], "/bin/sh");

        let docker: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(
            docker[0]["Config"],
            format!("blobs/sha256/{}", hex_of(&archive.config_digest))
        );
        assert_eq!(
            docker[0]["Layers"][0],
            format!("blobs/sha256/{}", hex_of(layer_digest))
        );

        let layer = entries(blob(layer_digest));
        assert_eq!(
            layer.keys().collect::<Vec<_>>(),
            ["bin/", "bin/alias", "bin/tool"]
        );
    }
}
