//! A finding (rule, level, message) placed where it was written — a template line, an
//! `image.yml`, a rootfs file — with the rendered Dockerfile line it was found on and every
//! tag it applies to; and the [`Report`] of a whole run.

use serde::Serialize;

/// How serious a finding is (hadolint's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Info,
    Style,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Style => "style",
        }
    }

    /// hadolint's `level` field; `None` for anything else.
    pub fn parse(text: &str) -> Option<Level> {
        match text {
            "error" => Some(Level::Error),
            "warning" => Some(Level::Warning),
            "info" => Some(Level::Info),
            "style" => Some(Level::Style),
            _ => None,
        }
    }

    /// Whether a finding of this level fails the run (`strict`: warnings too).
    pub fn fails(self, strict: bool) -> bool {
        match self {
            Level::Error => true,
            Level::Warning => strict,
            Level::Info | Level::Style => false,
        }
    }
}

/// Which tool's rule a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Hadolint,
    ImageManager,
}

/// A place in a file of the project (or of `dist/`), `/`-separated, relative to the project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Place {
    pub file: String,
    /// 1-based; `None` for the file as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Place {
    pub fn file(file: impl Into<String>) -> Self {
        Place {
            file: file.into(),
            line: None,
            column: None,
        }
    }

    pub fn line(file: impl Into<String>, line: usize, column: Option<usize>) -> Self {
        Place {
            file: file.into(),
            line: Some(line),
            column,
        }
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// One problem, once per place: a template line shared by many tags is one finding listing
/// them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `DL3008`, `SC2086`, `IM001`, ...
    pub rule: String,
    pub level: Level,
    pub tool: Tool,
    pub message: String,
    /// Where to fix it: the template line that wrote the offending line (or the file the
    /// rule is about).
    pub location: Place,
    /// The line of the rendered Dockerfile it was found on (of the first tag), when the
    /// finding is about a rendered Dockerfile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<Place>,
    /// The tags (`name:tag`) it applies to, in project order.
    pub tags: Vec<String>,
    /// Where the rule is explained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
}

/// Findings per level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub error: usize,
    pub warning: usize,
    pub info: usize,
    pub style: usize,
}

impl Counts {
    pub fn of(findings: &[Finding]) -> Counts {
        let mut counts = Counts::default();
        for finding in findings {
            match finding.level {
                Level::Error => counts.error += 1,
                Level::Warning => counts.warning += 1,
                Level::Info => counts.info += 1,
                Level::Style => counts.style += 1,
            }
        }
        counts
    }
}

/// What hadolint was, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolInfo {
    pub program: String,
    pub version: String,
    /// The `.hadolint.yaml` passed with `--config`, relative to the project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// What a run looked at: tags, their distinct Dockerfiles, and how many of those came from
/// the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub tags: usize,
    pub dockerfiles: usize,
    pub cached: usize,
}

/// The result of one lint run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// No finding fails the run.
    pub ok: bool,
    /// `--strict`: warnings fail too.
    pub strict: bool,
    pub hadolint: ToolInfo,
    /// Tags linted.
    pub tags: usize,
    /// Distinct rendered Dockerfiles among them (each was linted once).
    pub dockerfiles: usize,
    /// How many of those hadolint did not run on: their findings were cached from an earlier
    /// run (same Dockerfile, hadolint and configuration).
    pub cached: usize,
    pub counts: Counts,
    /// Sorted by file, line, rule.
    pub findings: Vec<Finding>,
}

impl Report {
    /// A report of `findings`: merged where they are the same finding, sorted.
    pub fn new(hadolint: ToolInfo, seen: Seen, findings: Vec<Finding>, strict: bool) -> Report {
        let findings = merge(findings);
        let ok = !findings.iter().any(|f| f.level.fails(strict));
        Report {
            ok,
            strict,
            hadolint,
            tags: seen.tags,
            dockerfiles: seen.dockerfiles,
            cached: seen.cached,
            counts: Counts::of(&findings),
            findings,
        }
    }
}

/// One finding per (rule, level, message, place), with the tags of all of them, sorted by
/// place then rule.
fn merge(findings: Vec<Finding>) -> Vec<Finding> {
    let mut merged: Vec<Finding> = Vec::with_capacity(findings.len());
    let mut index: std::collections::HashMap<(String, Level, String, Place), usize> =
        std::collections::HashMap::new();
    for finding in findings {
        let key = (
            finding.rule.clone(),
            finding.level,
            finding.message.clone(),
            finding.location.clone(),
        );
        match index.get(&key) {
            Some(&at) => {
                for tag in finding.tags {
                    if !merged[at].tags.contains(&tag) {
                        merged[at].tags.push(tag);
                    }
                }
            }
            None => {
                index.insert(key, merged.len());
                merged.push(finding);
            }
        }
    }
    merged.sort_by(|a, b| {
        (
            &a.location.file,
            a.location.line,
            a.location.column,
            &a.rule,
        )
            .cmp(&(
                &b.location.file,
                b.location.line,
                b.location.column,
                &b.rule,
            ))
    });
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &str, level: Level, file: &str, line: usize, tag: &str) -> Finding {
        Finding {
            rule: rule.into(),
            level,
            tool: Tool::Hadolint,
            message: format!("{rule} message"),
            location: Place::line(file, line, Some(1)),
            rendered: None,
            tags: vec![tag.into()],
            help_uri: None,
        }
    }

    fn seen(tags: usize, dockerfiles: usize) -> Seen {
        Seen {
            tags,
            dockerfiles,
            cached: 0,
        }
    }

    fn info() -> ToolInfo {
        ToolInfo {
            program: "hadolint".into(),
            version: "2".into(),
            config: None,
        }
    }

    #[test]
    fn the_same_finding_in_many_tags_is_one_finding_listing_them() {
        let report = Report::new(
            info(),
            seen(3, 2),
            vec![
                finding("DL3008", Level::Warning, "b", 2, "app:1"),
                finding("DL3008", Level::Warning, "b", 2, "app:2"),
                finding("DL3006", Level::Warning, "a", 9, "app:1"),
            ],
            false,
        );
        assert_eq!(report.findings.len(), 2);
        assert_eq!(report.findings[0].location.file, "a");
        assert_eq!(report.findings[1].tags, ["app:1", "app:2"]);
        assert_eq!(report.counts.warning, 2);
        assert!(report.ok);
    }

    #[test]
    fn errors_fail_and_warnings_fail_only_when_strict() {
        let warning = vec![finding("DL3008", Level::Warning, "a", 1, "x:1")];
        assert!(Report::new(info(), seen(1, 1), warning.clone(), false).ok);
        assert!(!Report::new(info(), seen(1, 1), warning, true).ok);
        let error = vec![finding("DL3020", Level::Error, "a", 1, "x:1")];
        assert!(!Report::new(info(), seen(1, 1), error, false).ok);
        let style = vec![finding("DL3059", Level::Style, "a", 1, "x:1")];
        assert!(Report::new(info(), seen(1, 1), style, true).ok);
    }
}
