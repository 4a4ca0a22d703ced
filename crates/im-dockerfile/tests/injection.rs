//! The law of the rootfs injection: on any Dockerfile (directives, continuations with comment
//! and blank lines, heredocs that contain `FROM`, CRLF or LF, with or without a final line
//! ending), `inject_after_final_from` keeps every original byte, adds exactly one line, and the
//! result parses to the same stages and references with one more `COPY` in the final stage,
//! right after its `FROM`.

use std::collections::BTreeMap;

use im_dockerfile::{Dockerfile, Keyword, Stage};
use proptest::prelude::*;

const COPY: &str = "COPY --chown=0:0 rootfs/ /";

const IMAGES: [&str; 6] = [
    "alpine",
    "python:3.13",
    "localhost:5050/team/python:3.13-slim",
    "golang:${GO}",
    "registry.example:5000/base@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "scratch",
];

#[derive(Debug, Clone)]
enum Body {
    Run,
    RunContinued { comment: bool, blank: bool },
    Heredoc { chomp: bool },
    Copy,
    CopyFromStage,
    Comment,
    Blank,
    CmdExec,
}

#[derive(Debug, Clone)]
struct StageSpec {
    /// An index into `IMAGES`, or past it: the previous stage.
    image: usize,
    named: bool,
    platform: bool,
    split: bool,
    lower: bool,
    body: Vec<Body>,
}

#[derive(Debug, Clone)]
struct Spec {
    syntax: bool,
    backtick: bool,
    crlf: bool,
    final_newline: bool,
    stages: Vec<StageSpec>,
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Run),
        (any::<bool>(), any::<bool>())
            .prop_map(|(comment, blank)| Body::RunContinued { comment, blank }),
        any::<bool>().prop_map(|chomp| Body::Heredoc { chomp }),
        Just(Body::Copy),
        Just(Body::CopyFromStage),
        Just(Body::Comment),
        Just(Body::Blank),
        Just(Body::CmdExec),
    ]
}

fn stage() -> impl Strategy<Value = StageSpec> {
    (
        0..IMAGES.len() + 1,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(body(), 0..6),
    )
        .prop_map(|(image, named, platform, split, lower, body)| StageSpec {
            image,
            named,
            platform,
            split,
            lower,
            body,
        })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(stage(), 1..5),
    )
        .prop_map(|(syntax, backtick, crlf, final_newline, stages)| Spec {
            syntax,
            backtick,
            crlf,
            final_newline,
            stages,
        })
}

fn render(spec: &Spec) -> String {
    let esc = if spec.backtick { '`' } else { '\\' };
    // One entry per line (an entry may hold several), joined with `\n` and converted to CRLF
    // at the end when the spec asks for it.
    let mut lines: Vec<String> = Vec::new();
    if spec.syntax {
        lines.push("# syntax=docker/dockerfile:1".to_owned());
    }
    if spec.backtick {
        lines.push("# escape=`".to_owned());
    }
    lines.push("ARG GO=1.22".to_owned());
    for (index, stage) in spec.stages.iter().enumerate() {
        let keyword = if stage.lower { "from" } else { "FROM" };
        let platform = if stage.platform {
            " --platform=$BUILDPLATFORM"
        } else {
            ""
        };
        let image = match IMAGES.get(stage.image) {
            Some(image) => (*image).to_owned(),
            None if index > 0 => format!("s{}", index - 1),
            None => "alpine".to_owned(),
        };
        let name = if stage.named || stage.image >= IMAGES.len() {
            format!(" AS s{index}")
        } else {
            String::new()
        };
        if stage.split {
            lines.push(format!(
                "{keyword}{platform} {esc}\n# inside\n\n    {image}{name}"
            ));
        } else {
            lines.push(format!("{keyword}{platform} {image}{name}"));
        }
        for body in &stage.body {
            lines.push(match body {
                Body::Run => format!("RUN echo {index}"),
                Body::RunContinued { comment, blank } => {
                    let comment = if *comment {
                        "  # FROM not-an-instruction\n"
                    } else {
                        ""
                    };
                    let blank = if *blank { "\n" } else { "" };
                    format!("RUN echo a {esc}\n{comment}{blank}    && echo b")
                }
                Body::Heredoc { chomp } => {
                    let (dash, tab) = if *chomp { ("-", "\t") } else { ("", "") };
                    format!("RUN <<{dash}EOF\nFROM x\n{tab}COPY --from=y /a /b\n{tab}EOF")
                }
                Body::Copy => "COPY a /b".to_owned(),
                Body::CopyFromStage if index > 0 => "COPY --from=0 /a /b".to_owned(),
                Body::CopyFromStage => "COPY --from=nginx:1.25 /a /b".to_owned(),
                Body::Comment => "# FROM commented".to_owned(),
                Body::Blank => String::new(),
                Body::CmdExec => "CMD [\"sh\", \"-c\", \"echo\"]".to_owned(),
            });
        }
    }
    let mut text = lines.join("\n");
    if spec.final_newline {
        text.push('\n');
    } else {
        text.truncate(text.trim_end_matches('\n').len());
    }
    if spec.crlf {
        text.replace('\n', "\r\n")
    } else {
        text
    }
}

fn parse(text: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", text, &BTreeMap::new())
        .unwrap_or_else(|d| panic!("{d}\n---\n{text}"))
}

fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n')
        .map(|l| l.trim_end_matches(['\r', '\n']))
        .collect()
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn stage_without_rootfs(stage: &Stage) -> Stage {
    Stage {
        copies_rootfs: false,
        ..stage.clone()
    }
}

fn instruction_counts(dockerfile: &Dockerfile) -> Vec<(usize, usize)> {
    let mut counts = vec![(0, 0); dockerfile.stages().len()];
    for instruction in dockerfile.instructions() {
        if let Some(stage) = instruction.stage {
            counts[stage].0 += 1;
            if instruction.keyword == Keyword::Copy {
                counts[stage].1 += 1;
            }
        }
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn injection_keeps_the_original_and_adds_one_copy(spec in spec()) {
        let original = render(&spec);
        let dockerfile = parse(&original);
        let injected = dockerfile.inject_after_final_from(COPY);

        // One contiguous insertion: the common prefix and suffix cover the whole original.
        let prefix = common_prefix(original.as_bytes(), injected.as_bytes());
        let reversed_original: Vec<u8> = original.bytes().rev().collect();
        let reversed_injected: Vec<u8> = injected.bytes().rev().collect();
        let suffix = common_prefix(&reversed_original, &reversed_injected);
        prop_assert!(prefix + suffix >= original.len(), "not a single insertion:\n{injected}");
        let eol_len = if spec.crlf { 2 } else { 1 };
        prop_assert_eq!(injected.len(), original.len() + COPY.len() + eol_len);

        // Every original line is kept, in order, with exactly the COPY line added.
        let before = lines(&original);
        let after = lines(&injected);
        prop_assert_eq!(after.len(), before.len() + 1);
        let added = (0..after.len()).find(|&i| after[..i] != before[..i]).map_or(after.len() - 1, |i| i - 1);
        prop_assert_eq!(after[added], COPY);
        prop_assert_eq!(&after[..added], &before[..added]);
        prop_assert_eq!(&after[added + 1..], &before[added..]);

        // The result parses to the same stages and references, plus the COPY.
        let reparsed = parse(&injected);
        prop_assert!(reparsed.copies_rootfs());
        let stages: Vec<_> = dockerfile.stages().iter().map(stage_without_rootfs).collect();
        let restaged: Vec<_> = reparsed.stages().iter().map(stage_without_rootfs).collect();
        prop_assert_eq!(stages, restaged);
        let images = |d: &Dockerfile| d.external_refs().iter().map(|r| (r.kind, r.image.clone(), r.stage)).collect::<Vec<_>>();
        prop_assert_eq!(images(&dockerfile), images(&reparsed));
        let mut expected = instruction_counts(&dockerfile);
        expected.last_mut().unwrap().0 += 1;
        expected.last_mut().unwrap().1 += 1;
        prop_assert_eq!(instruction_counts(&reparsed), expected);
        let from = &reparsed.instructions()[reparsed.final_stage().instruction];
        let copy = &reparsed.instructions()[reparsed.final_stage().instruction + 1];
        prop_assert_eq!(copy.keyword, Keyword::Copy);
        prop_assert_eq!(copy.position.line, from.end_line + 1);
    }
}
