//! Where an image's layer blobs come from: the [`BlobSource`] trait, the
//! [`LayerDescriptor`] it is asked for, and [`StoreSource`], which streams them out of an
//! archive or layout [`Store`] by member name.

use std::io::Read;
use std::sync::Arc;

use crate::digest::Digest;
use crate::error::OciError;
use crate::store::{Store, Window};

/// Where layer blobs come from.
pub trait BlobSource: Send + Sync + std::fmt::Debug {
    /// Streams the blob of `layer` (its bytes are verified by the caller).
    fn open_blob(&self, layer: &LayerDescriptor) -> Result<Box<dyn Read + Send>, OciError>;

    /// Streams `len` bytes at `offset` of the blob, when that is cheap (a local file).
    fn open_blob_range(
        &self,
        _layer: &LayerDescriptor,
        _offset: u64,
        _len: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, OciError> {
        Ok(None)
    }

    /// Opens the blob for reading and seeking, when that is cheap (a local file).
    fn open_blob_window(&self, _layer: &LayerDescriptor) -> Result<Option<Window>, OciError> {
        Ok(None)
    }
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// The digest of the blob as stored, when known (OCI layouts and registries).
    pub digest: Option<Digest>,
    /// The size of the blob as stored, when known.
    pub size: Option<u64>,
    pub media_type: Option<String>,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Option<Digest>,
    /// How the [`BlobSource`] finds the blob (an archive member, or the digest).
    pub locator: String,
}

impl LayerDescriptor {
    pub(crate) fn label(&self) -> String {
        self.digest
            .as_ref()
            .or(self.diff_id.as_ref())
            .map_or_else(|| self.locator.clone(), ToString::to_string)
    }
}

/// Streams blobs out of a [`Store`] by member name.
#[derive(Debug)]
pub(crate) struct StoreSource {
    pub store: Arc<Store>,
}

impl BlobSource for StoreSource {
    fn open_blob(&self, layer: &LayerDescriptor) -> Result<Box<dyn Read + Send>, OciError> {
        self.store.open_range(&layer.locator, 0, None)
    }

    fn open_blob_range(
        &self,
        layer: &LayerDescriptor,
        offset: u64,
        len: u64,
    ) -> Result<Option<Box<dyn Read + Send>>, OciError> {
        self.store
            .open_range(&layer.locator, offset, Some(len))
            .map(Some)
    }

    fn open_blob_window(&self, layer: &LayerDescriptor) -> Result<Option<Window>, OciError> {
        self.store.open_window(&layer.locator).map(Some)
    }
}
