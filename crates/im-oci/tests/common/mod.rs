//! Builders for hand-made layers and image archives, for the crafted-tar tests.
//!
//! Headers are written byte by byte so a test can put anything in them (`../x`, `.wh..`, a
//! PAX size that disagrees with the ustar one), which the `tar` crate's safe builder refuses.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

use im_oci::{Algorithm, Digest};

/// A layer's tar stream, built entry by entry.
#[derive(Default, Clone)]
pub struct Layer {
    bytes: Vec<u8>,
}

pub const DIR: u8 = b'5';
pub const FILE: u8 = b'0';
pub const SYMLINK: u8 = b'2';
pub const HARDLINK: u8 = b'1';

pub fn header(name: &[u8], typeflag: u8, size: u64, mode: u32, link: &[u8]) -> [u8; 512] {
    let mut header = tar::Header::new_ustar();
    {
        let ustar = header.as_ustar_mut().unwrap();
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "use pax for long names"
        );
        ustar.name[..name.len()].copy_from_slice(name);
        ustar.linkname[..link.len()].copy_from_slice(link);
    }
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::new(typeflag));
    header.set_cksum();
    let mut out = [0u8; 512];
    out.copy_from_slice(header.as_bytes());
    out
}

fn pad(bytes: &mut Vec<u8>) {
    while !bytes.len().is_multiple_of(512) {
        bytes.push(0);
    }
}

impl Layer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn raw(mut self, header: &[u8; 512], data: &[u8]) -> Self {
        self.bytes.extend_from_slice(header);
        self.bytes.extend_from_slice(data);
        pad(&mut self.bytes);
        self
    }

    pub fn dir(self, name: &str, mode: u32) -> Self {
        self.raw(&header(name.as_bytes(), DIR, 0, mode, b""), b"")
    }

    pub fn file(self, name: &str, content: &[u8], mode: u32) -> Self {
        self.raw(
            &header(name.as_bytes(), FILE, content.len() as u64, mode, b""),
            content,
        )
    }

    pub fn symlink(self, target: &str, name: &str) -> Self {
        self.raw(
            &header(name.as_bytes(), SYMLINK, 0, 0o777, target.as_bytes()),
            b"",
        )
    }

    pub fn hardlink(self, target: &str, name: &str) -> Self {
        self.raw(
            &header(name.as_bytes(), HARDLINK, 0, 0o644, target.as_bytes()),
            b"",
        )
    }

    pub fn device(self, name: &str, typeflag: u8, major: u32, minor: u32, mode: u32) -> Self {
        let mut h =
            tar::Header::from_byte_slice(&header(name.as_bytes(), typeflag, 0, mode, b"")).clone();
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        let mut out = [0u8; 512];
        out.copy_from_slice(h.as_bytes());
        self.raw(&out, b"")
    }

    /// A PAX extended header (typeflag `x`) with these records, applying to the next entry.
    pub fn pax(self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (key, value) in records {
            let body_len = key.len() + value.len() + 3;
            let mut len = body_len + body_len.to_string().len();
            if len.to_string().len() != body_len.to_string().len() {
                len += 1;
            }
            data.extend_from_slice(format!("{len} {key}=").as_bytes());
            data.extend_from_slice(value);
            data.push(b'\n');
        }
        self.raw(
            &header(b"PaxHeader", b'x', data.len() as u64, 0o644, b""),
            &data,
        )
    }

    /// The tar stream with its end-of-archive marker.
    pub fn finish(&self) -> Vec<u8> {
        let mut bytes = self.bytes.clone();
        bytes.extend_from_slice(&[0u8; 1024]);
        bytes
    }

    /// The tar stream without its end-of-archive marker.
    pub fn unfinished(&self) -> Vec<u8> {
        self.bytes.clone()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Comp {
    None,
    Gzip,
    Zstd,
}

pub fn compress(bytes: &[u8], comp: Comp) -> Vec<u8> {
    match comp {
        Comp::None => bytes.to_vec(),
        Comp::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        }
        Comp::Zstd => zstd::encode_all(bytes, 1).unwrap(),
    }
}

pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, bytes)
}

/// One image of a test OCI layout.
#[derive(Clone)]
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub comp: Comp,
    pub arch: String,
    pub ref_name: Option<String>,
    pub config_extra: serde_json::Value,
}

impl TestImage {
    pub fn new(layers: Vec<Vec<u8>>) -> Self {
        Self {
            layers,
            comp: Comp::Gzip,
            arch: "amd64".into(),
            ref_name: None,
            config_extra: serde_json::json!({}),
        }
    }
}

/// Members of an outer archive, in order.
pub type Members = Vec<(String, Vec<u8>)>;

fn config_json(arch: &str, diff_ids: &[String], extra: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": extra,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// The members of an OCI layout holding `images`. Also returns each image's manifest digest.
pub fn oci_members(images: &[TestImage]) -> (Members, Vec<Digest>) {
    let mut blobs: Members = Vec::new();
    let mut manifests = Vec::new();
    let mut descriptors = Vec::new();
    for image in images {
        let mut layer_descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for layer in &image.layers {
            let blob = compress(layer, image.comp);
            let media_type = match image.comp {
                Comp::None => "application/vnd.oci.image.layer.v1.tar",
                Comp::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
                Comp::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            let digest = sha256(&blob);
            diff_ids.push(sha256(layer).to_string());
            layer_descriptors.push(serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": blob.len()}));
            blobs.push((format!("blobs/sha256/{}", digest.hex()), blob));
        }
        let config = config_json(&image.arch, &diff_ids, &image.config_extra);
        let config_digest = sha256(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
            "layers": layer_descriptors,
        }))
        .unwrap();
        let manifest_digest = sha256(&manifest);
        let mut descriptor = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "platform": {"os": "linux", "architecture": image.arch},
        });
        if let Some(name) = &image.ref_name {
            descriptor["annotations"] =
                serde_json::json!({"org.opencontainers.image.ref.name": name});
        }
        descriptors.push(descriptor);
        blobs.push((format!("blobs/sha256/{}", config_digest.hex()), config));
        blobs.push((format!("blobs/sha256/{}", manifest_digest.hex()), manifest));
        manifests.push(manifest_digest);
    }
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": descriptors}))
            .unwrap();
    let mut members = vec![
        (
            "oci-layout".to_owned(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_owned(), index),
    ];
    members.extend(blobs);
    (members, manifests)
}

/// The members of a docker-archive holding one image with `layers` (uncompressed).
pub fn docker_members(layers: &[Vec<u8>], arch: &str) -> Members {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l).to_string()).collect();
    let config = config_json(arch, &diff_ids, &serde_json::json!({"Env": ["PATH=/bin"]}));
    let config_name = format!("{}.json", sha256(&config).hex());
    let mut members = Vec::new();
    let mut names = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("layer{i}/layer.tar");
        names.push(name.clone());
        members.push((name, layer.clone()));
    }
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": ["test/image:latest"], "Layers": names}
    ]))
    .unwrap();
    members.push((config_name, config));
    members.push(("manifest.json".to_owned(), manifest));
    members
}

/// An outer tar of `members` (plus symlink members `(name, target)`).
pub fn outer_tar(members: &[(String, Vec<u8>)], symlinks: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, name, data.as_slice())
            .unwrap();
    }
    for (name, target) in symlinks {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, name, target).unwrap();
    }
    builder.into_inner().unwrap()
}

/// Writes `bytes` to a file in a fresh temp dir.
pub fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    fs_err::write(&path, bytes).unwrap();
    (dir, path)
}
