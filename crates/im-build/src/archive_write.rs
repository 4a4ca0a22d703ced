//! Writing OCI archives: the small tar-writing helpers shared by the layout writer, the
//! parent renamer and the docker-archive converters, blob copies out of an archive read
//! with [`im_oci::OciArchive`], and the error of all of them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use im_oci::{Algorithm, Digest, OciArchive, OciError, Platform};

/// An error reading or writing an OCI or docker archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot read or write archive {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Read(#[from] OciError),
    #[error("entry {entry} of archive {path} is not valid JSON of the expected shape")]
    Json {
        path: PathBuf,
        entry: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("entry {entry} of archive {path} has digest {actual}, expected {expected}")]
    DigestMismatch {
        path: PathBuf,
        entry: String,
        expected: String,
        actual: String,
    },
    #[error("archive {path}: {what}")]
    Invalid { path: PathBuf, what: String },
    #[error("{second} and {first} are both images for {platform}")]
    DuplicatePlatform {
        platform: Platform,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(transparent)]
    Write(#[from] crate::atomic::AtomicWriteError),
}

/// Copies member `name` of `archive` into `out` as `dest_name`.
pub(crate) fn copy_entry<W: Write>(
    archive: &OciArchive,
    name: &str,
    out: &mut tar::Builder<W>,
    dest_name: &str,
    out_path: &Path,
) -> Result<(), ArchiveError> {
    let size = archive.size(name)?;
    let header = file_header(dest_name, size);
    let reader = archive.reader(name)?;
    out.append(&header, reader)
        .map_err(|source| ArchiveError::Io {
            path: out_path.to_owned(),
            source,
        })
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub fn blob_name(digest: &str) -> String {
    let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    format!("blobs/{algorithm}/{hex}")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, bytes).to_string()
}

/// A regular-file tar header with fixed metadata, so archives are reproducible.
pub(crate) fn file_header(name: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    // Names are short (`blobs/sha256/<64 hex>`), well within the header's field.
    header
        .set_path(name)
        .expect("archive entry names are short and relative");
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    header
}

/// Appends an in-memory file to `out`.
pub(crate) fn append_bytes<W: Write>(
    out: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    out_path: &Path,
) -> Result<(), ArchiveError> {
    let header = file_header(name, bytes.len() as u64);
    out.append(&header, bytes)
        .map_err(|source| ArchiveError::Io {
            path: out_path.to_owned(),
            source,
        })
}

/// Appends the manifest blob and the `index.json` that names it, and ends the tar: how every
/// single-image archive this crate writes ends.
pub(crate) fn finish_single_image<W: Write>(
    mut out: tar::Builder<W>,
    manifest: (&str, &[u8]),
    index: &impl serde::Serialize,
    out_path: &Path,
) -> Result<(), ArchiveError> {
    append_bytes(&mut out, &blob_name(manifest.0), manifest.1, out_path)?;
    append_bytes(&mut out, "index.json", &to_json(index), out_path)?;
    out.finish().map_err(|source| ArchiveError::Io {
        path: out_path.to_owned(),
        source,
    })
}

/// Appends the `blobs/` and `blobs/sha256/` directories and the `oci-layout` file.
pub(crate) fn append_layout_skeleton<W: Write>(
    out: &mut tar::Builder<W>,
    out_path: &Path,
) -> Result<(), ArchiveError> {
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = tar::Header::new_gnu();
        header.set_path(dir).expect("short name");
        header.set_size(0);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Directory);
        header.set_cksum();
        out.append(&header, io::empty())
            .map_err(|source| ArchiveError::Io {
                path: out_path.to_owned(),
                source,
            })?;
    }
    append_bytes(
        out,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        out_path,
    )
}

/// Serialises `value` as compact JSON (the form whose digest is recorded).
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("OCI types serialise")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::io::Write as _;

    use oci_spec::image::{
        Descriptor, ImageIndexBuilder, ImageManifestBuilder, MediaType, SCHEMA_VERSION,
    };

    use super::*;

    /// A one-layer image for `platform` whose layer holds `/hello` = `text`.
    pub(crate) struct TestImage {
        pub layer: Vec<u8>,
        pub config: Vec<u8>,
        pub manifest: Vec<u8>,
    }

    pub(crate) fn test_image(platform: &Platform, text: &str) -> TestImage {
        let mut layer = tar::Builder::new(Vec::new());
        append_bytes(&mut layer, "hello", text.as_bytes(), Path::new("layer")).unwrap();
        let layer = layer.into_inner().unwrap();
        let mut config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {"Labels": {"t": text}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]},
        });
        if let Some(v) = &platform.variant {
            config["variant"] = v.clone().into();
        }
        let config = serde_json::to_vec(&config).unwrap();
        let manifest = ImageManifestBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                config.len() as u64,
                sha256_digest(&config)
                    .parse::<oci_spec::image::Digest>()
                    .unwrap(),
            ))
            .layers(vec![Descriptor::new(
                MediaType::ImageLayer,
                layer.len() as u64,
                sha256_digest(&layer)
                    .parse::<oci_spec::image::Digest>()
                    .unwrap(),
            )])
            .build()
            .unwrap();
        TestImage {
            layer,
            config,
            manifest: to_json(&manifest),
        }
    }

    /// Writes `image` as an OCI archive at `path`, with `extra` entries overriding blobs.
    pub(crate) fn write_oci_archive(
        path: &Path,
        image: &TestImage,
        extra: &HashMap<String, Vec<u8>>,
    ) {
        let mut descriptor = Descriptor::new(
            MediaType::ImageManifest,
            image.manifest.len() as u64,
            sha256_digest(&image.manifest)
                .parse::<oci_spec::image::Digest>()
                .unwrap(),
        );
        descriptor.set_annotations(Some(
            [(
                "org.opencontainers.image.ref.name".to_owned(),
                "t:1".to_owned(),
            )]
            .into(),
        ));
        let index = ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .manifests(vec![descriptor])
            .build()
            .unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        append_layout_skeleton(&mut tar, path).unwrap();
        for blob in [&image.layer, &image.config, &image.manifest] {
            let name = blob_name(&sha256_digest(blob));
            let bytes = extra.get(&name).unwrap_or(blob);
            append_bytes(&mut tar, &name, bytes, path).unwrap();
        }
        append_bytes(&mut tar, "index.json", &to_json(&index), path).unwrap();
        fs_err::File::create(path)
            .unwrap()
            .write_all(&tar.into_inner().unwrap())
            .unwrap();
    }

    #[test]
    fn reads_the_single_image_of_an_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let image = test_image(&Platform::new("linux", "arm64", Some("v8")), "hi");
        write_oci_archive(&path, &image, &HashMap::new());
        let read = OciArchive::open(&path).unwrap().image().unwrap();
        assert_eq!(read.manifest_digest, sha256_digest(&image.manifest));
        assert_eq!(read.config_digest, sha256_digest(&image.config));
        assert_eq!(read.platform.to_string(), "linux/arm64/v8");
    }

    #[test]
    fn a_corrupted_blob_is_reported_with_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let image = test_image(&Platform::linux("amd64"), "hi");
        let config_name = blob_name(&sha256_digest(&image.config));
        let extra = HashMap::from([(config_name.clone(), b"{}".to_vec())]);
        write_oci_archive(&path, &image, &extra);
        let err = OciArchive::open(&path).unwrap().image().unwrap_err();
        assert!(
            matches!(&err, OciError::DigestMismatch { what, actual, .. } if what.contains(&config_name) && *actual == sha256_digest(b"{}")),
            "{err}"
        );
    }

    #[test]
    fn a_missing_index_names_the_archive_and_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.tar");
        fs_err::write(&path, tar::Builder::new(Vec::new()).into_inner().unwrap()).unwrap();
        let err = OciArchive::open(&path).unwrap().image().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{} has no member `index.json`", path.display())
        );
    }
}
