//! Build stages (one per `FROM`) and the image references a Dockerfile makes.

use std::fmt;

use crate::{ImageRef, Position};

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StageBase {
    /// An image (`FROM python:3.13`).
    Image(ImageRef),
    /// An earlier stage of the same Dockerfile, by index (`FROM build`).
    Stage(usize),
    /// `FROM scratch`: an empty filesystem.
    Scratch,
}

/// One `FROM ... [AS name]` and what follows it up to the next `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Its place among the stages, from 0 (what `COPY --from=0` uses).
    pub index: usize,
    /// The `AS` name as written. Docker compares stage names case-insensitively.
    pub name: Option<String>,
    /// The `FROM` argument as written (`golang:${GO:-1.22}`).
    pub written: String,
    /// The argument after `ARG` substitution (`golang:1.22`).
    pub resolved: String,
    pub base: StageBase,
    /// The `--platform=` value as written (`$BUILDPLATFORM` stays as it is).
    pub platform: Option<String>,
    /// Where the `FROM` keyword is.
    pub position: Position,
    /// Where the image argument is.
    pub base_position: Position,
    /// The `FROM` instruction's index in [`crate::Dockerfile::instructions`].
    pub instruction: usize,
    /// Whether the stage has a `COPY`/`ADD` (without `--from`) whose source is `rootfs` or
    /// `rootfs/` (also `./rootfs`, `./rootfs/` and `rootfs/.`).
    pub copies_rootfs: bool,
}

/// Where an image reference appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    /// The base of a stage: `FROM image`.
    From,
    /// `COPY --from=image`.
    CopyFrom,
    /// `RUN --mount=...,from=image`.
    MountFrom,
}

impl fmt::Display for RefKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefKind::From => "FROM",
            RefKind::CopyFrom => "COPY --from",
            RefKind::MountFrom => "RUN --mount from=",
        })
    }
}

/// A reference to an image outside the Dockerfile (not a stage, not `scratch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef {
    pub kind: RefKind,
    pub image: ImageRef,
    /// The reference as written, before substitution.
    pub written: String,
    /// The stage whose instruction makes the reference.
    pub stage: usize,
    /// Where the written reference starts.
    pub position: Position,
}
