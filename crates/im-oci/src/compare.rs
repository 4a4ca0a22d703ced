//! Where two images of the same thing first differ: their configs (the first differing
//! field, by JSON path), their layer counts, or the first differing entry of the first
//! differing layer (path, type, mode, owner, time, link or content). For
//! `verify-reproducible`, which rebuilds an image elsewhere and must say *why* the digests
//! differ, not only that they do.

use std::io::{BufReader, Read};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::compression::{Compression, sniff};
use crate::image::Image;
use crate::tarstream::{EntryKind, Stream, TarEntry, TarLimits, TarReader};
use crate::{LayerError, OciError};

/// Files larger than this are compared by size only.
const MAX_COMPARED_FILE: u64 = 256 << 20;

/// The first difference between two images.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "kebab-case")]
pub enum Difference {
    /// The image configs differ at `path` (`history[3].created`, `config.Labels.x`).
    Config {
        path: String,
        first: String,
        second: String,
    },
    /// One image has more layers.
    LayerCount { first: usize, second: usize },
    /// Layer `index` differs first at `entry`.
    Layer {
        index: usize,
        entry: String,
        what: String,
    },
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Config {
                path,
                first,
                second,
            } => write!(f, "config {path}: {first} vs {second}"),
            Difference::LayerCount { first, second } => {
                write!(f, "{first} layers vs {second}")
            }
            Difference::Layer { index, entry, what } => {
                write!(f, "layer {index}, {entry}: {what}")
            }
        }
    }
}

/// The first difference between `first` and `second`, or `None` when their configs and every
/// layer's entries are the same.
pub fn first_difference(first: &Image, second: &Image) -> Result<Option<Difference>, OciError> {
    let configs = (
        serde_json::to_value(first.config()).unwrap_or(Value::Null),
        serde_json::to_value(second.config()).unwrap_or(Value::Null),
    );
    // Layers first: a layer difference explains a diff_ids difference in the config.
    let count = (first.layers().len(), second.layers().len());
    for index in 0..count.0.min(count.1) {
        if let Some(difference) = layer_difference(first, second, index)? {
            return Ok(Some(difference));
        }
    }
    if count.0 != count.1 {
        return Ok(Some(Difference::LayerCount {
            first: count.0,
            second: count.1,
        }));
    }
    Ok(
        json_difference("", &configs.0, &configs.1).map(|(path, a, b)| Difference::Config {
            path,
            first: a,
            second: b,
        }),
    )
}

/// The first JSON path where `a` and `b` differ, with both values.
fn json_difference(path: &str, a: &Value, b: &Value) -> Option<(String, String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|key| {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                json_difference(
                    &child,
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) => (0..x.len().max(y.len())).find_map(|i| {
            json_difference(
                &format!("{path}[{i}]"),
                x.get(i).unwrap_or(&Value::Null),
                y.get(i).unwrap_or(&Value::Null),
            )
        }),
        _ if a == b => None,
        _ => Some((path.to_owned(), a.to_string(), b.to_string())),
    }
}

/// One entry as compared: everything but where its data sits.
#[derive(PartialEq, Eq)]
struct Compared {
    entry: TarEntry,
    content: Option<Vec<u8>>,
}

fn layer_difference(
    first: &Image,
    second: &Image,
    index: usize,
) -> Result<Option<Difference>, OciError> {
    if first.layers()[index].diff_id.is_some()
        && first.layers()[index].diff_id == second.layers()[index].diff_id
    {
        return Ok(None);
    }
    let mut left = layer_reader(first, index)?;
    let mut right = layer_reader(second, index)?;
    loop {
        let pair = (
            next(first, &mut left, index)?,
            next(second, &mut right, index)?,
        );
        let (ours, theirs) = match pair {
            (None, None) => return Ok(None),
            (Some(only), None) => {
                return Ok(Some(layer_diff(
                    index,
                    &only.entry,
                    "only in the first image",
                )));
            }
            (None, Some(only)) => {
                return Ok(Some(layer_diff(
                    index,
                    &only.entry,
                    "only in the second image",
                )));
            }
            (Some(ours), Some(theirs)) => (ours, theirs),
        };
        if ours.entry.path != theirs.entry.path {
            return Ok(Some(Difference::Layer {
                index,
                entry: ours.entry.path_lossy(),
                what: format!("the second image has {} here", theirs.entry.path_lossy()),
            }));
        }
        if let Some(what) = entry_difference(&ours, &theirs) {
            return Ok(Some(layer_diff(index, &ours.entry, &what)));
        }
    }
}

/// What differs between two entries at the same path, the most telling first.
fn entry_difference(ours: &Compared, theirs: &Compared) -> Option<String> {
    let (one, two) = (&ours.entry, &theirs.entry);
    if one.kind != two.kind {
        Some(format!("type {:?} vs {:?}", one.kind, two.kind))
    } else if one.mode != two.mode {
        Some(format!("mode {:o} vs {:o}", one.mode, two.mode))
    } else if (one.uid, one.gid) != (two.uid, two.gid) {
        Some(format!(
            "owner {}:{} vs {}:{}",
            one.uid, one.gid, two.uid, two.gid
        ))
    } else if one.mtime != two.mtime {
        Some(format!("modification time {} vs {}", one.mtime, two.mtime))
    } else if one.link != two.link {
        Some(format!(
            "link target {} vs {}",
            String::from_utf8_lossy(&one.link),
            String::from_utf8_lossy(&two.link)
        ))
    } else if one.size != two.size {
        Some(format!("size {} vs {}", one.size, two.size))
    } else if ours.content != theirs.content {
        Some("content".to_owned())
    } else if one.device != two.device {
        Some("device numbers".to_owned())
    } else {
        None
    }
}

fn layer_diff(index: usize, entry: &TarEntry, what: &str) -> Difference {
    Difference::Layer {
        index,
        entry: entry.path_lossy(),
        what: what.to_owned(),
    }
}

type LayerTar = TarReader<Stream<Box<dyn Read + Send>>>;

fn layer_reader(image: &Image, index: usize) -> Result<LayerTar, OciError> {
    let raw = image.open_layer_blob(index)?;
    let mut buffered = BufReader::with_capacity(256 << 10, raw);
    let compression = sniff(&mut buffered)
        .map_err(|source| image.layer_error(index, LayerError::Read { offset: 0, source }))?;
    let decoder: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(|source| {
                image.layer_error(index, LayerError::Read { offset: 0, source })
            })?,
        ),
    };
    Ok(TarReader::new(
        Stream(decoder),
        TarLimits {
            max_extension_bytes: 1 << 20,
            max_path_bytes: 4096,
        },
    ))
}

fn next(image: &Image, reader: &mut LayerTar, index: usize) -> Result<Option<Compared>, OciError> {
    let Some(entry) = reader
        .next_entry()
        .map_err(|e| image.layer_error(index, e))?
    else {
        return Ok(None);
    };
    let content = if entry.kind == EntryKind::Regular && entry.size <= MAX_COMPARED_FILE {
        let data = reader
            .read_data(MAX_COMPARED_FILE)
            .map_err(|e| image.layer_error(index, e))?
            .unwrap_or_default();
        Some(Sha256::digest(&data).to_vec())
    } else {
        None
    };
    let mut entry = entry;
    entry.data_offset = 0;
    Ok(Some(Compared { entry, content }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_json_path_is_named() {
        let a: Value =
            serde_json::json!({"history": [{"created": "1"}, {"created": "2"}], "os": "linux"});
        let b: Value =
            serde_json::json!({"history": [{"created": "1"}, {"created": "3"}], "os": "linux"});
        assert_eq!(
            json_difference("", &a, &b),
            Some(("history[1].created".into(), "\"2\"".into(), "\"3\"".into()))
        );
        assert_eq!(json_difference("", &a, &a), None);
    }
}
