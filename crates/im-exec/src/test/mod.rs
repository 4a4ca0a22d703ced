//! Testing built images with their container-structure-test configs: the jobs (each tag's
//! config against its built archive per platform, or one `--config`/`--image` pair), an image
//! fetched from a registry to test, the driver (natively, with a container runtime chosen and
//! probed only when some config has command tests, or the real container-structure-test), and
//! the report written to files. [`im_structure_test::run_all`] runs the jobs.

mod fetch;
mod jobs;
mod runtime;

use std::path::Path;

use im_structure_test::Report;

pub use fetch::{Fetched, fetch_reference, is_reference};
pub use jobs::{direct_jobs, project_jobs};
pub use runtime::{DriverChoice, container_runtime, driver};

/// A file format for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Junit,
    Json,
}

/// Writes `report` to `path` as `format`, making its folder first.
pub fn write_report(report: &Report, format: ReportFormat, path: &Path) -> std::io::Result<()> {
    let text = match format {
        ReportFormat::Junit => report.to_junit(),
        ReportFormat::Json => report.to_json(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(path, text)
}
