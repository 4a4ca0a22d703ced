//! Test results and the reports written from them: JSON and JUnit XML.
//!
//! A [`TestResult`] is one test's verdict with its duration and, for each failed check, what
//! was expected and what was found (output excerpts are cut to [`EXCERPT_CHARS`]). An
//! [`ImageReport`] holds one image's results (or the error that stopped it), a [`Report`] all
//! images with totals. [`Report::to_json`] is the `--format json` document and
//! [`Report::to_junit`] the XML that CI systems display (one `<testsuite>` per image).

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// Longest excerpt of output or file content kept in a failure.
pub const EXCERPT_CHARS: usize = 2000;

/// Which kind of test a result is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TestKind {
    Command,
    FileExistence,
    FileContent,
    Metadata,
    License,
}

impl TestKind {
    /// The prefix container-structure-test puts before a test's name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Command => "Command Test",
            Self::FileExistence => "File Existence Test",
            Self::FileContent => "File Content Test",
            Self::Metadata => "Metadata Test",
            Self::License => "License Test",
        }
    }
}

/// One failed check of a test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            expected: None,
            found: None,
        }
    }

    #[must_use]
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    #[must_use]
    pub fn found(mut self, found: impl AsRef<str>) -> Self {
        self.found = Some(excerpt(found.as_ref()));
        self
    }
}

/// `text` cut to [`EXCERPT_CHARS`] characters, with a marker when cut.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
        None => text.to_owned(),
    }
}

/// One test's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub kind: TestKind,
    /// The test's own name; the metadata and license tests, which have none, are named as
    /// container-structure-test names them (`Metadata Test`, `License Test`).
    pub name: String,
    pub pass: bool,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// `file:line:col` of the test in its config, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl TestResult {
    pub fn new(kind: TestKind, name: &str) -> Self {
        let name = match kind {
            TestKind::Metadata | TestKind::License if name.is_empty() => kind.label(),
            _ => name,
        };
        Self {
            kind,
            name: name.to_owned(),
            pass: true,
            duration: Duration::ZERO,
            failures: Vec::new(),
            stdout: None,
            stderr: None,
            location: None,
        }
    }

    /// Records a failed check.
    pub fn fail(&mut self, failure: Failure) {
        self.pass = false;
        self.failures.push(failure);
    }

    /// The name as container-structure-test prints it (`File Existence Test: sh`).
    pub fn full_name(&self) -> String {
        if self.name.is_empty() || self.name == self.kind.label() {
            self.kind.label().to_owned()
        } else {
            format!("{}: {}", self.kind.label(), self.name)
        }
    }
}

fn seconds<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// The results of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageReport {
    /// The image as the user named it (a tar path, a reference).
    pub image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub config: String,
    pub driver: String,
    #[serde(serialize_with = "seconds")]
    pub duration: Duration,
    pub results: Vec<TestResult>,
    /// Why the image could not be tested at all (then `results` may be incomplete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ImageReport {
    /// The image with its platform, for people and JUnit suites: `app:1.0 (linux/arm64)`.
    pub fn display_name(&self) -> String {
        match &self.platform {
            Some(platform) => format!("{} ({platform})", self.image),
            None => self.image.clone(),
        }
    }

    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.pass).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Whether everything passed and nothing stopped the run.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.failed() == 0
    }
}

/// The results of every image of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub images: Vec<ImageReport>,
}

#[derive(Serialize)]
struct Totals {
    images: usize,
    tests: usize,
    passed: usize,
    failed: usize,
    errors: usize,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.images.iter().map(ImageReport::passed).sum()
    }

    pub fn failed(&self) -> usize {
        self.images.iter().map(ImageReport::failed).sum()
    }

    /// Whether every image passed every test.
    pub fn ok(&self) -> bool {
        self.images.iter().all(ImageReport::ok)
    }

    /// The `--format json` document: `{"images": [...], "totals": {...}}`.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Document<'a> {
            images: &'a [ImageReport],
            totals: Totals,
        }
        let totals = Totals {
            images: self.images.len(),
            tests: self.images.iter().map(|i| i.results.len()).sum(),
            passed: self.passed(),
            failed: self.failed(),
            errors: self.images.iter().filter(|i| i.error.is_some()).count(),
        };
        serde_json::to_string_pretty(&Document {
            images: &self.images,
            totals,
        })
        .unwrap_or_default()
    }

    /// JUnit XML: one `<testsuite>` per image, one `<testcase>` per test.
    pub fn to_junit(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let total: usize = self.images.iter().map(|i| i.results.len()).sum();
        let time: f64 = self.images.iter().map(|i| i.duration.as_secs_f64()).sum();
        let errors = self.images.iter().filter(|i| i.error.is_some()).count();
        let _ = writeln!(
            out,
            "<testsuites name=\"image-manager test\" tests=\"{total}\" failures=\"{}\" errors=\"{errors}\" time=\"{time:.3}\">",
            self.failed()
        );
        for image in &self.images {
            let suite = image.display_name();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
                xml(&suite),
                image.results.len(),
                image.failed(),
                usize::from(image.error.is_some()),
                image.duration.as_secs_f64()
            );
            let _ = writeln!(
                out,
                "    <properties><property name=\"config\" value=\"{}\"/><property name=\"driver\" value=\"{}\"/></properties>",
                xml(&image.config),
                xml(&image.driver)
            );
            if let Some(error) = &image.error {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"(image)\" classname=\"{}\" time=\"0\">",
                    xml(&suite)
                );
                let _ = writeln!(out, "      <error message=\"{}\"/>", xml(error));
                let _ = writeln!(out, "    </testcase>");
            }
            for result in &image.results {
                let _ = write!(
                    out,
                    "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                    xml(&result.full_name()),
                    xml(&suite),
                    result.duration.as_secs_f64()
                );
                if result.pass {
                    out.push_str("/>\n");
                    continue;
                }
                out.push_str(">\n");
                let first = result
                    .failures
                    .first()
                    .map_or("failed", |f| f.message.as_str());
                let mut body = String::new();
                for failure in &result.failures {
                    let _ = writeln!(body, "{}", failure.message);
                    if let Some(expected) = &failure.expected {
                        let _ = writeln!(body, "  expected: {expected}");
                    }
                    if let Some(found) = &failure.found {
                        let _ = writeln!(body, "  found: {found}");
                    }
                }
                if let Some(location) = &result.location {
                    let _ = writeln!(body, "  at {location}");
                }
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\">{}</failure>",
                    xml(first),
                    xml(&body)
                );
                if let Some(stdout) = &result.stdout {
                    let _ = writeln!(
                        out,
                        "      <system-out>{}</system-out>",
                        xml(&excerpt(stdout))
                    );
                }
                if let Some(stderr) = &result.stderr {
                    let _ = writeln!(
                        out,
                        "      <system-err>{}</system-err>",
                        xml(&excerpt(stderr))
                    );
                }
                out.push_str("    </testcase>\n");
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

use im_diag::xml_text as xml;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut ok = TestResult::new(TestKind::FileExistence, "shell");
        ok.duration = Duration::from_millis(1);
        let mut bad = TestResult::new(TestKind::Command, "say <hi> & \"bye\"");
        bad.duration = Duration::from_millis(250);
        bad.fail(
            Failure::new("Expected string '^hi$' not found in output")
                .expected("^hi$")
                .found("hi\n\u{1b}[0m"),
        );
        bad.stdout = Some("hi\n".into());
        bad.location = Some("dist/app/1.0/test.yml:4:5".into());
        Report {
            images: vec![ImageReport {
                image: "dist/app/1.0/image.tar".into(),
                platform: Some("linux/amd64".into()),
                config: "dist/app/1.0/test.yml".into(),
                driver: "native".into(),
                duration: Duration::from_millis(300),
                results: vec![ok, bad],
                error: None,
            }],
        }
    }

    #[test]
    fn junit_is_escaped_and_counts_failures() {
        insta::assert_snapshot!(sample().to_junit());
    }

    #[test]
    fn json_has_totals_and_failure_details() {
        let report = sample();
        assert!(!report.ok());
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(value["totals"]["failed"], 1);
        assert_eq!(value["totals"]["passed"], 1);
        assert_eq!(
            value["images"][0]["results"][1]["failures"][0]["expected"],
            "^hi$"
        );
        assert_eq!(value["images"][0]["results"][1]["duration"], 0.25);
    }

    #[test]
    fn long_output_is_cut_to_an_excerpt() {
        let long = "x".repeat(EXCERPT_CHARS + 10);
        assert!(excerpt(&long).ends_with("… (10 more bytes)"));
        assert_eq!(excerpt("short"), "short");
    }
}
