//! `Error`: what can go wrong talking to a registry or reading a local image. Every variant
//! names the registry, reference, path or helper it is about; none carries a credential.

use std::fmt;
use std::path::PathBuf;

use crate::Platform;

/// Where a URL the registry handed us was meant to take us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// A `Location` header on a 3xx response.
    Redirect,
    /// The `realm` of a bearer challenge.
    TokenRealm,
    /// The `Location` of an upload session.
    UploadLocation,
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Redirect => "redirect",
            Self::TokenRealm => "token realm",
            Self::UploadLocation => "upload location",
        })
    }
}

/// An error from the registry client or an operation built on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference does not follow the distribution grammar.
    #[error("invalid image reference `{input}`: {reason}")]
    InvalidReference { input: String, reason: String },

    /// A digest is malformed.
    #[error("invalid digest `{input}`")]
    InvalidDigest { input: String },

    /// A registry URL in the settings cannot be used.
    #[error("invalid registry URL `{url}`: {reason}")]
    InvalidRegistryUrl { url: String, reason: String },

    /// Plain HTTP was asked for a registry that is neither loopback nor marked insecure.
    #[error(
        "registry `{registry}` would be reached over plain HTTP, which is only allowed for loopback hosts and registries marked `insecure: true`"
    )]
    InsecureNotAllowed { registry: String },

    /// The registry answered with an error status (after retries when it was transient).
    #[error("{method} {path} on `{registry}` failed: HTTP {status}{}{}", code_part(.code.as_deref(), .message.as_deref()), attempts_part(*.attempts))]
    Status {
        registry: String,
        method: String,
        path: String,
        status: u16,
        code: Option<String>,
        message: Option<String>,
        attempts: u32,
    },

    /// The registry refused our credentials, or wanted some and we had none.
    #[error("{method} {path} on `{registry}`: not authorized (HTTP 401{}){}", code_part(.code.as_deref(), .message.as_deref()), if *.had_credentials { "" } else { "; no credentials are configured for this registry" })]
    Unauthorized {
        registry: String,
        method: String,
        path: String,
        code: Option<String>,
        message: Option<String>,
        had_credentials: bool,
    },

    /// The connection failed, was reset, or a body ended early (after retries).
    #[error("{method} {path} on `{registry}`: network error after {attempts} attempt(s)")]
    Network {
        registry: String,
        method: String,
        path: String,
        attempts: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A manifest does not exist.
    #[error("manifest `{reference}` not found")]
    ManifestNotFound { reference: String },

    /// A blob does not exist.
    #[error("blob {digest} not found in `{repository}`")]
    BlobNotFound { repository: String, digest: String },

    /// Content did not hash to the digest it was asked for by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Content had another size than its descriptor says.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// A manifest, error body, token answer or tag list exceeded its cap.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },

    /// A document has both `layers` and `manifests`, so it could be read two ways.
    #[error("manifest {what} is ambiguous: it has both `layers` and `manifests`")]
    AmbiguousManifest { what: String },

    /// A manifest media type this client does not handle (schema 1, artifacts of unknown kind).
    #[error("manifest {what} has unsupported media type `{media_type}`")]
    UnsupportedMediaType { what: String, media_type: String },

    /// A manifest is not valid JSON of the kind it claims.
    #[error("manifest {what} is not a valid image manifest or index")]
    InvalidManifest {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// An index has no image for the platform asked for.
    #[error("`{reference}` has no image for platform {wanted}; it has: {}", platform_list(.available))]
    PlatformNotFound {
        reference: String,
        wanted: Platform,
        available: Vec<Platform>,
    },

    /// A redirect, realm or upload location points somewhere we refuse to go.
    #[error("registry `{registry}` sent a {kind} to `{target}`, which is refused: {reason}")]
    UnsafeTarget {
        registry: String,
        kind: TargetKind,
        target: String,
        reason: String,
    },

    /// More redirects than allowed.
    #[error("{method} {path} on `{registry}`: more than {limit} redirects")]
    TooManyRedirects {
        registry: String,
        method: String,
        path: String,
        limit: u32,
    },

    /// The registry's challenge or its token service's answer cannot be used.
    #[error("registry `{registry}`: {reason}")]
    Authentication { registry: String, reason: String },

    /// The work was cancelled (Ctrl-C); nothing half-written was published.
    #[error("cancelled")]
    Cancelled,

    /// A Docker credential helper failed; no other credential is tried instead.
    #[error("credential helper `docker-credential-{helper}` for `{registry}` failed: {status}{}", if .stderr_tail.is_empty() { String::new() } else { format!("; stderr: {}", .stderr_tail) })]
    CredentialHelper {
        helper: String,
        registry: String,
        status: String,
        stderr_tail: String,
    },

    /// A credential helper name that is not a plain word (a path, an option).
    #[error(
        "credential helper name `{name}` for `{registry}` is not valid: only letters, digits, `.`, `_` and `-` are allowed"
    )]
    InvalidHelperName { name: String, registry: String },

    /// Docker's `config.json` is not valid JSON of the expected shape.
    #[error("Docker config `{}` is not valid", .path.display())]
    DockerConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// An `auth` entry of Docker's `config.json` is not base64 `user:password`.
    #[error("Docker config `{}`: the `auth` entry for `{registry}` is not base64 of `user:password`", .path.display())]
    DockerConfigAuth { path: PathBuf, registry: String },

    /// Reading or writing a local file failed.
    #[error("I/O error on `{}`", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A local image (OCI layout or archive) could not be read.
    #[error(transparent)]
    Oci(#[from] im_oci::OciError),

    /// A local image (OCI layout or archive) is incomplete or inconsistent.
    #[error("`{}` is not a usable OCI image: {reason}", .path.display())]
    LocalImage { path: PathBuf, reason: String },

    /// An operation was asked for something that cannot be done as asked.
    #[error("{operation} `{reference}`: {reason}")]
    Invalid {
        operation: &'static str,
        reference: String,
        reason: String,
    },

    /// Building the HTTP client failed (TLS roots, proxy).
    #[error("setting up the HTTP client failed: {reason}")]
    Setup { reason: String },
}

impl Error {
    /// Whether another try might succeed (a network failure, a transient status).
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Network { .. } => true,
            Self::Status { status, .. } => crate::retry::retryable_status(*status),
            _ => false,
        }
    }
}

fn code_part(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(code), Some(message)) => format!(" {code}: {message}"),
        (Some(code), None) => format!(" {code}"),
        (None, Some(message)) => format!(": {message}"),
        (None, None) => String::new(),
    }
}

fn attempts_part(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

fn platform_list(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "no platforms".to_owned();
    }
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_errors_name_status_code_and_attempts() {
        let e = Error::Status {
            registry: "reg:5000".into(),
            method: "PUT".into(),
            path: "/v2/app/manifests/1".into(),
            status: 503,
            code: Some("UNAVAILABLE".into()),
            message: Some("try later".into()),
            attempts: 5,
        };
        assert_eq!(
            e.to_string(),
            "PUT /v2/app/manifests/1 on `reg:5000` failed: HTTP 503 UNAVAILABLE: try later (after 5 attempts)"
        );
    }

    #[test]
    fn platform_not_found_lists_what_exists() {
        let e = Error::PlatformNotFound {
            reference: "r/app:1".into(),
            wanted: "linux/s390x".parse().unwrap(),
            available: vec![
                "linux/amd64".parse().unwrap(),
                "linux/arm64".parse().unwrap(),
            ],
        };
        assert_eq!(
            e.to_string(),
            "`r/app:1` has no image for platform linux/s390x; it has: linux/amd64, linux/arm64"
        );
    }
}
