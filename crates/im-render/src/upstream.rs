//! Images built from an external repository (`source:` in `image.yml`): the checkout
//! `im_exec::source` made, which rendering reads the Dockerfile from and builds use as the
//! context.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A `source:` fetched and checked out at a commit, with its patches applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSource {
    /// The repository's URL, as `image.yml` writes it.
    pub git: String,
    /// `ref:` as written.
    pub reference: String,
    /// `branch`, `tag` or `commit`.
    pub kind: &'static str,
    /// The commit `ref:` resolved to.
    pub commit: String,
    /// Whether the repository was asked where `ref:` points during this run (not when the
    /// lock answered, for a tag, or when the repository could not be reached).
    pub asked: bool,
    /// The build context: a folder of the checkout (absolute).
    pub context: PathBuf,
    /// The context as `source.context` writes it (part of the build key).
    pub context_path: String,
    /// The Dockerfile in the checkout (absolute).
    pub dockerfile: PathBuf,
    /// Each patch as shown → `sha256:<hex>` of its bytes, in the order applied.
    pub patches: Vec<(String, String)>,
}

/// The resolved `source:` of each definition (index into `Project::files`) that has one.
pub type ResolvedSources = HashMap<usize, Arc<ResolvedSource>>;
