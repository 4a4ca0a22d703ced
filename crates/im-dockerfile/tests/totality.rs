//! Parsing is total: any text, however broken, gives a `Dockerfile` or diagnostics, never a
//! panic, and every diagnostic points inside the file.

use std::collections::BTreeMap;

use im_dockerfile::Dockerfile;
use proptest::prelude::*;

/// Pieces that exercise every path of the lexer and parser when shuffled together.
const PIECES: [&str; 32] = [
    "FROM ",
    "from ",
    "AS ",
    "--platform=$BUILDPLATFORM ",
    "alpine",
    "golang:${GO:-1.22}",
    "${X",
    "$Y",
    "ARG GO=1.23",
    "ARG X",
    "COPY ",
    "--from=",
    "0 ",
    "build ",
    "rootfs/ /",
    "RUN ",
    "--mount=type=bind,from=a,target=/t ",
    "<<EOF",
    "<<-'E'",
    "EOF",
    "\tE",
    "\\",
    "`",
    "# escape=`",
    "# syntax=x",
    "#",
    "\n",
    "\r\n",
    " ",
    "[\"a\", 1]",
    "é",
    "\"",
];

fn check(text: &str) {
    let args = BTreeMap::from([("X".to_owned(), "x:1".to_owned())]);
    let lines = text.split('\n').count();
    match Dockerfile::parse("Dockerfile", text, &args) {
        Ok(dockerfile) => {
            assert!(!dockerfile.stages().is_empty());
            let edited = dockerfile.inject_after_final_from("COPY rootfs/ /");
            assert!(edited.len() > text.len());
        }
        Err(diagnostics) => {
            assert!(diagnostics.has_errors());
            for diagnostic in &diagnostics {
                if let Some(location) = &diagnostic.location {
                    assert!(location.line <= lines, "{diagnostic}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn dockerfile_like_text_never_panics(pieces in prop::collection::vec(prop::sample::select(PIECES.to_vec()), 0..40)) {
        check(&pieces.concat());
    }
}
