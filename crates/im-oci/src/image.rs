//! An image chosen from an archive, a layout or a registry: its config, its layers, and how to
//! turn them into a [`FsView`] and read files from it.
//!
//! [`crate::open_image`] picks the image (by tag and platform) from a docker-archive tar, an OCI
//! archive tar or an OCI layout directory. [`Image::from_manifest`] builds one from a manifest
//! and config fetched elsewhere (a registry client), with a [`BlobSource`] to stream layers.
//!
//! [`Image::filesystem`] streams every layer once: it checks each blob's size and digest and
//! each uncompressed stream's diff_id as it goes, decompresses gzip and zstd, enforces
//! [`Limits`], and records where each file's bytes are. A layer whose digest the caller
//! trusts ([`Image::with_trusted_digests`], from [`crate::trust`]) is not hashed, and when it
//! is an uncompressed local blob its index is built by seeking over file bodies. [`Image::read_files`] then reads just
//! the files a test needs, seeking straight to them in uncompressed layers and re-streaming a
//! compressed layer once, up to the last file needed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use crate::compression::{Compression, sniff};
use crate::digest::{Digest, HashingReader, LimitExceeded};
use crate::error::{LayerError, OciError};
use crate::fsview::{ContentLocation, FsView, LookupError};
use crate::limits::Limits;
use crate::platform::Platform;
use crate::source::{BlobSource, LayerDescriptor};
use crate::store::Window;
use crate::tarstream::{Seekable, Stream, TarLimits, TarReader};

/// Which image to open, and with which limits.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// A tag (`name:tag`, or just `tag`) when the archive holds several images.
    pub tag: Option<String>,
    /// The platform wanted; `None` accepts a single-platform image of any platform.
    pub platform: Option<Platform>,
    pub limits: Limits,
}

/// An image ready to be read.
#[derive(Debug, Clone)]
pub struct Image {
    name: String,
    config: ImageConfiguration,
    platform: Platform,
    layers: Vec<LayerDescriptor>,
    source: Arc<dyn BlobSource>,
    limits: Limits,
    /// Blob digests known to be right (see [`crate::trust`]): not hashed again.
    trusted: Arc<BTreeSet<Digest>>,
}

/// A file that could not be read from an image.
#[derive(Debug, thiserror::Error)]
pub enum ReadFileError {
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("{path} is {size} bytes, over the limit of {limit}")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: layer {layer} ended before the file's data")]
    ShortLayer { path: String, layer: usize },
    #[error("{path}: reading layer {layer} failed")]
    Io {
        path: String,
        layer: usize,
        #[source]
        source: io::Error,
    },
    #[error("{path}: opening its layer failed")]
    Open {
        path: String,
        #[source]
        source: Arc<OciError>,
    },
}

impl Image {
    /// Assembles an image from its parts; checks the platform and the layer count.
    pub fn new(
        name: String,
        config: ImageConfiguration,
        layers: Vec<LayerDescriptor>,
        source: Arc<dyn BlobSource>,
        options: &OpenOptions,
    ) -> Result<Self, OciError> {
        let platform = Platform::new(
            &config.os().to_string(),
            &config.architecture().to_string(),
            config.variant().as_deref(),
        );
        if let Some(requested) = &options.platform
            && !platform.satisfies(requested)
        {
            return Err(OciError::PlatformMismatch {
                image: name,
                requested: requested.to_string(),
                found: platform.to_string(),
            });
        }
        if layers.len() > options.limits.max_layers {
            return Err(OciError::TooManyLayers {
                image: name,
                layers: layers.len(),
                limit: options.limits.max_layers,
            });
        }
        let diff_ids = config.rootfs().diff_ids().len();
        if diff_ids != layers.len() {
            return Err(OciError::LayerCountMismatch {
                image: name,
                layers: layers.len(),
                diff_ids,
            });
        }
        Ok(Self {
            name,
            config,
            platform,
            layers,
            source,
            limits: options.limits.clone(),
            trusted: Arc::default(),
        })
    }

    /// Builds an image from a manifest and the config bytes it points at (verified here),
    /// streaming layers from `source` by digest.
    pub fn from_manifest(
        name: String,
        manifest: &ImageManifest,
        config_bytes: &[u8],
        source: Arc<dyn BlobSource>,
        options: &OpenOptions,
    ) -> Result<Self, OciError> {
        let config_digest = Digest::try_from(manifest.config().digest())?;
        let actual = Digest::of_bytes(config_digest.algorithm(), config_bytes);
        if actual != config_digest {
            return Err(OciError::DigestMismatch {
                what: format!("config of {name}"),
                expected: config_digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let config: ImageConfiguration =
            serde_json::from_slice(config_bytes).map_err(|source| OciError::Json {
                archive: name.clone().into(),
                what: config_digest.to_string(),
                source,
            })?;
        let diff_ids = parse_diff_ids(&config)?;
        let mut layers = Vec::new();
        for (i, layer) in manifest.layers().iter().enumerate() {
            let digest = Digest::try_from(layer.digest())?;
            let media_type = layer.media_type().to_string();
            check_layer_media_type(&media_type)?;
            layers.push(LayerDescriptor {
                locator: digest.to_string(),
                digest: Some(digest),
                size: Some(layer.size()),
                media_type: Some(media_type),
                diff_id: diff_ids.get(i).cloned(),
            });
        }
        Self::new(name, config, layers, source, options)
    }

    /// Trusts these blob digests: a layer whose blob (or, for an uncompressed one, diff_id)
    /// has one of them is read without hashing it (see [`crate::trust`]).
    #[must_use]
    pub fn with_trusted_digests(mut self, digests: BTreeSet<Digest>) -> Self {
        self.trusted = Arc::new(digests);
        self
    }

    fn is_trusted(&self, layer: &LayerDescriptor) -> bool {
        match &layer.digest {
            Some(digest) => self.trusted.contains(digest),
            None => layer
                .diff_id
                .as_ref()
                .is_some_and(|d| self.trusted.contains(d)),
        }
    }

    /// How the image is named in messages (`archive.tar`, `archive.tar:tag`, a reference).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &ImageConfiguration {
        &self.config
    }

    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    pub fn layers(&self) -> &[LayerDescriptor] {
        &self.layers
    }

    /// Streams layer `index`'s blob as stored (compressed or not, unverified: verification
    /// happens in [`Image::filesystem`]).
    pub fn open_layer_blob(&self, index: usize) -> Result<Box<dyn Read + Send>, OciError> {
        self.source.open_blob(&self.layers[index])
    }

    pub(crate) fn layer_error(&self, index: usize, source: LayerError) -> OciError {
        OciError::Layer {
            image: self.name.clone(),
            index,
            digest: self.layers[index].label(),
            source: Box::new(source),
        }
    }

    /// Streams every layer once, verifying it, and returns the flattened filesystem.
    pub fn filesystem(&self) -> Result<FsView, OciError> {
        let limits = &self.limits;
        let mut view = FsView::new(limits.max_symlink_hops, limits.max_path_depth);
        let mut total: u64 = 0;
        for (index, layer) in self.layers.iter().enumerate() {
            let budget = limits
                .max_layer_bytes
                .min(limits.max_total_bytes.saturating_sub(total));
            if self.is_trusted(layer)
                && let Some(window) = self.source.open_blob_window(layer)?
                && let Some(size) = self.index_trusted_layer(&mut view, window, index, budget)?
            {
                total += size;
                view.set_layer_compression(index, Compression::None);
                continue;
            }
            let raw = self.source.open_blob(layer)?;
            let raw_limit = layer
                .size
                .unwrap_or(limits.max_layer_bytes)
                .saturating_add(1);
            let algorithm = layer
                .digest
                .as_ref()
                .or(layer.diff_id.as_ref())
                .map(Digest::algorithm);
            let mut stored = HashingReader::new(raw, algorithm, raw_limit);
            let (compression, uncompressed) = self
                .apply_layer(&mut view, &mut stored, index, budget)
                .map_err(|e| self.layer_error(index, budget_error(e, budget)))?;
            let (stored_size, stored_digest) = stored.finish().map_err(|source| {
                self.layer_error(index, LayerError::Read { offset: 0, source })
            })?;
            total += uncompressed.0;
            self.verify_layer(
                index,
                stored_size,
                stored_digest.as_ref(),
                compression,
                uncompressed.1.as_ref(),
            )?;
            view.set_layer_compression(index, compression);
        }
        Ok(view)
    }

    /// Indexes a trusted blob by seeking over file bodies, when it is uncompressed
    /// (returns its size; `None` for a compressed one, which is streamed as usual). Sizes,
    /// limits and every tar header are checked as for any layer; only hashing is skipped.
    fn index_trusted_layer(
        &self,
        view: &mut FsView,
        mut window: Window,
        index: usize,
        budget: u64,
    ) -> Result<Option<u64>, OciError> {
        let read_err = |source| self.layer_error(index, LayerError::Read { offset: 0, source });
        let mut head = [0u8; 4];
        let n = io::copy(&mut (&mut window).take(4), &mut &mut head[..]).map_err(read_err)?;
        let mut peek: &[u8] = &head[..usize::try_from(n).unwrap_or(0)];
        if sniff(&mut peek).map_err(read_err)? != Compression::None {
            return Ok(None);
        }
        io::Seek::seek(&mut window, io::SeekFrom::Start(0)).map_err(read_err)?;
        let size = window.len();
        let layer = &self.layers[index];
        if let Some(expected) = layer.size
            && expected != size
        {
            return Err(OciError::SizeMismatch {
                what: format!("layer {index} of {}", self.name),
                expected,
                actual: size,
            });
        }
        if size > budget {
            return Err(self.layer_error(index, LayerError::TooManyBytes { limit: budget }));
        }
        let tar_limits = TarLimits {
            max_extension_bytes: self.limits.max_extension_bytes,
            max_path_bytes: self.limits.max_path_bytes,
        };
        let mut reader = TarReader::new(Seekable::new(window, size), tar_limits);
        view.apply_layer(&mut reader, index, self.limits.max_entries)
            .and_then(|()| reader.finish().map(drop))
            .map_err(|e| self.layer_error(index, e))?;
        Ok(Some(size))
    }

    fn apply_layer(
        &self,
        view: &mut FsView,
        stored: &mut HashingReader<Box<dyn Read + Send>>,
        index: usize,
        budget: u64,
    ) -> Result<(Compression, (u64, Option<Digest>)), LayerError> {
        let layer = &self.layers[index];
        let mut buffered = BufReader::with_capacity(256 << 10, stored);
        let compression =
            sniff(&mut buffered).map_err(|source| LayerError::Read { offset: 0, source })?;
        // An uncompressed blob's digest is its diff_id: no need to hash it twice.
        let diff_algorithm = match compression {
            Compression::None => None,
            _ => layer.diff_id.as_ref().map(Digest::algorithm),
        };
        let decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(buffered)
                    .map_err(|source| LayerError::Read { offset: 0, source })?,
            ),
        };
        let uncompressed = HashingReader::new(decoder, diff_algorithm, budget);
        let tar_limits = TarLimits {
            max_extension_bytes: self.limits.max_extension_bytes,
            max_path_bytes: self.limits.max_path_bytes,
        };
        let mut reader = TarReader::new(Stream(uncompressed), tar_limits);
        view.apply_layer(&mut reader, index, self.limits.max_entries)?;
        let Stream(uncompressed) = reader.finish()?;
        let result = uncompressed
            .finish()
            .map_err(|source| LayerError::Read { offset: 0, source })?;
        Ok((compression, result))
    }

    fn verify_layer(
        &self,
        index: usize,
        stored_size: u64,
        stored_digest: Option<&Digest>,
        compression: Compression,
        uncompressed_digest: Option<&Digest>,
    ) -> Result<(), OciError> {
        let layer = &self.layers[index];
        let what = format!("layer {index} of {}", self.name);
        if let Some(expected) = layer.size
            && expected != stored_size
        {
            return Err(OciError::SizeMismatch {
                what,
                expected,
                actual: stored_size,
            });
        }
        let mismatch = |expected: &Digest, actual: Option<&Digest>| OciError::DigestMismatch {
            what: what.clone(),
            expected: expected.to_string(),
            actual: actual.map_or_else(|| "nothing".to_owned(), ToString::to_string),
        };
        if let Some(expected) = &layer.digest
            && Some(expected) != stored_digest
        {
            return Err(mismatch(expected, stored_digest));
        }
        if let Some(expected) = &layer.diff_id {
            let actual = if compression == Compression::None {
                stored_digest
            } else {
                uncompressed_digest
            };
            if actual.is_some_and(|a| a.algorithm() == expected.algorithm())
                && Some(expected) != actual
            {
                return Err(mismatch(expected, actual));
            }
        }
        Ok(())
    }

    /// Reads one regular file (following symlinks) of at most `limits.max_content_bytes`.
    pub fn read_file(&self, view: &FsView, path: &str) -> Result<Vec<u8>, ReadFileError> {
        self.read_files(view, &[path])
            .pop()
            .unwrap_or_else(|| unreachable_empty(path))
    }

    /// Reads several files, each layer at most once; results are in the order of `paths`.
    pub fn read_files(&self, view: &FsView, paths: &[&str]) -> Vec<Result<Vec<u8>, ReadFileError>> {
        let mut results: Vec<Option<Result<Vec<u8>, ReadFileError>>> =
            Vec::with_capacity(paths.len());
        let mut by_layer: BTreeMap<usize, Vec<(usize, ContentLocation)>> = BTreeMap::new();
        for (i, path) in paths.iter().enumerate() {
            match view.content_location(path) {
                Ok(location) if location.size > self.limits.max_content_bytes => {
                    results.push(Some(Err(ReadFileError::TooLarge {
                        path: (*path).to_owned(),
                        size: location.size,
                        limit: self.limits.max_content_bytes,
                    })));
                }
                Ok(location) => {
                    by_layer
                        .entry(location.layer)
                        .or_default()
                        .push((i, location));
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e.into()))),
            }
        }
        for (layer, mut wanted) in by_layer {
            wanted.sort_by_key(|(_, location)| location.offset);
            let compression = view.layer_compression(layer);
            for (i, result) in self.read_layer_files(layer, compression, &wanted, paths) {
                results[i] = Some(result);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Ok(Vec::new())))
            .collect()
    }

    fn read_layer_files(
        &self,
        layer: usize,
        compression: Option<Compression>,
        wanted: &[(usize, ContentLocation)],
        paths: &[&str],
    ) -> Vec<(usize, Result<Vec<u8>, ReadFileError>)> {
        let descriptor = &self.layers[layer];
        let io_err = |i: usize, source| ReadFileError::Io {
            path: paths[i].to_owned(),
            layer,
            source,
        };
        let open_err = |i: usize, source| ReadFileError::Open {
            path: paths[i].to_owned(),
            source: Arc::new(source),
        };
        if compression == Some(Compression::None) {
            let mut out = Vec::new();
            for &(i, location) in wanted {
                let result =
                    match self
                        .source
                        .open_blob_range(descriptor, location.offset, location.size)
                    {
                        Ok(Some(mut reader)) => read_exactly(&mut reader, location.size)
                            .map_err(|e| io_err(i, e))
                            .and_then(|d| {
                                d.ok_or_else(|| ReadFileError::ShortLayer {
                                    path: paths[i].to_owned(),
                                    layer,
                                })
                            }),
                        Ok(None) => break,
                        Err(e) => Err(open_err(i, e)),
                    };
                out.push((i, result));
            }
            if out.len() == wanted.len() {
                return out;
            }
        }
        // Stream the layer once, up to the last file wanted.
        let stream = match self.source.open_blob(descriptor) {
            Ok(raw) => raw,
            Err(e) => {
                let shared = Arc::new(e);
                return wanted
                    .iter()
                    .map(|&(i, _)| {
                        (
                            i,
                            Err(ReadFileError::Open {
                                path: paths[i].to_owned(),
                                source: shared.clone(),
                            }),
                        )
                    })
                    .collect();
            }
        };
        let mut buffered = BufReader::with_capacity(256 << 10, stream);
        let compression = match sniff(&mut buffered) {
            Ok(compression) => compression,
            Err(e) => {
                let shared = Arc::new(e);
                return wanted
                    .iter()
                    .map(|&(i, _)| {
                        (
                            i,
                            Err(io_err(
                                i,
                                io::Error::new(shared.kind(), Arc::clone(&shared).to_string()),
                            )),
                        )
                    })
                    .collect();
            }
        };
        let mut decoder: Box<dyn Read> = match compression {
            Compression::None => Box::new(buffered),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Compression::Zstd => match zstd::stream::read::Decoder::with_buffer(buffered) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    return wanted
                        .iter()
                        .map(|&(i, _)| (i, Err(io_err(i, io::Error::new(e.kind(), e.to_string())))))
                        .collect();
                }
            },
        };
        let mut position = 0u64;
        let mut out = Vec::new();
        for &(i, location) in wanted {
            let skip = location.offset.saturating_sub(position);
            let result = match io::copy(&mut (&mut decoder).take(skip), &mut io::sink()) {
                Ok(n) if n == skip => read_exactly(&mut decoder, location.size)
                    .map_err(|e| io_err(i, e))
                    .and_then(|d| {
                        d.ok_or_else(|| ReadFileError::ShortLayer {
                            path: paths[i].to_owned(),
                            layer,
                        })
                    }),
                Ok(_) => Err(ReadFileError::ShortLayer {
                    path: paths[i].to_owned(),
                    layer,
                }),
                Err(e) => Err(io_err(i, e)),
            };
            position = location.offset + location.size;
            out.push((i, result));
        }
        out
    }
}

fn unreachable_empty(path: &str) -> Result<Vec<u8>, ReadFileError> {
    Err(ReadFileError::Lookup(LookupError::NotFound {
        path: path.to_owned(),
    }))
}

fn read_exactly(reader: &mut dyn Read, size: u64) -> io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    reader.take(size).read_to_end(&mut data)?;
    Ok((data.len() as u64 == size).then_some(data))
}

/// Turns the `io::Error` a byte budget produces into the limit error it stands for.
fn budget_error(error: LayerError, budget: u64) -> LayerError {
    match error {
        LayerError::Read { source, .. } if is_limit(&source) => {
            LayerError::TooManyBytes { limit: budget }
        }
        other => other,
    }
}

fn is_limit(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::FileTooLarge
        || error
            .get_ref()
            .is_some_and(<dyn std::error::Error + Send + Sync>::is::<LimitExceeded>)
}

pub(crate) fn parse_diff_ids(config: &ImageConfiguration) -> Result<Vec<Digest>, OciError> {
    config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse())
        .collect()
}

pub(crate) fn check_layer_media_type(media_type: &str) -> Result<(), OciError> {
    const KNOWN: &[&str] = &[
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ];
    if KNOWN.contains(&media_type) {
        Ok(())
    } else {
        Err(OciError::UnsupportedMediaType {
            what: "a layer".to_owned(),
            media_type: media_type.to_owned(),
        })
    }
}
