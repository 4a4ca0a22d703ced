//! `Client`: the registry API one call at a time — ping, manifests (HEAD/GET/PUT/DELETE),
//! blob existence, tag lists — each verified (digests, sizes, caps) and retried per the
//! transport's policy. Blob transfers live in `upload` and `download`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use im_process::CancelToken;
use reqwest::header;
use reqwest::{Method, StatusCode};

use crate::auth::Scope;
use crate::config::ImageConfigSummary;
use crate::credentials::{CredentialStore, DockerConfig, RegistrySettings};
use crate::digest::{Digest, descriptor_digest, digest_like, parse_digest};
use crate::manifest::{MANIFEST_ACCEPT, ManifestDocument, ManifestKind};
use crate::retry::RetryPolicy;
use crate::transport::{
    BlobSource, Endpoint, Fetched, Request, Transport, TransportSettings, names_error_code,
};
use crate::{Error, Reference, Repository};

/// Size caps and transfer sizes.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The largest manifest or index read (the distribution registry's own cap is 4 MiB).
    pub max_manifest_bytes: u64,
    /// The largest image config blob read into memory.
    pub max_config_bytes: u64,
    /// The most of an error body read.
    pub max_error_body_bytes: u64,
    /// The largest token-service answer read.
    pub max_token_bytes: u64,
    /// The largest page of a tag list read.
    pub max_tag_list_bytes: u64,
    /// Redirects followed per request.
    pub max_redirects: u32,
    /// Blobs up to this size are uploaded in one `PUT`; larger ones in chunks.
    pub monolithic_upload_max_bytes: u64,
    /// The chunk size of chunked uploads.
    pub upload_chunk_bytes: u64,
    /// Blobs up to this size are staged in memory when copied between registries;
    /// larger ones in a temporary file.
    pub in_memory_blob_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 4 * 1024 * 1024,
            max_config_bytes: 16 * 1024 * 1024,
            max_error_body_bytes: 64 * 1024,
            max_token_bytes: 1024 * 1024,
            max_tag_list_bytes: 8 * 1024 * 1024,
            max_redirects: 5,
            monolithic_upload_max_bytes: 128 * 1024 * 1024,
            upload_chunk_bytes: 32 * 1024 * 1024,
            in_memory_blob_max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Everything a client is built from. The binary fills it from `.image-manager.yml`, the
/// environment and the command line; this crate reads neither.
#[derive(Debug)]
pub struct ClientConfig {
    /// Registries from the project settings (credentials, `insecure`).
    pub registries: Vec<RegistrySettings>,
    /// Docker's `config.json`, loaded by the caller from `DOCKER_CONFIG` or `~/.docker`.
    pub docker_config: Option<DockerConfig>,
    /// Where `docker-credential-*` helpers live; `None` looks them up on `PATH`.
    pub credential_helper_dir: Option<PathBuf>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Size caps.
    pub limits: Limits,
    /// Transfers run at once (blobs, manifests, tags).
    pub concurrency: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
    /// A proxy for all requests (`http://host:port`), if any.
    pub proxy: Option<String>,
    /// Extra trusted root certificates (DER), on top of the system's.
    pub extra_root_certificates: Vec<Vec<u8>>,
    /// Connection setup timeout.
    pub connect_timeout: Duration,
    /// The longest a read may wait for data before the connection counts as dead.
    pub read_timeout: Duration,
    /// Cancelling this token stops all network I/O of the client promptly.
    pub cancel: CancelToken,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            registries: Vec::new(),
            docker_config: None,
            credential_helper_dir: None,
            retry: RetryPolicy::default(),
            limits: Limits::default(),
            concurrency: 8,
            user_agent: concat!("image-manager/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: None,
            extra_root_certificates: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            cancel: CancelToken::new(),
        }
    }
}

/// What a manifest `HEAD` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    /// `Docker-Content-Digest`, when the registry sent it.
    pub digest: Option<Digest>,
    /// `Content-Type`.
    pub media_type: Option<String>,
    /// `Content-Length`.
    pub size: Option<u64>,
}

/// A registry client. Cheap to clone; clones share connections, tokens and cancellation.
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: Arc<Transport>,
    concurrency: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client. No network traffic happens until the first operation.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let credentials = CredentialStore::new(
            &config.registries,
            config.docker_config,
            config.credential_helper_dir,
        )?;
        let transport = Transport::new(TransportSettings {
            credentials,
            retry: config.retry,
            limits: config.limits,
            cancel: config.cancel,
            user_agent: config.user_agent,
            proxy: config.proxy,
            extra_root_certificates: config.extra_root_certificates,
            connect_timeout: config.connect_timeout,
            read_timeout: config.read_timeout,
        })?;
        Ok(Self {
            transport: Arc::new(transport),
            concurrency: config.concurrency.max(1),
        })
    }

    /// The token that cancels this client's work.
    pub fn cancellation(&self) -> &CancelToken {
        &self.transport.cancel
    }

    /// How many transfers run at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    pub(crate) fn endpoint(&self, registry: &str) -> Result<Arc<Endpoint>, Error> {
        self.transport.endpoint(registry)
    }

    /// Checks that the registry answers and accepts our credentials (`GET /v2/`).
    pub async fn ping(&self, registry: &str) -> Result<(), Error> {
        let endpoint = self.endpoint(registry)?;
        let request = Request::new(Method::GET, endpoint.url("v2/"), Vec::new());
        self.send_checked(&endpoint, &request, "ping").await?;
        Ok(())
    }

    /// Sends `request`, whose answer is a status and headers: only an error body is read, up
    /// to the error-body cap.
    pub(crate) async fn fetch_status(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        what: &str,
    ) -> Result<Fetched, Error> {
        self.transport
            .fetch(
                endpoint,
                request,
                self.transport.limits.max_error_body_bytes,
                what,
            )
            .await
    }

    /// Sends `request`, whose answer is a manifest or index: read up to the manifest cap.
    pub(crate) async fn fetch_document(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        what: &str,
    ) -> Result<Fetched, Error> {
        self.transport
            .fetch(
                endpoint,
                request,
                self.transport.limits.max_manifest_bytes,
                what,
            )
            .await
    }

    /// [`Client::fetch_status`], turning a status other than success into the registry's
    /// error.
    async fn send_checked(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        what: &str,
    ) -> Result<Fetched, Error> {
        let fetched = self.fetch_status(endpoint, request, what).await?;
        if fetched.status.is_success() {
            Ok(fetched)
        } else {
            Err(fetched.into_error(endpoint, request))
        }
    }

    fn manifest_request(
        endpoint: &Endpoint,
        reference: &Reference,
        method: Method,
        scope: Scope,
    ) -> Request {
        let url = endpoint.url(&format!(
            "v2/{}/manifests/{}",
            reference.repository().name(),
            reference.manifest_reference()
        ));
        Request::new(method, url, vec![scope]).header(header::ACCEPT, MANIFEST_ACCEPT)
    }

    /// `HEAD` a manifest: `None` when it does not exist.
    pub async fn head_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<ManifestHead>, Error> {
        self.head_manifest_for(reference, false).await
    }

    /// `head_manifest` asking for push rights when the caller is about to write, so one
    /// token serves the check and the write.
    pub(crate) async fn head_manifest_for(
        &self,
        reference: &Reference,
        writing: bool,
    ) -> Result<Option<ManifestHead>, Error> {
        let endpoint = self.endpoint(reference.registry())?;
        let name = reference.repository().name();
        let scope = if writing {
            Scope::push(name)
        } else {
            Scope::pull(name)
        };
        let request = Self::manifest_request(&endpoint, reference, Method::HEAD, scope);
        let fetched = self
            .transport
            .fetch(&endpoint, &request, 0, "manifest")
            .await?;
        if fetched.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !fetched.status.is_success() {
            return Err(fetched.into_error(&endpoint, &request));
        }
        Ok(Some(ManifestHead {
            digest: fetched
                .header("docker-content-digest")
                .and_then(|d| parse_digest(d).ok()),
            media_type: fetched.header("content-type").map(str::to_owned),
            size: fetched
                .header("content-length")
                .and_then(|l| l.parse().ok()),
        }))
    }

    /// The digest a reference resolves to, if it exists (from `HEAD`, or `GET` when the
    /// registry does not send `Docker-Content-Digest`).
    pub async fn resolve_digest(&self, reference: &Reference) -> Result<Option<Digest>, Error> {
        if let Some(digest) = reference.digest() {
            return Ok(self.head_manifest(reference).await?.map(|_| digest.clone()));
        }
        match self.head_manifest(reference).await? {
            None => Ok(None),
            Some(ManifestHead {
                digest: Some(digest),
                ..
            }) => Ok(Some(digest)),
            Some(_) => Ok(Some(self.get_manifest(reference).await?.digest().clone())),
        }
    }

    /// `GET` a manifest, verified against the digest in the reference or, for a tag, the
    /// `Docker-Content-Digest` the registry sent.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<ManifestDocument, Error> {
        let endpoint = self.endpoint(reference.registry())?;
        let request = Self::manifest_request(
            &endpoint,
            reference,
            Method::GET,
            Scope::pull(reference.repository().name()),
        );
        let what = format!("manifest `{reference}`");
        let fetched = self.fetch_document(&endpoint, &request, &what).await?;
        if fetched.status == StatusCode::NOT_FOUND {
            return Err(Error::ManifestNotFound {
                reference: reference.to_string(),
            });
        }
        if !fetched.status.is_success() {
            return Err(fetched.into_error(&endpoint, &request));
        }
        let expected = match reference.digest() {
            Some(digest) => Some(digest.clone()),
            None => fetched
                .header("docker-content-digest")
                .and_then(|d| parse_digest(d).ok()),
        };
        if let Some(expected) = &expected {
            let actual = digest_like(expected, &fetched.body);
            if &actual != expected {
                return Err(Error::DigestMismatch {
                    what,
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let content_type = fetched.header("content-type").map(str::to_owned);
        ManifestDocument::from_bytes(fetched.body, content_type.as_deref(), &what)
    }

    /// `PUT` a manifest under a tag or its digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        document: &ManifestDocument,
    ) -> Result<(), Error> {
        self.put_manifest_answer(reference, document).await?;
        Ok(())
    }

    /// [`Client::put_manifest`], returning the registry's answer (whose headers say, for a
    /// manifest with a `subject`, whether the registry indexed it as a referrer).
    pub(crate) async fn put_manifest_answer(
        &self,
        reference: &Reference,
        document: &ManifestDocument,
    ) -> Result<Fetched, Error> {
        if let Some(digest) = reference.digest()
            && digest != document.digest()
        {
            return Err(Error::Invalid {
                operation: "put manifest",
                reference: reference.to_string(),
                reason: format!("the document's digest is {}", document.digest()),
            });
        }
        let endpoint = self.endpoint(reference.registry())?;
        let url = endpoint.url(&format!(
            "v2/{}/manifests/{}",
            reference.repository().name(),
            reference.manifest_reference()
        ));
        let request = Request::new(
            Method::PUT,
            url,
            vec![Scope::push(reference.repository().name())],
        )
        .header(header::CONTENT_TYPE, document.media_type())
        .body(BlobSource::Bytes(document.bytes().clone()));
        let retry = &self.transport.retry;
        let mut attempt = 0;
        let fetched = loop {
            attempt += 1;
            let fetched = self
                .fetch_status(&endpoint, &request, "manifest upload")
                .await?;
            if fetched.status.is_success() {
                break fetched;
            }
            // A known transient refusal: the distribution registry's filesystem storage links
            // a blob into a repository by truncating and rewriting a file, so while another
            // client that pushed the same blob (a CI job pushing another platform of the
            // image, whose layers are the same) links it again, a manifest naming it is
            // refused with MANIFEST_BLOB_UNKNOWN although the blob is there.
            if fetched.status == StatusCode::BAD_REQUEST
                && names_error_code(&fetched.body, "MANIFEST_BLOB_UNKNOWN")
                && attempt < retry.max_attempts
            {
                tracing::debug!(%reference, attempt, "manifest refused for an unknown blob; trying again");
                self.transport.sleep(retry.delay(attempt, None)).await?;
                continue;
            }
            return Err(fetched.into_error(&endpoint, &request));
        };
        if let Some(stored) = fetched
            .header("docker-content-digest")
            .and_then(|d| parse_digest(d).ok())
            && stored.algorithm() == document.digest().algorithm()
            && &stored != document.digest()
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest stored as `{reference}`"),
                expected: document.digest().to_string(),
                actual: stored.to_string(),
            });
        }
        Ok(fetched)
    }

    /// Whether a blob exists; its size when it does.
    pub async fn blob_exists(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        self.blob_exists_for(repository, digest, false).await
    }

    /// `blob_exists` asking for push rights when the caller is about to upload.
    pub(crate) async fn blob_exists_for(
        &self,
        repository: &Repository,
        digest: &Digest,
        writing: bool,
    ) -> Result<Option<u64>, Error> {
        let endpoint = self.endpoint(repository.registry())?;
        let url = endpoint.url(&format!("v2/{}/blobs/{digest}", repository.name()));
        let name = repository.name();
        let scope = if writing {
            Scope::push(name)
        } else {
            Scope::pull(name)
        };
        let request = Request::new(Method::HEAD, url, vec![scope]);
        let fetched = self.transport.fetch(&endpoint, &request, 0, "blob").await?;
        if fetched.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !fetched.status.is_success() {
            return Err(fetched.into_error(&endpoint, &request));
        }
        Ok(Some(
            fetched
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Every tag of a repository, following `Link` pagination.
    pub async fn list_tags(&self, repository: &Repository) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let endpoint = self.endpoint(repository.registry())?;
        let mut url = endpoint.url(&format!("v2/{}/tags/list?n=1000", repository.name()));
        let mut tags = Vec::new();
        for _ in 0..10_000 {
            let request = Request::new(
                Method::GET,
                url.clone(),
                vec![Scope::pull(repository.name())],
            );
            let fetched = self
                .transport
                .fetch(
                    &endpoint,
                    &request,
                    self.transport.limits.max_tag_list_bytes,
                    "tag list",
                )
                .await?;
            if fetched.status == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !fetched.status.is_success() {
                return Err(fetched.into_error(&endpoint, &request));
            }
            let page: Page =
                serde_json::from_slice(&fetched.body).map_err(|source| Error::InvalidManifest {
                    what: format!("tag list of `{repository}`"),
                    source,
                })?;
            tags.extend(page.tags.unwrap_or_default());
            let next = fetched.header("link").and_then(next_link);
            match next_page(&endpoint, &url, next.as_deref(), "tag list")? {
                Some(next) => url = next,
                None => return Ok(tags),
            }
        }
        Ok(tags)
    }

    /// Deletes a manifest by digest (the registry must allow deletes).
    pub async fn delete_manifest(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<(), Error> {
        self.delete(repository, &format!("manifests/{digest}"))
            .await
    }

    /// Deletes a blob by digest (the registry must allow deletes).
    pub async fn delete_blob(&self, repository: &Repository, digest: &Digest) -> Result<(), Error> {
        self.delete(repository, &format!("blobs/{digest}")).await
    }

    async fn delete(&self, repository: &Repository, tail: &str) -> Result<(), Error> {
        let endpoint = self.endpoint(repository.registry())?;
        let url = endpoint.url(&format!("v2/{}/{tail}", repository.name()));
        let request = Request::new(
            Method::DELETE,
            url,
            vec![
                Scope::delete(repository.name()),
                Scope::push(repository.name()),
            ],
        );
        self.send_checked(&endpoint, &request, "delete").await?;
        Ok(())
    }

    /// Reads and parses the config of an image manifest.
    pub async fn image_config(
        &self,
        repository: &Repository,
        manifest: &ManifestDocument,
    ) -> Result<ImageConfigSummary, Error> {
        let ManifestKind::Image(image) = manifest.kind() else {
            return Err(Error::Invalid {
                operation: "read config",
                reference: repository.digest(manifest.digest()).to_string(),
                reason: "it is an index, not an image".to_owned(),
            });
        };
        let config = image.config();
        if config.size() > self.transport.limits.max_config_bytes {
            return Err(Error::TooLarge {
                what: format!("config {} of `{repository}`", config.digest()),
                limit: self.transport.limits.max_config_bytes,
            });
        }
        let bytes = self
            .fetch_blob(
                repository,
                &descriptor_digest(config.digest())?,
                config.size(),
            )
            .await?;
        ImageConfigSummary::parse(&bytes, &repository.digest(manifest.digest()).to_string())
    }
}

/// The next page of a paginated list (`what`: "tag list"): `next`, the target of the `Link`
/// header of the page at `current`, made absolute; `None` on the last page. A page elsewhere
/// than the registry is refused.
pub(crate) fn next_page(
    endpoint: &Endpoint,
    current: &url::Url,
    next: Option<&str>,
    what: &str,
) -> Result<Option<url::Url>, Error> {
    let Some(next) = next else {
        return Ok(None);
    };
    let next = current.join(next).map_err(|_| Error::Authentication {
        registry: endpoint.registry.clone(),
        reason: format!("the {what}'s Link header is not a URL"),
    })?;
    if next.origin() != endpoint.base.origin() {
        return Err(Error::UnsafeTarget {
            registry: endpoint.registry.clone(),
            kind: crate::error::TargetKind::Redirect,
            target: next.host_str().unwrap_or_default().to_owned(),
            reason: format!("{what} pages must stay on the registry"),
        });
    }
    Ok(Some(next))
}

/// The target of `rel="next"` in a `Link` header.
pub(crate) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .replace(' ', "")
                .eq_ignore_ascii_case("rel=\"next\"")
                || p.trim().eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_header_next_page() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
