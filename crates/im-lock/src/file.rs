//! The lock file: `packages.lock` next to an image's `image.yml`, in the proof of concept's
//! format.
//!
//! ```yaml
//! _meta:
//!   generator: image-manager 0.1.0
//!   generated: '2026-12-06T10:00:00Z'
//! bases:
//!   debian:bookworm:                 # the external base as the Dockerfile writes it
//!     digest: sha256:4d5e...          # what its tag pointed at when locked
//!     codename: bookworm
//!     packages:
//!       curl: 7.88.1-10+deb12u15
//! source:                            # an image built from an external repository
//!   git: https://github.com/org/app.git
//!   ref: main
//!   kind: branch
//!   commit: 0123abcd...               # what `ref` resolved to when last fetched
//! ```
//!
//! `_meta` is informational and kept as read when nothing else changes; everything else is
//! checked, each problem reported at its line.

use std::collections::BTreeMap;
use std::path::Path;

use im_diag::{Diagnostic, Diagnostics};
use im_dockerfile::ImageRef;
use im_yaml::{Limits, Node, Reader};

/// The lock's file name, next to `image.yml`.
pub const LOCK_FILE: &str = "packages.lock";

/// A whole lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockFile {
    /// `_meta` as read: key → value (scalars only; anything else is dropped on write).
    pub meta: BTreeMap<String, String>,
    /// External base reference as written → what is locked for it.
    pub bases: BTreeMap<String, BaseLock>,
    /// The commit a `source:` image's `ref` resolved to (written by `generate`).
    pub source: Option<SourceLock>,
    /// Keys this version does not know (ignored, not errors: a lock another tool wrote keeps
    /// working).
    pub warnings: Vec<Diagnostic>,
}

/// What is locked for one external base.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseLock {
    /// The digest the base's tag pointed at (`sha256:...`): its `FROM` is pinned to it.
    pub digest: Option<String>,
    /// The distribution's code name (`bookworm`), informational.
    pub codename: Option<String>,
    /// Package name → version.
    pub packages: BTreeMap<String, String>,
    /// The line of each package's entry, for messages (not written).
    pub lines: BTreeMap<String, usize>,
}

/// What `ref:` of an image's `source:` resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceLock {
    pub git: String,
    pub reference: String,
    /// `branch`, `tag` or `commit`.
    pub kind: String,
    pub commit: String,
}

const SOURCE_KEYS: &[&str] = &["git", "ref", "kind", "commit"];

impl LockFile {
    /// Parses a lock file's text; `path` names it in diagnostics.
    pub fn parse(path: &Path, text: String) -> Result<LockFile, Diagnostics> {
        let document = im_yaml::parse(path, text, &Limits::default()).map_err(Diagnostics::from)?;
        let mut reader = Reader::new(&document.source);
        let mut lock = LockFile::default();
        if let Some(root) = reader.map(
            &document.root,
            "a packages.lock",
            &["_meta", "bases", "source"],
        ) {
            if let Some(meta) = root.get("_meta").and_then(|n| reader.dict(n, "`_meta`")) {
                for (key, value) in meta.iter() {
                    if let (Some(key), Some(value)) = (key.as_scalar(), value.as_scalar()) {
                        lock.meta.insert(key.to_owned(), value.to_owned());
                    }
                }
            }
            if let Some(bases) = root.get("bases").and_then(|n| reader.dict(n, "`bases`")) {
                for (key, value) in bases.iter() {
                    let Some(reference) = reader.string(key, "a base reference") else {
                        continue;
                    };
                    if let Some(base) =
                        read_base(&mut reader, value, &reference, &mut lock.warnings)
                    {
                        lock.bases.insert(reference, base);
                    }
                }
            }
            if let Some(source) = root
                .get("source")
                .and_then(|n| reader.map(n, "`source`", SOURCE_KEYS))
            {
                let mut field = |key: &str| {
                    source
                        .get(key)
                        .and_then(|n| reader.string(n, &format!("`source.{key}`")))
                        .unwrap_or_default()
                };
                lock.source = Some(SourceLock {
                    git: field("git"),
                    reference: field("ref"),
                    kind: field("kind"),
                    commit: field("commit"),
                });
            }
        }
        if reader.diagnostics.has_errors() {
            return Err(reader.diagnostics);
        }
        Ok(lock)
    }

    /// The entry of the base `reference`: written the same way, or naming the same image
    /// (`ubuntu:24.04` and `docker.io/library/ubuntu:24.04`).
    pub fn base(&self, reference: &str) -> Option<&BaseLock> {
        self.bases.get(reference).or_else(|| {
            let wanted = canonical(reference)?;
            self.bases
                .iter()
                .find(|(key, _)| canonical(key).as_deref() == Some(wanted.as_str()))
                .map(|(_, entry)| entry)
        })
    }

    /// Whether `other` locks the same things (`_meta` aside).
    pub fn same_pins(&self, other: &LockFile) -> bool {
        self.bases.len() == other.bases.len()
            && self
                .bases
                .iter()
                .zip(&other.bases)
                .all(|((ra, a), (rb, b))| {
                    ra == rb
                        && a.digest == b.digest
                        && a.codename == b.codename
                        && a.packages == b.packages
                })
    }

    /// The file's text: a comment saying what it is, `_meta`, the source, then the bases in order.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from(
            "# Distribution package versions and base image digests, pinned by `image-manager lock`.\n\
             # `generate` writes them into the install commands and FROM lines of this image's\n\
             # Dockerfiles. Update: `image-manager lock --update`; check in CI: `image-manager lock --check`.\n",
        );
        if self.source.is_some() {
            out.push_str(
                "# `source:` is the commit this image's `source.ref` resolved to, recorded by `generate`\n\
                 # (a branch is followed on every run; `build --refresh-bases` asks about tags again).\n",
            );
        }
        if !self.meta.is_empty() {
            out.push_str("_meta:\n");
            for (key, value) in &self.meta {
                out.push_str(&format!("  {}: {}\n", scalar(key), scalar(value)));
            }
        }
        if let Some(source) = &self.source {
            out.push_str("source:\n");
            for (key, value) in [
                ("git", &source.git),
                ("ref", &source.reference),
                ("kind", &source.kind),
                ("commit", &source.commit),
            ] {
                out.push_str(&format!("  {key}: {}\n", scalar(value)));
            }
        }
        if self.bases.is_empty() {
            out.push_str("bases: {}\n");
            return out;
        }
        out.push_str("bases:\n");
        for (reference, base) in &self.bases {
            out.push_str(&format!("  {}:\n", scalar(reference)));
            if let Some(digest) = &base.digest {
                out.push_str(&format!("    digest: {}\n", scalar(digest)));
            }
            if let Some(codename) = &base.codename {
                out.push_str(&format!("    codename: {}\n", scalar(codename)));
            }
            if base.packages.is_empty() {
                out.push_str("    packages: {}\n");
            } else {
                out.push_str("    packages:\n");
                for (name, version) in &base.packages {
                    out.push_str(&format!("      {}: {}\n", scalar(name), scalar(version)));
                }
            }
        }
        out
    }
}

/// `registry/path:tag` with Docker's defaults filled in (`docker.io`, `library/`, `latest`),
/// the digest left out: two spellings of one base compare equal.
pub fn canonical(reference: &str) -> Option<String> {
    let image = ImageRef::parse(reference).ok()?;
    let registry = match image.registry() {
        None | Some("index.docker.io" | "registry-1.docker.io") => "docker.io",
        Some(registry) => registry,
    };
    let path = if registry == "docker.io" && !image.path().contains('/') {
        format!("library/{}", image.path())
    } else {
        image.path().to_owned()
    };
    Some(format!(
        "{registry}/{path}:{}",
        image.tag().unwrap_or("latest")
    ))
}

/// The keys of a base's entry.
const BASE_KEYS: [&str; 3] = ["digest", "codename", "packages"];

fn read_base(
    reader: &mut Reader<'_>,
    node: &Node,
    reference: &str,
    warnings: &mut Vec<Diagnostic>,
) -> Option<BaseLock> {
    let what = format!("the lock of base `{reference}`");
    let map = reader.dict(node, &what)?;
    for (key, _) in map.iter() {
        let name = key.as_scalar().unwrap_or("~");
        if !BASE_KEYS.contains(&name) {
            let help = match im_diag::did_you_mean(name, BASE_KEYS.iter().copied()) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None => "image-manager reads digest, codename and packages; `lock` leaves the rest out when it rewrites the file".to_owned(),
            };
            warnings.push(
                Diagnostic::warning(format!("unknown key `{name}` in {what} is ignored"))
                    .at(reader.source.location(key.span))
                    .with_help(help),
            );
        }
    }
    let mut base = BaseLock {
        digest: map.get("digest").and_then(|n| reader.string(n, "`digest`")),
        codename: map
            .get("codename")
            .and_then(|n| reader.string(n, "`codename`")),
        ..BaseLock::default()
    };
    if let Some(digest) = map.get("digest")
        && let Some(value) = &base.digest
        && !is_digest(value)
    {
        reader.error(
            digest.span,
            format!("`{value}` is not a digest"),
            Some(
                "write `sha256:` and 64 lowercase hex digits, or run `image-manager lock --update`"
                    .into(),
            ),
        );
    }
    match map.get("packages") {
        Some(node) if matches!(node.value, im_yaml::Value::Seq(_)) => {
            read_package_list(reader, node, &mut base);
        }
        Some(node) => read_package_map(reader, node, &mut base),
        None => {}
    }
    Some(base)
}

/// `packages: [curl=7.88.1-10, jq=1.6-2.1]`.
fn read_package_list(reader: &mut Reader<'_>, node: &Node, base: &mut BaseLock) {
    for item in reader.list(node, "`packages`").unwrap_or_default() {
        let Some(text) = reader.string(item, "a package") else {
            continue;
        };
        match text.split_once('=') {
            Some((name, version)) if !name.is_empty() && usable(version) => {
                base.lines.insert(name.to_owned(), item.span.line);
                base.packages.insert(name.to_owned(), version.to_owned());
            }
            _ => reader.error(
                item.span,
                format!("`{text}` is not `name=version`"),
                Some(
                    "write each package as `name=version`, or `name: version` in a mapping".into(),
                ),
            ),
        }
    }
}

/// `packages: {curl: 7.88.1-10}`, or `{curl: {version: 7.88.1-10}}`.
fn read_package_map(reader: &mut Reader<'_>, node: &Node, base: &mut BaseLock) {
    let Some(packages) = reader.dict(node, "`packages`") else {
        return;
    };
    for (name, value) in packages.iter() {
        let Some(name) = reader.string(name, "a package name") else {
            continue;
        };
        let version = match value.get("version") {
            Some(inner) => reader.string(inner, "a package version"),
            None => reader.string(value, "a package version"),
        };
        let Some(version) = version else {
            continue;
        };
        if !usable(&version) {
            reader.error(
                packages.key_span(&name).unwrap_or(packages.span),
                format!("package `{name}` has no usable version (`{version}`)"),
                Some("run `image-manager lock --update` to resolve it again".into()),
            );
            continue;
        }
        base.lines
            .insert(name.clone(), packages.key_span(&name).map_or(0, |s| s.line));
        base.packages.insert(name, version);
    }
}

fn usable(version: &str) -> bool {
    !version.is_empty() && !version.contains(char::is_whitespace)
}

fn is_digest(value: &str) -> bool {
    value.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A YAML scalar: plain when a YAML 1.1 or 1.2 reader reads it back as the same string,
/// single-quoted otherwise (`'20230311'` stays a string, not a number).
fn scalar(value: &str) -> String {
    let plain_chars = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+~:/@".contains(c))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/' || c == '_')
        && !value.contains(": ")
        && !value.ends_with(':');
    let lower = value.to_ascii_lowercase();
    let special = matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
    );
    let numeric = value
        .chars()
        .all(|c| c.is_ascii_digit() || "._-+:eE".contains(c))
        && value.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-');
    if plain_chars && !special && !numeric {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LockFile, String> {
        LockFile::parse(Path::new("images/base/packages.lock"), text.to_owned())
            .map_err(|d| d.to_string())
    }

    #[test]
    fn reads_the_proof_of_concepts_format() {
        let lock = parse(
            "_meta:\n  generated: 2025-01-01\n  tool: image-manager\nbases:\n  ubuntu:24.04:\n    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n    codename: noble\n    packages:\n      curl: 8.5.0-2ubuntu10.6\n      ca-certificates: 20240203\n",
        )
        .unwrap();
        let base = &lock.bases["ubuntu:24.04"];
        assert_eq!(base.codename.as_deref(), Some("noble"));
        assert_eq!(base.packages["curl"], "8.5.0-2ubuntu10.6");
        assert_eq!(base.packages["ca-certificates"], "20240203");
        assert_eq!(base.lines["curl"], 9);
        assert_eq!(lock.meta["tool"], "image-manager");
    }

    #[test]
    fn round_trips_and_quotes_what_would_read_back_differently() {
        let mut lock = LockFile::default();
        lock.meta
            .insert("generated".into(), "2026-12-06T10:00:00Z".into());
        lock.bases.insert(
            "localhost:5000/debian:bookworm".into(),
            BaseLock {
                digest: Some(format!("sha256:{}", "a".repeat(64))),
                codename: Some("bookworm".into()),
                packages: BTreeMap::from([
                    ("ca-certificates".into(), "20230311".into()),
                    ("curl".into(), "7.88.1-10+deb12u15".into()),
                    ("bash".into(), "1:5.2.15-2+b7".into()),
                    ("yes".into(), "1.0".into()),
                ]),
                lines: BTreeMap::new(),
            },
        );
        let text = lock.to_yaml();
        assert!(text.contains("ca-certificates: '20230311'"), "{text}");
        assert!(text.contains("curl: 7.88.1-10+deb12u15"), "{text}");
        assert!(text.contains("'yes': '1.0'"), "{text}");
        let back = parse(&text).unwrap();
        assert!(back.same_pins(&lock), "{text}");
        assert_eq!(back.meta, lock.meta);
    }

    #[test]
    fn other_spellings_and_shapes_of_the_same_lock_are_read() {
        let lock = parse(
            "bases:\n  docker.io/library/ubuntu:24.04:\n    packages:\n      curl: {version: 8.5.0-2ubuntu10.6}\n    updated: yesterday\n  alpine:3.20:\n    packages: [curl=8.11.1-r0]\n",
        )
        .unwrap();
        assert_eq!(
            lock.base("ubuntu:24.04").unwrap().packages["curl"],
            "8.5.0-2ubuntu10.6"
        );
        assert_eq!(
            lock.base("alpine:3.20").unwrap().packages["curl"],
            "8.11.1-r0"
        );
        assert!(lock.base("ubuntu:22.04").is_none());
        assert_eq!(lock.warnings.len(), 1);
        assert!(
            lock.warnings[0]
                .to_string()
                .contains("unknown key `updated`")
        );
        let typo = parse("bases:\n  debian:bookworm:\n    packges: {}\n").unwrap();
        assert!(
            typo.warnings[0]
                .to_string()
                .contains("did you mean `packages`")
        );
        let bad = parse("bases:\n  debian:bookworm:\n    packages: [curl]\n").unwrap_err();
        assert!(
            bad.contains("packages.lock:3") && bad.contains("is not `name=version`"),
            "{bad}"
        );
    }

    #[test]
    fn errors_point_at_the_line() {
        let error =
            parse("bases:\n  debian:bookworm:\n    digest: nope\n    packages: {curl: ''}\n")
                .unwrap_err();
        assert!(error.contains("packages.lock:3"), "{error}");
        assert!(error.contains("is not a digest"), "{error}");
        assert!(error.contains("packages.lock:4"), "{error}");
        assert!(error.contains("no usable version"), "{error}");
        let syntax = parse("bases:\n  a: [\n").unwrap_err();
        assert!(syntax.contains("packages.lock:"), "{syntax}");
    }

    #[test]
    fn the_source_commit_round_trips_and_is_no_pin() {
        let mut lock = LockFile {
            source: Some(SourceLock {
                git: "https://example.com/app.git".into(),
                reference: "main".into(),
                kind: "branch".into(),
                commit: "0123456789abcdef0123456789abcdef01234567".into(),
            }),
            ..LockFile::default()
        };
        let text = lock.to_yaml();
        assert!(
            text.contains("source:\n  git: https://example.com/app.git\n  ref: main\n"),
            "{text}"
        );
        let back = LockFile::parse(Path::new("images/app/packages.lock"), text).unwrap();
        assert_eq!(back.source, lock.source);
        // `lock --check` compares pins; the recorded commit is generate's, not one of them.
        lock.source = None;
        assert!(back.same_pins(&lock));
    }
}
