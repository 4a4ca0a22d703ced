//! Mutation fuzzing of whole projects: a seeded generator breaks one or two input files of a
//! valid project at a time — settings, `image.yml`, Dockerfile templates, included
//! templates, test configs, plain Dockerfiles, rootfs files — by bytes (flips, invalid
//! UTF-8, truncation, YAML and Jinja tokens, very long lines) or by kind (FIFO, folder,
//! links out of the project, loops, broken links), then runs `check` and `generate` under a
//! time and memory limit. Every run must end with 0 or 2, never panic or hang, and every
//! error must say where it is (`-->`).
//!
//! `IM_FUZZ_SEED` and `IM_FUZZ_CASES` change the seed (default fixed, so CI is
//! reproducible) and the number of cases; a failure prints the seed, the case and what was
//! done to which file.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::{mkfifo, run_limited, write};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The files a mutation may hit, one of every input kind.
const INPUTS: &[&str] = &[
    ".image-manager.yml",
    "images/base/image.yml",
    "images/base/Dockerfile.jinja2",
    "templates/labels.jinja2",
    "images/tool/1/image.yml",
    "images/tool/1/Dockerfile.jinja2",
    "images/tool/1/test.yml.jinja2",
    "images/tool/1/dev/Dockerfile.jinja2",
    "images/plain/image.yml",
    "images/plain/Dockerfile",
    "images/plain/test.yml",
    "images/tool/rootfs/etc/tool.conf",
];

fn project(root: &Path) {
    let files: &[(&str, &str)] = &[
        (
            ".image-manager.yml",
            "platforms: [linux/amd64]\nregistry:\n  url: 127.0.0.1:5050/acme\nlabels:\n  vendor: ACME\n",
        ),
        (
            "images/base/image.yml",
            "is_base_image: true\ntags: [\"1.0\", \"1.1\"]\nversion_scheme: calver\nvariables: {user: app}\n",
        ),
        (
            "images/base/Dockerfile.jinja2",
            "FROM scratch\n{% include \"labels.jinja2\" %}\nUSER {{ variables.user }}\n",
        ),
        (
            "templates/labels.jinja2",
            "LABEL tag={{ tag.name }}{% for p in platforms %} p={{ p }}{% endfor %}\n",
        ),
        (
            "images/tool/1/image.yml",
            "tags:\n  - name: 0.3.1\n    versions: {tool: \"0.3\"}\nvariants:\n  - {name: dev, tag_suffix: -dev}\nlatest: true\n",
        ),
        (
            "images/tool/1/Dockerfile.jinja2",
            "FROM {{ \"base\" | resolve_base_image(\"1.1\") }}\nENV TOOL={{ \"tool\" | resolve_version }}\n",
        ),
        (
            "images/tool/1/test.yml.jinja2",
            "schemaVersion: 2.0.0\nmetadataTest:\n  envVars:\n    - {key: TOOL, value: \"{{ tag.versions.tool }}\"}\n",
        ),
        (
            "images/tool/1/dev/Dockerfile.jinja2",
            "FROM {{ base_image }}\nRUN echo dev\n",
        ),
        (
            "images/plain/image.yml",
            "tags: [\"2\"]\nextends: base:1.0\n",
        ),
        (
            "images/plain/Dockerfile",
            "FROM base:1.0 AS build\nFROM scratch\nCOPY --from=build / /\n",
        ),
        (
            "images/plain/test.yml",
            "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: sh, path: /bin/sh}\n",
        ),
        ("images/tool/rootfs/etc/tool.conf", "setting=1\n"),
    ];
    for (path, text) in files {
        write(&root.join(path), text);
    }
}

/// Text that tends to break YAML and Jinja parsers.
const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{% for x in y %}",
    "{% endfor %}",
    "{% include \"../x\" %}",
    "{% include \"/etc/passwd\" %}",
    "{{ undefined_thing }}",
    "{{ tag.versions.nope }}",
    ": ",
    "- ",
    "? ",
    "*a",
    "&a ",
    "<<: *a",
    "!!binary ",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "\t",
    "\n  ",
    "\n- ",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "\u{feff}",
    "\0",
    "\r",
    "${",
    "${NOPE}",
    "$$",
    "tags: [",
    "name: UPPER",
    "extends: tool:0.3.1\n",
    "FROM ",
    "FROM tool:9\n",
    "COPY --from=",
    "ARG X=${X}\n",
    "\\\n",
    "10000000000000000000000",
    "-1",
    "~",
    "null",
];

fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let at = if bytes.is_empty() {
        0
    } else {
        rng.below(bytes.len() + 1)
    };
    match rng.below(9) {
        0 if !bytes.is_empty() => {
            let index = rng.below(bytes.len());
            bytes[index] ^= 1 << rng.below(8);
            format!("flip a bit at {index}")
        }
        1 => {
            let junk: Vec<u8> = (0..=rng.below(8))
                .map(|_| u8::try_from(rng.below(256)).unwrap())
                .collect();
            bytes.splice(at..at, junk.iter().copied());
            format!("insert bytes {junk:?} at {at}")
        }
        2 => {
            bytes.truncate(at);
            format!("truncate to {at}")
        }
        3 if !bytes.is_empty() => {
            let end = (at + 1 + rng.below(20)).min(bytes.len());
            let start = at.min(end);
            bytes.drain(start..end);
            format!("delete {start}..{end}")
        }
        4 => {
            let line = format!("{}: 1\n", "k".repeat(65_530 + rng.below(20)));
            bytes.splice(at..at, line.bytes());
            format!("insert a {}-character line at {at}", line.len())
        }
        5 => {
            let end = (at + rng.below(40)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            for _ in 0..=rng.below(3) {
                bytes.splice(at..at, copy.iter().copied());
            }
            format!("repeat {at}..{end}")
        }
        _ => {
            let token = *rng.pick(TOKENS);
            bytes.splice(at..at, token.bytes());
            format!("insert {token:?} at {at}")
        }
    }
}

/// Breaks `file` under `root`; says what it did.
fn mutate(rng: &mut Rng, root: &Path, file: &str) -> String {
    let path = root.join(file);
    let replace = |make: &dyn Fn(&Path)| {
        let _ = fs_err::remove_file(&path);
        let _ = fs_err::remove_dir(&path);
        make(&path);
    };
    match rng.below(20) {
        0 => {
            replace(&mkfifo);
            "a FIFO".into()
        }
        1 => {
            replace(&|p| symlink("/etc/passwd", p).unwrap());
            "a link to /etc/passwd".into()
        }
        2 => {
            let name = path.file_name().unwrap().to_owned();
            replace(&|p| symlink(&name, p).unwrap());
            "a link to itself".into()
        }
        3 => {
            replace(&|p| symlink("gone", p).unwrap());
            "a broken link".into()
        }
        4 => {
            replace(&|p| fs_err::create_dir(p).unwrap());
            "a folder".into()
        }
        5 => {
            let _ = fs_err::remove_file(&path);
            let _ = fs_err::remove_dir(&path);
            "removed".into()
        }
        6 if rng.below(4) == 0 => {
            // Rarely: over the 4 MiB limit (writing it costs time).
            let mut text = b"tags: [1]\n".to_vec();
            text.extend(std::iter::repeat_n(b'#', 4 * 1024 * 1024 + 10));
            fs_err::write(&path, text).unwrap();
            "over 4 MiB".into()
        }
        _ => {
            // Only a regular file is read (an earlier mutation may have made it a FIFO).
            let mut bytes = if fs_err::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                fs_err::read(&path).unwrap()
            } else {
                let _ = fs_err::remove_file(&path);
                let _ = fs_err::remove_dir(&path);
                Vec::new()
            };
            let mut done = Vec::new();
            for _ in 0..=rng.below(3) {
                done.push(mutate_bytes(rng, &mut bytes));
            }
            fs_err::write(&path, &bytes).unwrap();
            done.join(", ")
        }
    }
}

/// The problems with one run's output, if any.
fn problems(status: i32, stderr: &str) -> Vec<String> {
    let mut found = Vec::new();
    if status != 0 && status != 2 {
        found.push(format!("exit status {status}"));
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        found.push("a panic".into());
    }
    if status == 2 {
        let lines: Vec<&str> = stderr.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let Some(message) = line.strip_prefix("error: ") else {
                continue;
            };
            if message.ends_with("found; nothing was changed") {
                continue;
            }
            let located = lines
                .get(index + 1)
                .is_some_and(|next| next.trim_start().starts_with("--> "));
            if !located {
                found.push(format!("an error without a location: {line}"));
            }
        }
    }
    found
}

#[test]
fn broken_projects_never_panic_hang_or_report_without_a_location() {
    let seed: u64 = std::env::var("IM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1313_2026_0000_0013);
    let cases: usize = std::env::var("IM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(80);
    let mut rng = Rng(seed | 1);
    let mut failures = Vec::new();
    for case in 0..cases {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        project(root);
        let mut done = Vec::new();
        for _ in 0..=rng.below(2) {
            let file = *rng.pick(INPUTS);
            done.push(format!("{file}: {}", mutate(&mut rng, root, file)));
        }
        for command in ["check", "generate"] {
            let started = std::time::Instant::now();
            let run = run_limited(root, &[command], Duration::from_secs(30));
            eprintln!(
                "case {case} {command}: {} in {:?} after [{}]",
                run.status,
                started.elapsed(),
                done.join("; ")
            );
            for problem in problems(run.status, &run.stderr) {
                failures.push(format!(
                    "seed {seed} case {case} `{command}` after [{}]: {problem}\n{}",
                    done.join("; "),
                    run.stderr.chars().take(2_000).collect::<String>()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_unbroken_project_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    for command in ["check", "generate"] {
        let run = run_limited(dir.path(), &[command], Duration::from_secs(30));
        assert_eq!(run.status, 0, "{command}: {}", run.stderr);
    }
}
