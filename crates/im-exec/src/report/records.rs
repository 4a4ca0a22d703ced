//! What `test` and `lint` leave in `dist/` for `report`: the last test results of every image
//! tag and platform (`dist/test-results.json`, merged run after run, so testing one tag keeps
//! the others' results), and the last lint report (`dist/lint-report.json`, whole). Both are
//! written atomically; one that cannot be read is treated as absent.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The test results file in `dist/`.
pub const TEST_RESULTS_FILE: &str = "test-results.json";
/// The lint report file in `dist/`.
pub const LINT_REPORT_FILE: &str = "lint-report.json";
const FORMAT: u32 = 1;

/// The last results per `image:tag platform`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TestResults {
    pub format: u32,
    pub images: BTreeMap<String, TestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestEntry {
    /// Seconds since the epoch.
    pub ran_at: i64,
    /// The image's part of `test --format json`.
    pub report: serde_json::Value,
}

impl TestResults {
    /// The results in `dist`, or none.
    pub fn load(dist: &Path) -> Option<TestResults> {
        let bytes = fs_err::read(dist.join(TEST_RESULTS_FILE)).ok()?;
        serde_json::from_slice::<TestResults>(&bytes)
            .ok()
            .filter(|r| r.format == FORMAT)
    }
}

/// Adds a project test run's results (each image named `image:tag` with its platform) to
/// `dist/test-results.json`.
pub fn record_tests(
    dist: &Path,
    report: &im_structure_test::Report,
    ran_at: i64,
) -> std::io::Result<()> {
    let mut results = TestResults::load(dist).unwrap_or_default();
    results.format = FORMAT;
    for image in &report.images {
        let name = match &image.platform {
            Some(platform) => format!("{} {platform}", image.image),
            None => image.image.clone(),
        };
        let mut report = serde_json::to_value(image).map_err(std::io::Error::other)?;
        // Each test under the name container-structure-test prints (`File Existence Test: x`).
        if let Some(results) = report.get_mut("results").and_then(|r| r.as_array_mut()) {
            for (value, result) in results.iter_mut().zip(&image.results) {
                value["full_name"] = result.full_name().into();
            }
        }
        results.images.insert(name, TestEntry { ran_at, report });
    }
    let bytes = serde_json::to_vec(&results).map_err(std::io::Error::other)?;
    im_render::output::write_atomic(&dist.join(TEST_RESULTS_FILE), &bytes, None, None)
}

/// Writes a lint report to `dist/lint-report.json`.
pub fn record_lint(dist: &Path, report: &im_lint::Report) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(report).map_err(std::io::Error::other)?;
    im_render::output::write_atomic(&dist.join(LINT_REPORT_FILE), &bytes, None, None)
}

/// The last lint report's findings, or `None` when lint never ran.
pub fn load_lint(dist: &Path) -> Option<Vec<serde_json::Value>> {
    let bytes = fs_err::read(dist.join(LINT_REPORT_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("findings")?.as_array().cloned()
}
