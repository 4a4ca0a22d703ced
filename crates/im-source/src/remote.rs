//! What a remote's refs point at, asked with `git ls-remote` (no objects are fetched).

use im_process::RunError;

use crate::git;

/// How a `ref:` was found on the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/heads/<ref>`: it moves; each run follows it.
    Branch,
    /// `refs/tags/<ref>`: fixed by convention.
    Tag,
    /// A full commit SHA written in `image.yml`.
    Commit,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
            RefKind::Commit => "commit",
        }
    }

    pub fn parse(text: &str) -> Option<RefKind> {
        match text {
            "branch" => Some(RefKind::Branch),
            "tag" => Some(RefKind::Tag),
            "commit" => Some(RefKind::Commit),
            _ => None,
        }
    }
}

/// A `ref:` resolved to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub commit: String,
    pub kind: RefKind,
    /// The full ref name on the remote (`refs/tags/v1.2.3`), for fetching it.
    pub refname: Option<String>,
}

/// Why a ref could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot reach the repository: {}", git::message(.0))]
    Unreachable(#[source] RunError),
    #[error("the repository has no branch or tag `{0}`")]
    NoSuchRef(String),
}

/// Every ref of `url` matching `patterns` and the commit it points at; an annotated tag's
/// commit is its peeled (`^{}`) line, so no `--refs` here.
pub fn refs(url: &str, patterns: &[&str]) -> Result<Vec<(String, String)>, RunError> {
    let mut args = vec!["ls-remote", "--", url];
    args.extend(patterns);
    Ok(parse(&git::run(None, &args, &[])?))
}

/// Parses `ls-remote` output into (ref name, commit): an annotated tag's peeled line
/// (`refs/tags/v1^{}`) replaces the tag object's SHA with the commit's.
pub fn parse(out: &str) -> Vec<(String, String)> {
    let mut refs: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        match name.strip_suffix("^{}") {
            Some(tag) => {
                if let Some(entry) = refs.iter_mut().find(|(n, _)| n == tag) {
                    sha.clone_into(&mut entry.1);
                }
            }
            None => refs.push((name.to_owned(), sha.to_owned())),
        }
    }
    refs
}

/// Resolves `reference` (a branch or tag; a full SHA needs no resolving) on `url`. A branch
/// wins over a tag of the same name; a name given in full (`refs/tags/x`) picks exactly that.
pub fn resolve(url: &str, reference: &str) -> Result<Resolved, ResolveError> {
    let wanted = [
        format!("refs/heads/{reference}"),
        format!("refs/tags/{reference}"),
        reference.to_owned(),
    ];
    // An annotated tag's commit is on its peeled line, which a pattern names explicitly.
    let peeled = [
        format!("refs/tags/{reference}^{{}}"),
        format!("{reference}^{{}}"),
    ];
    let patterns: Vec<&str> = wanted.iter().chain(&peeled).map(String::as_str).collect();
    let refs = refs(url, &patterns).map_err(ResolveError::Unreachable)?;
    for (candidate, kind) in [
        (0, RefKind::Branch),
        (1, RefKind::Tag),
        (2, RefKind::Branch),
    ] {
        if let Some((name, commit)) = refs.iter().find(|(name, _)| *name == wanted[candidate]) {
            let kind = if name.starts_with("refs/tags/") {
                RefKind::Tag
            } else {
                kind
            };
            return Ok(Resolved {
                commit: commit.clone(),
                kind,
                refname: Some(name.clone()),
            });
        }
    }
    Err(ResolveError::NoSuchRef(reference.to_owned()))
}

/// The tag names of `url` (without `refs/tags/`), each with its commit.
pub fn tags(url: &str) -> Result<Vec<(String, String)>, RunError> {
    let refs = refs(url, &["refs/tags/*"])?;
    Ok(refs
        .into_iter()
        .filter_map(|(name, commit)| {
            name.strip_prefix("refs/tags/")
                .map(|tag| (tag.to_owned(), commit))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_tags_resolve_to_their_commit() {
        let out = "1111\trefs/heads/main\n2222\trefs/tags/v1\n3333\trefs/tags/v1^{}\n4444\trefs/tags/v2\n";
        assert_eq!(
            parse(out),
            vec![
                ("refs/heads/main".to_owned(), "1111".to_owned()),
                ("refs/tags/v1".to_owned(), "3333".to_owned()),
                ("refs/tags/v2".to_owned(), "4444".to_owned()),
            ]
        );
    }
}
