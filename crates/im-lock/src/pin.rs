//! Pinning a Dockerfile to a lock: each install command's package arguments get the locked
//! version (`curl` → `curl=7.88.1-10+deb12u15`), and each stage that starts from an external
//! base gets the locked digest (`FROM debian:bookworm` → `FROM debian:bookworm@sha256:...`).
//! Every other byte stays as it was.

use std::collections::BTreeMap;
use std::path::Path;

use im_diag::{Diagnostic, Diagnostics};
use im_dockerfile::{Dockerfile, StageBase};

use crate::file::BaseLock;
use crate::install::{Unpinnable, package_args};

/// What the lock says for one stage: the external base its packages come from (its own
/// `FROM`, or the external base at the root of a managed parent's chain) and that base's
/// entry.
#[derive(Debug, Clone, Copy)]
pub struct StageLock<'a> {
    /// The external base as written (the lock's key).
    pub base: &'a str,
    /// The lock's entry for it; `None` when the lock has none.
    pub entry: Option<&'a BaseLock>,
    /// The stage's own `FROM` is that base, so it is pinned to the entry's digest.
    pub pin_from: bool,
}

/// A pinned Dockerfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pinned {
    pub text: String,
    /// What was pinned: package name → version, and `FROM <base>` → digest.
    pub pins: BTreeMap<String, String>,
    /// Package arguments left as written because they expand at build time.
    pub warnings: Vec<Diagnostic>,
}

/// Pins `dockerfile` with `stages` (by stage index; `None`: nothing to pin there).
/// `lock` names the lock file in messages. A package the lock lacks is an error at its
/// argument.
pub fn pin(
    dockerfile: &Dockerfile,
    stages: &[Option<StageLock<'_>>],
    lock: &Path,
) -> Result<Pinned, Diagnostics> {
    let text = dockerfile.text();
    let mut edits: Vec<(usize, String)> = Vec::new();
    let mut pinned = Pinned::default();
    let mut errors = Diagnostics::new();
    for (index, stage) in dockerfile.stages().iter().enumerate() {
        let Some(Some(lock_entry)) = stages.get(index) else {
            continue;
        };
        if !lock_entry.pin_from || stage.written.contains('@') {
            continue;
        }
        let (StageBase::Image(_), Some(digest)) = (
            &stage.base,
            lock_entry.entry.and_then(|e| e.digest.as_deref()),
        ) else {
            continue;
        };
        let instruction = &dockerfile.instructions()[stage.instruction];
        if let Some(end) = from_image_end(text, instruction.span.clone(), &stage.written) {
            edits.push((end, format!("@{digest}")));
            pinned
                .pins
                .insert(format!("FROM {}", lock_entry.base), digest.to_owned());
        }
    }
    for arg in package_args(dockerfile) {
        let Some(Some(lock_entry)) = stages.get(arg.stage) else {
            continue;
        };
        let location = || {
            let start = dockerfile.position_of(arg.range.start);
            dockerfile.location(start, arg.range.len())
        };
        match arg.unpinnable {
            Some(Unpinnable::Dynamic) => {
                pinned.warnings.push(
                    Diagnostic::warning(format!(
                        "`{}` is not pinned: what it installs is known only when the build runs",
                        &text[arg.range.clone()]
                    ))
                    .at(location())
                    .with_help("name the packages in the template, so the lock can pin them"),
                );
                continue;
            }
            Some(Unpinnable::Pinned | Unpinnable::File) => continue,
            None => {}
        }
        match lock_entry.entry.and_then(|e| e.packages.get(&arg.name)) {
            Some(version) => {
                edits.push((arg.range.end, arg.manager.pinned(version)));
                pinned.pins.insert(arg.name.clone(), version.clone());
            }
            None => {
                let why = match lock_entry.entry {
                    Some(_) => format!(
                        "{} has no version of `{}` for base `{}`",
                        lock.display(),
                        arg.name,
                        lock_entry.base
                    ),
                    None => format!(
                        "{} has no entry for base `{}`, which `{}` is installed from",
                        lock.display(),
                        lock_entry.base,
                        arg.name
                    ),
                };
                errors.push(
                    Diagnostic::error(format!("package `{}` is not locked", arg.name))
                        .at(location())
                        .with_note(why)
                        .with_help("run `image-manager lock` to add it to the lock"),
                );
            }
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    edits.sort_by_key(|(at, _)| *at);
    let mut out = String::with_capacity(text.len() + edits.len() * 24);
    let mut last = 0;
    for (at, insert) in edits {
        out.push_str(&text[last..at]);
        out.push_str(&insert);
        last = at;
    }
    out.push_str(&text[last..]);
    pinned.text = out;
    Ok(pinned)
}

/// Where the image argument of a `FROM` instruction (`span`) ends, if it is written as
/// `written`.
fn from_image_end(text: &str, span: std::ops::Range<usize>, written: &str) -> Option<usize> {
    let source = &text[span.clone()];
    let mut words = source
        .char_indices()
        .filter(|&(i, c)| {
            !c.is_whitespace()
                && source[..i]
                    .chars()
                    .next_back()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(i, _)| {
            let end = source[i..]
                .find(char::is_whitespace)
                .map_or(source.len(), |len| i + len);
            (i, end)
        });
    words.next()?; // FROM
    let (start, end) = words.find(|&(i, _)| !source[i..].starts_with("--"))?;
    (&source[start..end] == written).then_some(span.start + end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(digest: Option<&str>, packages: &[(&str, &str)]) -> BaseLock {
        BaseLock {
            digest: digest.map(str::to_owned),
            packages: packages
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            ..BaseLock::default()
        }
    }

    fn parse(text: &str) -> Dockerfile {
        Dockerfile::parse("dist/app/1/Dockerfile", text, &BTreeMap::new()).unwrap()
    }

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn pins_packages_and_the_external_from() {
        let text = "FROM --platform=$TARGETPLATFORM debian:bookworm AS build\n\
                    RUN apt-get update && apt-get install -y --no-install-recommends \\\n    curl \\\n    \"jq\" && echo curl jq\n\
                    FROM build\nRUN apt-get install -y curl\n";
        let entry = lock(
            Some(DIGEST),
            &[("curl", "7.88.1-10+deb12u15"), ("jq", "1.6-2.1")],
        );
        let base = StageLock {
            base: "debian:bookworm",
            entry: Some(&entry),
            pin_from: true,
        };
        let inherited = StageLock {
            pin_from: false,
            ..base
        };
        let pinned = pin(
            &parse(text),
            &[Some(base), Some(inherited)],
            Path::new("images/app/packages.lock"),
        )
        .unwrap();
        assert_eq!(
            pinned.text,
            format!(
                "FROM --platform=$TARGETPLATFORM debian:bookworm@{DIGEST} AS build\n\
                 RUN apt-get update && apt-get install -y --no-install-recommends \\\n    curl=7.88.1-10+deb12u15 \\\n    \"jq\"=1.6-2.1 && echo curl jq\n\
                 FROM build\nRUN apt-get install -y curl=7.88.1-10+deb12u15\n"
            )
        );
        assert_eq!(pinned.pins["FROM debian:bookworm"], DIGEST);
        assert_eq!(pinned.pins["jq"], "1.6-2.1");
    }

    #[test]
    fn a_package_missing_from_the_lock_is_an_error_at_its_argument() {
        let text = "FROM alpine:3.20\nRUN apk add --no-cache curl \\\n  tini\n";
        let entry = lock(None, &[("curl", "8.11.1-r0")]);
        let stages = [Some(StageLock {
            base: "alpine:3.20",
            entry: Some(&entry),
            pin_from: true,
        })];
        let error = pin(&parse(text), &stages, Path::new("images/app/packages.lock"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("Dockerfile:3:3"), "{error}");
        assert!(error.contains("package `tini` is not locked"), "{error}");
        assert!(error.contains("image-manager lock"), "{error}");
        let no_entry = [Some(StageLock {
            base: "alpine:3.20",
            entry: None,
            pin_from: true,
        })];
        let error = pin(&parse(text), &no_entry, Path::new("p.lock"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no entry for base `alpine:3.20`"), "{error}");
    }

    #[test]
    fn dnf_uses_a_dash_and_dynamic_arguments_warn() {
        let text = "FROM fedora:41\nRUN dnf install -y git $EXTRA\n";
        let entry = lock(None, &[("git", "2.47.1-1.fc41")]);
        let stages = [Some(StageLock {
            base: "fedora:41",
            entry: Some(&entry),
            pin_from: true,
        })];
        let pinned = pin(&parse(text), &stages, Path::new("p.lock")).unwrap();
        assert_eq!(
            pinned.text,
            "FROM fedora:41\nRUN dnf install -y git-2.47.1-1.fc41 $EXTRA\n"
        );
        assert_eq!(pinned.warnings.len(), 1);
        assert!(
            pinned.warnings[0]
                .to_string()
                .contains("`$EXTRA` is not pinned")
        );
    }

    #[test]
    fn stages_without_a_lock_are_left_alone() {
        let text = "FROM scratch\nCOPY a /a\n";
        let pinned = pin(&parse(text), &[None], Path::new("p.lock")).unwrap();
        assert_eq!(pinned.text, text);
        assert!(pinned.pins.is_empty());
    }
}
