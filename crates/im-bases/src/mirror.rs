//! Mirrors: a registry that serves another registry's repositories (a pull-through cache
//! such as the distribution registry's proxy mode, Harbor's proxy projects or Artifactory),
//! declared as a `registries:` entry with `mirror_of: docker.io`. A reference to the
//! mirrored registry is read from its mirrors first, then from the registry itself.

use im_registry::{Error, Reference, Repository};

/// One mirror: `host[:port][/namespace]` serving the repositories of `of`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirror {
    /// The registry mirrored, as references name it (`docker.io`, `ghcr.io`).
    pub of: String,
    /// The mirror's `host[:port]`.
    pub registry: String,
    /// A repository prefix on the mirror (`dockerhub-proxy`), maybe empty.
    pub namespace: String,
}

impl Mirror {
    /// Parses a `registries:` entry's `url` (`[scheme://]host[:port][/namespace]`) and its
    /// `mirror_of` (`docker.io`, `index.docker.io` and `registry-1.docker.io` are one).
    pub fn new(url: &str, of: &str) -> Self {
        let bare = url
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let (registry, namespace) = bare.split_once('/').unwrap_or((bare, ""));
        let of = of
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_ascii_lowercase();
        let of = match of.as_str() {
            "index.docker.io" | "registry-1.docker.io" => im_registry::DOCKER_HUB.to_owned(),
            _ => of,
        };
        Self {
            of,
            registry: registry.to_ascii_lowercase(),
            namespace: namespace.to_owned(),
        }
    }

    /// The same repository on this mirror.
    pub fn repository(&self, origin: &Repository) -> Result<Repository, Error> {
        let name = if self.namespace.is_empty() {
            origin.name().to_owned()
        } else {
            format!("{}/{}", self.namespace, origin.name())
        };
        Repository::new(&self.registry, &name)
    }
}

/// Where to read `reference` from, in order: each mirror of its registry, then the
/// registry itself. Each candidate keeps the reference's tag and digest.
pub(crate) fn candidates(reference: &Reference, mirrors: &[Mirror]) -> Vec<Reference> {
    let origin = reference.repository();
    let mut out = Vec::new();
    for mirror in mirrors.iter().filter(|m| m.of == origin.registry()) {
        match mirror.repository(origin) {
            Ok(repository) => out.push(with_repository(reference, &repository)),
            Err(error) => tracing::debug!("mirror {} unusable: {error}", mirror.registry),
        }
    }
    out.push(reference.clone());
    out
}

/// `reference` with another repository, same tag and digest.
pub(crate) fn with_repository(reference: &Reference, repository: &Repository) -> Reference {
    let tagged = match reference.tag() {
        Some(tag) => repository.tag(tag).ok(),
        None => None,
    };
    match (tagged, reference.digest()) {
        (Some(tagged), Some(digest)) => tagged.with_digest(digest),
        (Some(tagged), None) => tagged,
        (None, Some(digest)) => repository.digest(digest),
        (None, None) => repository
            .tag("latest")
            .unwrap_or_else(|_| reference.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_come_first_and_keep_the_path_under_their_namespace() {
        let mirrors = [
            Mirror::new("http://127.0.0.1:5001/", "registry-1.docker.io"),
            Mirror::new("harbor.example.com/hub-proxy", "docker.io"),
            Mirror::new("mirror.example.com", "ghcr.io"),
        ];
        let reference: Reference = "debian:bookworm-slim".parse().unwrap();
        let found: Vec<String> = candidates(&reference, &mirrors)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "127.0.0.1:5001/library/debian:bookworm-slim",
                "harbor.example.com/hub-proxy/library/debian:bookworm-slim",
                "docker.io/library/debian:bookworm-slim",
            ]
        );
        let other: Reference = "quay.io/team/tool:1".parse().unwrap();
        assert_eq!(candidates(&other, &mirrors), std::slice::from_ref(&other));
    }

    #[test]
    fn a_digest_pin_survives_the_mirror() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let reference: Reference = format!("library/base:1@{digest}").parse().unwrap();
        let mirrors = [Mirror::new("127.0.0.1:5001", "docker.io")];
        let first = &candidates(&reference, &mirrors)[0];
        assert_eq!(
            first.to_string(),
            format!("127.0.0.1:5001/library/base@{digest}")
        );
    }
}
