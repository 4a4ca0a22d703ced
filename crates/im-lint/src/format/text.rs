//! The `tty` format: for people reading a terminal or a CI log; each finding on a line, the
//! rendered line and its tags under it (the command prints the counts).
//!
//! ```text
//! images/app/Dockerfile.jinja2:7:1: warning DL3008: Pin versions in apt get install. ...
//!   rendered as dist/app/1.0/Dockerfile:12 in app:1.0, app:2.0
//! ```

use std::fmt::Write as _;

use crate::finding::Report;

/// How many tags a finding lists before "and N more".
const TAGS_SHOWN: usize = 5;

pub fn tty(report: &Report) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let _ = writeln!(
            out,
            "{}: {} {}: {}",
            finding.location,
            finding.level.as_str(),
            finding.rule,
            finding.message
        );
        let mut tags = finding
            .tags
            .iter()
            .take(TAGS_SHOWN)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        if finding.tags.len() > TAGS_SHOWN {
            let _ = write!(tags, " and {} more", finding.tags.len() - TAGS_SHOWN);
        }
        match &finding.rendered {
            Some(rendered) => {
                let _ = writeln!(out, "  rendered as {rendered} in {tags}");
            }
            None => {
                let _ = writeln!(out, "  in {tags}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_per_finding_then_where_it_was_rendered() {
        let text = super::tty(&crate::format::tests::report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "images/app/Dockerfile.jinja2:7:1: warning DL3008: Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`"
        );
        assert_eq!(
            lines[1],
            "  rendered as dist/app/1.0/Dockerfile:12:1 in app:1.0, app:2.0"
        );
        assert_eq!(lines[3], "  in app:1.0");
        assert_eq!(lines.len(), 4);
    }
}
