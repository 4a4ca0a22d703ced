//! What one registry request and its response are: the bytes to upload ([`BlobSource`]),
//! a replayable [`Request`], the registry it goes to ([`Endpoint`]), the response
//! ([`Reply`], [`Fetched`]) and the error an unexpected status becomes.

use std::path::PathBuf;

use bytes::Bytes;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use url::Url;

use crate::Error;
use crate::auth::{AuthState, Scope};

/// Bytes to upload: in memory or a range of a file (a layout blob, a tar member, a
/// staged download), re-read from the start on every try.
#[derive(Clone, Debug)]
pub enum BlobSource {
    /// Bytes in memory.
    Bytes(Bytes),
    /// `len` bytes of the file at `path`, starting at `offset`.
    File {
        /// The file.
        path: PathBuf,
        /// Where the blob starts in it.
        offset: u64,
        /// The blob's length.
        len: u64,
    },
}

impl BlobSource {
    /// The number of bytes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::File { len, .. } => *len,
        }
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sub-range `start..start+len` of this source.
    pub(crate) fn slice(&self, start: u64, len: u64) -> Self {
        match self {
            Self::Bytes(b) => {
                let start = usize::try_from(start).expect("in-memory blob offsets fit usize");
                let end = start + usize::try_from(len).expect("in-memory blob sizes fit usize");
                Self::Bytes(b.slice(start..end))
            }
            Self::File { path, offset, .. } => Self::File {
                path: path.clone(),
                offset: offset + start,
                len,
            },
        }
    }

    pub(super) async fn into_body(self) -> Result<reqwest::Body, Error> {
        match self {
            Self::Bytes(b) => Ok(reqwest::Body::from(b)),
            Self::File { path, offset, len } => {
                let io = |source| Error::Io {
                    path: path.clone(),
                    source,
                };
                let mut file = tokio::fs::File::open(&path).await.map_err(io)?;
                file.seek(std::io::SeekFrom::Start(offset))
                    .await
                    .map_err(io)?;
                let reader = file.take(len);
                let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024);
                Ok(reqwest::Body::wrap_stream(stream))
            }
        }
    }
}

/// A registry request, replayable for retries, redirects and re-authentication.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<BlobSource>,
    pub(crate) scopes: Vec<Scope>,
}

impl Request {
    pub(crate) fn new(method: Method, url: Url, scopes: Vec<Scope>) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            scopes,
        }
    }

    pub(crate) fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub(crate) fn body(mut self, body: BlobSource) -> Self {
        self.body = Some(body);
        self
    }
}

/// One registry this client talks to.
pub(crate) struct Endpoint {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5050`).
    pub(crate) registry: String,
    /// `scheme://host[:port]/`.
    pub(crate) base: Url,
    pub(super) auth: tokio::sync::Mutex<AuthState>,
}

impl Endpoint {
    /// `base` joined with an API path such as `v2/app/manifests/1`.
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("API paths join onto the base URL")
    }
}

/// A response plus how many tries it took.
pub(crate) struct Reply {
    pub(crate) response: reqwest::Response,
    pub(crate) attempts: u32,
    pub(crate) had_credentials: bool,
}

/// A response whose body was read (capped).
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(super) attempts: u32,
    pub(super) had_credentials: bool,
}

impl Fetched {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error this non-success response stands for.
    pub(crate) fn into_error(self, endpoint: &Endpoint, request: &Request) -> Error {
        let (code, message) = parse_error_body(&self.body);
        status_error(
            endpoint,
            request,
            self.status,
            code,
            message,
            self.attempts,
            self.had_credentials,
        )
    }
}

pub(crate) fn status_error(
    endpoint: &Endpoint,
    request: &Request,
    status: StatusCode,
    code: Option<String>,
    message: Option<String>,
    attempts: u32,
    had_credentials: bool,
) -> Error {
    let method = request.method.to_string();
    let path = request.url.path().to_owned();
    let registry = endpoint.registry.clone();
    if status == StatusCode::UNAUTHORIZED {
        Error::Unauthorized {
            registry,
            method,
            path,
            code,
            message,
            had_credentials,
        }
    } else {
        Error::Status {
            registry,
            method,
            path,
            status: status.as_u16(),
            code,
            message,
            attempts,
        }
    }
}

/// A distribution error body: `{"errors": [{"code": ..., "message": ...}, ...]}`.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(serde::Deserialize)]
struct ErrorItem {
    code: Option<String>,
    message: Option<String>,
}

/// Whether a distribution error body lists `code` among its errors (not only first).
pub(crate) fn names_error_code(body: &[u8], code: &str) -> bool {
    serde_json::from_slice::<ErrorBody>(body).is_ok_and(|parsed| {
        parsed
            .errors
            .iter()
            .any(|item| item.code.as_deref() == Some(code))
    })
}

/// The first `{code, message}` of a distribution error body, sanitised and shortened.
pub(crate) fn parse_error_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let clean = |s: String| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect::<String>()
    };
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed
            .errors
            .into_iter()
            .next()
            .map_or((None, None), |item| {
                (
                    item.code.map(clean).filter(|s| !s.is_empty()),
                    item.message.map(clean).filter(|s| !s.is_empty()),
                )
            }),
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_code_and_clean_message() {
        let (code, message) = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown","detail":{}}]}"#,
        );
        assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(message.as_deref(), Some("manifestunknown"));
        assert_eq!(parse_error_body(b"<html>"), (None, None));
    }
}
