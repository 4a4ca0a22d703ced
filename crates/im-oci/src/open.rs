//! Opening an image on disk: which container format it is in ([`detect_format`]) and
//! picking one image out of it ([`open_image`]), whether a docker-archive tar, an OCI
//! archive tar or an OCI layout directory.

use std::path::Path;
use std::sync::Arc;

use crate::error::OciError;
use crate::image::{Image, OpenOptions};
use crate::limits::Limits;
use crate::store::Store;
use crate::{docker_archive, oci_layout};

/// Opens the image at `path` (docker-archive tar, OCI archive tar or OCI layout directory).
pub fn open_image(path: &Path, options: &OpenOptions) -> Result<Image, OciError> {
    let store = Arc::new(Store::open(path, &options.limits)?);
    if store.contains("oci-layout") && store.contains("index.json") {
        oci_layout::select(&store, options)
    } else if store.contains("manifest.json") {
        docker_archive::select(store, options)
    } else {
        Err(OciError::NotAnImage {
            path: path.to_owned(),
        })
    }
}

/// The container format of an image on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A `docker save` style tar (`manifest.json`).
    DockerArchive,
    /// An OCI layout inside a tar.
    OciArchive,
    /// An OCI layout directory.
    OciLayout,
}

/// Tells which format the image at `path` is in (indexing a tar once, reading no layer).
pub fn detect_format(path: &Path) -> Result<ImageFormat, OciError> {
    let store = Store::open(path, &Limits::default())?;
    let oci = store.contains("oci-layout") && store.contains("index.json");
    match (
        oci,
        matches!(store, Store::Dir { .. }),
        store.contains("manifest.json"),
    ) {
        (true, true, _) => Ok(ImageFormat::OciLayout),
        (true, false, _) => Ok(ImageFormat::OciArchive),
        (false, false, true) => Ok(ImageFormat::DockerArchive),
        _ => Err(OciError::NotAnImage {
            path: path.to_owned(),
        }),
    }
}
