//! Image references (`registry/repository:tag@digest`) and repositories, parsed with the
//! distribution project's grammar, with Docker Hub's short names expanded.

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::digest::{Digest, parse_digest};

/// The registry name Docker Hub references carry.
pub const DOCKER_HUB: &str = "docker.io";

/// A repository in a registry, for example `127.0.0.1:5050/base/debian`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    registry: String,
    name: String,
}

impl Repository {
    /// Builds a repository from a registry (`host[:port]`) and a repository path.
    pub fn new(registry: &str, name: &str) -> Result<Self, Error> {
        let input = format!("{registry}/{name}");
        let invalid = |reason: &str| Error::InvalidReference {
            input: input.clone(),
            reason: reason.to_owned(),
        };
        if !is_registry(registry) && registry != DOCKER_HUB {
            return Err(invalid(
                "the registry is not a host name with an optional port",
            ));
        }
        check_repository(name).map_err(invalid)?;
        Ok(Self {
            registry: registry.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The registry, as `host[:port]` (`docker.io` for Docker Hub).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A reference to `tag` in this repository.
    pub fn tag(&self, tag: &str) -> Result<Reference, Error> {
        check_tag(tag).map_err(|reason| Error::InvalidReference {
            input: format!("{self}:{tag}"),
            reason: reason.to_owned(),
        })?;
        Ok(Reference {
            repository: self.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// A reference to `digest` in this repository.
    pub fn digest(&self, digest: &Digest) -> Reference {
        Reference {
            repository: self.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

/// An image reference: a repository plus a tag, a digest, or both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The repository the reference points into.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The registry, as `host[:port]`.
    pub fn registry(&self) -> &str {
        &self.repository.registry
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference has one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to put after `/manifests/`: the digest when there is one, else the tag
    /// (`latest` when neither is given).
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_owned(),
        }
    }

    /// The same repository with another tag.
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        self.repository.tag(tag)
    }

    /// The same repository pinned to a digest (the tag is dropped).
    #[must_use]
    pub fn with_digest(&self, digest: &Digest) -> Self {
        self.repository.digest(digest)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidReference {
            input: input.chars().take(300).collect(),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.len() > 1024 {
            return Err(invalid("it is longer than 1024 characters"));
        }
        let (name_and_tag, digest) = match input.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(parse_digest(digest).map_err(|_| invalid("the digest is not valid"))?),
            ),
            None => (input, None),
        };
        let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
            Some(colon) => {
                let split = last_slash + colon;
                (&name_and_tag[..split], Some(&name_and_tag[split + 1..]))
            }
            None => (name_and_tag, None),
        };
        if let Some(tag) = tag {
            check_tag(tag).map_err(invalid)?;
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if is_registry_like(first) => (first.to_owned(), rest.to_owned()),
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if !is_registry(&registry) {
            return Err(invalid(
                "the registry is not a host name with an optional port",
            ));
        }
        let (registry, path) = if registry == DOCKER_HUB || registry == "index.docker.io" {
            let path = if path.contains('/') {
                path
            } else {
                format!("library/{path}")
            };
            (DOCKER_HUB.to_owned(), path)
        } else {
            (registry, path)
        };
        check_repository(&path).map_err(invalid)?;
        Ok(Self {
            repository: Repository {
                registry,
                name: path,
            },
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

/// Whether the first path component names a registry rather than a repository part.
fn is_registry_like(component: &str) -> bool {
    component.contains('.')
        || component.contains(':')
        || component == "localhost"
        || component.chars().any(|c| c.is_ascii_uppercase())
}

/// `host[:port]` with a DNS name, an IPv4 address or a bracketed IPv6 address.
pub(crate) fn is_registry(registry: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let port = if after.is_empty() {
            None
        } else if let Some(port) = after.strip_prefix(':') {
            Some(port)
        } else {
            return false;
        };
        (v6.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        (is_dns_name(host), port)
    };
    let port_ok = port
        .is_none_or(|port| port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// A DNS name or IPv4 address: dot-separated labels of letters, digits and inner dashes.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_repository(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the repository name is empty");
    }
    if path.len() > 255 {
        return Err("the repository name is longer than 255 characters");
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(
                "repository path components must be lowercase letters and digits separated by `.`, `_`, `__` or dashes",
            );
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        if expect_alnum {
            if !alnum(bytes[i]) {
                return false;
            }
            while i < bytes.len() && alnum(bytes[i]) {
                i += 1;
            }
            expect_alnum = false;
        } else {
            let start = i;
            match bytes[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < bytes.len() && bytes[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < bytes.len() && bytes[i] == b'-' {
                        i += 1;
                    }
                }
                _ => return false,
            }
            if i == start || i == bytes.len() {
                return false;
            }
            expect_alnum = true;
        }
    }
    !bytes.is_empty()
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub(crate) fn check_tag(tag: &str) -> Result<(), &'static str> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty() || bytes.len() > 128 {
        return Err("a tag is 1 to 128 characters long");
    }
    if !word(bytes[0]) || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        return Err("a tag is letters, digits, `_`, `.` and `-`, not starting with `.` or `-`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn local_registry_with_port_and_tag() {
        let r = parse("127.0.0.1:5050/base/debian:12-slim");
        assert_eq!(r.registry(), "127.0.0.1:5050");
        assert_eq!(r.repository().name(), "base/debian");
        assert_eq!(r.tag(), Some("12-slim"));
        assert_eq!(r.to_string(), "127.0.0.1:5050/base/debian:12-slim");
    }

    #[test]
    fn docker_hub_short_names_expand() {
        let r = parse("busybox");
        assert_eq!(r.registry(), DOCKER_HUB);
        assert_eq!(r.repository().name(), "library/busybox");
        assert_eq!(r.manifest_reference(), "latest");
        assert_eq!(parse("user/app:1").repository().name(), "user/app");
        assert_eq!(parse("index.docker.io/debian").registry(), DOCKER_HUB);
    }

    #[test]
    fn localhost_and_digest() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = parse(&format!("localhost/app:v1@{d}"));
        assert_eq!(r.registry(), "localhost");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_reference(), d);
    }

    #[test]
    fn ipv6_registry() {
        let r = parse("[::1]:5000/app:1");
        assert_eq!(r.registry(), "[::1]:5000");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/Case",
            "reg.io/app:",
            "reg.io/app:-x",
            "reg.io/a__-b",
            "reg.io/app@sha256:zz",
            "reg.io:99999999/app",
            "reg.io//app",
            "reg.io/app/",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn path_components_follow_the_grammar() {
        for good in ["a", "a.b", "a_b", "a__b", "a---b", "abc123"] {
            assert!(is_path_component(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a___b", "a..b", "A", "a._b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }
}
