//! The OCI concepts image-manager shares between crates, and reading OCI and Docker images
//! without a daemon, without root and without extracting anything onto the host.
//!
//! [`Platform`] (`linux/arm64/v8`) and [`Digest`] are the one type of each concept for every
//! crate. [`OciArchive`] reads the members of an archive or layout by name (and the single
//! image of an archive, as builders write them); the registry client and the builders read
//! archives through it.
//!
//! [`open_image`] picks one image out of a docker-archive tar, an OCI archive tar or an OCI
//! layout directory (by tag and platform); [`Image::from_manifest`] makes one from a registry's
//! manifest and config with any [`BlobSource`]. [`Image::filesystem`] streams and verifies the
//! layers into a [`FsView`], the read-only flattened filesystem with the container's path
//! semantics, and [`Image::read_files`] reads the few files a caller needs from it.
//!
//! Everything an image says is untrusted: sizes, digests, names, links and counts are checked
//! against the descriptors and [`Limits`] before they are used.

pub mod archive;
mod docker_archive;
mod oci_layout;
mod store;

pub mod compare;
pub mod compression;
pub mod digest;
pub mod error;
pub mod fsview;
pub mod image;
pub mod limits;
pub mod open;
pub mod path;
pub mod platform;
pub mod source;
pub mod tarstream;
pub mod trust;

pub use archive::{ArchiveImage, OciArchive, config_platform};
pub use compression::Compression;
pub use digest::{Algorithm, Digest};
pub use docker_archive::DockerManifestEntry;
pub use error::{LayerError, OciError};
pub use fsview::{ContentLocation, FileInfo, FileKind, FsView, LookupError};
pub use image::{Image, OpenOptions, ReadFileError};
pub use limits::Limits;
pub use oci_spec::image::ImageConfiguration;
pub use open::{ImageFormat, detect_format, open_image};
pub use platform::{Platform, PlatformParseError};
pub use source::{BlobSource, LayerDescriptor};
pub use store::Window;
