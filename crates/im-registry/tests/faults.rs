//! Fault injection against an in-process fake registry, for what a real registry will not
//! do on demand. Each case ends in success after retries or in a clear error, and never in
//! a tag that points at something incomplete.

mod support;

use std::time::{Duration, Instant};

use im_registry::ops::copy::{CopyOptions, copy_image};
use im_registry::ops::inspect::select_platform;
use im_registry::ops::push::{PushOptions, push_image};
use im_registry::{Error, Limits, LocalImage, Reference, RegistrySettings, Secret, TargetKind};
use support::fake::{Action, Auth, FakeRegistry};
use support::images::{ImageSpec, OCI_MANIFEST, write_image, write_index};
use support::{client, client_with};

fn reference(fake: &FakeRegistry, rest: &str) -> Reference {
    format!("{}/{rest}", fake.host()).parse().unwrap()
}

/// A small single-platform image on disk.
fn small_image(
    dir: &std::path::Path,
    layers: usize,
    layer_bytes: usize,
) -> (LocalImage, support::images::WrittenImage) {
    let written = write_image(
        dir,
        &ImageSpec::new("linux/amd64", layers, layer_bytes, 7).label("build-key", "k1"),
    );
    (LocalImage::open(&written.archive).unwrap(), written)
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let fake = FakeRegistry::start().await;
    let digest = fake.put_manifest("app", "1", &manifest_json(&fake), OCI_MANIFEST);
    fake.fault(
        "GET",
        "/manifests/1",
        1,
        Action::Status(429, Some("1".into())),
    );
    let started = Instant::now();
    let doc = client()
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap();
    assert_eq!(doc.digest().to_string(), digest);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After ignored: {:?}",
        started.elapsed()
    );
    assert_eq!(fake.count("GET", "/manifests/1"), 2);
}

#[tokio::test]
async fn a_503_with_an_http_date_retry_after_is_honoured() {
    let fake = FakeRegistry::start().await;
    fake.put_manifest("app", "1", &manifest_json(&fake), OCI_MANIFEST);
    let when = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
    fake.fault("GET", "/manifests/1", 1, Action::Status(503, Some(when)));
    let started = Instant::now();
    client()
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_shortened() {
    let fake = FakeRegistry::start().await;
    fake.put_manifest("app", "1", &manifest_json(&fake), OCI_MANIFEST);
    fake.fault(
        "GET",
        "/manifests/1",
        1,
        Action::Status(429, Some("3600".into())),
    );
    let client = client_with(|c| c.retry.max_retry_after = Duration::from_millis(200));
    let started = Instant::now();
    client
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_500_then_success_on_upload_and_manifest_put_publishes() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = small_image(dir.path(), 3, 10_000);
    fake.fault("PUT", "/blobs/uploads/", 1, Action::Status(500, None));
    fake.fault("PUT", "/manifests/1", 1, Action::Status(502, None));
    fake.fault("HEAD", "/blobs/", 1, Action::Status(503, None));
    let published = push_image(
        &client(),
        &image,
        &reference(&fake, "app:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(published.digest.to_string(), written.root_digest);
    assert!(written.layer_digests.iter().all(|d| fake.has_blob(d)));
    assert_eq!(fake.tags("app"), ["1"]);
}

/// distribution's filesystem storage refuses a manifest for a moment while another client
/// that pushed one of its blobs links that blob again (two CI jobs pushing the platforms of
/// one image, whose layers are the same): the manifest is put again and published; another
/// 400 is not retried.
#[tokio::test]
async fn a_manifest_refused_for_an_unknown_blob_is_put_again_and_published() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = small_image(dir.path(), 2, 1000);
    // What distribution 2.8 answers: DIGEST_INVALID first, then MANIFEST_BLOB_UNKNOWN; the
    // second tag is refused for another reason.
    for (tag, times, codes) in [
        ("1", 1, vec!["DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN"]),
        ("2", 10, vec!["MANIFEST_INVALID"]),
    ] {
        fake.fault(
            "PUT",
            &format!("/manifests/{tag}"),
            times,
            Action::Errors(400, codes),
        );
    }
    let push = |tag: &str| {
        let target = reference(&fake, &format!("app:{tag}"));
        let image = &image;
        async move { push_image(&client(), image, &target, &PushOptions::default()).await }
    };
    let published = push("1").await.unwrap();
    assert_eq!(published.digest.to_string(), written.root_digest);
    assert_eq!(fake.count("PUT", "/manifests/1"), 2);
    assert_eq!(fake.tags("app"), ["1"]);
    let err = push("2").await.unwrap_err();
    assert!(err.to_string().contains("MANIFEST_INVALID"), "{err}");
    assert_eq!(fake.count("PUT", "/manifests/2"), 1);
}

#[tokio::test]
async fn a_persistent_500_is_a_clear_error_and_no_tag_is_written() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = small_image(dir.path(), 2, 1000);
    fake.fault("PUT", "/blobs/uploads/", 100, Action::Status(500, None));
    let options = PushOptions {
        extra_tags: vec!["latest".into()],
        ..PushOptions::default()
    };
    let err = push_image(&client(), &image, &reference(&fake, "app:1"), &options)
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("HTTP 500") && shown.contains("FAULT"),
        "{shown}"
    );
    assert!(
        fake.tags("app").is_empty(),
        "half-published: {:?}",
        fake.tags("app")
    );
}

#[tokio::test]
async fn statuses_400_403_404_are_never_retried() {
    let fake = FakeRegistry::start().await;
    fake.fault("GET", "/manifests/forbidden", 10, Action::Status(403, None));
    fake.fault("GET", "/manifests/bad", 10, Action::Status(400, None));
    let client = client();
    let err = client
        .get_manifest(&reference(&fake, "app:forbidden"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Status {
                status: 403,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = client
        .get_manifest(&reference(&fake, "app:bad"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 400, .. }), "{err}");
    let err = client
        .get_manifest(&reference(&fake, "app:missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ManifestNotFound { .. }), "{err}");
    assert_eq!(fake.count("GET", "/manifests/forbidden"), 1);
    assert_eq!(fake.count("GET", "/manifests/bad"), 1);
    assert_eq!(fake.count("GET", "/manifests/missing"), 1);
}

#[tokio::test]
async fn a_connection_dropped_mid_monolithic_upload_resumes_without_committing_partial_data() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = small_image(dir.path(), 1, 300_000);
    fake.fault("PUT", "/blobs/uploads/", 1, Action::CutRequest(100_000));
    push_image(
        &client(),
        &image,
        &reference(&fake, "app:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert!(written.layer_digests.iter().all(|d| fake.has_blob(d)));
    assert_eq!(fake.tags("app"), ["1"]);
    // The client asked how far the interrupted session got.
    assert!(fake.count("GET", "/blobs/uploads/") >= 1);
}

#[tokio::test]
async fn a_connection_dropped_mid_chunked_upload_resumes_from_the_upload_status() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = small_image(dir.path(), 1, 400_000);
    fake.fault("PATCH", "/blobs/uploads/", 1, Action::CutRequest(50_000));
    let client = client_with(|c| {
        c.limits = Limits {
            monolithic_upload_max_bytes: 64 * 1024,
            upload_chunk_bytes: 100_000,
            ..Limits::default()
        };
    });
    push_image(
        &client,
        &image,
        &reference(&fake, "app:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert!(written.layer_digests.iter().all(|d| fake.has_blob(d)));
    assert!(fake.count("PATCH", "/blobs/uploads/") >= 4, "not chunked");
    assert!(fake.count("GET", "/blobs/uploads/") >= 1, "no status query");
    // Chunks carry Content-Length, not chunked transfer encoding.
    assert!(
        fake.seen()
            .iter()
            .filter(|s| s.method == "PATCH")
            .all(|s| s.transfer_encoding.is_none())
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_download_resumes_with_range() {
    let fake = FakeRegistry::start().await;
    let blob: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
    let digest = fake.put_blob(&blob);
    fake.fault("GET", &digest, 1, Action::CutResponse(200_000));
    let repo = reference(&fake, "app:1").repository().clone();
    let bytes = client()
        .fetch_blob(&repo, &digest.parse().unwrap(), blob.len() as u64)
        .await
        .unwrap();
    assert_eq!(&bytes[..], &blob[..]);
    let ranges: Vec<_> = fake.seen().into_iter().filter_map(|s| s.range).collect();
    assert!(
        ranges
            .iter()
            .any(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{ranges:?}"
    );
}

#[tokio::test]
async fn a_blob_whose_digest_does_not_match_is_refused_and_nothing_is_tagged() {
    let source = FakeRegistry::start().await;
    let target = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = small_image(dir.path(), 2, 5_000);
    let client = client();
    push_image(
        &client,
        &image,
        &reference(&source, "app:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    source.fault("GET", &written.layer_digests[0], 100, Action::Corrupt);
    let err = client
        .fetch_blob(
            reference(&source, "app:1").repository(),
            &written.layer_digests[0].parse().unwrap(),
            0,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SizeMismatch { .. } | Error::DigestMismatch { .. }
        ),
        "{err}"
    );
    let err = copy_image(
        &client,
        &reference(&source, "app:1"),
        &reference(&target, "app:1"),
        &CopyOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&written.layer_digests[0]), "{err}");
    assert!(target.tags("app").is_empty());
}

#[tokio::test]
async fn a_manifest_whose_digest_does_not_match_is_refused() {
    let fake = FakeRegistry::start().await;
    let digest = fake.put_manifest("app", "1", &manifest_json(&fake), OCI_MANIFEST);
    fake.fault("GET", "/manifests/", 2, Action::Corrupt);
    let client = client();
    let by_tag = client
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    assert!(matches!(by_tag, Error::DigestMismatch { .. }), "{by_tag}");
    let by_digest = client
        .get_manifest(&reference(&fake, &format!("app@{digest}")))
        .await
        .unwrap_err();
    assert!(
        matches!(by_digest, Error::DigestMismatch { .. }),
        "{by_digest}"
    );
}

#[tokio::test]
async fn the_401_bearer_challenge_flow_gets_one_token_and_reuses_it() {
    let fake = FakeRegistry::start().await;
    fake.set_auth(Auth::Bearer {
        realm: format!("http://{}/token", fake.host()),
        token: "tok-123".into(),
        user: "ci".into(),
        password: "pw".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = small_image(dir.path(), 3, 2_000);
    let host = fake.host();
    let client = client_with(|c| {
        c.registries = vec![RegistrySettings {
            url: host.clone(),
            username: Some("ci".into()),
            password: Some(Secret::new("pw")),
            insecure: false,
        }];
    });
    push_image(
        &client,
        &image,
        &reference(&fake, "app:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(fake.tags("app"), ["1"]);
    assert_eq!(fake.count("GET", "/token"), 1, "the token was not cached");
    // Without credentials the token service refuses, and the error says so.
    let anonymous = client_with(|_| {});
    let err = anonymous
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no credentials are configured"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rejected_token_is_renewed_once_on_401() {
    let fake = FakeRegistry::start().await;
    fake.set_auth(Auth::Bearer {
        realm: format!("http://{}/token", fake.host()),
        token: "tok-a".into(),
        user: String::new(),
        password: String::new(),
    });
    fake.put_manifest("app", "1", &manifest_json(&fake), OCI_MANIFEST);
    let client = client();
    client
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap();
    // The registry rotates its tokens: the cached one now gets 401.
    fake.set_auth(Auth::Bearer {
        realm: format!("http://{}/token", fake.host()),
        token: "tok-b".into(),
        user: String::new(),
        password: String::new(),
    });
    client
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap();
    assert_eq!(fake.count("GET", "/token"), 2);
}

#[tokio::test]
async fn wrong_basic_credentials_are_a_clear_error() {
    let fake = FakeRegistry::start().await;
    fake.set_auth(Auth::Basic {
        user: "ci".into(),
        password: "right".into(),
    });
    let host = fake.host();
    let client = client_with(|c| {
        c.registries = vec![RegistrySettings {
            url: host.clone(),
            username: Some("ci".into()),
            password: Some(Secret::new("wrong-canary-pw")),
            insecure: false,
        }];
    });
    let err = client
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        matches!(
            err,
            Error::Unauthorized {
                had_credentials: true,
                ..
            }
        ),
        "{shown}"
    );
    assert!(shown.contains("UNAUTHORIZED"), "{shown}");
    assert!(!shown.contains("wrong-canary-pw"), "{shown}");
}

#[tokio::test]
async fn a_location_pointing_at_the_metadata_service_is_refused() {
    let fake = FakeRegistry::start().await;
    let digest = fake.put_blob(b"hello");
    fake.fault(
        "GET",
        &digest,
        1,
        Action::Redirect("http://169.254.169.254/latest/meta-data/".into()),
    );
    let repo = reference(&fake, "app:1").repository().clone();
    let err = client()
        .fetch_blob(&repo, &digest.parse().unwrap(), 5)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsafeTarget {
                kind: TargetKind::Redirect,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("169.254.169.254"), "{err}");
    // The same for a private address and a metadata host name.
    for location in ["http://10.1.2.3/x", "https://metadata.google.internal/x"] {
        fake.fault("GET", &digest, 1, Action::Redirect(location.into()));
        let err = client()
            .fetch_blob(&repo, &digest.parse().unwrap(), 5)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UnsafeTarget { .. }),
            "{location}: {err}"
        );
    }
}

#[tokio::test]
async fn a_token_realm_pointing_at_the_metadata_service_is_refused() {
    let fake = FakeRegistry::start().await;
    fake.set_auth(Auth::Bearer {
        realm: "http://169.254.169.254/token".into(),
        token: "t".into(),
        user: String::new(),
        password: String::new(),
    });
    let err = client()
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsafeTarget {
                kind: TargetKind::TokenRealm,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_cross_host_redirect_does_not_carry_credentials() {
    let registry = FakeRegistry::start().await;
    let storage = FakeRegistry::start().await;
    registry.set_auth(Auth::Basic {
        user: "ci".into(),
        password: "pw".into(),
    });
    let blob = b"layer bytes that live in blob storage".to_vec();
    let digest = registry.put_blob(&blob);
    storage.put_blob(&blob);
    // `localhost` is the registry's own address (127.0.0.1) under another name and port:
    // allowed as a target, but another origin, so no credentials.
    registry.fault(
        "GET",
        &digest,
        1,
        Action::Redirect(format!(
            "http://localhost:{}/v2/app/blobs/{digest}",
            storage.addr.port()
        )),
    );
    let host = registry.host();
    let client = client_with(|c| {
        c.registries = vec![RegistrySettings {
            url: host.clone(),
            username: Some("ci".into()),
            password: Some(Secret::new("pw")),
            insecure: false,
        }];
    });
    let repo = reference(&registry, "app:1").repository().clone();
    let bytes = client
        .fetch_blob(&repo, &digest.parse().unwrap(), blob.len() as u64)
        .await
        .unwrap();
    assert_eq!(&bytes[..], &blob[..]);
    let at_registry = registry.seen();
    assert!(
        at_registry
            .iter()
            .any(|s| s.path.contains(&digest) && s.authorization.is_some())
    );
    let at_storage = storage.seen();
    assert!(!at_storage.is_empty(), "the redirect was not followed");
    assert!(
        at_storage.iter().all(|s| s.authorization.is_none()),
        "credentials leaked: {at_storage:?}"
    );
}

#[tokio::test]
async fn a_wrong_content_type_is_overridden_by_the_body() {
    let fake = FakeRegistry::start().await;
    fake.put_manifest("app", "1", &manifest_json(&fake), OCI_MANIFEST);
    fake.fault(
        "GET",
        "/manifests/1",
        1,
        Action::ContentType("text/plain".into()),
    );
    let doc = client()
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap();
    assert_eq!(doc.media_type(), OCI_MANIFEST);
}

#[tokio::test]
async fn an_oversized_manifest_is_refused() {
    let fake = FakeRegistry::start().await;
    fake.fault("GET", "/manifests/1", 1, Action::Huge(5 * 1024 * 1024));
    let err = client()
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn an_ambiguous_document_is_refused() {
    let fake = FakeRegistry::start().await;
    let mut value: serde_json::Value = serde_json::from_slice(&manifest_json(&fake)).unwrap();
    value.as_object_mut().unwrap().remove("mediaType");
    value["manifests"] = serde_json::json!([]);
    fake.put_manifest(
        "app",
        "1",
        &serde_json::to_vec(&value).unwrap(),
        OCI_MANIFEST,
    );
    let err = client()
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AmbiguousManifest { .. }), "{err}");
}

#[tokio::test]
async fn an_index_missing_the_platform_names_it_and_lists_what_exists() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_index(
        dir.path(),
        &[
            ImageSpec::new("linux/amd64", 1, 100, 1),
            ImageSpec::new("linux/arm64", 1, 100, 2),
        ],
    );
    let image = LocalImage::open(&written.layout).unwrap();
    let client = client();
    push_image(
        &client,
        &image,
        &reference(&fake, "app:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    let err = select_platform(
        &client,
        &reference(&fake, "app:1"),
        &"linux/s390x".parse().unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "`{}/app:1` has no image for platform linux/s390x; it has: linux/amd64, linux/arm64",
            fake.host()
        )
    );
    let arm = select_platform(
        &client,
        &reference(&fake, "app:1"),
        &"linux/arm64".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(arm.digest().to_string(), written.manifest_digests[1]);
}

#[tokio::test]
async fn re_pushing_uploads_nothing() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, _) = small_image(dir.path(), 4, 3_000);
    let client = client();
    let options = PushOptions {
        extra_tags: vec!["latest".into(), "1.0".into()],
        ..PushOptions::default()
    };
    let first = push_image(&client, &image, &reference(&fake, "app:1"), &options)
        .await
        .unwrap();
    assert_eq!(first.stats.blobs_uploaded, 5);
    let posts = fake.count("POST", "/blobs/uploads/");
    let puts = fake.count("PUT", "/manifests/");
    let second = push_image(&client, &image, &reference(&fake, "app:1"), &options)
        .await
        .unwrap();
    assert_eq!(second.stats.blobs_uploaded, 0);
    assert_eq!(second.stats.blobs_present, 5);
    assert_eq!(second.stats.manifests_written, 0);
    assert_eq!(fake.count("POST", "/blobs/uploads/"), posts);
    assert_eq!(fake.count("PUT", "/manifests/"), puts);
}

#[tokio::test]
async fn a_failed_mount_falls_back_to_an_upload() {
    let fake = FakeRegistry::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (image, written) = small_image(dir.path(), 2, 1_000);
    let client = client();
    push_image(
        &client,
        &image,
        &reference(&fake, "one:1"),
        &PushOptions::default(),
    )
    .await
    .unwrap();
    fake.fault(
        "POST",
        "/v2/two/blobs/uploads/",
        1,
        Action::Status(403, None),
    );
    let published = copy_image(
        &client,
        &reference(&fake, "one:1"),
        &reference(&fake, "two:1"),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(published.digest.to_string(), written.root_digest);
    assert_eq!(
        published.stats.blobs_mounted + published.stats.blobs_uploaded,
        3
    );
    assert!(published.stats.blobs_uploaded >= 1, "{:?}", published.stats);
    assert_eq!(fake.tags("two"), ["1"]);
}

#[tokio::test]
async fn cancellation_stops_a_waiting_request_within_a_second() {
    let fake = FakeRegistry::start().await;
    fake.fault(
        "GET",
        "/manifests/1",
        10,
        Action::Status(503, Some("30".into())),
    );
    let client = client_with(|c| c.retry.max_retry_after = Duration::from_secs(30));
    let token = client.cancellation().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel();
    });
    let started = Instant::now();
    let err = client
        .get_manifest(&reference(&fake, "app:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn cancellation_stops_a_stalled_connection_within_a_second() {
    // A server that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = client();
    let token = client.cancellation().clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel();
    });
    let started = Instant::now();
    let reference: Reference = format!("{addr}/app:1").parse().unwrap();
    let err = client.get_manifest(&reference).await.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_registry_is_refused() {
    let client = client_with(|c| {
        c.registries = vec![RegistrySettings {
            url: "http://registry.example.com".into(),
            ..RegistrySettings::default()
        }];
    });
    let err = client.ping("registry.example.com").await.unwrap_err();
    assert!(matches!(err, Error::InsecureNotAllowed { .. }), "{err}");
}

/// A valid OCI manifest whose blobs exist in the fake.
fn manifest_json(fake: &FakeRegistry) -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux","config":{"Labels":{"a":"b"}}}"#;
    let layer = b"not really a tar";
    let config_digest = fake.put_blob(config);
    let layer_digest = fake.put_blob(layer);
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap()
}
