//! Reports of `build` and `push` for CI systems: JUnit XML (GitLab's
//! `artifacts:reports:junit`: one test case per node and platform built, or per image tag
//! pushed; a failure is a failed case, a skipped node a skipped one) and dotenv (GitLab's
//! `artifacts:reports:dotenv`: `NAME=value` lines that later jobs get as variables — the
//! counts, and the digest of every node built or tag pushed).

use std::fmt::Write as _;

use im_report::html::esc;

use crate::build::{NodeReport, NodeResult};
use crate::publish;

/// `IM_DIGEST_PYTHON_3_13_7_LINUX_AMD64`: upper case, everything but letters and digits `_`.
fn variable(prefix: &str, parts: &[&str]) -> String {
    let mut name = prefix.to_owned();
    for part in parts {
        name.push('_');
        name.extend(part.chars().map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        }));
    }
    name
}

/// `build`'s JUnit XML.
pub fn build_junit(nodes: &[NodeReport]) -> String {
    let count = |r: NodeResult| nodes.iter().filter(|n| n.result == r).count();
    let skipped = count(NodeResult::Skipped) + count(NodeResult::Cancelled);
    let time: f64 = nodes.iter().map(|n| n.seconds).sum();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"image-manager build\" tests=\"{}\" failures=\"{}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n  <testsuite name=\"image-manager build\" tests=\"{}\" failures=\"{}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
        nodes.len(),
        count(NodeResult::Failed),
        nodes.len(),
        count(NodeResult::Failed),
    );
    for node in nodes {
        let _ = write!(
            out,
            "    <testcase name=\"{} ({})\" classname=\"build\" time=\"{:.3}\"",
            esc(&node.node),
            esc(&node.platform),
            node.seconds
        );
        match node.result {
            NodeResult::Failed => {
                let error = node.error.as_deref().unwrap_or("failed");
                let _ = writeln!(
                    out,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    esc(error.lines().next().unwrap_or_default()),
                    esc(error)
                );
            }
            NodeResult::Skipped | NodeResult::Cancelled => {
                let _ = writeln!(
                    out,
                    "><skipped message=\"{}\"/></testcase>",
                    node.result.as_str()
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "><system-out>{}: {}</system-out></testcase>",
                    node.result.as_str(),
                    esc(&node.reasons.join(", "))
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `build`'s dotenv: counts and each node's digest.
pub fn build_dotenv(nodes: &[NodeReport]) -> String {
    let count = |r: NodeResult| nodes.iter().filter(|n| n.result == r).count();
    let mut out = format!(
        "IM_BUILT={}\nIM_UP_TO_DATE={}\nIM_FAILED={}\n",
        count(NodeResult::Built),
        count(NodeResult::UpToDate),
        count(NodeResult::Failed)
    );
    for node in nodes {
        if let Some(digest) = &node.digest {
            let _ = writeln!(
                out,
                "{}={digest}",
                variable("IM_DIGEST", &[&node.node, &node.platform])
            );
        }
    }
    out
}

/// `push`'s JUnit XML.
pub fn push_junit(report: &publish::Report) -> String {
    let failed = report.tags.iter().filter(|t| t.error.is_some()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"image-manager push\" tests=\"{n}\" failures=\"{failed}\" time=\"{t:.3}\">\n  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{failed}\" time=\"{t:.3}\">\n",
        esc(&report.registry),
        n = report.tags.len(),
        t = report.seconds,
    );
    for tag in &report.tags {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"push\"",
            esc(&tag.node)
        );
        match &tag.error {
            Some(error) => {
                let _ = writeln!(
                    out,
                    "><failure message=\"{}\">{}</failure></testcase>",
                    esc(error.lines().next().unwrap_or_default()),
                    esc(error)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "><system-out>{} {} {}</system-out></testcase>",
                    tag.result.as_str(),
                    esc(&tag.reference),
                    esc(tag.digest.as_deref().unwrap_or_default())
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// `push`'s dotenv: the registry, each image tag's digest and its revision tag (`revision:
/// true`).
pub fn push_dotenv(report: &publish::Report) -> String {
    let mut out = format!(
        "IM_REGISTRY={}\nIM_PUSHED={}\nIM_PUSH_FAILED={}\n",
        report.registry,
        report.tags.iter().filter(|t| t.error.is_none()).count(),
        report.tags.iter().filter(|t| t.error.is_some()).count()
    );
    for tag in &report.tags {
        if let Some(digest) = &tag.digest {
            let _ = writeln!(out, "{}={digest}", variable("IM_DIGEST", &[&tag.node]));
        }
        if let Some(revision) = &tag.revision {
            let _ = writeln!(
                out,
                "{}={}",
                variable("IM_REVISION", &[&tag.node]),
                revision.tag
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, result: NodeResult, error: Option<&str>) -> NodeReport {
        NodeReport {
            node: name.into(),
            platform: "linux/amd64".into(),
            result,
            seconds: 1.5,
            key: "sha256:k".into(),
            digest: (result == NodeResult::Built).then(|| "sha256:d".into()),
            output: String::new(),
            log: None,
            error: error.map(str::to_owned),
            reasons: vec!["new".into()],
        }
    }

    #[test]
    fn build_reports_for_gitlab() {
        let nodes = [
            node("python:3.13.7", NodeResult::Built, None),
            node(
                "app:<1>",
                NodeResult::Failed,
                Some("RUN failed & stopped\nmore"),
            ),
            node("app:2", NodeResult::Skipped, None),
        ];
        let junit = build_junit(&nodes);
        assert!(
            junit.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{junit}"
        );
        assert!(
            junit.contains("name=\"app:&lt;1&gt; (linux/amd64)\""),
            "{junit}"
        );
        assert!(
            junit.contains("<failure message=\"RUN failed &amp; stopped\">"),
            "{junit}"
        );
        assert_eq!(
            build_dotenv(&nodes),
            "IM_BUILT=1\nIM_UP_TO_DATE=0\nIM_FAILED=1\nIM_DIGEST_PYTHON_3_13_7_LINUX_AMD64=sha256:d\n"
        );
    }
}
