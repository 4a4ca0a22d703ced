//! How Dockerfile problems read: the rendered diagnostics (`file:line:col`, the source line,
//! the caret, notes and help) are pinned as snapshots.

use std::collections::BTreeMap;

use im_dockerfile::Dockerfile;

fn rendered(text: &str) -> String {
    rendered_with(text, &[])
}

fn rendered_with(text: &str, args: &[(&str, &str)]) -> String {
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    match Dockerfile::parse("dist/python/3.13/Dockerfile", text, &args) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(diagnostics) => diagnostics.to_string(),
    }
}

#[test]
fn unknown_instruction_with_did_you_mean() {
    insta::assert_snapshot!(rendered("FROM debian:bookworm\nRUNN apt-get update\n"));
}

#[test]
fn unknown_instruction_without_a_close_match() {
    insta::assert_snapshot!(rendered("FROM debian:bookworm\nINSTALL curl\n"));
}

#[test]
fn instruction_before_the_first_from() {
    insta::assert_snapshot!(rendered("ARG V=1\nENV X=1\nFROM debian:bookworm\n"));
}

#[test]
fn from_without_an_image() {
    insta::assert_snapshot!(rendered("FROM\nRUN true\n"));
}

#[test]
fn undeclared_arg_in_from() {
    insta::assert_snapshot!(rendered(
        "FROM --platform=$BUILDPLATFORM golang:${GO} AS build\n"
    ));
}

#[test]
fn arg_without_default_in_from() {
    insta::assert_snapshot!(rendered("ARG GO\nFROM golang:$GO\n"));
}

#[test]
fn arg_declared_inside_a_stage_used_by_a_later_from() {
    insta::assert_snapshot!(rendered(
        "FROM alpine\nARG BASE=debian\nFROM ${BASE}:bookworm\n"
    ));
}

#[test]
fn automatic_platform_arg_in_from() {
    insta::assert_snapshot!(rendered("FROM busybox:${TARGETARCH}-musl\n"));
}

#[test]
fn global_arg_not_redeclared_for_copy_from() {
    insta::assert_snapshot!(rendered(
        "ARG TOOLS=tools:1\nFROM alpine\nCOPY --from=${TOOLS} /bin/t /bin/t\n"
    ));
}

#[test]
fn invalid_image_reference() {
    insta::assert_snapshot!(rendered("FROM Debian:bookworm\n"));
}

#[test]
fn invalid_digest_in_mount_from() {
    insta::assert_snapshot!(rendered(
        "FROM alpine\nRUN --mount=type=bind,from=tools@sha256:abc,target=/t true\n"
    ));
}

#[test]
fn unterminated_heredoc() {
    insta::assert_snapshot!(rendered("FROM alpine\nRUN <<EOF\n  echo hi\n"));
}

#[test]
fn stage_index_out_of_range_and_duplicate_names() {
    insta::assert_snapshot!(rendered(
        "FROM alpine AS build\nFROM alpine AS Build\nCOPY --from=5 /a /b\n"
    ));
}

#[test]
fn no_from_at_all() {
    insta::assert_snapshot!(rendered("# only a comment\nARG X=1\n"));
}

#[test]
fn every_problem_is_reported_at_once() {
    insta::assert_snapshot!(rendered(
        "# escape=|\nRUN early\nFROM python:${PY}\nCOPPY a b\nCOPY --from=0 /a /b\nFROM python:3.13@sha1:x\n"
    ));
}

#[test]
fn caret_columns_count_characters_in_continuation_lines() {
    insta::assert_snapshot!(rendered(
        "FROM alpine AS é\nCOPY --chown=0:0 \\\n     --from=Tools:1 /a /b\n"
    ));
}
