//! Rewriting a Dockerfile's references to managed parents (`FROM base:1`,
//! `COPY --from=base:1`, `RUN --mount=...,from=base:1`) to what a backend can resolve
//! without a registry: an `oci-archive:` path for buildah and podman, a per-step local
//! name for Docker. The rewrite goes to a copy in the step's work directory; the
//! original is never touched. References may be written with `ARG`s declared before the
//! first `FROM` (`FROM ${BASE}`); they are expanded with the step's build args.

use std::collections::{BTreeMap, BTreeSet};

/// The rewritten text and the parents it did not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub text: String,
    /// Parent references that appear nowhere in the Dockerfile.
    pub unused: Vec<String>,
}

/// Replaces every reference to a key of `replacements` by its value.
pub fn rewrite_parents(
    dockerfile: &str,
    replacements: &BTreeMap<String, String>,
    build_args: &BTreeMap<String, String>,
) -> Rewritten {
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut seen_from = false;
    let mut continued = false;
    let mut out = String::with_capacity(dockerfile.len() + 256);

    for line in dockerfile.split_inclusive('\n') {
        let is_instruction = !continued && !line.trim_start().starts_with('#');
        continued = line.trim_end().ends_with('\\');
        if !is_instruction {
            out.push_str(line);
            continue;
        }
        let tokens = tokens(line);
        let Some(&(_, keyword)) = tokens.first() else {
            out.push_str(line);
            continue;
        };
        let keyword = keyword.to_ascii_uppercase();
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        match keyword.as_str() {
            "ARG" if !seen_from => {
                for &(_, word) in &tokens[1..] {
                    let (name, default) = word.split_once('=').unwrap_or((word, ""));
                    let value = build_args
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| unquote(default).to_owned());
                    args.insert(name.to_owned(), value);
                }
            }
            "FROM" => {
                seen_from = true;
                let mut rest = tokens[1..].iter().skip_while(|(_, w)| w.starts_with("--"));
                if let Some(&(start, image)) = rest.next() {
                    let expanded = expand(image, &args);
                    if let Some(new) = replacements.get(&expanded) {
                        used.insert(replacements.get_key_value(&expanded).unwrap().0);
                        edits.push((start, start + image.len(), new.clone()));
                    }
                }
                if let (Some((_, kw)), Some((_, name))) = (rest.next(), rest.next()) {
                    stages.extend(
                        kw.eq_ignore_ascii_case("as")
                            .then(|| name.to_ascii_lowercase()),
                    );
                }
            }
            "COPY" | "ADD" => {
                for &(start, word) in tokens[1..].iter().take_while(|(_, w)| w.starts_with("--")) {
                    let value = word.strip_prefix("--from=");
                    let found = value
                        .and_then(|v| Some((v, parent_named(v, &args, &stages, replacements)?)));
                    if let Some((value, (key, new))) = found {
                        {
                            used.insert(key);
                            let value_start = start + "--from=".len();
                            edits.push((value_start, value_start + value.len(), new.clone()));
                        }
                    }
                }
            }
            "RUN" => {
                for &(start, word) in tokens[1..].iter().take_while(|(_, w)| w.starts_with("--")) {
                    let Some(spec) = word.strip_prefix("--mount=") else {
                        continue;
                    };
                    let mut offset = start + "--mount=".len();
                    for field in spec.split(',') {
                        if let Some(value) = field.strip_prefix("from=")
                            && let Some((key, new)) =
                                parent_named(value, &args, &stages, replacements)
                        {
                            used.insert(key);
                            let value_start = offset + "from=".len();
                            edits.push((value_start, value_start + value.len(), new.clone()));
                        }
                        offset += field.len() + 1;
                    }
                }
            }
            _ => {}
        }
        let mut line = line.to_owned();
        for (start, end, new) in edits.into_iter().rev() {
            line.replace_range(start..end, &new);
        }
        out.push_str(&line);
    }

    let unused = replacements
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .cloned()
        .collect();
    Rewritten { text: out, unused }
}

/// The replacement for a `--from=`/`from=` value that names a parent (not a stage).
fn parent_named<'r>(
    value: &str,
    args: &BTreeMap<String, String>,
    stages: &BTreeSet<String>,
    replacements: &'r BTreeMap<String, String>,
) -> Option<(&'r String, &'r String)> {
    let expanded = expand(value, args);
    if stages.contains(&expanded.to_ascii_lowercase()) {
        return None;
    }
    replacements.get_key_value(&expanded)
}

/// Whitespace-separated words of a line with their byte offsets.
fn tokens(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// Expands `$NAME`, `${NAME}` and `${NAME:-default}` with `args`; unknown names expand
/// to the empty string, as in Dockerfiles.
fn expand(word: &str, args: &BTreeMap<String, String>) -> String {
    if !word.contains('$') {
        return word.to_owned();
    }
    let mut out = String::new();
    let mut rest = word;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(body) = rest.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push('$');
                continue;
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match (args.get(name).filter(|v| !v.is_empty()), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {}
            }
            rest = &body[end + 1..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                out.push('$');
                continue;
            }
            if let Some(v) = args.get(&rest[..end]) {
                out.push_str(v);
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn rewrites_from_copy_and_mount_references_and_nothing_else() {
        let dockerfile = "\
# syntax=docker/dockerfile:1
# FROM base:1 in a comment stays
FROM --platform=$TARGETPLATFORM base:1 AS build
RUN --mount=type=cache,target=/c --mount=type=bind,from=base:1,target=/b echo base:1
COPY --from=build /x /y
FROM base:1
COPY --chown=1:1 --from=base:1 /etc/base /etc/base
RUN echo \\
  FROM base:1
";
        let r = rewrite_parents(
            dockerfile,
            &map(&[("base:1", "oci-archive:/p/base.tar")]),
            &BTreeMap::new(),
        );
        assert!(r.unused.is_empty());
        assert_eq!(
            r.text,
            "\
# syntax=docker/dockerfile:1
# FROM base:1 in a comment stays
FROM --platform=$TARGETPLATFORM oci-archive:/p/base.tar AS build
RUN --mount=type=cache,target=/c --mount=type=bind,from=oci-archive:/p/base.tar,target=/b echo base:1
COPY --from=build /x /y
FROM oci-archive:/p/base.tar
COPY --chown=1:1 --from=oci-archive:/p/base.tar /etc/base /etc/base
RUN echo \\
  FROM base:1
"
        );
    }

    #[test]
    fn expands_global_args_with_build_args_overriding_defaults() {
        let dockerfile = "ARG REG=local\nARG NAME=\"base\" TAG\nFROM ${REG}/${NAME}:${TAG:-1}\nFROM $REG/other:2\n";
        let replacements = map(&[("local/base:1", "A"), ("mine/other:2", "B")]);
        let r = rewrite_parents(dockerfile, &replacements, &BTreeMap::new());
        assert_eq!(
            r.text,
            "ARG REG=local\nARG NAME=\"base\" TAG\nFROM A\nFROM $REG/other:2\n"
        );
        assert_eq!(r.unused, vec!["mine/other:2".to_owned()]);
        let r = rewrite_parents(dockerfile, &replacements, &map(&[("REG", "mine")]));
        assert_eq!(
            r.text,
            "ARG REG=local\nARG NAME=\"base\" TAG\nFROM ${REG}/${NAME}:${TAG:-1}\nFROM B\n"
        );
    }

    #[test]
    fn a_stage_named_like_a_parent_is_left_alone_in_copy_from() {
        let dockerfile = "FROM base:1 AS base\nFROM scratch\nCOPY --from=base / /\n";
        let r = rewrite_parents(
            dockerfile,
            &map(&[("base:1", "X"), ("base", "Y")]),
            &BTreeMap::new(),
        );
        assert_eq!(
            r.text,
            "FROM X AS base\nFROM scratch\nCOPY --from=base / /\n"
        );
        assert_eq!(r.unused, vec!["base".to_owned()]);
    }

    #[test]
    fn keywords_are_case_insensitive_and_crlf_is_kept() {
        let r = rewrite_parents(
            "from base:1\r\ncopy --from=base:1 a b\r\n",
            &map(&[("base:1", "X")]),
            &BTreeMap::new(),
        );
        assert_eq!(r.text, "from X\r\ncopy --from=X a b\r\n");
    }
}
