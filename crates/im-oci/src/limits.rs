//! Limits that keep hostile images from exhausting memory, disk or time.
//!
//! Every reader in this crate takes a [`Limits`]; the defaults are generous for real images
//! (a full distribution image has ~30,000 entries and a few GB) and small enough that a crafted
//! archive (a gzip bomb, a million tiny entries, a path 10,000 directories deep) fails fast
//! with an error naming the limit.

/// Bounds applied while reading an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of one layer.
    pub max_layer_bytes: u64,
    /// Uncompressed bytes of all layers together.
    pub max_total_bytes: u64,
    /// Tar entries over all layers.
    pub max_entries: u64,
    /// Components of one entry name or link target.
    pub max_path_depth: usize,
    /// Bytes of one entry name or link target.
    pub max_path_bytes: usize,
    /// Bytes of one PAX or GNU long-name extension record.
    pub max_extension_bytes: u64,
    /// Bytes of one JSON document (manifest.json, index.json, a manifest, a config).
    pub max_metadata_bytes: u64,
    /// Bytes of one file's content read into memory for a test.
    pub max_content_bytes: u64,
    /// Symbolic links followed while resolving one path (the kernel's MAXSYMLINKS is 40).
    pub max_symlink_hops: usize,
    /// Layers of one image.
    pub max_layers: usize,
    /// Members of an outer archive (docker-archive or OCI archive tar).
    pub max_archive_members: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_layer_bytes: 32 << 30,
            max_total_bytes: 64 << 30,
            max_entries: 4_000_000,
            max_path_depth: 256,
            max_path_bytes: 4096,
            max_extension_bytes: 1 << 20,
            max_metadata_bytes: 8 << 20,
            max_content_bytes: 256 << 20,
            max_symlink_hops: 40,
            max_layers: 1000,
            max_archive_members: 1_000_000,
        }
    }
}
