//! What a report shows, as plain data: the gatherer (`im_exec::report`) fills it from
//! `dist/index.json`, the ledger, test and lint records, SBOMs and the registry; the pages
//! only read it. Nothing here knows where a value came from.

use std::collections::BTreeMap;

/// The whole site's data.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// The project's name (its folder), shown in titles.
    pub project: String,
    /// When the report was made, as people read it (volatile: tests filter it).
    pub generated_at: String,
    /// Sorted by name.
    pub images: Vec<Image>,
    /// The registry asked for digests (`--registry`), if any.
    pub registry: Option<String>,
    /// `None` when no outdated-bases data exists: the page is left out.
    pub outdated: Option<Vec<OutdatedBase>>,
    /// External base reference → the `image:tag` nodes that use it.
    pub external_bases: BTreeMap<String, Vec<String>>,
    /// Whether a test record, a lint record exist at all (a page says "not run" otherwise).
    pub tests_recorded: bool,
    pub lint_recorded: bool,
}

/// One image name with its tags.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub name: String,
    /// The `image.yml` files that define it, relative to the project.
    pub definitions: Vec<String>,
    /// Alias → tag.
    pub aliases: BTreeMap<String, String>,
    pub tags: Vec<Tag>,
}

/// One image tag (`name:tag`), a page of its own.
#[derive(Debug, Clone, Default)]
pub struct Tag {
    pub name: String,
    pub variant: Option<String>,
    pub base_tag: Option<String>,
    pub aliases: Vec<String>,
    pub platforms: Vec<String>,
    /// Managed `image:tag` nodes this tag is built from.
    pub depends_on: Vec<String>,
    /// Managed `image:tag` nodes built from this tag.
    pub used_by: Vec<String>,
    /// Unmanaged image references it uses.
    pub external: Vec<String>,
    pub versions: Vec<(String, String)>,
    pub variables: Vec<(String, String)>,
    /// The rendered Dockerfile, when `dist/` has it.
    pub dockerfile: Option<String>,
    /// The template (or plain Dockerfile) it was rendered from, relative to the project.
    pub template: String,
    /// `template` or `verbatim`.
    pub dockerfile_kind: String,
    /// For a `source:` image: the repository, the ref and the commit it builds.
    pub upstream: Option<(String, String, String)>,
    /// The test config's source, if the tag has one.
    pub test_source: Option<String>,
    pub labels: Vec<(String, String)>,
    pub builds: Vec<PlatformBuild>,
    /// `None`: never tested (or not since the record began).
    pub tests: Vec<TestRun>,
    pub lint: Vec<LintFinding>,
    /// Digests in the registry (`--registry`), per reference.
    pub registry: Vec<RegistryDigest>,
}

impl Tag {
    /// The state of its tests across platforms.
    pub fn test_status(&self) -> TestStatus {
        if self.tests.is_empty() {
            TestStatus::NotRun
        } else if self.tests.iter().all(TestRun::ok) {
            TestStatus::Passed
        } else {
            TestStatus::Failed
        }
    }

    /// The last time any platform of it was built (seconds since the epoch).
    pub fn last_built(&self) -> Option<i64> {
        self.builds.iter().filter_map(|b| b.built_at).max()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    NotRun,
    Passed,
    Failed,
}

impl TestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::NotRun => "not run",
            TestStatus::Passed => "passed",
            TestStatus::Failed => "failed",
        }
    }
}

/// What the ledger and `dist/` know of one platform of a tag.
#[derive(Debug, Clone, Default)]
pub struct PlatformBuild {
    pub platform: String,
    /// The build key it was built with; `None`: never built.
    pub key: Option<String>,
    pub digest: Option<String>,
    pub built_at: Option<i64>,
    /// As people read it (volatile).
    pub built_at_text: Option<String>,
    pub duration_ms: Option<u64>,
    pub builder: Option<String>,
    /// Why that build happened (the plan's reasons).
    pub reasons: Vec<String>,
    /// External bases it started from: reference → digest.
    pub bases: Vec<(String, String)>,
    pub layers: Vec<Layer>,
    pub sbom: Option<Sbom>,
}

impl PlatformBuild {
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// An SBOM next to a platform archive.
#[derive(Debug, Clone, Default)]
pub struct Sbom {
    /// The format's name, e.g. `cyclonedx-json`.
    pub format: String,
    /// The file, relative to `dist/`.
    pub file: String,
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, Default)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub kind: String,
}

/// One platform's test results.
#[derive(Debug, Clone, Default)]
pub struct TestRun {
    pub platform: String,
    pub driver: String,
    pub seconds: f64,
    /// When it ran, as people read it (volatile).
    pub ran_at: Option<String>,
    /// Why the image could not be tested at all.
    pub error: Option<String>,
    pub results: Vec<TestResult>,
}

impl TestRun {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.results.iter().all(|r| r.pass)
    }
}

#[derive(Debug, Clone, Default)]
pub struct TestResult {
    pub name: String,
    pub pass: bool,
    /// The first failure's message.
    pub message: Option<String>,
}

/// A lint finding of a tag's Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct LintFinding {
    pub rule: String,
    /// `error`, `warning`, `info` or `style`.
    pub level: String,
    pub message: String,
    /// `file:line` of the template line that wrote it.
    pub location: String,
    pub help_uri: Option<String>,
}

/// A digest a reference has in the registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryDigest {
    pub reference: String,
    /// `None`: the registry does not have it; `error` says why it could not be asked.
    pub digest: Option<String>,
    pub error: Option<String>,
}

/// An external base with a newer version, and the images built on it.
#[derive(Debug, Clone, Default)]
pub struct OutdatedBase {
    pub reference: String,
    pub current: String,
    pub latest: String,
    pub affected: Vec<String>,
}
