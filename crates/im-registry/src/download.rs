//! Blob downloads: streamed, hashed on the fly and checked for size and digest over the
//! whole stream. A stream cut short resumes with `Range`; when the server answers a range
//! request with the whole blob (200), the bytes already written are skipped, so the
//! checked stream is still exactly what was written.

use std::path::Path;

use bytes::Bytes;
use reqwest::header;
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::auth::Scope;
use crate::digest::{Digest, Hasher};
use crate::transport::{Request, status_error};
use crate::{Client, Error, Repository};

impl Client {
    /// Reads a whole blob into memory (use for configs and small blobs).
    pub async fn fetch_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Bytes, Error> {
        let capacity = usize::try_from(size.min(64 * 1024 * 1024)).unwrap_or(0);
        let mut buffer = Vec::with_capacity(capacity);
        self.download_to(repository, digest, size, &mut buffer)
            .await?;
        Ok(Bytes::from(buffer))
    }

    /// Downloads a blob into a file (created or truncated).
    pub async fn download_blob(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        destination: &Path,
    ) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: destination.to_owned(),
            source,
        };
        let file = tokio::fs::File::create(destination).await.map_err(io)?;
        let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
        self.download_to(repository, digest, size, &mut writer)
            .await?;
        writer.flush().await.map_err(io)?;
        Ok(())
    }

    /// Streams a blob into `sink`, verifying size and digest, resuming after failures.
    pub(crate) async fn download_to<W: AsyncWrite + Unpin>(
        &self,
        repository: &Repository,
        digest: &Digest,
        size: u64,
        sink: &mut W,
    ) -> Result<(), Error> {
        let transport = &self.transport;
        let endpoint = self.endpoint(repository.registry())?;
        let url = endpoint.url(&format!("v2/{}/blobs/{digest}", repository.name()));
        let what = || format!("blob {digest} of `{repository}`");
        let mut hasher = Hasher::new(digest.algorithm());
        let mut written: u64 = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = Request::new(
                Method::GET,
                url.clone(),
                vec![Scope::pull(repository.name())],
            );
            if written > 0 {
                request = request.header(header::RANGE, &format!("bytes={written}-"));
            }
            let reply = transport.send(&endpoint, &request).await?;
            let status = reply.response.status();
            let mut skip = match status {
                StatusCode::OK => {
                    if let Some(length) = reply.response.content_length()
                        && length != size
                    {
                        return Err(Error::SizeMismatch {
                            what: what(),
                            expected: size,
                            actual: length,
                        });
                    }
                    written
                }
                StatusCode::PARTIAL_CONTENT if written > 0 => {
                    let start = reply
                        .response
                        .headers()
                        .get(header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(range_start);
                    if start != Some(written) {
                        return Err(Error::Invalid {
                            operation: "download",
                            reference: repository.digest(digest).to_string(),
                            reason: "the registry resumed at another offset than asked".to_owned(),
                        });
                    }
                    0
                }
                StatusCode::NOT_FOUND => {
                    return Err(Error::BlobNotFound {
                        repository: repository.to_string(),
                        digest: digest.to_string(),
                    });
                }
                _ => {
                    let attempts = reply.attempts;
                    let had_credentials = reply.had_credentials;
                    let body = transport
                        .read_capped(
                            reply.response,
                            transport.limits.max_error_body_bytes,
                            "error body",
                        )
                        .await
                        .unwrap_or_default();
                    let (code, message) = crate::transport::parse_error_body(&body);
                    return Err(status_error(
                        &endpoint,
                        &request,
                        status,
                        code,
                        message,
                        attempts,
                        had_credentials,
                    ));
                }
            };
            let mut response = reply.response;
            let failure = loop {
                match transport.cancellable(response.chunk()).await? {
                    Ok(Some(chunk)) => {
                        let mut chunk = &chunk[..];
                        if skip > 0 {
                            let n = usize::try_from(skip.min(chunk.len() as u64)).expect("fits");
                            chunk = &chunk[n..];
                            skip -= n as u64;
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        if written + chunk.len() as u64 > size {
                            return Err(Error::SizeMismatch {
                                what: what(),
                                expected: size,
                                actual: written + chunk.len() as u64,
                            });
                        }
                        hasher.update(chunk);
                        transport
                            .cancellable(sink.write_all(chunk))
                            .await?
                            .map_err(|source| Error::Io {
                                path: format!("download of {digest}").into(),
                                source,
                            })?;
                        written += chunk.len() as u64;
                    }
                    Ok(None) if written == size && skip == 0 => break None,
                    Ok(None) => break Some("the stream ended early".to_owned()),
                    Err(e) => break Some(e.without_url().to_string()),
                }
            };
            match failure {
                None => {
                    let actual = hasher.finish();
                    if &actual != digest {
                        return Err(Error::DigestMismatch {
                            what: what(),
                            expected: digest.to_string(),
                            actual: actual.to_string(),
                        });
                    }
                    return Ok(());
                }
                Some(reason) if attempt < transport.retry.max_attempts => {
                    tracing::debug!(%digest, written, %reason, attempt, "blob download interrupted; resuming");
                    transport
                        .sleep(transport.retry.delay(attempt, None))
                        .await?;
                }
                Some(reason) => {
                    return Err(Error::Network {
                        registry: endpoint.registry.clone(),
                        method: "GET".to_owned(),
                        path: url.path().to_owned(),
                        attempts: attempt,
                        source: reason.into(),
                    });
                }
            }
        }
    }
}

/// The first byte of `bytes START-END/TOTAL`.
fn range_start(content_range: &str) -> Option<u64> {
    let range = content_range.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::range_start;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2"), None);
    }
}
