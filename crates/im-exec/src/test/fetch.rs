//! An image in a registry, downloaded so it can be tested like a built one.

use std::path::{Path, PathBuf};

use im_project::{Platform, Settings};

use crate::ExecContext;
use crate::registry::{self, fetch_archive};

/// Whether `text` names an image in a registry rather than a file (`host[:port]/repo:tag`,
/// or `repo:tag` in the project's default registry).
pub fn is_reference(text: &str) -> bool {
    !Path::new(text).exists() && text.contains(':')
}

/// A fetched image: an OCI archive in a temporary folder, removed when this is dropped.
pub struct Fetched {
    _dir: tempfile::TempDir,
    pub archive: PathBuf,
}

/// Downloads the image `text` names (a reference; one without a host is in the default
/// registry of `settings`) for `platform`, else this machine's, into a temporary OCI archive,
/// verified blob by blob.
pub fn fetch_reference(
    exec: &ExecContext<'_>,
    settings: &Settings,
    text: &str,
    platform: Option<&Platform>,
) -> anyhow::Result<Fetched> {
    let has_host = text
        .split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost");
    let full = match (has_host, registry::default_target(settings)) {
        (false, Ok(target)) => format!("{}/{text}", target.url()),
        _ => text.to_owned(),
    };
    let reference: im_registry::Reference = full.parse().map_err(|error| {
        anyhow::anyhow!("`{text}` is neither a file nor an image reference: {error}")
    })?;
    let platform: Platform = match platform {
        Some(one) => one.clone(),
        None => Platform::host(),
    };
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("image.tar");
    let session = exec.session(settings)?;
    exec.reporter
        .status("Fetching", &format!("{reference} ({platform})"));
    session.run(fetch_archive(
        session.client(),
        &reference,
        &platform,
        &archive,
        &reference.to_string(),
    ))?;
    Ok(Fetched { _dir: dir, archive })
}
