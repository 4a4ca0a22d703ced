//! Lexical handling of names inside an image: splitting into components and cleaning `.`/`..`.
//!
//! Two rules exist because containerd has two: a tar *entry name* that climbs above the root
//! (`../x`, `a/../../x`) is rejected, while a *hardlink target* or a *path looked up* is taken
//! with chroot semantics, where `..` at the root stays at the root. Absolute names are relative
//! to the image root in both. Symlinks are not followed here: that is [`crate::FsView`]'s job.

/// The components of `path`, without empty and `.` components (`..` is kept).
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
}

/// Cleans a tar entry name; `None` when it climbs above the root.
pub fn clean_entry_name(path: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for component in components(path) {
        if component == b".." {
            out.pop()?;
        } else {
            out.push(component);
        }
    }
    Some(out)
}

/// Cleans a path with chroot semantics: `..` at the root stays at the root.
pub fn clean_clamped(path: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for component in components(path) {
        if component == b".." {
            out.pop();
        } else {
            out.push(component);
        }
    }
    out
}

/// Joins components into an absolute path for messages.
pub fn display(components: &[&[u8]]) -> String {
    let mut out = String::new();
    for component in components {
        out.push('/');
        out.push_str(&String::from_utf8_lossy(component));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cleaned(path: &str) -> Option<String> {
        clean_entry_name(path.as_bytes()).map(|c| display(&c))
    }

    #[test]
    fn entry_names_that_escape_are_rejected() {
        assert_eq!(cleaned("../x"), None);
        assert_eq!(cleaned("a/../../x"), None);
        assert_eq!(cleaned(".."), None);
        assert_eq!(cleaned("/etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(cleaned("./a/./b/../c/").as_deref(), Some("/a/c"));
        assert_eq!(cleaned("dne/../.wh.etc").as_deref(), Some("/.wh.etc"));
        assert_eq!(cleaned("./").as_deref(), Some("/"));
    }

    #[test]
    fn clamped_paths_stay_under_the_root() {
        assert_eq!(
            display(&clean_clamped(b"../../../../../etc/passwd")),
            "/etc/passwd"
        );
        assert_eq!(display(&clean_clamped(b"/a/../../b")), "/b");
    }

    proptest! {
        #[test]
        fn cleaning_is_idempotent_and_never_leaves_dots(parts in proptest::collection::vec("(\\.\\.|\\.|[a-z]{1,3})", 0..12)) {
            let path = parts.join("/");
            let once = clean_clamped(path.as_bytes());
            prop_assert!(once.iter().all(|c| *c != b".." && *c != b"."));
            let shown = display(&once);
            let twice = clean_clamped(shown.as_bytes());
            prop_assert_eq!(once, twice);
            if let Some(entry) = clean_entry_name(path.as_bytes()) {
                prop_assert_eq!(entry, clean_clamped(path.as_bytes()));
            }
        }
    }
}
