//! The registry calls of OCI 1.1 referrers (distribution spec 1.1, "Listing Referrers" and
//! "Pushing Manifests with Subject"): `GET /v2/<name>/referrers/<digest>` with its pages,
//! where a 404 means the registry has no referrers API, and the `OCI-Subject` header of a
//! manifest `PUT`, by which a registry says it indexed the manifest's `subject` itself.
//! Without either, callers fall back on the referrers tag schema ([`fallback_tag`]); the
//! operations that do so are in [`crate::ops::referrers`].
//!
//! The answers are read by pure functions ([`read_referrers_answer`], [`subject_indexed`]) so
//! the API branch is tested against recorded exchanges of registries that have the API.

use oci_spec::image::Descriptor;
use reqwest::header;
use reqwest::{Method, StatusCode};

use crate::auth::Scope;
use crate::client::{next_link, next_page};
use crate::digest::{Digest, parse_digest};
use crate::manifest::{ManifestDocument, OCI_INDEX};
use crate::transport::Request;
use crate::{Client, Error, Reference, Repository};

/// The header a registry with the referrers API sets on a manifest `PUT` whose manifest has
/// a `subject`: the subject's digest.
pub const OCI_SUBJECT_HEADER: &str = "oci-subject";

/// The most pages of one referrers list read (a registry that keeps linking is cut off).
const MAX_PAGES: usize = 1_000;

/// What one answer of the referrers API says.
#[derive(Debug)]
pub(crate) enum ReferrersAnswer {
    /// 404: the registry has no referrers API; use the tag schema.
    Unsupported,
    /// One page of referrers and the link to the next, if any.
    Page {
        descriptors: Vec<Descriptor>,
        next: Option<String>,
    },
}

/// Reads one answer of `GET /v2/<name>/referrers/<digest>`: 404 (and 400, 405, 406) is "no
/// API" (the spec's signal for the fallback); 200 must carry an image index; anything else is an error the
/// caller reports (`Err(None)`: the registry's own status error is built by the caller).
pub(crate) fn read_referrers_answer(
    status: StatusCode,
    content_type: Option<&str>,
    link: Option<&str>,
    body: bytes::Bytes,
    what: &str,
) -> Result<Option<ReferrersAnswer>, Error> {
    // 404 is the spec's signal. Registries that route no such path answer 400, 405 or 406
    // too (go-containerregistry falls back on those as well); our digests are valid, so for
    // us those mean the same.
    if matches!(
        status,
        StatusCode::NOT_FOUND
            | StatusCode::BAD_REQUEST
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::NOT_ACCEPTABLE
    ) {
        return Ok(Some(ReferrersAnswer::Unsupported));
    }
    if !status.is_success() {
        return Ok(None);
    }
    let document = ManifestDocument::from_bytes(body, content_type, what)?;
    if !document.is_index() {
        return Err(Error::UnsupportedMediaType {
            what: what.to_owned(),
            media_type: document.media_type().to_owned(),
        });
    }
    Ok(Some(ReferrersAnswer::Page {
        descriptors: document.children().to_vec(),
        next: link.and_then(next_link),
    }))
}

/// Whether a manifest `PUT` answer says the registry indexed `subject` itself: the
/// `OCI-Subject` header names it. Without the header the client must update the tag schema.
pub(crate) fn subject_indexed(header: Option<&str>, subject: &Digest) -> bool {
    header
        .and_then(|value| parse_digest(value.trim()).ok())
        .is_some_and(|digest| &digest == subject)
}

/// The referrers tag schema's tag for `subject`: `<alg>-<ref>`, the algorithm cut to 32
/// characters and the encoded digest to 64 (`sha256-<hex>`).
pub fn fallback_tag(subject: &Digest) -> String {
    let algorithm: String = subject.algorithm().name().chars().take(32).collect();
    let hex: String = subject.hex().chars().take(64).collect();
    format!("{algorithm}-{hex}")
}

/// The reference of the tag schema's index for `subject` in `repository`.
pub fn fallback_reference(repository: &Repository, subject: &Digest) -> Result<Reference, Error> {
    repository.tag(&fallback_tag(subject))
}

impl Client {
    /// The referrers of `subject` through the referrers API, every page, optionally only
    /// those of `artifact_type` (filtered here too, in case the registry does not filter).
    /// `None` when the registry has no referrers API.
    pub async fn referrers_api(
        &self,
        repository: &Repository,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>, Error> {
        let endpoint = self.endpoint(repository.registry())?;
        let mut url = endpoint.url(&format!("v2/{}/referrers/{subject}", repository.name()));
        if let Some(wanted) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", wanted);
        }
        let what = format!("referrers of {subject} in `{repository}`");
        let mut found = Vec::new();
        for _ in 0..MAX_PAGES {
            let request = Request::new(
                Method::GET,
                url.clone(),
                vec![Scope::pull(repository.name())],
            )
            .header(header::ACCEPT, OCI_INDEX);
            let fetched = self.fetch_document(&endpoint, &request, &what).await?;
            let answer = read_referrers_answer(
                fetched.status,
                fetched.header("content-type"),
                fetched.header("link"),
                fetched.body.clone(),
                &what,
            )?;
            let (descriptors, next_link) = match answer {
                None => return Err(fetched.into_error(&endpoint, &request)),
                Some(ReferrersAnswer::Unsupported) => return Ok(None),
                Some(ReferrersAnswer::Page { descriptors, next }) => (descriptors, next),
            };
            found.extend(descriptors.into_iter().filter(|d| {
                artifact_type.is_none_or(|wanted| {
                    d.artifact_type()
                        .as_ref()
                        .is_some_and(|t| t.to_string() == wanted)
                })
            }));
            match next_page(&endpoint, &url, next_link.as_deref(), "referrers list")? {
                Some(next) => url = next,
                None => return Ok(Some(found)),
            }
        }
        Ok(Some(found))
    }

    /// `PUT`s a manifest with a `subject` by its digest; `true` when the registry said
    /// (`OCI-Subject`) that it indexed the subject, so no tag schema update is needed.
    pub(crate) async fn put_referrer(
        &self,
        repository: &Repository,
        document: &ManifestDocument,
        subject: &Digest,
    ) -> Result<bool, Error> {
        let answer = self
            .put_manifest_answer(&repository.digest(document.digest()), document)
            .await?;
        Ok(subject_indexed(answer.header(OCI_SUBJECT_HEADER), subject))
    }
}

#[cfg(test)]
mod tests {
    //! The API branch against exchanges recorded from registries that have the referrers API
    //! (distribution 3 and zot answer like this); the local test registry (distribution 2.8)
    //! has none, so the end-to-end tests exercise the tag schema.
    use super::*;

    const SUBJECT: &str = "sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270";

    fn digest(text: &str) -> Digest {
        parse_digest(text).unwrap()
    }

    #[test]
    fn a_404_means_no_referrers_api() {
        // distribution 2.8: its router has no such route.
        let answer = read_referrers_answer(
            StatusCode::NOT_FOUND,
            Some("text/plain; charset=utf-8"),
            None,
            bytes::Bytes::from_static(b"404 page not found\n"),
            "referrers",
        )
        .unwrap();
        assert!(matches!(answer, Some(ReferrersAnswer::Unsupported)));
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::NOT_ACCEPTABLE,
        ] {
            let answer =
                read_referrers_answer(status, None, None, bytes::Bytes::new(), "referrers")
                    .unwrap();
            assert!(
                matches!(answer, Some(ReferrersAnswer::Unsupported)),
                "{status}"
            );
        }
    }

    #[test]
    fn a_page_lists_descriptors_with_artifact_types_and_the_next_link() {
        let body = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:4f2a8c0b2f3d8f1f2e1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f","size":721,"artifactType":"application/vnd.cyclonedx+json","annotations":{"org.opencontainers.image.created":"2026-12-06T07:00:00Z"}}]}"#;
        let answer = read_referrers_answer(
            StatusCode::OK,
            Some("application/vnd.oci.image.index.v1+json"),
            Some(r#"</v2/app/referrers/sha256:5b0b?n=1&last=x>; rel="next""#),
            bytes::Bytes::from(body),
            "referrers",
        )
        .unwrap();
        let Some(ReferrersAnswer::Page { descriptors, next }) = answer else {
            panic!("expected a page, got {answer:?}");
        };
        assert_eq!(descriptors.len(), 1);
        assert_eq!(
            descriptors[0].artifact_type().as_ref().unwrap().to_string(),
            "application/vnd.cyclonedx+json"
        );
        assert_eq!(descriptors[0].size(), 721);
        assert_eq!(
            next.as_deref(),
            Some("/v2/app/referrers/sha256:5b0b?n=1&last=x")
        );
    }

    #[test]
    fn an_empty_list_is_an_empty_index() {
        // A subject with no referrers (or not even in the repository) answers 200 and an
        // empty index, never 404.
        let answer = read_referrers_answer(
            StatusCode::OK,
            Some("application/vnd.oci.image.index.v1+json"),
            None,
            bytes::Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#),
            "referrers",
        )
        .unwrap();
        assert!(matches!(
            answer,
            Some(ReferrersAnswer::Page { descriptors, next: None }) if descriptors.is_empty()
        ));
    }

    #[test]
    fn other_statuses_and_non_index_bodies_are_errors() {
        let denied = read_referrers_answer(
            StatusCode::UNAUTHORIZED,
            None,
            None,
            bytes::Bytes::new(),
            "referrers",
        )
        .unwrap();
        assert!(denied.is_none(), "the caller turns it into a status error");
        let image = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{SUBJECT}","size":2}},"layers":[]}}"#
        );
        let error = read_referrers_answer(
            StatusCode::OK,
            None,
            None,
            bytes::Bytes::from(image),
            "referrers",
        )
        .unwrap_err();
        assert!(
            matches!(error, Error::UnsupportedMediaType { .. }),
            "{error}"
        );
    }

    #[test]
    fn the_oci_subject_header_says_the_registry_indexed_the_subject() {
        let subject = digest(SUBJECT);
        assert!(subject_indexed(Some(SUBJECT), &subject));
        assert!(subject_indexed(Some(&format!(" {SUBJECT} ")), &subject));
        assert!(
            !subject_indexed(None, &subject),
            "no header: the tag schema"
        );
        assert!(!subject_indexed(
            Some("sha256:0000000000000000000000000000000000000000000000000000000000000000"),
            &subject
        ));
        assert!(!subject_indexed(Some("garbage"), &subject));
    }

    #[test]
    fn the_fallback_tag_is_the_algorithm_and_the_hex() {
        assert_eq!(
            fallback_tag(&digest(SUBJECT)),
            "sha256-5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
        );
        let long = format!("sha512:{}", "ab".repeat(64));
        let tag = fallback_tag(&digest(&long));
        assert_eq!(tag, format!("sha512-{}", "ab".repeat(32)));
    }
}
