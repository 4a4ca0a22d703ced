//! `report --open`: the desktop's opener (`xdg-open`, else macOS's `open`) on the overview.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use im_process::{CommandSpec, Run, RunError, which};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("neither xdg-open nor open is installed")]
    NoOpener,
    #[error(transparent)]
    Failed(#[from] RunError),
}

/// Opens `file` with the opener found on `path` (a `PATH` value).
pub fn open(file: &Path, path: Option<&OsStr>) -> Result<(), OpenError> {
    let opener = ["xdg-open", "open"]
        .into_iter()
        .find_map(|program| which(program, path))
        .ok_or(OpenError::NoOpener)?;
    let spec = CommandSpec::new(opener).arg(file);
    Run::new(&spec)
        .deadline(Some(Instant::now() + Duration::from_secs(30)))
        .capture(None)?;
    Ok(())
}
