//! The rules of [`Dockerfile::parse`] and its queries, one test per rule.

use std::collections::BTreeMap;

use super::*;
use crate::{Form, Keyword, RefKind, StageBase};

fn parse(text: &str) -> Dockerfile {
    parse_with(text, &[])
}

fn parse_with(text: &str, args: &[(&str, &str)]) -> Dockerfile {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Dockerfile::parse("Dockerfile", text, &args) {
        Ok(dockerfile) => dockerfile,
        Err(diagnostics) => panic!("unexpected errors:\n{diagnostics}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    errors_with(text, &[])
}

fn errors_with(text: &str, args: &[(&str, &str)]) -> Vec<String> {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Dockerfile::parse("Dockerfile", text, &args) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(diagnostics) => diagnostics.iter().map(|d| d.message.clone()).collect(),
    }
}

/// `(kind, image, stage)` for every external reference.
fn refs(dockerfile: &Dockerfile) -> Vec<(RefKind, String, usize)> {
    dockerfile
        .external_refs()
        .iter()
        .map(|r| (r.kind, r.image.to_string(), r.stage))
        .collect()
}

fn keywords(dockerfile: &Dockerfile) -> Vec<Keyword> {
    dockerfile
        .instructions()
        .iter()
        .map(|i| i.keyword)
        .collect()
}

#[test]
fn platform_flag_default_and_stage_name() {
    let dockerfile =
        parse("FROM --platform=$BUILDPLATFORM golang:${GO:-1.22} AS build\nRUN go build\n");
    let stage = &dockerfile.stages()[0];
    assert_eq!(stage.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(stage.name.as_deref(), Some("build"));
    assert_eq!(stage.written, "golang:${GO:-1.22}");
    assert_eq!(stage.resolved, "golang:1.22");
    assert_eq!(
        refs(&dockerfile),
        [(RefKind::From, "golang:1.22".to_owned(), 0)]
    );
    assert_eq!(
        stage.base_position,
        Position {
            line: 1,
            column: 32
        }
    );
}

#[test]
fn global_args_defaults_and_build_arg_overrides() {
    let text = "ARG GO=1.23\nARG BASE=golang:${GO}\nFROM --platform=$BUILDPLATFORM golang:${GO:-1.22} AS build\nFROM $BASE\n";
    let dockerfile = parse(text);
    assert_eq!(
        refs(&dockerfile),
        [
            (RefKind::From, "golang:1.23".to_owned(), 0),
            (RefKind::From, "golang:1.23".to_owned(), 1)
        ]
    );
    let dockerfile = parse_with(text, &[("GO", "1.24")]);
    assert_eq!(dockerfile.stages()[0].resolved, "golang:1.24");
    // The default of BASE was computed with the overridden GO.
    assert_eq!(dockerfile.stages()[1].resolved, "golang:1.24");
    let dockerfile = parse_with(text, &[("BASE", "registry.example:5000/go:1")]);
    assert_eq!(
        dockerfile.stages()[1].resolved,
        "registry.example:5000/go:1"
    );
}

#[test]
fn alternative_value_form() {
    let text = "ARG SLIM\nFROM python:3.13${SLIM:+-slim}\n";
    assert_eq!(parse(text).stages()[0].resolved, "python:3.13");
    assert_eq!(
        parse_with(text, &[("SLIM", "1")]).stages()[0].resolved,
        "python:3.13-slim"
    );
}

#[test]
fn undeclared_build_args_are_invisible_to_from() {
    let messages = errors_with("FROM python:${PY}\n", &[("PY", "3.13")]);
    assert_eq!(
        messages,
        ["build argument `PY` used in `FROM` is not declared before the first `FROM`"]
    );
}

#[test]
fn automatic_platform_args_come_from_the_caller() {
    let text = "FROM busybox:${TARGETARCH}\n";
    assert_eq!(
        parse_with(text, &[("TARGETARCH", "arm64")]).stages()[0].resolved,
        "busybox:arm64"
    );
    assert_eq!(
        errors(text),
        [
            "`TARGETARCH` used in `FROM` is set by the builder for each platform and has no value here"
        ]
    );
}

#[test]
fn multi_stage_copy_from_stage_versus_image() {
    let text = "\
FROM golang:1.22 AS build
RUN go build -o /app
FROM debian:bookworm
COPY --from=build /app /usr/bin/app
COPY --from=nginx:1.25 /etc/nginx /etc/nginx
COPY --from=0 /go /go
";
    let dockerfile = parse(text);
    assert_eq!(
        refs(&dockerfile),
        [
            (RefKind::From, "golang:1.22".to_owned(), 0),
            (RefKind::From, "debian:bookworm".to_owned(), 1),
            (RefKind::CopyFrom, "nginx:1.25".to_owned(), 1),
        ]
    );
    let nginx = &dockerfile.external_refs()[2];
    assert_eq!(nginx.written, "nginx:1.25");
    assert_eq!(
        nginx.position,
        Position {
            line: 5,
            column: 13
        }
    );
    assert_eq!(dockerfile.final_stage().index, 1);
}

#[test]
fn stage_names_are_case_insensitive_and_may_come_later_for_copy() {
    let text = "\
FROM alpine AS Tools
FROM tools AS app
COPY --from=TOOLS /bin/x /bin/x
COPY --from=later /y /y
FROM scratch AS later
";
    let dockerfile = parse(text);
    assert_eq!(dockerfile.stages()[1].base, StageBase::Stage(0));
    assert_eq!(dockerfile.stages()[2].base, StageBase::Scratch);
    assert_eq!(refs(&dockerfile), [(RefKind::From, "alpine".to_owned(), 0)]);
}

#[test]
fn from_only_names_earlier_stages() {
    // `app` is defined after the FROM that names it, so that FROM is an image.
    let dockerfile = parse("FROM app AS base\nFROM alpine AS app\n");
    assert_eq!(refs(&dockerfile)[0].1, "app");
    assert!(matches!(dockerfile.stages()[0].base, StageBase::Image(_)));
}

#[test]
fn registry_with_port_and_digests() {
    let sha = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let text = format!(
        "FROM localhost:5050/team/python:3.13 AS py\nFROM registry.example:5000/base@{sha}\nCOPY --from=registry.example:5000/tools:1@{sha} /t /t\n"
    );
    let dockerfile = parse(&text);
    let external = dockerfile.external_refs();
    assert_eq!(external[0].image.registry(), Some("localhost:5050"));
    assert_eq!(external[0].image.path(), "team/python");
    assert_eq!(external[0].image.tag(), Some("3.13"));
    assert!(external[0].image.matches_name("python"));
    assert_eq!(external[1].image.digest(), Some(sha));
    assert_eq!(external[1].image.tag(), None);
    assert_eq!(external[2].kind, RefKind::CopyFrom);
    assert_eq!(external[2].image.tag(), Some("1"));
    assert_eq!(external[2].image.digest(), Some(sha));
}

#[test]
fn run_mount_from_any_mount_type() {
    let text = "\
FROM alpine AS deps
FROM python:3.13
RUN --mount=type=cache,target=/root/.cache \\
    --mount=type=bind,from=ghcr.example/tools:2,source=/t,target=/t \\
    --mount=type=cache,target=/x,from=deps \\
    --network=none pip install x
";
    let dockerfile = parse(text);
    assert_eq!(
        refs(&dockerfile),
        [
            (RefKind::From, "alpine".to_owned(), 0),
            (RefKind::From, "python:3.13".to_owned(), 1),
            (RefKind::MountFrom, "ghcr.example/tools:2".to_owned(), 1),
        ]
    );
    assert_eq!(
        dockerfile.external_refs()[2].position,
        Position {
            line: 4,
            column: 28
        }
    );
}

#[test]
fn from_values_expand_in_the_stage_scope() {
    let text = "\
ARG TOOLS=tools:1
FROM alpine
ARG TOOLS
ARG OTHER=other:2
ENV CACHE_IMAGE=cache:3
COPY --from=$TOOLS /a /a
COPY --from=${OTHER} /b /b
RUN --mount=from=$CACHE_IMAGE,target=/c true
";
    let dockerfile = parse(text);
    let images: Vec<_> = refs(&dockerfile).into_iter().map(|r| r.1).collect();
    assert_eq!(images, ["alpine", "tools:1", "other:2", "cache:3"]);
    let dockerfile = parse_with(text, &[("OTHER", "override:9")]);
    assert_eq!(refs(&dockerfile)[2].1, "override:9");
}

#[test]
fn env_is_inherited_by_child_stages() {
    let text = "FROM alpine AS base\nENV TOOLS=tools:1\nFROM base\nCOPY --from=${TOOLS} /a /a\n";
    assert_eq!(refs(&parse(text))[1].1, "tools:1");
    // Legacy `ENV NAME value` form.
    let text = "FROM alpine\nENV TOOLS tools:2\nCOPY --from=$TOOLS /a /a\n";
    assert_eq!(refs(&parse(text))[1].1, "tools:2");
}

#[test]
fn global_args_must_be_redeclared_in_a_stage() {
    let text = "ARG TOOLS=tools:1\nFROM alpine\nCOPY --from=$TOOLS /a /a\n";
    assert_eq!(
        errors(text),
        ["build argument `TOOLS` used in `COPY --from` is not declared in this stage"]
    );
}

#[test]
fn scratch_is_not_an_external_reference() {
    let dockerfile = parse("FROM scratch\nCOPY busybox /bin/busybox\n");
    assert_eq!(dockerfile.final_stage().base, StageBase::Scratch);
    assert!(dockerfile.external_refs().is_empty());
}

#[test]
fn instructions_are_case_insensitive_with_positions() {
    let dockerfile = parse("from alpine\n\n  Run echo \\\n   hi\ncopy a /b\n");
    assert_eq!(
        keywords(&dockerfile),
        [Keyword::From, Keyword::Run, Keyword::Copy]
    );
    let run = &dockerfile.instructions()[1];
    assert_eq!(run.position, Position { line: 3, column: 3 });
    assert_eq!(run.end_line, 4);
    assert_eq!(dockerfile.source(run), "  Run echo \\\n   hi\n");
    assert_eq!(run.stage, Some(0));
}

#[test]
fn exec_and_shell_forms() {
    let text = "FROM alpine\nRUN [\"apk\", \"add\", \"curl\"]\nRUN apk add curl\nCMD [\"sh\"]\nENTRYPOINT [not json]\nCOPY [\"a b\", \"/c\"]\nUSER nobody\n";
    let forms: Vec<_> = parse(text).instructions().iter().map(|i| i.form).collect();
    assert_eq!(
        forms,
        [
            None,
            Some(Form::Exec),
            Some(Form::Shell),
            Some(Form::Exec),
            Some(Form::Shell),
            Some(Form::Exec),
            None
        ]
    );
    assert_eq!(
        errors("FROM a\nCMD [\"sh\", 1]\n"),
        ["the exec form must be a JSON array of strings"]
    );
}

#[test]
fn escape_directive_with_backtick() {
    let text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022 AS build\nCOPY app c:\\app\\\nRUN dir c:\\ `\n    /s\nFROM build\n";
    let dockerfile = parse(text);
    assert_eq!(dockerfile.escape(), '`');
    assert_eq!(
        keywords(&dockerfile),
        [Keyword::From, Keyword::Copy, Keyword::Run, Keyword::From]
    );
    assert_eq!(dockerfile.instructions()[2].end_line, 5);
    assert_eq!(dockerfile.stages()[1].base, StageBase::Stage(0));
    // With the default escape, the trailing backslash would have joined `RUN` to `COPY`.
    let dockerfile = parse(&text["# escape=`\n".len()..].replace('`', "\\"));
    assert_eq!(
        keywords(&dockerfile),
        [Keyword::From, Keyword::Copy, Keyword::From]
    );
}

#[test]
fn heredoc_bodies_are_not_instructions() {
    let text = "\
# syntax=docker/dockerfile:1
FROM alpine AS base
RUN <<EOF
FROM x
COPY --from=y /a /b
EOF
COPY <<-\"CONF\" /etc/app.conf
\tFROM z
\tCONF
FROM debian
";
    let dockerfile = parse(text);
    assert_eq!(dockerfile.syntax(), Some("docker/dockerfile:1"));
    assert_eq!(
        keywords(&dockerfile),
        [Keyword::From, Keyword::Run, Keyword::Copy, Keyword::From]
    );
    let images: Vec<_> = refs(&dockerfile).into_iter().map(|r| r.1).collect();
    assert_eq!(images, ["alpine", "debian"]);
    let run = &dockerfile.instructions()[1];
    assert_eq!(run.heredocs.len(), 1);
    assert_eq!(
        &text[run.heredocs[0].body.clone()],
        "FROM x\nCOPY --from=y /a /b\n"
    );
    assert!(!dockerfile.instructions()[2].heredocs[0].expand);
}

#[test]
fn continuation_lines_that_are_comments_or_empty() {
    let text = "FROM alpine \\\n# a comment\n\n  AS base\nRUN a \\\n  # also a comment\n  b\n";
    let dockerfile = parse(text);
    assert_eq!(dockerfile.stages()[0].name.as_deref(), Some("base"));
    assert_eq!(dockerfile.instructions()[0].end_line, 4);
    assert_eq!(keywords(&dockerfile), [Keyword::From, Keyword::Run]);
}

#[test]
fn copies_rootfs_only_counts_the_final_stage_and_the_build_context() {
    let cases = [
        ("FROM a\nCOPY rootfs/ /\n", true),
        ("FROM a\nCOPY --chown=0:0 rootfs/ /\n", true),
        (
            "FROM a\nCOPY --chown=1000:1000 --chmod=755 ./rootfs /\n",
            true,
        ),
        ("FROM a\nADD ./rootfs/ /\n", true),
        ("FROM a\ncopy [\"rootfs/\", \"/\"]\n", true),
        ("FROM a\nCOPY etc rootfs /\n", true),
        ("FROM a\nCOPY rootfs/etc/app.conf /etc/\n", false),
        ("FROM a\nCOPY / rootfs\n", false),
        ("FROM a\nCOPY --from=b rootfs/ /\n", false),
        ("FROM a\nCOPY rootfs/ /\nFROM b\n", false),
        ("FROM a\nRUN cp -r rootfs/ /\n", false),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text).copies_rootfs(), expected, "{text}");
    }
}

#[test]
fn injection_goes_after_the_final_from_and_its_continuations() {
    let text = "FROM golang AS build\nRUN go build\nFROM debian:bookworm \\\n    AS final\n# keep me\nCMD [\"app\"]\n";
    let dockerfile = parse(text);
    assert_eq!(
        dockerfile.inject_after_final_from("COPY rootfs/ /"),
        "FROM golang AS build\nRUN go build\nFROM debian:bookworm \\\n    AS final\nCOPY rootfs/ /\n# keep me\nCMD [\"app\"]\n"
    );
}

#[test]
fn injection_keeps_crlf_and_missing_final_newline() {
    let dockerfile = parse("FROM a\r\nRUN x\r\n");
    assert_eq!(
        dockerfile.inject_after_final_from("COPY rootfs/ /\n"),
        "FROM a\r\nCOPY rootfs/ /\r\nRUN x\r\n"
    );
    let dockerfile = parse("ARG X=1\r\nFROM a");
    assert_eq!(
        dockerfile.inject_after_final_from("COPY rootfs/ /"),
        "ARG X=1\r\nFROM a\r\nCOPY rootfs/ /"
    );
    let dockerfile = parse("FROM a");
    assert_eq!(
        dockerfile.inject_after_final_from("COPY rootfs/ /"),
        "FROM a\nCOPY rootfs/ /"
    );
}

#[test]
fn injected_copy_is_seen_by_a_reparse() {
    let dockerfile = parse("FROM a AS one\nFROM b\nRUN x\n");
    let edited = dockerfile.inject_after_final_from("COPY --chown=0:0 rootfs/ /");
    let again = parse(&edited);
    assert!(again.copies_rootfs());
    assert_eq!(again.instructions()[2].keyword, Keyword::Copy);
    assert_eq!(again.instructions()[2].position.line, 3);
}

#[test]
fn location_helper_shows_the_line() {
    let dockerfile = parse("FROM alpine\nCOPY --from=nginx:1.25 /a /b\n");
    let reference = &dockerfile.external_refs()[1];
    let location = dockerfile.location(reference.position, reference.written.len());
    assert_eq!(location.to_string(), "Dockerfile:2:13");
    assert_eq!(
        location.snippet.as_deref(),
        Some("COPY --from=nginx:1.25 /a /b")
    );
    assert_eq!(dockerfile.position_of(12), Position { line: 2, column: 1 });
}

#[test]
fn errors_are_all_collected_in_file_order() {
    let text = "RUN early\nFROM\nFORM x\nFROM python:${PY}\nCOPY --from=Bad:tag /a /b\n";
    assert_eq!(
        errors(text),
        [
            "`RUN` comes before the first `FROM`",
            "`FROM` needs an image",
            "unknown instruction `FORM`",
            "build argument `PY` used in `FROM` is not declared before the first `FROM`",
            "invalid image reference in `COPY --from`: `Bad` in `Bad:tag` is not a valid repository \
             path component: use lowercase letters and digits, separated by `.`, `_`, `__` or `-`",
        ]
    );
}

#[test]
fn undefined_arg_without_default() {
    let messages = errors("ARG PY\nFROM python:$PY\n");
    assert_eq!(
        messages,
        ["build argument `PY` used in `FROM` has no value"]
    );
    assert_eq!(
        parse_with("ARG PY\nFROM python:$PY\n", &[("PY", "3")]).stages()[0].resolved,
        "python:3"
    );
    // An explicit fallback is not an error.
    assert_eq!(
        parse("ARG PY\nFROM python:${PY:-3.13}\n").stages()[0].resolved,
        "python:3.13"
    );
}

#[test]
fn stage_reference_errors() {
    assert_eq!(
        errors("FROM a AS one\nCOPY --from=one /a /b\n"),
        ["`COPY --from` refers to its own stage"]
    );
    assert_eq!(
        errors("FROM a\nFROM b\nCOPY --from=2 /a /b\n"),
        ["stage index `2` does not exist"]
    );
    assert_eq!(
        errors("FROM a AS x\nFROM b AS X\n"),
        ["duplicate stage name `X`"]
    );
    assert_eq!(errors("FROM a AS 1x\n"), ["invalid stage name `1x`"]);
    assert_eq!(
        errors("FROM a AS\n"),
        ["`FROM` takes an image and optionally `AS <name>`"]
    );
    assert_eq!(
        errors("FROM a b c\n"),
        ["`FROM` takes an image and optionally `AS <name>`"]
    );
    assert_eq!(
        errors("FROM --platfrom=x a\n"),
        ["unknown flag `--platfrom` for `FROM`"]
    );
    assert_eq!(
        errors("FROM a\nCOPY --from= /a /b\n"),
        ["`--from` needs a stage name, stage index or image"]
    );
    assert_eq!(
        errors("FROM a\nCOPY /a\n"),
        ["`COPY` needs at least a source and a destination"]
    );
}

#[test]
fn stream_errors() {
    assert_eq!(errors(""), ["the Dockerfile has no `FROM` instruction"]);
    assert_eq!(
        errors("# just a comment\nARG X=1\n"),
        ["the Dockerfile has no `FROM` instruction"]
    );
    assert_eq!(
        errors("FROM a\nRUN <<EOF\necho\n"),
        ["heredoc `EOF` is never terminated"]
    );
    assert_eq!(
        errors("# escape=|\nFROM a\n"),
        ["invalid escape character `|` in the `escape` directive"]
    );
    assert_eq!(
        errors("FROM python:${PY\n"),
        ["missing `}` in `python:${PY`"]
    );
    assert_eq!(
        errors("ARG PY\nFROM python:${PY:?required}\n"),
        ["build argument `PY`: required"]
    );
}

#[test]
fn onbuild_and_other_instructions_make_no_references() {
    let dockerfile =
        parse("FROM a\nONBUILD COPY --from=b /x /y\nLABEL a=b\nHEALTHCHECK CMD true\n");
    assert_eq!(refs(&dockerfile).len(), 1);
}

#[test]
fn words_split_across_continuation_lines_point_at_the_right_place() {
    // Docker joins `golang:` and `${GO}` into one word; the error points into the second line.
    let text = "FROM golang:\\\n${GO} AS build\n";
    let args = BTreeMap::new();
    let diagnostics = Dockerfile::parse("Dockerfile", text, &args).unwrap_err();
    let location = diagnostics.iter().next().unwrap().location.clone().unwrap();
    assert_eq!((location.line, location.column), (2, 1));
    let dockerfile = parse("ARG GO=1.22\nFROM golang:\\\n${GO} AS build\n");
    assert_eq!(dockerfile.stages()[0].resolved, "golang:1.22");
    assert_eq!(
        dockerfile.stages()[0].base_position,
        Position { line: 2, column: 6 }
    );
}

#[test]
fn quoted_flag_values_are_unquoted() {
    let dockerfile = parse(
        "FROM alpine\nCOPY --from=\"nginx:1.25\" /a /b\nRUN --mount=\"type=bind,from=tools:1\" true\n",
    );
    let images: Vec<_> = refs(&dockerfile).into_iter().map(|r| r.1).collect();
    assert_eq!(images, ["alpine", "nginx:1.25", "tools:1"]);
}
