//! Reading rendered Dockerfiles for dependency analysis, and the one edit image-manager makes.
//!
//! [`Dockerfile::parse`] reads the instruction stream the way Docker's (BuildKit's) parser does
//! (parser directives, comments, line continuations with the chosen escape character,
//! heredocs, exec and shell forms, case-insensitive keywords) and then finds the build
//! [`Stage`]s and every [`ExternalRef`]: the images named by `FROM`, `COPY --from` and
//! `RUN --mount=...,from=`, after `ARG` substitution, as [`ImageRef`]s. References to stages
//! (by name or index) and `scratch` are not external. Problems come back as
//! [`im_diag::Diagnostics`] pointing at `file:line:col`, all of them at once.
//!
//! The crate does no I/O: the caller hands in the text, a path to show in diagnostics, and the
//! build args.
//!
//! ```
//! # use std::collections::BTreeMap;
//! use im_dockerfile::{Dockerfile, RefKind};
//!
//! let text = "ARG GO=1.22\nFROM golang:${GO} AS build\nFROM debian:bookworm\nCOPY --from=build /app /app\n";
//! let dockerfile = Dockerfile::parse("dist/app/1.0/Dockerfile", text, &BTreeMap::new()).unwrap();
//! let refs: Vec<_> = dockerfile.external_refs().iter().map(|r| (r.kind, r.image.to_string())).collect();
//! assert_eq!(refs, [(RefKind::From, "golang:1.22".to_owned()), (RefKind::From, "debian:bookworm".to_owned())]);
//! assert!(!dockerfile.copies_rootfs());
//! let edited = dockerfile.inject_after_final_from("COPY --chown=0:0 rootfs/ /");
//! assert!(edited.contains("FROM debian:bookworm\nCOPY --chown=0:0 rootfs/ /\nCOPY --from=build"));
//! ```

mod dockerfile;
mod expand;
mod image_ref;
mod instruction;
mod lexer;
mod parser;
mod position;
mod stage;
mod words;

pub use dockerfile::Dockerfile;
pub use image_ref::{ImageRef, ImageRefError};
pub use instruction::{Form, Heredoc, Instruction, Keyword};
pub use position::Position;
pub use stage::{ExternalRef, RefKind, Stage, StageBase};
