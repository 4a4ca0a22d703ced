//! Container image references (`registry:5000/team/python:3.13@sha256:...`).
//!
//! An [`ImageRef`] keeps the reference exactly as written (no `docker.io/library/` is added)
//! and knows where its parts are:
//!
//! - **registry**: the first `/`-separated component when the reference has more than one
//!   component and that first one contains a `.` or a `:`, is `localhost`, or contains an
//!   uppercase letter (Docker's rule). It is a host name (letters, digits, inner `-`, `.`
//!   between labels) or a bracketed IPv6 address, with an optional `:port`.
//! - **path**: the repository path without the registry (`team/python`). Each component is
//!   lowercase letters and digits, separated inside the component by `.`, `_`, `__` or any
//!   number of `-` (the distribution spec's grammar).
//! - **tag**: after the last `:` that follows the last `/`; up to 128 characters of letters,
//!   digits, `_`, `.`, `-`, not starting with `.` or `-`.
//! - **digest**: after `@`: `algorithm:hex`; `sha256` needs exactly 64 lowercase hex digits,
//!   `sha512` 128, other algorithms at least 32.
//!
//! The repository (registry plus path) is at most 255 characters.
//!
//! Matching a managed image by name ([`ImageRef::matches_name`]): a name without `/` matches
//! the last path component (`python` matches `python`, `registry.example:5000/python` and
//! `localhost:5050/team/python`); a name with `/` matches whole trailing path components
//! (`team/python` matches `localhost:5050/team/python` and `org/team/python`, not
//! `myteam/python`); a name that itself starts with a registry must equal the repository.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// The longest repository (registry plus path) the distribution spec allows.
const MAX_REPOSITORY_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed image reference. Equality, ordering and hashing compare the text as written.
#[derive(Debug, Clone)]
pub struct ImageRef {
    text: String,
    /// End of the registry host[:port] (the `/` after it is not included).
    registry_end: Option<usize>,
    path: Range<usize>,
    tag: Option<Range<usize>>,
    digest: Option<Range<usize>>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("the image reference is empty")]
    Empty,
    #[error(
        "image reference `{reference}` has a repository longer than {MAX_REPOSITORY_LEN} characters"
    )]
    TooLong { reference: String },
    #[error("`{registry}` in `{reference}` is not a valid registry `host[:port]`")]
    InvalidRegistry { reference: String, registry: String },
    #[error(
        "`{component}` in `{reference}` is not a valid repository path component: use lowercase \
         letters and digits, separated by `.`, `_`, `__` or `-`"
    )]
    InvalidPathComponent {
        reference: String,
        component: String,
    },
    #[error(
        "tag `{tag}` in `{reference}` is not valid: use up to {MAX_TAG_LEN} letters, digits, `_`, \
         `.` and `-`, not starting with `.` or `-`"
    )]
    InvalidTag { reference: String, tag: String },
    #[error(
        "digest `{digest}` in `{reference}` is not valid: expected `sha256:` followed by 64 \
         lowercase hex digits"
    )]
    InvalidDigest { reference: String, digest: String },
}

impl ImageRef {
    /// Parses a reference; see the module documentation for the rules.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        if reference.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (name_tag, digest) = match reference.find('@') {
            Some(at) => (&reference[..at], Some(at + 1..reference.len())),
            None => (reference, None),
        };
        if let Some(digest) = digest
            .clone()
            .filter(|d| !valid_digest(&reference[d.clone()]))
        {
            return Err(ImageRefError::InvalidDigest {
                reference: reference.to_owned(),
                digest: reference[digest].to_owned(),
            });
        }
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&name_tag[..colon], Some(colon + 1..name_tag.len()))
            }
            _ => (name_tag, None),
        };
        if let Some(tag) = tag.clone().filter(|t| !valid_tag(&reference[t.clone()])) {
            return Err(ImageRefError::InvalidTag {
                reference: reference.to_owned(),
                tag: reference[tag].to_owned(),
            });
        }
        if name.len() > MAX_REPOSITORY_LEN {
            return Err(ImageRefError::TooLong {
                reference: reference.to_owned(),
            });
        }
        let registry_end = match name.split_once('/') {
            Some((first, _)) if looks_like_registry(first) => {
                if !valid_registry(first) {
                    return Err(ImageRefError::InvalidRegistry {
                        reference: reference.to_owned(),
                        registry: first.to_owned(),
                    });
                }
                Some(first.len())
            }
            _ => None,
        };
        let path_start = registry_end.map_or(0, |end| end + 1);
        let path = path_start..name.len();
        for component in reference[path.clone()].split('/') {
            if !valid_path_component(component) {
                return Err(ImageRefError::InvalidPathComponent {
                    reference: reference.to_owned(),
                    component: component.to_owned(),
                });
            }
        }
        Ok(Self {
            text: reference.to_owned(),
            registry_end,
            path,
            tag,
            digest,
        })
    }

    /// The whole reference as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The registry `host[:port]`, when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry_end.map(|end| &self.text[..end])
    }

    /// The repository including the registry: `localhost:5050/team/python`.
    pub fn repository(&self) -> &str {
        &self.text[..self.path.end]
    }

    /// The repository path without the registry: `team/python`.
    pub fn path(&self) -> &str {
        &self.text[self.path.clone()]
    }

    /// The last path component: `python`.
    pub fn name(&self) -> &str {
        let path = self.path();
        path.rsplit('/').next().unwrap_or(path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.clone().map(|range| &self.text[range])
    }

    /// The digest (`sha256:...`) without the `@`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.clone().map(|range| &self.text[range])
    }

    /// Whether this reference names the image `name` (rules in the module documentation).
    pub fn matches_name(&self, name: &str) -> bool {
        match name.split_once('/') {
            None => self.name() == name,
            Some((first, _)) if looks_like_registry(first) => self.repository() == name,
            Some(_) => {
                let path = self.path();
                path == name
                    || path
                        .strip_suffix(name)
                        .is_some_and(|head| head.ends_with('/'))
            }
        }
    }
}

impl PartialEq for ImageRef {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ImageRef {}

impl std::hash::Hash for ImageRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for ImageRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ImageRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.text.cmp(&other.text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn looks_like_registry(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.chars().any(|c| c.is_ascii_uppercase())
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        // Bracketed IPv6: `[::1]` or `[::1]:5000`.
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        if address.is_empty() || !address.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok = registry.starts_with('[')
        || host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    port_ok && host_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let separator_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[separator_start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let lower_hex = |len: usize| {
        hex.len() == len
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    match algorithm {
        "sha256" => lower_hex(64),
        "sha512" => lower_hex(128),
        _ => {
            let algorithm_ok = algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
                && algorithm
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'.'));
            algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(
        reference: &str,
    ) -> (
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
    ) {
        let r = ImageRef::parse(reference).unwrap();
        (
            r.registry().map(str::to_owned),
            r.repository().to_owned(),
            r.path().to_owned(),
            r.tag().map(str::to_owned),
            r.digest().map(str::to_owned),
        )
    }

    #[test]
    fn short_names_have_no_registry() {
        assert_eq!(
            parts("python"),
            (None, "python".into(), "python".into(), None, None)
        );
        let r = ImageRef::parse("team/python:3.13").unwrap();
        assert_eq!(
            (r.registry(), r.path(), r.name(), r.tag()),
            (None, "team/python", "python", Some("3.13"))
        );
    }

    #[test]
    fn registry_with_port_is_not_a_tag() {
        assert_eq!(
            parts("registry.example:5000/python"),
            (
                Some("registry.example:5000".into()),
                "registry.example:5000/python".into(),
                "python".into(),
                None,
                None
            )
        );
        assert_eq!(
            parts("localhost:5050/team/python:3.13-slim"),
            (
                Some("localhost:5050".into()),
                "localhost:5050/team/python".into(),
                "team/python".into(),
                Some("3.13-slim".into()),
                None
            )
        );
        assert_eq!(parts("localhost/x").0.as_deref(), Some("localhost"));
        assert_eq!(parts("[::1]:5000/x").0.as_deref(), Some("[::1]:5000"));
        assert_eq!(parts("docker.io/library/python").2, "library/python");
        // Without a slash, `host:5000` is a name and a tag, as in Docker.
        assert_eq!(parts("localhost:5000").3.as_deref(), Some("5000"));
    }

    #[test]
    fn digests_with_and_without_tags() {
        let reference = format!("python@{SHA}");
        assert_eq!(
            parts(&reference),
            (
                None,
                "python".into(),
                "python".into(),
                None,
                Some(SHA.into())
            )
        );
        let reference = format!("reg.example:443/a/b:1.0@{SHA}");
        let (registry, _, path, tag, digest) = parts(&reference);
        assert_eq!(
            (
                registry.as_deref(),
                path.as_str(),
                tag.as_deref(),
                digest.as_deref()
            ),
            (Some("reg.example:443"), "a/b", Some("1.0"), Some(SHA))
        );
    }

    #[test]
    fn garbage_is_rejected_with_the_reason() {
        assert_eq!(ImageRef::parse(""), Err(ImageRefError::Empty));
        assert!(matches!(
            ImageRef::parse("Python"),
            Err(ImageRefError::InvalidPathComponent { .. })
        ));
        assert!(matches!(
            ImageRef::parse("py thon"),
            Err(ImageRefError::InvalidPathComponent { .. })
        ));
        assert!(matches!(
            ImageRef::parse("a//b"),
            Err(ImageRefError::InvalidPathComponent { .. })
        ));
        assert!(matches!(
            ImageRef::parse("a/"),
            Err(ImageRefError::InvalidPathComponent { .. })
        ));
        assert!(matches!(
            ImageRef::parse("a..b"),
            Err(ImageRefError::InvalidPathComponent { .. })
        ));
        assert!(matches!(
            ImageRef::parse("python:"),
            Err(ImageRefError::InvalidTag { .. })
        ));
        assert!(matches!(
            ImageRef::parse("python:-x"),
            Err(ImageRefError::InvalidTag { .. })
        ));
        assert!(matches!(
            ImageRef::parse("python@sha256:abc"),
            Err(ImageRefError::InvalidDigest { .. })
        ));
        assert!(matches!(
            ImageRef::parse(
                "python@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
            ),
            Err(ImageRefError::InvalidDigest { .. })
        ));
        assert!(matches!(
            ImageRef::parse("reg.example:port/x"),
            Err(ImageRefError::InvalidRegistry { .. })
        ));
        assert!(matches!(
            ImageRef::parse("-bad.host/x"),
            Err(ImageRefError::InvalidRegistry { .. })
        ));
        let long = format!("a/{}", "b".repeat(300));
        assert!(matches!(
            ImageRef::parse(&long),
            Err(ImageRefError::TooLong { .. })
        ));
        assert!(ImageRef::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }

    #[test]
    fn separators_in_path_components() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "x1/y2.z_w"] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["a___b", "a.-b", "_a", "a_", "a-.b"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_by_name_and_by_path() {
        let plain = ImageRef::parse("python:3.13").unwrap();
        let port = ImageRef::parse("registry.example:5000/python").unwrap();
        let team = ImageRef::parse("localhost:5050/team/python").unwrap();
        for r in [&plain, &port, &team] {
            assert!(r.matches_name("python"), "{r}");
            assert!(!r.matches_name("pyth"), "{r}");
        }
        assert!(team.matches_name("team/python"));
        assert!(!plain.matches_name("team/python"));
        assert!(
            !ImageRef::parse("myteam/python")
                .unwrap()
                .matches_name("team/python")
        );
        assert!(
            ImageRef::parse("org/team/python")
                .unwrap()
                .matches_name("team/python")
        );
        assert!(team.matches_name("localhost:5050/team/python"));
        assert!(!team.matches_name("localhost:5051/team/python"));
        assert!(port.matches_name("registry.example:5000/python"));
    }

    #[test]
    fn display_round_trips() {
        let text = format!("localhost:5050/team/python:3.13@{SHA}");
        assert_eq!(text.parse::<ImageRef>().unwrap().to_string(), text);
    }

    proptest::proptest! {
        /// Any reference assembled from valid parts parses back into exactly those parts.
        #[test]
        fn valid_parts_round_trip(
            registry in proptest::option::of("(localhost|[a-z][a-z0-9-]{0,8}[a-z0-9]\\.[a-z]{2,4})(:[0-9]{1,5})?"),
            path in "[a-z0-9]{1,6}((__|[._]|-{1,2})[a-z0-9]{1,4})?(/[a-z0-9]{1,6}){0,2}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("[0-9a-f]{64}"),
        ) {
            // Without a registry, a dotted first component of a longer path *is* the registry.
            let first = path.split('/').next().unwrap_or_default();
            proptest::prop_assume!(registry.is_some() || !path.contains('/') || !first.contains('.'));
            let mut text = String::new();
            if let Some(registry) = &registry {
                text.push_str(registry);
                text.push('/');
            }
            text.push_str(&path);
            if let Some(tag) = &tag {
                text.push(':');
                text.push_str(tag);
            }
            if let Some(digest) = &digest {
                text.push_str("@sha256:");
                text.push_str(digest);
            }
            let reference = ImageRef::parse(&text).unwrap();
            proptest::prop_assert_eq!(reference.registry(), registry.as_deref());
            proptest::prop_assert_eq!(reference.path(), path.as_str());
            proptest::prop_assert_eq!(reference.tag(), tag.as_deref());
            proptest::prop_assert_eq!(reference.digest().map(|d| d.trim_start_matches("sha256:")), digest.as_deref());
            proptest::prop_assert_eq!(reference.to_string(), text);
            proptest::prop_assert!(reference.matches_name(path.rsplit('/').next().unwrap()));
            // A name whose first component looks like a registry means a whole repository.
            if !first.contains('.') {
                proptest::prop_assert!(reference.matches_name(&path));
            }
        }
    }
}
