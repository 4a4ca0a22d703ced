//! `BaseError`: why an external base could not be resolved or pulled. Every variant names
//! the reference as the Dockerfile wrote it and the registry asked; none carries a credential.

use std::path::PathBuf;

/// An external base that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    /// The reference is not a valid image reference.
    #[error("external base `{reference}` is not a valid image reference")]
    Invalid {
        reference: String,
        #[source]
        source: im_registry::Error,
    },
    /// No registry (mirror or origin) has it.
    #[error("external base `{reference}` was not found in {}{}", registries.join(", "), credentials_note(*credentials))]
    NotFound {
        reference: String,
        /// Every registry asked, in order.
        registries: Vec<String>,
        credentials: Credentials,
    },
    /// The registry refused: credentials missing or wrong.
    #[error("external base `{reference}`: {registry} refused access{}", credentials_note(*credentials))]
    Unauthorized {
        reference: String,
        registry: String,
        credentials: Credentials,
        #[source]
        source: im_registry::Error,
    },
    /// The image has no manifest for a platform a node is built for.
    #[error("external base `{reference}` has no image for {platform} (it has: {})", if available.is_empty() { "none".to_owned() } else { available.join(", ") })]
    NoPlatform {
        reference: String,
        platform: String,
        available: Vec<String>,
    },
    /// The registry could not be reached or answered with an error.
    #[error("external base `{reference}`: cannot read it from {registry}")]
    Registry {
        reference: String,
        registry: String,
        #[source]
        source: im_registry::Error,
    },
    /// `--offline` and nothing was recorded or cached.
    #[error("external base `{reference}` {what} (offline: {registry} was not asked)")]
    Offline {
        reference: String,
        registry: String,
        what: &'static str,
    },
    #[error("cannot read or write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid record of resolved bases; delete it to resolve again", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Whether credentials were sent (never their value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    Tried,
    NoneConfigured,
    Unknown,
}

fn credentials_note(credentials: Credentials) -> &'static str {
    match credentials {
        Credentials::Tried => " (credentials were sent)",
        Credentials::NoneConfigured => " (no credentials are configured for it)",
        Credentials::Unknown => "",
    }
}

impl BaseError {
    /// The registry error behind this one, if any.
    pub fn registry_error(&self) -> Option<&im_registry::Error> {
        match self {
            Self::Invalid { source, .. }
            | Self::Unauthorized { source, .. }
            | Self::Registry { source, .. } => Some(source),
            _ => None,
        }
    }

    /// A hint for the user.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            Self::NotFound { .. } => Some(
                "check the name and tag, or add a `registries:` entry with `mirror_of:` for a mirror that has it",
            ),
            Self::Unauthorized {
                credentials: Credentials::NoneConfigured,
                ..
            } => Some(
                "log in with `docker login`, or add `username`/`password` to the registry's entry in `registries:`",
            ),
            Self::Unauthorized { .. } => Some(
                "check the credentials of the registry's entry in `registries:` or Docker's config.json",
            ),
            Self::NoPlatform { .. } => {
                Some("build the image for the platforms its base has (`platforms:` or --platform)")
            }
            Self::Offline { .. } => Some("run once without --offline to resolve and pull it"),
            Self::Registry { .. } => Some(
                "check that the registry is reachable; `insecure: true` on its `registries:` entry allows plain HTTP",
            ),
            _ => None,
        }
    }
}
