//! A [`Report`] written for people or for other tools: `tty` (one line per finding, with the
//! rendered line and the tags under it), `json` (the report as it is), `sarif` (SARIF 2.1.0,
//! for code scanning), `checkstyle` and `junit` (XML, for CI systems).

mod sarif;
mod text;
mod xml;

use crate::finding::Report;

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tty,
    Json,
    Sarif,
    Checkstyle,
    Junit,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tty => "tty",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Checkstyle => "checkstyle",
            Format::Junit => "junit",
        }
    }
}

/// `report` as `format`, ending with a newline.
pub fn write(report: &Report, format: Format) -> String {
    match format {
        Format::Tty => text::tty(report),
        Format::Json => json(&report),
        Format::Sarif => json(&sarif::sarif(report)),
        Format::Checkstyle => xml::checkstyle(report),
        Format::Junit => xml::junit(report),
    }
}

fn json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("reports serialise");
    text.push('\n');
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::finding::{Finding, Level, Place, Report, Seen, Tool, ToolInfo};

    /// A report with one finding of each kind of place.
    pub fn report() -> Report {
        Report::new(
            ToolInfo {
                program: "/usr/bin/hadolint".into(),
                version: "2.15.1".into(),
                config: Some(".hadolint.yaml".into()),
            },
            Seen {
                tags: 3,
                dockerfiles: 2,
                cached: 0,
            },
            vec![
                Finding {
                    rule: "DL3008".into(),
                    level: Level::Warning,
                    tool: Tool::Hadolint,
                    message: "Pin versions in apt get install. Instead of `apt-get install <package>` use `apt-get install <package>=<version>`".into(),
                    location: Place::line("images/app/Dockerfile.jinja2", 7, Some(1)),
                    rendered: Some(Place::line("dist/app/1.0/Dockerfile", 12, Some(1))),
                    tags: vec!["app:1.0".into(), "app:2.0".into()],
                    help_uri: crate::rules::help_uri("DL3008"),
                },
                Finding {
                    rule: "IM002".into(),
                    level: Level::Error,
                    tool: Tool::ImageManager,
                    message: "images/app/rootfs/root/.ssh/id_rsa looks like an SSH private key".into(),
                    location: Place::file("images/app/rootfs/root/.ssh/id_rsa"),
                    rendered: None,
                    tags: vec!["app:1.0".into()],
                    help_uri: None,
                },
            ],
            false,
        )
    }

    #[test]
    fn every_format_names_the_template_line() {
        for format in [
            super::Format::Tty,
            super::Format::Json,
            super::Format::Sarif,
            super::Format::Checkstyle,
            super::Format::Junit,
        ] {
            let text = super::write(&report(), format);
            assert!(
                text.contains("images/app/Dockerfile.jinja2"),
                "{}: {text}",
                format.as_str()
            );
            assert!(text.ends_with('\n'));
        }
    }
}
