//! Checkstyle XML (one `<file>` per template, one `<error>` per finding; Jenkins, GitLab's
//! code quality converters) and JUnit XML (one `<testsuite>` per file, one failing
//! `<testcase>` per finding; a run without findings is one passing test case).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use im_diag::xml_text as xml;

use crate::finding::{Finding, Level, Report};

const HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

fn by_file(report: &Report) -> BTreeMap<&str, Vec<&Finding>> {
    let mut files: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for finding in &report.findings {
        files
            .entry(&finding.location.file)
            .or_default()
            .push(finding);
    }
    files
}

/// A finding's message with where it was rendered and for which tags.
fn details(finding: &Finding) -> String {
    let mut text = finding.message.clone();
    if let Some(rendered) = &finding.rendered {
        let _ = write!(text, " (rendered as {rendered})");
    }
    let _ = write!(text, " [{}]", finding.tags.join(", "));
    text
}

pub fn checkstyle(report: &Report) -> String {
    let mut out = String::from(HEADER);
    out.push_str("<checkstyle version=\"4.3\">\n");
    for (file, findings) in by_file(report) {
        let _ = writeln!(out, "  <file name=\"{}\">", xml(file));
        for finding in findings {
            let severity = match finding.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info | Level::Style => "info",
            };
            let _ = writeln!(
                out,
                "    <error line=\"{}\"{} severity=\"{severity}\" message=\"{}\" source=\"{}\"/>",
                finding.location.line.unwrap_or(0),
                finding
                    .location
                    .column
                    .map_or_else(String::new, |c| format!(" column=\"{c}\"")),
                xml(&details(finding)),
                xml(&finding.rule)
            );
        }
        out.push_str("  </file>\n");
    }
    out.push_str("</checkstyle>\n");
    out
}

pub fn junit(report: &Report) -> String {
    let mut out = String::from(HEADER);
    let total = report.findings.len().max(1);
    let _ = writeln!(
        out,
        "<testsuites name=\"image-manager lint\" tests=\"{total}\" failures=\"{}\">",
        report.findings.len()
    );
    if report.findings.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"image-manager lint\" tests=\"1\" failures=\"0\">\n    <testcase name=\"{} Dockerfiles of {} tags\" classname=\"lint\"/>\n  </testsuite>",
            report.dockerfiles, report.tags
        );
    }
    for (file, findings) in by_file(report) {
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\">",
            xml(file),
            findings.len(),
            findings.len()
        );
        for finding in findings {
            let at = finding
                .location
                .line
                .map_or_else(String::new, |line| format!(" at line {line}"));
            let _ = writeln!(
                out,
                "    <testcase name=\"{}{}\" classname=\"{}\">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                xml(&finding.rule),
                at,
                xml(file),
                finding.level.as_str(),
                xml(&finding.message),
                xml(&format!("{}: {}", finding.location, details(finding)))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn checkstyle_has_a_file_per_template_and_an_error_per_finding() {
        let text = super::checkstyle(&crate::format::tests::report());
        assert!(text.contains("<file name=\"images/app/Dockerfile.jinja2\">"));
        assert!(text.contains("<error line=\"7\" column=\"1\" severity=\"warning\" message=\"Pin versions in apt get install. Instead of `apt-get install &lt;package&gt;`"));
        assert!(text.contains("source=\"DL3008\""));
    }

    #[test]
    fn junit_fails_a_test_case_per_finding() {
        let text = super::junit(&crate::format::tests::report());
        assert!(
            text.contains("<testsuites name=\"image-manager lint\" tests=\"2\" failures=\"2\">")
        );
        assert!(text.contains(
            "<testcase name=\"DL3008 at line 7\" classname=\"images/app/Dockerfile.jinja2\">"
        ));
    }
}
