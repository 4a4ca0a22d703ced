//! OCI 1.1 referrers against the real distribution registry (`docker-registry` 2.8, which has
//! no referrers API: every attachment goes through the referrers tag schema), read back with
//! skopeo and the plain registry API. The API branch is unit-tested in `src/referrers.rs`
//! against recorded exchanges.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use im_registry::ops::push::{PushOptions, push_image};
use im_registry::ops::referrers::{
    Artifact, Discovery, EMPTY_MEDIA_TYPE, artifact_manifest, attach, copy_referrers,
    list_referrers, referrer_descriptor,
};
use im_registry::{
    BlobSource, LocalImage, OCI_INDEX, Reference, fallback_reference, fallback_tag, parse_digest,
};
use im_testkit::{Registry, http_get};
use support::client;
use support::images::{ImageSpec, sha256, write_image};
use support::tools::skopeo_raw;

fn artifact(artifact_type: &str, body: &str) -> Artifact {
    Artifact {
        artifact_type: artifact_type.to_owned(),
        media_type: artifact_type.to_owned(),
        bytes: Bytes::from(body.to_owned()),
        annotations: BTreeMap::new(),
        layer_annotations: BTreeMap::new(),
    }
}

/// Pushes a small image to `registry` as `app:1`; its manifest digest.
async fn pushed_image(registry: &Registry, dir: &std::path::Path) -> (Reference, String) {
    let written = write_image(dir, &ImageSpec::new("linux/amd64", 1, 1000, 7));
    let image = LocalImage::open(&written.archive).unwrap();
    let target: Reference = format!("{}/app:1", registry.host_port()).parse().unwrap();
    push_image(&client(), &image, &target, &PushOptions::default())
        .await
        .unwrap();
    (target, written.root_digest)
}

#[tokio::test]
async fn sboms_attach_through_the_tag_schema_and_read_back_with_skopeo() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (target, subject) = pushed_image(&registry, dir.path()).await;
    let subject_digest = parse_digest(&subject).unwrap();
    let client = client();
    let cdx = artifact(
        "application/vnd.cyclonedx+json",
        r#"{"bomFormat":"CycloneDX"}"#,
    );
    let first = attach(&client, &target, &cdx).await.unwrap();
    assert_eq!(
        first.discovery,
        Discovery::TagSchema,
        "2.8 has no referrers API"
    );
    assert_eq!(
        first.stats.blobs_uploaded, 2,
        "the empty config and the SBOM"
    );
    // A second artifact extends the index; the first stays.
    let spdx = artifact("application/spdx+json", r#"{"spdxVersion":"SPDX-2.3"}"#);
    let second = attach(&client, &target, &spdx).await.unwrap();
    assert_eq!(second.stats.blobs_present, 1, "the empty config is shared");
    let (listed, discovery) = list_referrers(&client, target.repository(), &subject_digest, None)
        .await
        .unwrap();
    assert_eq!(discovery, Discovery::TagSchema);
    let listed: Vec<(String, String)> = listed
        .iter()
        .map(|r| (r.artifact_type.clone().unwrap(), r.digest.to_string()))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "application/vnd.cyclonedx+json".to_owned(),
                first.digest.to_string()
            ),
            (
                "application/spdx+json".to_owned(),
                second.digest.to_string()
            ),
        ]
    );
    // Filtered by type.
    let (only_spdx, _) = list_referrers(
        &client,
        target.repository(),
        &subject_digest,
        Some("application/spdx+json"),
    )
    .await
    .unwrap();
    assert_eq!(only_spdx.len(), 1);
    // Attaching the same bytes again adds nothing.
    attach(&client, &target, &cdx).await.unwrap();
    let (again, _) = list_referrers(&client, target.repository(), &subject_digest, None)
        .await
        .unwrap();
    assert_eq!(again.len(), 2);

    // An independent client reads the tag schema's index and the artifact manifest.
    let host = registry.host_port();
    let index: serde_json::Value = serde_json::from_slice(&skopeo_raw(
        &format!("{host}/app:{}", fallback_tag(&subject_digest)),
        None,
    ))
    .unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.cyclonedx+json"
    );
    let raw = skopeo_raw(&format!("{host}/app@{}", first.digest), None);
    assert_eq!(sha256(&raw), first.digest.to_string());
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["artifactType"], "application/vnd.cyclonedx+json");
    assert_eq!(manifest["config"]["mediaType"], EMPTY_MEDIA_TYPE);
    assert_eq!(manifest["subject"]["digest"], subject);
    // The SBOM blob is served as pushed.
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let (status, blob) = http_get(
        registry.addr(),
        &format!("/v2/app/blobs/{layer}"),
        None,
        &[],
    )
    .map(|r| (r.status, r.body))
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(blob, br#"{"bomFormat":"CycloneDX"}"#);
    // And it has no referrers API, which is why the tag schema was used.
    let (status, _) = http_get(
        registry.addr(),
        &format!("/v2/app/referrers/{subject}"),
        None,
        &[],
    )
    .map(|r| (r.status, r.body))
    .unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn referrers_are_copied_to_another_registry_once() {
    let from = Registry::start();
    let to = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (source, subject) = pushed_image(&from, dir.path()).await;
    let subject_digest = parse_digest(&subject).unwrap();
    let client = client();
    let attached = attach(
        &client,
        &source,
        &artifact("application/vnd.cyclonedx+json", "{}"),
    )
    .await
    .unwrap();
    let target: Reference = format!("{}/app:1", to.host_port()).parse().unwrap();
    im_registry::ops::copy::copy_image(
        &client,
        &source,
        &target,
        &im_registry::ops::copy::CopyOptions::default(),
    )
    .await
    .unwrap();
    let copy = || {
        copy_referrers(
            &client,
            source.repository(),
            target.repository(),
            &subject_digest,
        )
    };
    assert_eq!(copy().await.unwrap(), 1);
    let (listed, _) = list_referrers(&client, target.repository(), &subject_digest, None)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].digest, attached.digest);
    assert_eq!(
        copy().await.unwrap(),
        0,
        "what the target lists is not copied again"
    );
}

/// Pushes `artifact` for `subject` by hand (blobs, then the manifest by digest) without
/// touching the tag schema: what another tool would have stored.
async fn push_by_hand(
    target: &Reference,
    subject: &im_registry::ManifestDocument,
    artifact: &Artifact,
) -> im_registry::ManifestDocument {
    let client = client();
    let repository = target.repository();
    let document = artifact_manifest(&subject.descriptor(), artifact).unwrap();
    for (bytes, size) in [
        (Bytes::from_static(b"{}"), 2),
        (artifact.bytes.clone(), artifact.bytes.len() as u64),
    ] {
        client
            .push_blob(
                repository,
                &im_registry::sha256_digest(&bytes),
                size,
                BlobSource::Bytes(bytes),
                None,
            )
            .await
            .unwrap();
    }
    client
        .put_manifest(&repository.digest(document.digest()), &document)
        .await
        .unwrap();
    document
}

#[tokio::test]
async fn another_tools_referrers_and_annotations_stay_in_the_tag_schema_index() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (target, subject) = pushed_image(&registry, dir.path()).await;
    let subject_digest = parse_digest(&subject).unwrap();
    let client = client();
    let subject_manifest = client.get_manifest(&target).await.unwrap();
    let foreign = push_by_hand(
        &target,
        &subject_manifest,
        &artifact("application/vnd.example.signature", "sig"),
    )
    .await;
    let mut entry = referrer_descriptor(&foreign);
    entry.set_annotations(Some(
        [("org.example.tool".to_owned(), "signer".to_owned())].into(),
    ));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry],
        "annotations": {"org.example.kept": "yes"},
    });
    let tag = fallback_reference(target.repository(), &subject_digest).unwrap();
    let document = im_registry::ManifestDocument::from_bytes(
        Bytes::from(serde_json::to_vec(&index).unwrap()),
        None,
        "index",
    )
    .unwrap();
    client.put_manifest(&tag, &document).await.unwrap();

    let ours = attach(
        &client,
        &target,
        &artifact("application/vnd.cyclonedx+json", "{}"),
    )
    .await
    .unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&skopeo_raw(&tag.to_string(), None)).unwrap();
    assert_eq!(stored["annotations"]["org.example.kept"], "yes");
    let manifests = stored["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 2, "{stored}");
    assert_eq!(manifests[0]["digest"], foreign.digest().to_string());
    assert_eq!(manifests[0]["annotations"]["org.example.tool"], "signer");
    assert_eq!(manifests[1]["digest"], ours.digest.to_string());
}

#[tokio::test]
async fn a_referrers_tag_that_is_not_an_index_is_never_overwritten() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let (target, subject) = pushed_image(&registry, dir.path()).await;
    let subject_digest = parse_digest(&subject).unwrap();
    let client = client();
    // Someone tagged an image manifest with the schema's tag name.
    let image = client.get_manifest(&target).await.unwrap();
    let tag = fallback_reference(target.repository(), &subject_digest).unwrap();
    client.put_manifest(&tag, &image).await.unwrap();
    let error = attach(
        &client,
        &target,
        &artifact("application/vnd.cyclonedx+json", "{}"),
    )
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the referrers tag holds a application/vnd.oci.image.manifest.v1+json"),
        "{error}"
    );
    assert_eq!(
        client.resolve_digest(&tag).await.unwrap().as_ref(),
        Some(image.digest()),
        "the tag still holds what it held"
    );
}
