//! `source:` in `image.yml`: an image built from an external git repository's Dockerfile
//! instead of a local template.
//!
//! ```yaml
//! source:
//!   git: https://github.com/org/app.git   # any URL git fetches (https, ssh, file)
//!   ref: v1.4.2                           # a tag, a branch (followed) or a commit SHA
//!   context: .                            # the build context, a folder of the repository
//!   dockerfile: Dockerfile                # relative to `context`
//!   patches: [patches/fix-user.patch]     # relative to this image.yml, applied in order
//! ```
//!
//! Only reading and checking live here; fetching is `im_source`'s and `im_exec::source`'s.

use im_yaml::reader::Spanned;
use im_yaml::{Node, Reader, Span};

const SOURCE_KEYS: &[&str] = &["git", "ref", "context", "dockerfile", "patches"];

/// The `source:` of an image definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDef {
    /// Where `source:` is written.
    pub span: Span,
    pub git: Spanned<String>,
    /// `ref:`: a tag, a branch or a full commit SHA.
    pub reference: Spanned<String>,
    /// The build context: a relative folder of the repository (`.` when not given).
    pub context: Spanned<String>,
    /// The Dockerfile, relative to the context (`Dockerfile` when not given).
    pub dockerfile: Spanned<String>,
    /// Patch files, relative to the `image.yml` folder, in the order they apply.
    pub patches: Vec<Spanned<String>>,
}

impl SourceDef {
    /// The Dockerfile's path in the repository.
    pub fn dockerfile_path(&self) -> String {
        join(&self.context.value, &self.dockerfile.value)
    }
}

/// `a/b` joined to `c` without `.` parts.
fn join(folder: &str, file: &str) -> String {
    folder
        .split('/')
        .chain(file.split('/'))
        .filter(|part| !part.is_empty() && *part != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads `source:`; problems go to `reader`.
pub(crate) fn read_source(reader: &mut Reader<'_>, node: &Node) -> Option<SourceDef> {
    let map = reader.map(node, "`source`", SOURCE_KEYS)?;
    let required = |reader: &mut Reader<'_>, key: &str, example: &str| match map.get(key) {
        Some(node) => reader.spanned_string(node, &format!("`source.{key}`")),
        None => {
            reader.error(
                map.span,
                format!("`source` has no `{key}`"),
                Some(format!("add `{key}: {example}`")),
            );
            None
        }
    };
    let git = required(reader, "git", "https://github.com/<org>/<repo>.git");
    let reference = required(reader, "ref", "<tag, branch or commit>");
    let mut path = |key: &str, default: &str| match map.get(key) {
        Some(node) => {
            let value = reader.spanned_string(node, &format!("`source.{key}`"))?;
            check_relative(reader, &value, &format!("`source.{key}`"));
            Some(value)
        }
        None => Some(Spanned {
            value: default.to_owned(),
            span: map.span,
        }),
    };
    let context = path("context", ".");
    let dockerfile = path("dockerfile", "Dockerfile");
    let patches = match map.get("patches") {
        Some(node) => reader
            .string_list(node, "`source.patches`")
            .unwrap_or_default(),
        None => Vec::new(),
    };
    for patch in &patches {
        check_relative(reader, patch, "a patch");
    }
    if let Some(git) = &git
        && git.value.trim().is_empty()
    {
        reader.error(
            git.span,
            "`source.git` is empty",
            Some("name the repository's URL".into()),
        );
    }
    if let Some(reference) = &reference
        && !valid_ref(&reference.value)
    {
        reader.error(
            reference.span,
            format!("`{}` is not a git ref", reference.value),
            Some(
                "name a tag (`v1.2.3`), a branch (`main`) or a full 40-character commit SHA".into(),
            ),
        );
    }
    Some(SourceDef {
        span: node.span,
        git: git?,
        reference: reference?,
        context: context?,
        dockerfile: dockerfile?,
        patches,
    })
}

/// A path that stays inside its folder: relative, no `..`.
fn check_relative(reader: &mut Reader<'_>, path: &Spanned<String>, what: &str) {
    let value = &path.value;
    if value.is_empty() || value.starts_with('/') || value.split('/').any(|part| part == "..") {
        reader.error(
            path.span,
            format!("{what} `{value}` is not a relative path inside its folder"),
            Some("write a path relative to the folder, without `..`".into()),
        );
    }
}

/// git's rules for a ref name, as far as they matter here (`git check-ref-format`): no
/// spaces, control characters, `..`, `~^:?*[\`, leading `-`, or trailing `/`, `.` or `.lock`.
pub fn valid_ref(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.ends_with('.')
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("@{")
        && !name.contains("//")
        && name
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"~^:?*[\\".contains(c))
}

/// Whether `reference` is a full commit SHA (SHA-1 or SHA-256), which needs no resolving.
pub fn is_commit(reference: &str) -> bool {
    matches!(reference.len(), 40 | 64) && reference.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_without_dots() {
        assert_eq!(join(".", "Dockerfile"), "Dockerfile");
        assert_eq!(
            join("docker/app", "Dockerfile.prod"),
            "docker/app/Dockerfile.prod"
        );
        assert_eq!(join("./app/", "./sub/Dockerfile"), "app/sub/Dockerfile");
    }

    #[test]
    fn refs() {
        assert!(valid_ref("main"));
        assert!(valid_ref("v1.2.3"));
        assert!(valid_ref("release/1.x"));
        assert!(!valid_ref("a..b"));
        assert!(!valid_ref("-x"));
        assert!(!valid_ref("a b"));
        assert!(!valid_ref("x.lock"));
        assert!(is_commit(&"a".repeat(40)));
        assert!(!is_commit("abc123"));
    }
}
