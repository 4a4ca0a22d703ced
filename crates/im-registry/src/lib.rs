//! A native OCI distribution client for image-manager: it pushes, copies, tags, assembles
//! and inspects images in any distribution-spec registry, with no crane or skopeo at run
//! time.
//!
//! The layers, bottom up: [`Reference`]s and [`Platform`]s; credentials from the caller's
//! settings and Docker's `config.json` ([`RegistrySettings`], [`DockerConfig`]); a transport
//! (HTTP/1.1 keep-alive over rustls, auth, redirects, retries, the address guard); the
//! [`Client`] with one method per registry call; [`LocalImage`] for OCI layouts and
//! archives on disk; and the operations in [`ops`]. The API is async (tokio); cancel a
//! [`ClientConfig::cancel`] token to stop all network I/O promptly.
//!
//! This crate never prints, never reads environment variables and never logs a secret; it
//! emits `tracing` events at debug level.

mod auth;
mod challenge;
mod client;
mod config;
mod credentials;
mod digest;
mod download;
mod error;
mod guard;
mod local;
mod manifest;
pub mod ops;
mod reference;
mod referrers;
mod retry;
mod transport;
mod upload;

pub use client::{Client, ClientConfig, Limits, ManifestHead};
pub use config::ImageConfigSummary;
pub use credentials::{Credential, DockerConfig, RegistrySettings};
pub use digest::{Digest, parse_digest, sha256_digest};
pub use error::{Error, TargetKind};
pub use im_diag::Secret;
pub use im_oci::Platform;
pub use im_process::CancelToken;
/// The name this crate used before the program had one cancellation token: the same type.
pub use im_process::CancelToken as CancellationToken;
pub use local::{LocalImage, REF_NAME_ANNOTATION};
pub use manifest::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ManifestDocument, ManifestKind, OCI_INDEX, OCI_MANIFEST,
};
pub use oci_spec;
pub use reference::{DOCKER_HUB, Reference, Repository};
pub use referrers::{OCI_SUBJECT_HEADER, fallback_reference, fallback_tag};
pub use retry::RetryPolicy;
pub use transport::BlobSource;
pub use upload::BlobPush;
