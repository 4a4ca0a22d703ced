//! What can go wrong making an SBOM.

use std::path::PathBuf;

use crate::SbomFormat;

/// An SBOM could not be made, read or recorded.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// syft ran and failed, was cancelled or timed out (the error names its argv and stderr).
    #[error(transparent)]
    Run(#[from] im_process::RunError),
    /// syft exited 0 but its output is not the SBOM asked for.
    #[error("syft printed no valid {format} SBOM for {}: {reason}", .archive.display())]
    InvalidOutput {
        archive: PathBuf,
        format: SbomFormat,
        reason: String,
    },
    /// The archive is not a single-platform OCI archive.
    #[error("cannot read the image in {}", .archive.display())]
    Archive {
        archive: PathBuf,
        #[source]
        source: im_oci::OciError,
    },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid SBOM record; delete it to make the SBOMs again", .path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
