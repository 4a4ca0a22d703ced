//! The package arguments of install commands: `apt-get install`/`apt install`, `apk add`,
//! `dnf`/`yum`/`microdnf`/`tdnf install`, found in a Dockerfile's shell-form `RUN`s and
//! here-documents, stage by stage.
//!
//! Only the package arguments are found: options and their values (`-o Dpkg::Options=...`,
//! `--virtual .build-deps`, `--setopt=...`), files and URLs, and other commands' words
//! naming the same package are left alone.

use std::ops::Range;

use im_dockerfile::{Dockerfile, Form, Keyword};

use crate::shell::{self, Mode, Word};

/// A distribution's package manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Manager {
    /// Debian and Ubuntu: `apt-get install name=version`.
    Apt,
    /// Alpine: `apk add name=version`.
    Apk,
    /// Fedora, RHEL and relatives: `dnf install name-version`.
    Dnf,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Apk => "apk",
            Manager::Dnf => "dnf",
        }
    }

    /// How a pinned package argument is written.
    pub fn pinned(self, version: &str) -> String {
        match self {
            Manager::Apt | Manager::Apk => format!("={version}"),
            Manager::Dnf => format!("-{version}"),
        }
    }
}

/// One package argument of an install command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageArg {
    pub manager: Manager,
    /// The stage whose `RUN` installs it.
    pub stage: usize,
    /// The package name as written (`curl`, `libc6:arm64`).
    pub name: String,
    /// The argument's bytes in the Dockerfile text.
    pub range: Range<usize>,
    /// What the argument is, when it cannot be pinned (it is left as written).
    pub unpinnable: Option<Unpinnable>,
}

/// Why a package argument is left as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpinnable {
    /// It already names a version (`curl=7.88.1-10`, `curl>8`).
    Pinned,
    /// It expands when the shell runs (`$PACKAGES`, `lib*`).
    Dynamic,
    /// A file or URL (`./app.deb`, `https://.../x.rpm`).
    File,
}

/// Every install command's package arguments in `dockerfile`, in file order.
pub fn package_args(dockerfile: &Dockerfile) -> Vec<PackageArg> {
    let text = dockerfile.text();
    let mut out = Vec::new();
    for instruction in dockerfile.instructions() {
        if instruction.keyword != Keyword::Run || instruction.form != Some(Form::Shell) {
            continue;
        }
        let Some(stage) = instruction.stage else {
            continue;
        };
        let mut scan = |range: Range<usize>, mode: Mode| {
            for words in shell::commands(text, range, mode) {
                install_args(&words, stage, &mut out);
            }
        };
        // The instruction's own line(s) end where the first here-document body starts.
        let line_end = instruction
            .heredocs
            .first()
            .map_or(instruction.span.end, |heredoc| heredoc.body.start);
        let keyword_end = instruction.span.start
            + text[instruction.span.clone()]
                .find(|c: char| c.is_whitespace())
                .unwrap_or(instruction.span.len());
        scan(
            keyword_end.min(line_end)..line_end,
            Mode::Instruction {
                escape: dockerfile.escape(),
            },
        );
        for heredoc in &instruction.heredocs {
            scan(heredoc.body.clone(), Mode::Script);
        }
    }
    out
}

/// The words a command is run through (`sudo apt-get ...`, `env A=1 apk ...`).
const WRAPPERS: &[&str] = &["sudo", "env", "exec", "command", "nohup", "time", "nice"];

/// The package arguments of one simple command, if it installs packages.
fn install_args(words: &[Word], stage: usize, out: &mut Vec<PackageArg>) {
    let mut rest = words;
    // Leading assignments (`DEBIAN_FRONTEND=noninteractive`) and wrappers.
    while let Some((first, tail)) = rest.split_first() {
        if is_assignment(&first.value) || WRAPPERS.contains(&first.value.as_str()) {
            rest = tail;
        } else {
            break;
        }
    }
    let Some((command, args)) = rest.split_first() else {
        return;
    };
    let program = command.value.rsplit('/').next().unwrap_or_default();
    let (manager, subcommands, takes_value): (Manager, &[&str], &[&str]) = match program {
        "apt-get" | "apt" => (Manager::Apt, &["install"], APT_VALUE_OPTIONS),
        "apk" => (Manager::Apk, &["add"], APK_VALUE_OPTIONS),
        "dnf" | "yum" | "microdnf" | "tdnf" | "dnf5" => {
            (Manager::Dnf, &["install"], DNF_VALUE_OPTIONS)
        }
        _ => return,
    };
    let mut operands = Vec::new();
    let mut iter = args.iter();
    while let Some(word) = iter.next() {
        let value = word.value.as_str();
        if value == "--" {
            operands.extend(iter.by_ref());
            break;
        }
        if value.starts_with('-') && value.len() > 1 {
            if !value.contains('=') && takes_value.contains(&value) {
                iter.next();
            }
            continue;
        }
        if is_redirection(value) {
            continue;
        }
        operands.push(word);
    }
    let Some((subcommand, packages)) = operands.split_first() else {
        return;
    };
    if !subcommands.contains(&subcommand.value.as_str()) {
        return;
    }
    for word in packages {
        let unpinnable = unpinnable(manager, word);
        let name = match unpinnable {
            None | Some(Unpinnable::Pinned) => package_name(manager, &word.value),
            Some(Unpinnable::Dynamic | Unpinnable::File) => &word.value,
        };
        out.push(PackageArg {
            manager,
            stage,
            name: name.to_owned(),
            range: word.range.clone(),
            unpinnable,
        });
    }
}

/// apt-get options that take the next word as their value.
const APT_VALUE_OPTIONS: &[&str] = &[
    "-o",
    "-c",
    "-t",
    "-a",
    "--option",
    "--config-file",
    "--target-release",
    "--default-release",
    "--host-architecture",
];

/// apk options that take the next word as their value.
const APK_VALUE_OPTIONS: &[&str] = &[
    "-X",
    "-t",
    "-p",
    "--repository",
    "--virtual",
    "--root",
    "--arch",
    "--cache-dir",
    "--repositories-file",
    "--keys-dir",
];

/// dnf/yum/microdnf options that take the next word as their value.
const DNF_VALUE_OPTIONS: &[&str] = &[
    "-c",
    "-x",
    "-d",
    "-e",
    "--config",
    "--exclude",
    "--releasever",
    "--installroot",
    "--repo",
    "--repoid",
    "--enablerepo",
    "--disablerepo",
    "--setopt",
    "--forcearch",
    "--destdir",
    "--downloaddir",
];

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

fn is_redirection(word: &str) -> bool {
    let word = word.trim_start_matches(|c: char| c.is_ascii_digit());
    word.starts_with('>') || word.starts_with('<')
}

/// The package name in an argument (`curl=1.2` → `curl`).
fn package_name(manager: Manager, argument: &str) -> &str {
    match manager {
        Manager::Apt => argument.split(['=', '/']).next().unwrap_or(argument),
        Manager::Apk => argument
            .split(['=', '<', '>', '~'])
            .next()
            .unwrap_or(argument),
        Manager::Dnf => argument,
    }
}

fn unpinnable(manager: Manager, word: &Word) -> Option<Unpinnable> {
    let value = word.value.as_str();
    if word.dynamic {
        return Some(Unpinnable::Dynamic);
    }
    let file = value.contains("://")
        || value.starts_with('.')
        || (value.contains('/') && manager != Manager::Apt)
        || value.starts_with('/')
        || [".deb", ".rpm", ".apk"]
            .iter()
            .any(|ext| value.ends_with(ext));
    if file {
        return Some(Unpinnable::File);
    }
    let pinned = match manager {
        // `name/release` picks a release: the user chose what to install.
        Manager::Apt => value.contains(['=', '/']),
        Manager::Apk => value.contains(['=', '<', '>', '~']),
        // `name-1.2-3`: a version is written when a dash is followed by a digit.
        Manager::Dnf => value
            .match_indices('-')
            .any(|(at, _)| value[at + 1..].starts_with(|c: char| c.is_ascii_digit())),
    };
    pinned.then_some(Unpinnable::Pinned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn args(text: &str) -> Vec<(Manager, usize, String, Option<Unpinnable>, String)> {
        let dockerfile = Dockerfile::parse("Dockerfile", text, &BTreeMap::new()).unwrap();
        package_args(&dockerfile)
            .into_iter()
            .map(|arg| {
                let written = text[arg.range.clone()].to_owned();
                (arg.manager, arg.stage, arg.name, arg.unpinnable, written)
            })
            .collect()
    }

    fn names(text: &str) -> Vec<String> {
        args(text).into_iter().map(|a| a.2).collect()
    }

    #[test]
    fn apt_packages_not_options_or_other_commands() {
        let text = "FROM debian:bookworm\n\
            RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \\\n\
            \t--no-install-recommends -o Dpkg::Options::=--force-confnew \\\n\
            \tcurl ca-certificates \\\n\
            \t&& rm -rf /var/lib/apt/lists/* && echo curl\n";
        assert_eq!(names(text), ["curl", "ca-certificates"]);
    }

    #[test]
    fn apk_virtual_and_dnf_setopt_are_options() {
        let text = "FROM alpine:3.20\nRUN apk add --no-cache --virtual .build-deps gcc musl-dev\n\
            FROM fedora:41\nRUN dnf install -y --setopt=install_weak_deps=False --releasever 41 git\n";
        let found = args(text);
        assert_eq!(
            found
                .iter()
                .map(|a| (a.0, a.1, a.2.as_str()))
                .collect::<Vec<_>>(),
            [
                (Manager::Apk, 0, "gcc"),
                (Manager::Apk, 0, "musl-dev"),
                (Manager::Dnf, 1, "git"),
            ]
        );
    }

    #[test]
    fn pinned_dynamic_and_files_are_marked() {
        let text = "FROM debian\nRUN apt-get install -y curl=7.88 jq/bookworm-backports $EXTRA ./x.deb wget\n";
        let found = args(text);
        let marks: Vec<_> = found.iter().map(|a| (a.2.as_str(), a.3)).collect();
        assert_eq!(
            marks,
            [
                ("curl", Some(Unpinnable::Pinned)),
                ("jq", Some(Unpinnable::Pinned)),
                ("$EXTRA", Some(Unpinnable::Dynamic)),
                ("./x.deb", Some(Unpinnable::File)),
                ("wget", None),
            ]
        );
    }

    #[test]
    fn heredocs_and_wrappers() {
        let text = "FROM debian\nRUN <<EOF\nset -e\napt-get update\nsudo apt-get install -y \\\n  tini\nEOF\n";
        let found = args(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].2, "tini");
        assert_eq!(found[0].4, "tini");
    }

    #[test]
    fn exec_form_and_other_subcommands_are_ignored() {
        let text = "FROM debian\nRUN [\"apt-get\", \"install\", \"curl\"]\nRUN apt-get remove curl && apk del jq && dnf update git\n";
        assert!(names(text).is_empty());
    }

    #[test]
    fn quoted_package_range_includes_quotes() {
        let text = "FROM debian\nRUN apt-get install -y \"curl\" 2>/dev/null\n";
        let found = args(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].4, "\"curl\"");
    }
}
