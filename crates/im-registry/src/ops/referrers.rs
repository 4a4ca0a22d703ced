//! OCI 1.1 referrers: attaching an artifact (an SBOM, a signature) to a manifest, listing
//! what refers to a manifest, and copying referrers along with an image.
//!
//! An artifact is an image manifest with an `artifactType`, the empty config
//! (`application/vnd.oci.empty.v1+json`, the blob `{}`), one layer holding the artifact, and
//! a `subject` naming the manifest it describes. It is pushed by digest. A registry with the
//! referrers API answers that push with `OCI-Subject` and indexes it itself; for one without
//! (the distribution registry 2.x), the client keeps the referrers tag schema: an image index
//! under the tag `sha256-<hex of the subject>` listing every referrer, read, extended (never
//! rewritten from scratch, so other tools' referrers stay) and written back. Listing asks the
//! API first and reads that tag when the registry answers 404.

use std::collections::BTreeMap;

use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::{Counters, TransferStats};
use crate::digest::{Digest, descriptor_digest, sha256_digest};
use crate::manifest::{ManifestDocument, OCI_INDEX, OCI_MANIFEST};
use crate::referrers::fallback_reference;
use crate::transport::BlobSource;
use crate::{BlobPush, Client, Error, Reference, Repository};

/// The media type of the empty config and of the empty descriptor.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config blob: the two bytes `{}`.
pub const EMPTY_BLOB: &[u8] = b"{}";

/// One artifact to attach: its type, its one blob and that blob's media type.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// `artifactType`, e.g. `application/vnd.cyclonedx+json`.
    pub artifact_type: String,
    /// The media type of the layer (usually the artifact type itself).
    pub media_type: String,
    /// The artifact's bytes.
    pub bytes: Bytes,
    /// Annotations of the artifact manifest (copied into the referrers index).
    pub annotations: BTreeMap<String, String>,
    /// Annotations of the layer (`org.opencontainers.image.title`: a file name).
    pub layer_annotations: BTreeMap<String, String>,
}

/// A descriptor as the artifact manifest writes it.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson<'a> {
    media_type: &'a str,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a BTreeMap<String, String>>,
}

/// The artifact manifest, field by field in a fixed order with sorted annotations, so the
/// same artifact for the same subject always has the same bytes (oci-spec's types keep
/// annotations in a `HashMap`, whose order changes from run to run).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifestJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    artifact_type: &'a str,
    config: DescriptorJson<'a>,
    layers: [DescriptorJson<'a>; 1],
    subject: DescriptorJson<'a>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// The artifact manifest of `artifact` for `subject` (a manifest's descriptor): the empty
/// config, one layer, the `subject` (media type, digest and size only), compact JSON.
pub fn artifact_manifest(
    subject: &Descriptor,
    artifact: &Artifact,
) -> Result<ManifestDocument, Error> {
    let subject_type = subject.media_type().to_string();
    let manifest = ArtifactManifestJson {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        artifact_type: &artifact.artifact_type,
        config: DescriptorJson {
            media_type: EMPTY_MEDIA_TYPE,
            digest: sha256_digest(EMPTY_BLOB).to_string(),
            size: EMPTY_BLOB.len() as u64,
            annotations: None,
        },
        layers: [DescriptorJson {
            media_type: &artifact.media_type,
            digest: sha256_digest(&artifact.bytes).to_string(),
            size: artifact.bytes.len() as u64,
            annotations: Some(&artifact.layer_annotations).filter(|a| !a.is_empty()),
        }],
        subject: DescriptorJson {
            media_type: &subject_type,
            digest: descriptor_digest(subject.digest())?.to_string(),
            size: subject.size(),
            annotations: None,
        },
        annotations: &artifact.annotations,
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::InvalidManifest {
        what: "built artifact manifest".to_owned(),
        source,
    })?;
    ManifestDocument::from_bytes(
        Bytes::from(bytes),
        Some(OCI_MANIFEST),
        "built artifact manifest",
    )
}

/// The descriptor a referrers list holds for `manifest`: its media type, digest and size,
/// its `artifactType` (else its config's media type) and its annotations.
pub fn referrer_descriptor(manifest: &ManifestDocument) -> Descriptor {
    let mut out = manifest.descriptor();
    if let crate::ManifestKind::Image(image) = manifest.kind() {
        let artifact_type = image
            .artifact_type()
            .clone()
            .unwrap_or_else(|| image.config().media_type().clone());
        out.set_artifact_type(Some(artifact_type));
    }
    let annotations = manifest.annotations();
    if !annotations.is_empty() {
        out.set_annotations(Some(annotations.into_iter().collect()));
    }
    out
}

/// How a registry knows of a referrer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Discovery {
    /// Through the referrers API (the registry indexes `subject` fields).
    Api,
    /// Through the referrers tag schema (`sha256-<hex>`), kept by clients.
    TagSchema,
}

/// What attaching one artifact did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    pub artifact_type: String,
    /// How the registry lists it.
    pub discovery: Discovery,
    /// What was transferred.
    pub stats: TransferStats,
}

/// Attaches `artifact` to `subject` (a reference pinned to the manifest's digest, or a tag):
/// uploads the empty config and the artifact, pushes the artifact manifest by digest, and,
/// when the registry did not index it (no `OCI-Subject`), adds it to the tag schema's index.
/// Attaching the same bytes again writes nothing new.
pub async fn attach(
    client: &Client,
    subject: &Reference,
    artifact: &Artifact,
) -> Result<Attached, Error> {
    let repository = subject.repository();
    let subject_manifest = client.get_manifest(subject).await?;
    let document = artifact_manifest(&subject_manifest.descriptor(), artifact)?;
    let counters = Counters::default();
    for (bytes, digest) in [
        (Bytes::from_static(EMPTY_BLOB), sha256_digest(EMPTY_BLOB)),
        (artifact.bytes.clone(), sha256_digest(&artifact.bytes)),
    ] {
        let size = bytes.len() as u64;
        let outcome = client
            .push_blob(repository, &digest, size, BlobSource::Bytes(bytes), None)
            .await?;
        counters.blob(outcome, size);
    }
    let discovery = register(
        client,
        repository,
        &document,
        subject_manifest.digest(),
        &counters,
    )
    .await?;
    Ok(Attached {
        digest: document.digest().clone(),
        size: document.size(),
        artifact_type: artifact.artifact_type.clone(),
        discovery,
        stats: counters.stats(),
    })
}

/// Writes a referrer manifest (whose blobs are in) by digest and makes it discoverable: by
/// the registry when it says `OCI-Subject`, else in the tag schema's index.
async fn register(
    client: &Client,
    repository: &Repository,
    document: &ManifestDocument,
    subject: &Digest,
    counters: &Counters,
) -> Result<Discovery, Error> {
    let pinned = repository.digest(document.digest());
    let indexed = if client.head_manifest_for(&pinned, true).await?.is_some() {
        counters.manifest(false);
        false
    } else {
        let indexed = client.put_referrer(repository, document, subject).await?;
        counters.manifest(true);
        indexed
    };
    if indexed {
        return Ok(Discovery::Api);
    }
    // A registry with the API that did not say so for this push still lists it; asking
    // spares a tag nobody reads.
    if let Some(listed) = client.referrers_api(repository, subject, None).await?
        && listed
            .iter()
            .any(|d| descriptor_digest(d.digest()).is_ok_and(|d| &d == document.digest()))
    {
        return Ok(Discovery::Api);
    }
    let written = add_to_tag_schema(client, repository, subject, document).await?;
    counters.manifest(written);
    Ok(Discovery::TagSchema)
}

/// Reads the tag schema's index for `subject`, an image index or nothing (any other
/// document under that tag is an error: it is not ours to overwrite).
async fn read_tag_schema(
    client: &Client,
    repository: &Repository,
    subject: &Digest,
) -> Result<Option<ManifestDocument>, Error> {
    let reference = fallback_reference(repository, subject)?;
    match client.get_manifest(&reference).await {
        Ok(document) if document.is_index() => Ok(Some(document)),
        Ok(document) => Err(Error::Invalid {
            operation: "read referrers",
            reference: reference.to_string(),
            reason: format!(
                "the referrers tag holds a {} instead of an image index",
                document.media_type()
            ),
        }),
        Err(Error::ManifestNotFound { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Adds `referrer` to the tag schema's index for `subject` unless it is listed; the other
/// entries and the index's annotations stay. `true` when the tag was written.
async fn add_to_tag_schema(
    client: &Client,
    repository: &Repository,
    subject: &Digest,
    referrer: &ManifestDocument,
) -> Result<bool, Error> {
    let existing = read_tag_schema(client, repository, subject).await?;
    let mut index = match &existing {
        Some(document) => {
            serde_json::from_slice::<ImageIndex>(document.bytes()).map_err(|source| {
                Error::InvalidManifest {
                    what: format!("referrers tag of {subject}"),
                    source,
                }
            })?
        }
        None => {
            let mut index = ImageIndex::default();
            index.set_media_type(Some(MediaType::ImageIndex));
            index.set_manifests(Vec::new());
            index
        }
    };
    let listed = index
        .manifests()
        .iter()
        .any(|d| descriptor_digest(d.digest()).is_ok_and(|d| &d == referrer.digest()));
    if listed {
        return Ok(false);
    }
    let mut manifests = index.manifests().clone();
    manifests.push(referrer_descriptor(referrer));
    index.set_manifests(manifests);
    let bytes = serde_json::to_vec(&index).map_err(|source| Error::InvalidManifest {
        what: format!("referrers tag of {subject}"),
        source,
    })?;
    let document =
        ManifestDocument::from_bytes(Bytes::from(bytes), Some(OCI_INDEX), "referrers index")?;
    client
        .put_manifest(&fallback_reference(repository, subject)?, &document)
        .await?;
    Ok(true)
}

/// One manifest that refers to a subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    /// `artifactType` as the list gives it.
    pub artifact_type: Option<String>,
    /// The size of the referrer manifest.
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
}

impl Referrer {
    fn from_descriptor(descriptor: &Descriptor) -> Result<Self, Error> {
        Ok(Self {
            digest: descriptor_digest(descriptor.digest())?,
            media_type: descriptor.media_type().to_string(),
            artifact_type: descriptor.artifact_type().as_ref().map(ToString::to_string),
            size: descriptor.size(),
            annotations: descriptor
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }
}

/// What refers to `subject` in `repository` (optionally only `artifact_type`), and how the
/// registry told: the referrers API, else the tag schema.
pub async fn list_referrers(
    client: &Client,
    repository: &Repository,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<(Vec<Referrer>, Discovery), Error> {
    let (descriptors, discovery) = match client
        .referrers_api(repository, subject, artifact_type)
        .await?
    {
        Some(found) => (found, Discovery::Api),
        None => {
            let index = read_tag_schema(client, repository, subject).await?;
            let found = index
                .map(|document| document.children().to_vec())
                .unwrap_or_default()
                .into_iter()
                .filter(|d| {
                    artifact_type.is_none_or(|wanted| {
                        d.artifact_type()
                            .as_ref()
                            .is_some_and(|t| t.to_string() == wanted)
                    })
                })
                .collect();
            (found, Discovery::TagSchema)
        }
    };
    let referrers = descriptors
        .iter()
        .map(Referrer::from_descriptor)
        .collect::<Result<_, _>>()?;
    Ok((referrers, discovery))
}

/// Copies every referrer of `subject` from `source` to `target` (same digest: the copy of an
/// image keeps its manifests' digests), with their blobs, and makes them discoverable in
/// `target`. Referrers `target` already lists are skipped. Returns how many were copied.
pub async fn copy_referrers(
    client: &Client,
    source: &Repository,
    target: &Repository,
    subject: &Digest,
) -> Result<usize, Error> {
    let (referrers, _) = list_referrers(client, source, subject, None).await?;
    if referrers.is_empty() {
        return Ok(0);
    }
    let (present, _) = list_referrers(client, target, subject, None).await?;
    let counters = Counters::default();
    let mut copied = 0;
    for referrer in referrers {
        if present.iter().any(|p| p.digest == referrer.digest) {
            continue;
        }
        let document = client
            .get_manifest(&source.digest(&referrer.digest))
            .await?;
        if document.is_index() {
            tracing::debug!(digest = %referrer.digest, "an index referrer is not copied");
            continue;
        }
        for blob in document.blobs() {
            let digest = descriptor_digest(blob.digest())?;
            if client
                .blob_exists_for(target, &digest, true)
                .await?
                .is_some()
            {
                counters.blob(BlobPush::AlreadyPresent, blob.size());
                continue;
            }
            if source.registry() == target.registry()
                && client
                    .mount_blob(target, &digest, source)
                    .await
                    .unwrap_or(false)
            {
                counters.blob(BlobPush::Mounted, blob.size());
                continue;
            }
            let bytes = client.fetch_blob(source, &digest, blob.size()).await?;
            let outcome = client
                .push_blob(target, &digest, blob.size(), BlobSource::Bytes(bytes), None)
                .await?;
            counters.blob(outcome, blob.size());
        }
        register(client, target, &document, subject, &counters).await?;
        copied += 1;
    }
    Ok(copied)
}

/// Copies the referrers of the image `root` (a manifest or an index) and of each of its
/// platform manifests from `source` to `target`, where the image was copied. Returns how
/// many were copied.
pub async fn copy_image_referrers(
    client: &Client,
    source: &Repository,
    target: &Repository,
    root: &Digest,
) -> Result<usize, Error> {
    let document = client.get_manifest(&source.digest(root)).await?;
    let mut subjects = vec![root.clone()];
    for child in document.children() {
        subjects.push(descriptor_digest(child.digest())?);
    }
    let mut copied = 0;
    for subject in &subjects {
        copied += copy_referrers(client, source, target, subject).await?;
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBJECT: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    fn subject() -> Descriptor {
        let mut d = Descriptor::new(
            MediaType::ImageManifest,
            1234,
            oci_spec::image::Digest::from(&crate::parse_digest(SUBJECT).unwrap()),
        );
        d.set_platform(Some(
            "linux/amd64".parse::<crate::Platform>().unwrap().to_oci(),
        ));
        d
    }

    fn sbom() -> Artifact {
        Artifact {
            artifact_type: "application/vnd.cyclonedx+json".to_owned(),
            media_type: "application/vnd.cyclonedx+json".to_owned(),
            bytes: Bytes::from_static(br#"{"bomFormat":"CycloneDX"}"#),
            annotations: BTreeMap::from([(
                "org.opencontainers.image.created".to_owned(),
                "2026-12-06T07:00:00Z".to_owned(),
            )]),
            layer_annotations: BTreeMap::from([(
                "org.opencontainers.image.title".to_owned(),
                "sbom.cdx.json".to_owned(),
            )]),
        }
    }

    #[test]
    fn an_artifact_manifest_has_the_empty_config_one_layer_and_the_subject() {
        let document = artifact_manifest(&subject(), &sbom()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(document.bytes()).unwrap();
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["mediaType"], OCI_MANIFEST);
        assert_eq!(json["artifactType"], "application/vnd.cyclonedx+json");
        assert_eq!(json["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            json["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(json["config"]["size"], 2);
        let layers = json["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], "application/vnd.cyclonedx+json");
        assert_eq!(layers[0]["size"], 25);
        assert_eq!(
            layers[0]["digest"],
            sha256_digest(br#"{"bomFormat":"CycloneDX"}"#).to_string()
        );
        assert_eq!(
            layers[0]["annotations"]["org.opencontainers.image.title"],
            "sbom.cdx.json"
        );
        // The subject is media type, digest and size: no platform.
        assert_eq!(
            json["subject"],
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": SUBJECT, "size": 1234})
        );
        assert_eq!(
            json["annotations"]["org.opencontainers.image.created"],
            "2026-12-06T07:00:00Z"
        );
        // The same artifact gives the same bytes: attaching twice adds nothing.
        let again = artifact_manifest(&subject(), &sbom()).unwrap();
        assert_eq!(again.digest(), document.digest());
    }

    #[test]
    fn annotations_are_written_sorted_so_the_bytes_never_change() {
        let mut artifact = sbom();
        for key in ["z.last", "a.first", "m.middle"] {
            artifact.annotations.insert(key.to_owned(), "x".to_owned());
        }
        let document = artifact_manifest(&subject(), &artifact).unwrap();
        let text = std::str::from_utf8(document.bytes()).unwrap();
        let at = |key: &str| text.find(key).unwrap();
        assert!(
            at("a.first") < at("m.middle") && at("m.middle") < at("z.last"),
            "{text}"
        );
        assert!(
            text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"#),
            "{text}"
        );
        for _ in 0..10 {
            assert_eq!(
                artifact_manifest(&subject(), &artifact).unwrap().bytes(),
                document.bytes()
            );
        }
    }

    #[test]
    fn the_empty_blob_is_the_well_known_one() {
        assert_eq!(
            sha256_digest(EMPTY_BLOB).to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn a_referrers_index_entry_carries_artifact_type_and_annotations() {
        let document = artifact_manifest(&subject(), &sbom()).unwrap();
        let entry = referrer_descriptor(&document);
        assert_eq!(entry.media_type().to_string(), OCI_MANIFEST);
        assert_eq!(entry.size(), document.size());
        assert_eq!(
            entry.artifact_type().as_ref().unwrap().to_string(),
            "application/vnd.cyclonedx+json"
        );
        assert_eq!(
            entry.annotations().as_ref().unwrap()["org.opencontainers.image.created"],
            "2026-12-06T07:00:00Z"
        );
        let referrer = Referrer::from_descriptor(&entry).unwrap();
        assert_eq!(&referrer.digest, document.digest());
    }

    #[test]
    fn a_manifest_without_artifact_type_is_listed_by_its_config_type() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.example.sig","digest":"{SUBJECT}","size":2}},"layers":[]}}"#
        );
        let document = ManifestDocument::from_bytes(Bytes::from(json), None, "test").unwrap();
        let entry = referrer_descriptor(&document);
        assert_eq!(
            entry.artifact_type().as_ref().unwrap().to_string(),
            "application/vnd.example.sig"
        );
    }
}
