//! The form of a Dockerfile hadolint is run on, so that Dockerfiles which differ only where no
//! hadolint rule looks are linted once.
//!
//! A monorepo renders one template into hundreds of Dockerfiles that differ only in versions:
//! a comment naming the tag, `ARG`/`ENV` defaults, label values, the parent's tag. Their
//! findings are the same, line for line. So before grouping Dockerfiles, these are replaced by
//! a fixed placeholder, each on its own line (line numbers, which findings carry, do not move):
//!
//! - comment text (not `# hadolint ...` pragmas, not the parser directives at the top);
//! - `ARG`/`ENV` values written `KEY=value` that expand nothing (no `$`, no escapes);
//! - `LABEL` values likewise, unless the hadolint config checks labels (`label-schema`,
//!   `strict-labels`: then their values matter);
//! - the tag in `FROM image:tag`, unless it is `latest` (DL3007 reads it), and only when the
//!   `FROM` line expands nothing.
//!
//! Everything a rule reads (instructions, keys, `RUN` commands, `COPY`/`WORKDIR` paths,
//! registries, stage names, ports, users) stays as it is. `image-manager`'s lint tests check the
//! result against hadolint run on every Dockerfile separately.

use std::borrow::Cow;

/// What the project's hadolint configuration makes rules read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Canonical {
    /// Label values are checked (`label-schema`/`strict-labels` in the config).
    pub labels_checked: bool,
}

impl Canonical {
    /// From the hadolint config's text (`None`: no config).
    pub fn for_config(config: Option<&str>) -> Self {
        Self {
            labels_checked: config.is_some_and(|text| {
                text.contains("label-schema") || text.contains("strict-labels")
            }),
        }
    }

    /// `dockerfile` with what no rule reads replaced (borrowed when nothing was).
    pub fn apply<'a>(&self, dockerfile: &'a str) -> Cow<'a, str> {
        let mut out = String::with_capacity(dockerfile.len());
        let mut changed = false;
        let mut in_directives = true;
        // The instruction the line continues (`None`: a new one starts on this line).
        let mut continuing: Option<Keyword> = None;
        let mut heredoc: Option<String> = None;
        for line in dockerfile.split_inclusive('\n') {
            if let Some(end) = &heredoc {
                if line.trim_end_matches(['\n', '\r']).trim_start_matches('\t') == end {
                    heredoc = None;
                }
                out.push_str(line);
                continue;
            }
            let trimmed = line.trim_start();
            let body = trimmed.trim_end_matches(['\n', '\r']);
            if body.starts_with('#') {
                let keep = body.to_ascii_lowercase().contains("hadolint")
                    || (in_directives && continuing.is_none() && is_directive(body));
                if keep || body == "#" {
                    out.push_str(line);
                } else {
                    let indent = &line[..line.len() - trimmed.len()];
                    out.push_str(indent);
                    out.push('#');
                    out.push_str(&trimmed[body.len()..]);
                    changed = true;
                }
                continue;
            }
            if !body.is_empty() {
                in_directives = false;
            }
            let keyword = match continuing {
                Some(keyword) => Some(keyword),
                None => Keyword::of(body),
            };
            let rewritten = match keyword {
                Some(Keyword::Values) => values(line, continuing.is_none()),
                Some(Keyword::Label) if !self.labels_checked => values(line, continuing.is_none()),
                Some(Keyword::From) if continuing.is_none() => from_tag(line),
                _ => None,
            };
            match rewritten {
                Some(text) => {
                    out.push_str(&text);
                    changed = true;
                }
                None => out.push_str(line),
            }
            if continuing.is_none()
                && matches!(keyword, Some(Keyword::Other))
                && let Some(at) = body.find("<<")
            {
                heredoc = heredoc_end(&body[at + 2..]);
            }
            continuing = if body.ends_with('\\') { keyword } else { None };
        }
        if changed {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(dockerfile)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    /// `ARG`, `ENV`.
    Values,
    Label,
    From,
    Other,
}

impl Keyword {
    fn of(line: &str) -> Option<Keyword> {
        let word = line.split_whitespace().next()?;
        Some(match word.to_ascii_uppercase().as_str() {
            "ARG" | "ENV" => Keyword::Values,
            "LABEL" => Keyword::Label,
            "FROM" => Keyword::From,
            _ => Keyword::Other,
        })
    }
}

/// `# syntax=...`, `# escape=...`, `# check=...`.
fn is_directive(comment: &str) -> bool {
    let rest = comment.trim_start_matches('#').trim_start();
    rest.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.trim().chars().all(|c| c.is_ascii_alphabetic())
    })
}

/// A heredoc's terminator from what follows `<<` (`EOF`, `-EOF`, `"EOF"`).
fn heredoc_end(after: &str) -> Option<String> {
    let word = after.trim_start_matches('-').split_whitespace().next()?;
    let word = word.trim_matches(['"', '\'']);
    (!word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| word.to_owned())
}

/// The `KEY=value` pairs of an `ARG`/`ENV`/`LABEL` line with each plain value replaced;
/// `None` when nothing was replaced or the line is not simple enough to be sure.
fn values(line: &str, first: bool) -> Option<String> {
    let (content, ending) = split_ending(line);
    let mut rest = content;
    let mut out = String::with_capacity(line.len());
    if first {
        let keyword_end =
            rest.trim_start().find(char::is_whitespace)? + (rest.len() - rest.trim_start().len());
        out.push_str(&rest[..keyword_end]);
        rest = &rest[keyword_end..];
    }
    let mut changed = false;
    loop {
        let spaces = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..spaces]);
        rest = &rest[spaces..];
        if rest.is_empty() || rest == "\\" {
            out.push_str(rest);
            break;
        }
        // One `key=value` (or a bare word: `ARG NAME`, legacy `ENV KEY value`).
        let key_end = rest.find(['=', ' ', '\t']).unwrap_or(rest.len());
        let key = &rest[..key_end];
        if key.contains(['"', '\'', '$', '\\']) || !rest[key_end..].starts_with('=') {
            // A bare word: fine for ARG; anything else (legacy ENV form, quoted keys) is left.
            if rest[key_end..].trim_start().is_empty() || rest[key_end..].trim_start() == "\\" {
                out.push_str(rest);
                break;
            }
            return None;
        }
        out.push_str(&rest[..=key_end]);
        rest = &rest[key_end + 1..];
        let (value, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&rest[..end + 2], &rest[end + 2..])
        } else {
            let end = rest.find([' ', '\t']).unwrap_or(rest.len());
            (&rest[..end], &rest[end..])
        };
        let inner = value.trim_matches('"');
        if inner.is_empty()
            || value.contains(['$', '\\', '\'', '`'])
            || (value.starts_with('"') && inner.contains('"'))
        {
            out.push_str(value);
        } else {
            out.push_str(if value.starts_with('"') { "\"v\"" } else { "v" });
            changed = true;
        }
        rest = after;
    }
    out.push_str(ending);
    changed.then_some(out)
}

/// `FROM [--flags] image:tag [AS name]` with a plain tag replaced (not `latest`).
fn from_tag(line: &str) -> Option<String> {
    let (content, ending) = split_ending(line);
    if content.contains('$') || content.trim_end().ends_with('\\') {
        return None;
    }
    let mut words = content.split_whitespace();
    words.next()?; // FROM
    let image = words.find(|word| !word.starts_with("--"))?;
    let name_end = image.rfind('/').map_or(0, |slash| slash + 1);
    let colon = image[name_end..].find(':')? + name_end;
    let tag = &image[colon + 1..];
    if tag.is_empty()
        || tag.contains('@')
        || tag.eq_ignore_ascii_case("latest")
        || image.contains('@')
    {
        return None;
    }
    let start = content.find(image)?;
    let mut out = String::with_capacity(line.len());
    out.push_str(&content[..=(start + colon)]);
    out.push('t');
    out.push_str(&content[start + image.len()..]);
    out.push_str(ending);
    Some(out)
}

fn split_ending(line: &str) -> (&str, &str) {
    let content = line.trim_end_matches(['\n', '\r']);
    (content, &line[content.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        Canonical::default().apply(text).into_owned()
    }

    #[test]
    fn versions_comments_and_parent_tags_are_replaced_line_for_line() {
        let a = "# syntax=docker/dockerfile:1\n# app 1.1.0\nFROM base-08:1.4.1 AS build\nARG APP_VERSION=1.1.0\nLABEL org.opencontainers.image.version=\"1.1.0\" \\\n      com.example.app=\"app\"\nENV A=1.1.0 \\\n    B=3.10\nRUN echo 1.1.0\n";
        let b = a
            .replace("1.1.0", "2.0.3")
            .replace("1.4.1", "1.5.0")
            .replace("3.10", "3.11");
        assert_ne!(a, b);
        let canonical = canon(a);
        assert_eq!(canonical.lines().count(), a.lines().count());
        assert!(canonical.starts_with("# syntax=docker/dockerfile:1\n#\nFROM base-08:t AS build\nARG APP_VERSION=v\nLABEL org.opencontainers.image.version=\"v\" \\\n      com.example.app=\"v\"\nENV A=v \\\n    B=v\n"), "{canonical}");
        // RUN lines are what rules read: they stay, so these two still differ there.
        assert!(canonical.ends_with("RUN echo 1.1.0\n"));
        let same_but_run = canon(&b.replace("RUN echo 2.0.3", "RUN echo 1.1.0"));
        assert_eq!(canonical, same_but_run);
    }

    #[test]
    fn what_rules_read_is_kept() {
        for text in [
            "FROM debian:latest\n",
            "FROM debian\n",
            "FROM $BASE:1.0\n",
            "FROM debian@sha256:abc\n",
            "# hadolint ignore=DL3008\nRUN apt-get install curl\n",
            "ENV PATH=$PATH:/x\n",
            "ENV LEGACY value with spaces\n",
            "ARG NAME\n",
            "LABEL a=\"x $Y\"\n",
            "RUN <<EOF\n# not a comment to hadolint's parser\nENV A=1\nEOF\n",
        ] {
            assert_eq!(canon(text), text, "{text}");
        }
        let checked = Canonical::for_config(Some("label-schema:\n  version: semver\n"));
        assert_eq!(
            checked.apply("LABEL version=\"1.0\"\n"),
            "LABEL version=\"1.0\"\n"
        );
    }
}
