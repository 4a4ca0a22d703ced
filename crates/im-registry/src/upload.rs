//! Blob uploads. A blob the repository already has is not sent again; a blob another
//! repository of the same registry has is mounted (a failed mount falls back to an
//! upload). Small blobs go in one `PUT`, large ones in `PATCH` chunks. An interrupted upload
//! asks the registry how much it holds and resumes from there, or starts a new session;
//! the closing `PUT ?digest=` is only sent once every byte is in, and the registry checks
//! the digest, so partial data is never committed.

use reqwest::header;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::auth::Scope;
use crate::digest::{Digest, parse_digest};
use crate::error::TargetKind;
use crate::transport::{BlobSource, Endpoint, Request, status_error};
use crate::{Client, Error, Repository};

/// What pushing one blob did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository already had it: nothing was sent.
    AlreadyPresent,
    /// Mounted from another repository of the same registry: nothing was sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// An open upload session: where to send the next bytes and how many the registry has.
struct Session {
    location: Url,
    offset: u64,
}

impl Client {
    /// Makes sure `repository` has the blob, uploading `source` only when it must.
    pub async fn push_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        source: BlobSource,
        mount_from: Option<&Repository>,
    ) -> Result<BlobPush, Error> {
        if self
            .blob_exists_for(repository, digest, true)
            .await?
            .is_some()
        {
            return Ok(BlobPush::AlreadyPresent);
        }
        self.upload_blob_unchecked(repository, digest, size, source, mount_from)
            .await
    }

    /// `push_blob` for a caller that already knows the repository lacks the blob.
    pub(crate) async fn upload_blob_unchecked(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        source: BlobSource,
        mount_from: Option<&Repository>,
    ) -> Result<BlobPush, Error> {
        if source.len() != size {
            return Err(Error::SizeMismatch {
                what: format!("local source of blob {digest}"),
                expected: size,
                actual: source.len(),
            });
        }
        let endpoint = self.endpoint(repository.registry())?;
        let mut session = None;
        if let Some(from) =
            mount_from.filter(|f| f.registry() == repository.registry() && *f != repository)
        {
            match self.mount(&endpoint, repository, digest, from).await {
                Ok(MountOutcome::Mounted) => return Ok(BlobPush::Mounted),
                Ok(MountOutcome::Session(location)) => {
                    session = Some(Session {
                        location,
                        offset: 0,
                    });
                }
                Err(e) => {
                    tracing::debug!(%digest, from = %from, error = %e, "mount failed; uploading instead");
                }
            }
        }
        let retry = &self.transport.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut current = match session.take() {
                Some(session) => session,
                None => Session {
                    location: self.start_upload(&endpoint, repository).await?,
                    offset: 0,
                },
            };
            let outcome = self
                .send_session(&endpoint, repository, &mut current, digest, &source)
                .await;
            match outcome {
                Ok(()) => return Ok(BlobPush::Uploaded),
                Err(e) if e.is_transient() && attempt < retry.max_attempts => {
                    tracing::debug!(%digest, error = %e, attempt, "upload interrupted");
                    self.transport.sleep(retry.delay(attempt, None)).await?;
                    // The registry may have committed before the connection broke.
                    if self
                        .blob_exists_for(repository, digest, true)
                        .await?
                        .is_some()
                    {
                        return Ok(BlobPush::Uploaded);
                    }
                    session = self
                        .session_status(&endpoint, repository, current.location, size)
                        .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Mounts a blob from another repository of the same registry; `false` when the
    /// registry would not (the blob is then not in `repository`). A registry that will not
    /// mount opens an upload session instead (`202 Accepted`); that session is cancelled
    /// (`DELETE` on its location, as the distribution spec says), so nothing is left open.
    /// A registry that refuses the cancel (some do not implement it) only leaves the session
    /// to expire: that is logged, not an error.
    pub async fn mount_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
        from: &Repository,
    ) -> Result<bool, Error> {
        let endpoint = self.endpoint(repository.registry())?;
        match self.mount(&endpoint, repository, digest, from).await? {
            MountOutcome::Mounted => Ok(true),
            MountOutcome::Session(location) => {
                if let Err(error) = self.cancel_upload(&endpoint, repository, location).await {
                    if matches!(error, Error::Cancelled) {
                        return Err(error);
                    }
                    tracing::debug!(%digest, %error, "the registry did not cancel the upload session a refused mount opened");
                }
                Ok(false)
            }
        }
    }

    /// `DELETE` on an upload session's location. A session the registry no longer knows
    /// (`404`) is as good as cancelled.
    async fn cancel_upload(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        location: Url,
    ) -> Result<(), Error> {
        let request = Request::new(
            Method::DELETE,
            location,
            vec![Scope::push(repository.name())],
        );
        let fetched = self
            .fetch_status(endpoint, &request, "upload cancel")
            .await?;
        if fetched.status.is_success() || fetched.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(fetched.into_error(endpoint, &request))
    }

    async fn mount(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        digest: &Digest,
        from: &Repository,
    ) -> Result<MountOutcome, Error> {
        let mut url = endpoint.url(&format!("v2/{}/blobs/uploads/", repository.name()));
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.name());
        let request = Request::new(
            Method::POST,
            url,
            vec![Scope::push(repository.name()), Scope::pull(from.name())],
        );
        let fetched = self.fetch_status(endpoint, &request, "mount").await?;
        match fetched.status {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => {
                let location = self.location(endpoint, &request.url, fetched.header("location"))?;
                Ok(MountOutcome::Session(location))
            }
            _ => Err(fetched.into_error(endpoint, &request)),
        }
    }

    /// `POST …/blobs/uploads/`: opens a session.
    async fn start_upload(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
    ) -> Result<Url, Error> {
        let url = endpoint.url(&format!("v2/{}/blobs/uploads/", repository.name()));
        let request = Request::new(Method::POST, url, vec![Scope::push(repository.name())]);
        let fetched = self
            .fetch_status(endpoint, &request, "upload start")
            .await?;
        if fetched.status != StatusCode::ACCEPTED && !fetched.status.is_success() {
            return Err(fetched.into_error(endpoint, &request));
        }
        self.location(endpoint, &request.url, fetched.header("location"))
    }

    /// Resolves and checks an upload `Location`.
    fn location(
        &self,
        endpoint: &Endpoint,
        base: &Url,
        location: Option<&str>,
    ) -> Result<Url, Error> {
        let refuse = |reason: &str| Error::UnsafeTarget {
            registry: endpoint.registry.clone(),
            kind: TargetKind::UploadLocation,
            target: location.unwrap_or_default().chars().take(100).collect(),
            reason: reason.to_owned(),
        };
        let location = location.ok_or_else(|| refuse("the registry sent no Location"))?;
        let url = base
            .join(location)
            .map_err(|_| refuse("it is not a valid URL"))?;
        self.transport
            .check_target(endpoint, &url, TargetKind::UploadLocation)?;
        Ok(url)
    }

    /// Sends the rest of the blob into a session and closes it.
    async fn send_session(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        session: &mut Session,
        digest: &Digest,
        source: &BlobSource,
    ) -> Result<(), Error> {
        let size = source.len();
        let limits = &self.transport.limits;
        let scopes = vec![Scope::push(repository.name())];
        let chunked = size > limits.monolithic_upload_max_bytes;
        if chunked {
            let chunk = limits.upload_chunk_bytes.max(1);
            while session.offset < size {
                let len = chunk.min(size - session.offset);
                let end = session.offset + len - 1;
                let request = Request::new(Method::PATCH, session.location.clone(), scopes.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_RANGE, &format!("{}-{end}", session.offset))
                    .body(source.slice(session.offset, len));
                let reply = self.send_single(endpoint, &request).await?;
                let status = reply.response.status();
                if status != StatusCode::ACCEPTED && status != StatusCode::NO_CONTENT {
                    return Err(self.reply_error(endpoint, &request, reply).await);
                }
                let headers = reply.response.headers().clone();
                let location = headers.get(header::LOCATION).and_then(|v| v.to_str().ok());
                session.location = self.location(endpoint, &request.url, location)?;
                let confirmed = headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_end)
                    .map_or(end + 1, |last| last + 1);
                if confirmed != end + 1 {
                    // The registry holds another amount than we sent: carry on from there.
                    tracing::debug!(%digest, confirmed, expected = end + 1, "registry confirmed a different offset");
                    if confirmed > size {
                        return Err(Error::Invalid {
                            operation: "upload",
                            reference: repository.digest(digest).to_string(),
                            reason: "the registry claims more bytes than the blob has".to_owned(),
                        });
                    }
                }
                session.offset = confirmed;
            }
        }
        let mut url = session.location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut request = Request::new(Method::PUT, url, scopes)
            .header(header::CONTENT_TYPE, "application/octet-stream");
        if session.offset < size {
            request = request.body(source.slice(session.offset, size - session.offset));
        }
        let reply = self.send_single(endpoint, &request).await?;
        let status = reply.response.status();
        if status != StatusCode::CREATED && !status.is_success() {
            return Err(self.reply_error(endpoint, &request, reply).await);
        }
        if let Some(stored) = reply
            .response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|d| parse_digest(d).ok())
            && stored.algorithm() == digest.algorithm()
            && &stored != digest
        {
            return Err(Error::DigestMismatch {
                what: format!("blob stored in `{repository}`"),
                expected: digest.to_string(),
                actual: stored.to_string(),
            });
        }
        Ok(())
    }

    /// Asks the registry how much of an interrupted session it holds. `None` means start
    /// over (the session is gone or its state is unusable).
    async fn session_status(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        location: Url,
        size: u64,
    ) -> Option<Session> {
        let request = Request::new(Method::GET, location, vec![Scope::push(repository.name())]);
        let fetched = self
            .fetch_status(endpoint, &request, "upload status")
            .await
            .ok()?;
        if fetched.status != StatusCode::NO_CONTENT && !fetched.status.is_success() {
            return None;
        }
        let offset = match fetched.header("range") {
            // `0-0` means "nothing" to some registries and "one byte" to others: start over.
            Some(range) => match range_end(range)? {
                0 => return None,
                last => last + 1,
            },
            None => 0,
        };
        if offset > size {
            return None;
        }
        let location = self
            .location(endpoint, &request.url, fetched.header("location"))
            .unwrap_or(request.url);
        tracing::debug!(offset, "resuming upload session");
        Some(Session { location, offset })
    }

    /// One try without transport retries: bodies into an upload session are not replayed
    /// blindly; the caller decides from the session status.
    async fn send_single(
        &self,
        endpoint: &Endpoint,
        request: &Request,
    ) -> Result<crate::transport::Reply, Error> {
        let reply = self.transport.send_without_retry(endpoint, request).await?;
        Ok(reply)
    }

    async fn reply_error(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        reply: crate::transport::Reply,
    ) -> Error {
        let status = reply.response.status();
        let attempts = reply.attempts;
        let had_credentials = reply.had_credentials;
        let body = self
            .transport
            .read_capped(
                reply.response,
                self.transport.limits.max_error_body_bytes,
                "error body",
            )
            .await
            .unwrap_or_default();
        let (code, message) = crate::transport::parse_error_body(&body);
        status_error(
            endpoint,
            request,
            status,
            code,
            message,
            attempts,
            had_credentials,
        )
    }
}

enum MountOutcome {
    Mounted,
    Session(Url),
}

/// The last byte of a `Range: 0-N` (or `bytes=0-N`) upload status; `0-0` with nothing
/// uploaded is reported by some registries as well, and means one byte.
fn range_end(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (start, end) = range.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::range_end;

    #[test]
    fn upload_status_ranges() {
        assert_eq!(range_end("0-99"), Some(99));
        assert_eq!(range_end("bytes=0-0"), Some(0));
        assert_eq!(range_end("5-9"), None);
        assert_eq!(range_end("junk"), None);
    }
}
