//! `report`: gathers what image-manager knows about a project into an [`im_report::Site`] and
//! writes the site. Sources: `dist/index.json` (images, tags, aliases, platforms, edges,
//! where each file came from), the project model (versions, variables, labels of tags not
//! built yet), the ledger (`dist/ledger.json`: build key, digest, when, why), each built
//! platform archive (layers, sizes, labels), the SBOMs recorded next to it, the records
//! `test` and `lint` leave ([`records`]), `dist/outdated.json` when present, and the registry's
//! digests when one is given. [`write`] renders every page in parallel into a temporary folder
//! renamed into place, so the site appears whole or not at all.

mod gather;
mod open;
pub mod records;
mod serve;
mod write;

pub use gather::{Gather, OUTDATED_FILE, gather};
pub use open::{OpenError, open};
pub use serve::{ServeError, serve};
pub use write::{Written, write};

use std::path::PathBuf;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{} does not exist", path.display())]
    NoIndex { path: PathBuf },
    #[error("reading {}", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not an index image-manager wrote", path.display())]
    BadIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no image tag matches {targets}")]
    NoMatch { targets: String },
    #[error("`{target}` is not a valid pattern: {message}")]
    BadTarget { target: String, message: String },
    #[error(transparent)]
    Ledger(#[from] im_plan::ledger::LedgerError),
    #[error("writing the report into {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `2026-12-06 10:42 UTC` for seconds since the epoch.
pub fn when(epoch: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(epoch) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => epoch.to_string(),
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
