//! Small OCI images written in Rust for tests and the benchmark: random gzip layers, a
//! config with labels, a manifest, optionally an index over several platforms, as an OCI
//! layout directory and as an OCI archive (a tar of that layout). Nothing is pulled.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What to put in one platform image.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub platform: String,
    pub layers: usize,
    pub layer_bytes: usize,
    pub labels: Vec<(String, String)>,
    pub seed: u64,
}

impl ImageSpec {
    pub fn new(platform: &str, layers: usize, layer_bytes: usize, seed: u64) -> Self {
        Self {
            platform: platform.to_owned(),
            layers,
            layer_bytes,
            labels: Vec::new(),
            seed,
        }
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// An image written to disk.
#[derive(Clone, Debug)]
pub struct WrittenImage {
    /// The OCI layout directory.
    pub layout: PathBuf,
    /// The OCI archive (tar of the layout).
    pub archive: PathBuf,
    /// `sha256:…` of the root (manifest or index).
    pub root_digest: String,
    /// `sha256:…` of each platform manifest.
    pub manifest_digests: Vec<String>,
    /// `sha256:…` of every layer.
    pub layer_digests: Vec<String>,
    /// Sum of config and layer sizes.
    pub blob_bytes: u64,
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256(bytes);
    let dir = layout.join("blobs/sha256");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join(&digest[7..]), bytes).unwrap();
    (digest, bytes.len() as u64)
}

fn descriptor(media_type: &str, digest: &str, size: u64) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": size})
}

/// Random bytes from a seed (xorshift; fast and reproducible).
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One layer: a tar with one random file, gzip-compressed. Returns (gzip, diff_id).
fn layer(seed: u64, bytes: usize) -> (Vec<u8>, String) {
    let content = random_bytes(seed, bytes);
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, format!("data/file-{seed}.bin"), &content[..])
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Writes one platform image's blobs into `layout`; returns (manifest digest, size, layer digests, blob bytes).
fn write_platform_image(layout: &Path, spec: &ImageSpec) -> (String, u64, Vec<String>, u64) {
    let mut parts = spec.platform.split('/');
    let os = parts.next().unwrap();
    let arch = parts.next().unwrap();
    let variant = parts.next();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layer_digests = Vec::new();
    let mut blob_bytes = 0;
    for i in 0..spec.layers {
        let (gz, diff_id) = layer(
            spec.seed.wrapping_mul(1000).wrapping_add(i as u64 + 1),
            spec.layer_bytes,
        );
        let (digest, size) = write_blob(layout, &gz);
        blob_bytes += size;
        layers.push(descriptor(OCI_LAYER_GZIP, &digest, size));
        layer_digests.push(digest);
        diff_ids.push(diff_id);
    }
    let labels: serde_json::Map<String, serde_json::Value> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut config = serde_json::json!({
        "architecture": arch,
        "os": os,
        "config": {"Labels": labels, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [],
    });
    if let Some(variant) = variant {
        config["variant"] = serde_json::Value::String(variant.to_owned());
    }
    let config = serde_json::to_vec(&config).unwrap();
    let (config_digest, config_size) = write_blob(layout, &config);
    blob_bytes += config_size;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config_digest, config_size),
        "layers": layers,
    }))
    .unwrap();
    let (digest, size) = write_blob(layout, &manifest);
    (digest, size, layer_digests, blob_bytes)
}

fn finish_layout(layout: &Path, archive: &Path, root: &serde_json::Value) {
    fs_err::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [root]});
    fs_err::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let file = fs_err::File::create(archive).unwrap();
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.append_dir_all(".", layout).unwrap();
    tar.into_inner().unwrap().flush().unwrap();
}

/// Writes a single-platform image under `dir` (`dir/layout`, `dir/image.tar`).
pub fn write_image(dir: &Path, spec: &ImageSpec) -> WrittenImage {
    let layout = dir.join("layout");
    let archive = dir.join("image.tar");
    fs_err::create_dir_all(&layout).unwrap();
    let (digest, size, layer_digests, blob_bytes) = write_platform_image(&layout, spec);
    let mut root = descriptor(OCI_MANIFEST, &digest, size);
    root["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "latest"});
    finish_layout(&layout, &archive, &root);
    WrittenImage {
        layout,
        archive,
        root_digest: digest.clone(),
        manifest_digests: vec![digest],
        layer_digests,
        blob_bytes,
    }
}

/// Writes a multi-platform image (an index over one manifest per spec) under `dir`.
pub fn write_index(dir: &Path, specs: &[ImageSpec]) -> WrittenImage {
    let layout = dir.join("layout");
    let archive = dir.join("image.tar");
    fs_err::create_dir_all(&layout).unwrap();
    let mut manifests = Vec::new();
    let mut digests = Vec::new();
    let mut all_layers = Vec::new();
    let mut total = 0;
    for spec in specs {
        let (digest, size, layer_digests, blob_bytes) = write_platform_image(&layout, spec);
        let mut parts = spec.platform.split('/');
        let mut platform =
            serde_json::json!({"os": parts.next().unwrap(), "architecture": parts.next().unwrap()});
        if let Some(variant) = parts.next() {
            platform["variant"] = serde_json::Value::String(variant.to_owned());
        }
        let mut d = descriptor(OCI_MANIFEST, &digest, size);
        d["platform"] = platform;
        manifests.push(d);
        digests.push(digest);
        all_layers.extend(layer_digests);
        total += blob_bytes;
    }
    let index = serde_json::to_vec(
        &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}),
    )
    .unwrap();
    let (index_digest, index_size) = write_blob(&layout, &index);
    finish_layout(
        &layout,
        &archive,
        &descriptor(OCI_INDEX, &index_digest, index_size),
    );
    WrittenImage {
        layout,
        archive,
        root_digest: index_digest,
        manifest_digests: digests,
        layer_digests: all_layers,
        blob_bytes: total,
    }
}
