//! Errors of image reading.
//!
//! [`OciError`] covers finding and selecting an image (archive members, blobs, manifests,
//! platforms, tags); [`LayerError`] covers what can be wrong inside one layer's tar stream and
//! is wrapped in [`OciError::Layer`] with the layer it came from. Every variant carries the
//! path, member, digest or limit it is about, and a message never repeats its source's text.

use std::io;
use std::path::PathBuf;

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read member `{member}` of {}", archive.display())]
    MemberIo {
        archive: PathBuf,
        member: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{} is neither a docker-archive (no manifest.json) nor an OCI layout (no oci-layout and index.json)",
        path.display()
    )]
    NotAnImage { path: PathBuf },
    #[error("{} is a compressed file: decompress it to a plain image tar first", path.display())]
    CompressedArchive { path: PathBuf },
    #[error("{} has no member `{member}`", archive.display())]
    MissingMember { archive: PathBuf, member: String },
    #[error("member `{member}` of {} is {size} bytes, over the limit of {limit}", archive.display())]
    MemberTooLarge {
        archive: PathBuf,
        member: String,
        size: u64,
        limit: u64,
    },
    #[error("member `{member}` of {} is a symlink loop (or a chain longer than {limit} links)", archive.display())]
    ArchiveSymlinkLoop {
        archive: PathBuf,
        member: String,
        limit: usize,
    },
    #[error("{} has more than {limit} members", archive.display())]
    TooManyMembers { archive: PathBuf, limit: u64 },
    #[error("the outer tar of {} is malformed", archive.display())]
    OuterTar {
        archive: PathBuf,
        #[source]
        source: Box<LayerError>,
    },
    #[error("`{what}` in {} is not valid JSON for its type", archive.display())]
    Json {
        archive: PathBuf,
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("malformed digest `{digest}`: {reason}")]
    MalformedDigest {
        digest: String,
        reason: &'static str,
    },
    #[error("{what} has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{} holds {count} images; exactly one image manifest was expected", archive.display())]
    NotSingleImage { archive: PathBuf, count: usize },
    #[error("blob {digest} is missing from {}", image.display())]
    MissingBlob { image: PathBuf, digest: String },
    #[error("{} holds several images; choose one with a tag: {}", image.display(), candidates.join(", "))]
    AmbiguousImage {
        image: PathBuf,
        candidates: Vec<String>,
    },
    #[error("{} has no image tagged `{tag}` (it has: {})", image.display(), candidates.join(", "))]
    NoSuchTag {
        image: PathBuf,
        tag: String,
        candidates: Vec<String>,
    },
    #[error("image {image} is for platform {found}, but {requested} was requested")]
    PlatformMismatch {
        image: String,
        requested: String,
        found: String,
    },
    #[error("image {image} has no manifest for platform {requested} (it has: {})", available.join(", "))]
    NoMatchingPlatform {
        image: String,
        requested: String,
        available: Vec<String>,
    },
    #[error("unsupported media type `{media_type}` for {what}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("image {image} has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCountMismatch {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("image {image} has {layers} layers, over the limit of {limit}")]
    TooManyLayers {
        image: String,
        layers: usize,
        limit: usize,
    },
    #[error("index nesting in {} is deeper than {limit}", image.display())]
    IndexTooDeep { image: PathBuf, limit: usize },
    #[error("layer {index} ({digest}) of image {image}")]
    Layer {
        image: String,
        index: usize,
        digest: String,
        #[source]
        source: Box<LayerError>,
    },
    #[error("blob source for {what}")]
    Source {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What is wrong inside one layer (or the outer archive) tar stream.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("read failed at byte {offset} of the uncompressed stream")]
    Read {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("truncated: the stream ends at byte {offset} {context}")]
    Truncated { offset: u64, context: &'static str },
    #[error("bad header checksum at byte {offset}")]
    BadChecksum { offset: u64 },
    #[error("non-zero bytes after the end-of-archive marker at byte {offset}")]
    TrailingGarbage { offset: u64 },
    #[error("entry `{path}` has malformed header field `{field}`")]
    BadHeader { path: String, field: &'static str },
    #[error(
        "PAX or GNU extension record of {size} bytes at byte {offset} is over the limit of {limit}"
    )]
    ExtensionTooLarge { offset: u64, size: u64, limit: u64 },
    #[error("malformed PAX record at byte {offset}")]
    BadPax { offset: u64 },
    #[error("entry `{path}` has unsupported type `{typeflag}`")]
    UnsupportedType { path: String, typeflag: char },
    #[error("entry name `{path}` escapes the image root")]
    PathEscapes { path: String },
    #[error("entry name `{path}` is {len} bytes, over the limit of {limit}")]
    PathTooLong {
        path: String,
        len: usize,
        limit: usize,
    },
    #[error("entry name `{path}` is {depth} components deep, over the limit of {limit}")]
    PathTooDeep {
        path: String,
        depth: usize,
        limit: usize,
    },
    #[error("more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("more than {limit} uncompressed bytes")]
    TooManyBytes { limit: u64 },
    #[error("entry `{path}` needs `{component}` to be a directory, but it is not")]
    NotADirectory { path: String, component: String },
    #[error("entry `{path}`: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("hardlink `{path}` points at `{target}`, which does not exist")]
    HardlinkTargetMissing { path: String, target: String },
    #[error("hardlink `{path}` points at directory `{target}`")]
    HardlinkToDirectory { path: String, target: String },
    #[error("invalid whiteout `{path}`")]
    InvalidWhiteout { path: String },
}
