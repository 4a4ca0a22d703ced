//! `ManifestDocument`: the exact bytes of an image manifest or index with its digest and
//! media type, parsed with `oci-spec`'s types. The media type comes from the body when the
//! body says it (a wrong `Content-Type` is ignored); documents that could be read two ways
//! (both `layers` and `manifests`) and schema-1 manifests are refused.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::digest::{Digest, sha256_digest};
use crate::{Error, Platform};

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's schema 2 image manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list (multi-platform) media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The `Accept` header for manifest requests.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

fn is_image_type(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// What a manifest document is.
#[derive(Clone, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "oci-spec's types; documents are few and short-lived"
)]
pub enum ManifestKind {
    /// A single-platform image: a config and layers.
    Image(ImageManifest),
    /// An index (manifest list) of per-platform manifests.
    Index(ImageIndex),
}

/// A manifest or index, byte-exact as stored in the registry.
#[derive(Clone, Debug)]
pub struct ManifestDocument {
    bytes: Bytes,
    digest: Digest,
    media_type: String,
    kind: ManifestKind,
}

impl ManifestDocument {
    /// Parses a document; `content_type` is what the server said, `what` names it in errors.
    pub fn from_bytes(bytes: Bytes, content_type: Option<&str>, what: &str) -> Result<Self, Error> {
        let invalid = |source| Error::InvalidManifest {
            what: what.to_owned(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
        let Some(object) = value.as_object() else {
            return Err(Error::UnsupportedMediaType {
                what: what.to_owned(),
                media_type: content_type
                    .unwrap_or("a JSON value that is not an object")
                    .to_owned(),
            });
        };
        let has_layers = object.contains_key("layers");
        let has_manifests = object.contains_key("manifests");
        if has_layers && has_manifests {
            return Err(Error::AmbiguousManifest {
                what: what.to_owned(),
            });
        }
        if object
            .get("schemaVersion")
            .and_then(serde_json::Value::as_u64)
            == Some(1)
        {
            return Err(Error::UnsupportedMediaType {
                what: what.to_owned(),
                media_type: "application/vnd.docker.distribution.manifest.v1+json (schema 1)"
                    .to_owned(),
            });
        }
        let declared = object.get("mediaType").and_then(serde_json::Value::as_str);
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or_default().trim())
            .filter(|c| !c.is_empty());
        let media_type = match declared {
            Some(declared) => {
                let structure_disagrees = (is_image_type(declared) && has_manifests)
                    || (is_index_type(declared) && has_layers);
                if structure_disagrees {
                    return Err(Error::AmbiguousManifest {
                        what: what.to_owned(),
                    });
                }
                declared.to_owned()
            }
            None if has_manifests => header
                .filter(|h| is_index_type(h))
                .unwrap_or(OCI_INDEX)
                .to_owned(),
            None if has_layers || object.contains_key("config") => header
                .filter(|h| is_image_type(h))
                .unwrap_or(OCI_MANIFEST)
                .to_owned(),
            None => {
                return Err(Error::UnsupportedMediaType {
                    what: what.to_owned(),
                    media_type: header.unwrap_or("unknown").to_owned(),
                });
            }
        };
        if let Some(header) = header
            && header != media_type
        {
            tracing::debug!(%what, %header, %media_type, "Content-Type disagrees with the document; using the document's media type");
        }
        let kind = if is_index_type(&media_type) {
            ManifestKind::Index(serde_json::from_slice(&bytes).map_err(invalid)?)
        } else if is_image_type(&media_type) {
            ManifestKind::Image(serde_json::from_slice(&bytes).map_err(invalid)?)
        } else {
            return Err(Error::UnsupportedMediaType {
                what: what.to_owned(),
                media_type,
            });
        };
        let digest = sha256_digest(&bytes);
        Ok(Self {
            bytes,
            digest,
            media_type,
            kind,
        })
    }

    /// Serialises an index built in memory: compact JSON in oci-spec's field order, the
    /// encoding `build` gives the multi-platform layouts it writes, so an index assembled
    /// from the same per-platform manifests in the same order has the digest `build`
    /// recorded. (An index that already has bytes is never re-encoded: it is sent as read.)
    pub fn from_index(index: &ImageIndex) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(index).map_err(|source| Error::InvalidManifest {
            what: "built index".to_owned(),
            source,
        })?;
        Self::from_bytes(Bytes::from(bytes), None, "built index")
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The sha256 digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The media type (from the body).
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The parsed document.
    pub fn kind(&self) -> &ManifestKind {
        &self.kind
    }

    /// Whether this is an index.
    pub fn is_index(&self) -> bool {
        matches!(self.kind, ManifestKind::Index(_))
    }

    /// A descriptor pointing at this document.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            MediaType::from(self.media_type.as_str()),
            self.size(),
            oci_spec::image::Digest::from(&self.digest),
        )
    }

    /// The top-level annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let map = match &self.kind {
            ManifestKind::Image(m) => m.annotations().as_ref(),
            ManifestKind::Index(i) => i.annotations().as_ref(),
        };
        map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The child manifests of an index (empty for an image).
    pub fn children(&self) -> &[Descriptor] {
        match &self.kind {
            ManifestKind::Image(_) => &[],
            ManifestKind::Index(index) => index.manifests(),
        }
    }

    /// The config and layers of an image (empty for an index), skipping foreign layers
    /// that registries do not store.
    pub fn blobs(&self) -> Vec<&Descriptor> {
        match &self.kind {
            ManifestKind::Index(_) => Vec::new(),
            ManifestKind::Image(m) => std::iter::once(m.config())
                .chain(m.layers().iter())
                .filter(|d| !is_foreign(d))
                .collect(),
        }
    }

    /// The platform a child descriptor says it is for.
    pub fn child_platform(child: &Descriptor) -> Option<Platform> {
        child.platform().as_ref().map(Platform::from_oci)
    }
}

/// Foreign (non-distributable) layers live elsewhere, named by `urls`; they are not copied.
pub(crate) fn is_foreign(descriptor: &Descriptor) -> bool {
    let media_type = descriptor.media_type().to_string();
    let marked = media_type.contains("nondistributable") || media_type.contains("foreign");
    marked && descriptor.urls().as_ref().is_some_and(|u| !u.is_empty())
}

/// The media type an index over children of `child_type` should have.
pub(crate) fn index_type_for(child_types: &[&str]) -> &'static str {
    if !child_types.is_empty() && child_types.iter().all(|t| *t == DOCKER_MANIFEST) {
        DOCKER_MANIFEST_LIST
    } else {
        OCI_INDEX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0}"#;

    fn parse(json: &str, content_type: Option<&str>) -> Result<ManifestDocument, Error> {
        ManifestDocument::from_bytes(Bytes::from(json.to_owned()), content_type, "test")
    }

    #[test]
    fn media_type_comes_from_the_body_not_the_header() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{CONFIG},"layers":[]}}"#
        );
        let doc = parse(&json, Some("application/octet-stream")).unwrap();
        assert_eq!(doc.media_type(), OCI_MANIFEST);
        assert_eq!(doc.blobs().len(), 1);
        assert_eq!(doc.digest(), &sha256_digest(json.as_bytes()));
    }

    #[test]
    fn structure_decides_when_the_body_has_no_media_type() {
        let image = format!(r#"{{"schemaVersion":2,"config":{CONFIG},"layers":[]}}"#);
        assert_eq!(
            parse(&image, Some("text/plain")).unwrap().media_type(),
            OCI_MANIFEST
        );
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(parse(index, None).unwrap().media_type(), OCI_INDEX);
        assert_eq!(
            parse(index, Some(DOCKER_MANIFEST_LIST))
                .unwrap()
                .media_type(),
            DOCKER_MANIFEST_LIST
        );
    }

    #[test]
    fn documents_with_layers_and_manifests_are_refused() {
        let json = format!(r#"{{"schemaVersion":2,"config":{CONFIG},"layers":[],"manifests":[]}}"#);
        assert!(matches!(
            parse(&json, None),
            Err(Error::AmbiguousManifest { .. })
        ));
        let lying = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#;
        assert!(matches!(
            parse(lying, None),
            Err(Error::AmbiguousManifest { .. })
        ));
    }

    #[test]
    fn schema1_and_garbage_are_refused() {
        assert!(matches!(
            parse(r#"{"schemaVersion":1,"fsLayers":[]}"#, None),
            Err(Error::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            parse("[1]", None),
            Err(Error::UnsupportedMediaType { .. })
        ));
        assert!(matches!(
            parse("{", None),
            Err(Error::InvalidManifest { .. })
        ));
    }

    #[test]
    fn index_type_follows_children() {
        assert_eq!(
            index_type_for(&[DOCKER_MANIFEST, DOCKER_MANIFEST]),
            DOCKER_MANIFEST_LIST
        );
        assert_eq!(index_type_for(&[DOCKER_MANIFEST, OCI_MANIFEST]), OCI_INDEX);
        assert_eq!(index_type_for(&[]), OCI_INDEX);
    }
}
