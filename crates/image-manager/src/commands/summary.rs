//! Markdown summaries for CI: when `$GITHUB_STEP_SUMMARY` names a file (GitHub Actions sets
//! it for every step), `build`, `test` and `push` append what they did — what was built,
//! skipped and why, test results, pushed digests — and the run's page shows it.

use std::io::Write as _;

use im_exec::build::NodeReport;
use im_exec::publish;

use super::Context;

/// Appends `markdown` to the step summary, if there is one. A summary that cannot be written
/// is a warning: the command's own work stands.
pub fn append(context: &Context<'_>, markdown: &str) {
    let Some(path) = &context.step_summary else {
        return;
    };
    let written = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(markdown.as_bytes()));
    if let Err(error) = written {
        context
            .printer
            .diagnostics([&im_diag::Diagnostic::warning(format!(
                "the step summary ($GITHUB_STEP_SUMMARY) was not written: {error}"
            ))]);
    }
}

/// A table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace(['\n', '\r'], " ")
        .trim()
        .to_owned()
}

/// `sha256:0123456789ab`.
fn short(digest: Option<&str>) -> String {
    digest.map_or_else(String::new, |d| format!("`{}`", d.get(..19).unwrap_or(d)))
}

/// `build`: one row per node with its result and why it was built (or why not).
pub fn build(nodes: &[NodeReport], pushed: Option<&publish::Report>) -> String {
    let mut out = String::from("### image-manager build\n\n");
    if nodes.is_empty() {
        out.push_str("Nothing to build.\n\n");
    } else {
        out.push_str("| image tag | platform | result | why | seconds | digest |\n");
        out.push_str("|---|---|---|---|---:|---|\n");
        for node in nodes {
            let why = match &node.error {
                Some(error) => error.lines().next().unwrap_or_default().to_owned(),
                None => node.reasons.join(", "),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {:.1} | {} |\n",
                cell(&node.node),
                cell(&node.platform),
                node.result.as_str(),
                cell(&why),
                node.seconds,
                short(node.digest.as_deref()),
            ));
        }
        out.push('\n');
    }
    if let Some(report) = pushed {
        out.push_str(&publish_table(report));
    }
    out
}

/// `push` (and `build --push`): one row per image tag with where it went and its digest.
pub fn push(report: &publish::Report) -> String {
    format!("### image-manager push\n\n{}", publish_table(report))
}

fn publish_table(report: &publish::Report) -> String {
    let mut out = format!(
        "Registry `{}`{}:\n\n| image tag | result | tags | digest |\n|---|---|---|---|\n",
        cell(&report.registry),
        report
            .snapshot_id
            .as_ref()
            .map_or_else(String::new, |id| format!(", snapshot `{}`", cell(id)))
    );
    for tag in &report.tags {
        let result = match &tag.error {
            Some(error) => format!("failed: {}", error.lines().next().unwrap_or_default()),
            None => tag.result.as_str().to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            cell(&tag.node),
            cell(&result),
            tag.tags
                .iter()
                .map(|t| format!("`{}`", cell(t)))
                .collect::<Vec<_>>()
                .join(" "),
            short(tag.digest.as_deref()),
        ));
    }
    out.push('\n');
    out
}

/// `test`: one row per image with its counts, then each failed test.
pub fn test(report: &im_structure_test::Report) -> String {
    let mut out = format!(
        "### image-manager test\n\n{} passed, {} failed.\n\n| image | result | passed | failed | seconds |\n|---|---|---:|---:|---:|\n",
        report.passed(),
        report.failed()
    );
    for image in &report.images {
        let failed = image.results.iter().filter(|r| !r.pass).count();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {:.1} |\n",
            cell(&image.display_name()),
            match (&image.error, image.ok()) {
                (Some(error), _) => format!("error: {}", cell(error)),
                (None, true) => "passed".to_owned(),
                (None, false) => "failed".to_owned(),
            },
            image.results.len() - failed,
            failed,
            image.duration.as_secs_f64(),
        ));
    }
    let failures: Vec<String> = report
        .images
        .iter()
        .flat_map(|image| {
            image.results.iter().filter(|r| !r.pass).map(move |result| {
                let why = result
                    .failures
                    .first()
                    .map(|f| f.message.lines().next().unwrap_or_default().to_owned())
                    .unwrap_or_default();
                format!(
                    "- `{}`: {} — {}\n",
                    cell(&image.display_name()),
                    cell(&result.full_name()),
                    cell(&why)
                )
            })
        })
        .collect();
    out.push('\n');
    if !failures.is_empty() {
        out.push_str("Failed tests:\n\n");
        out.extend(failures);
        out.push('\n');
    }
    out
}

/// `--output junit:FILE` / `dotenv:FILE` of `build` and `push`: each spec checked before any
/// work (so a typo fails at once), then written with what the command did.
pub struct CiOutputs(Vec<(CiKind, std::path::PathBuf)>);

#[derive(Clone, Copy)]
enum CiKind {
    Junit,
    Dotenv,
}

impl CiOutputs {
    pub fn parse(specs: &[String]) -> anyhow::Result<Self> {
        specs
            .iter()
            .map(|spec| {
                let (kind, path) = spec.split_once(':').ok_or_else(|| {
                    anyhow::anyhow!("--output {spec}: write junit:FILE or dotenv:FILE")
                })?;
                let kind = match kind {
                    "junit" => CiKind::Junit,
                    "dotenv" => CiKind::Dotenv,
                    other => {
                        anyhow::bail!("--output {spec}: unknown kind `{other}` (junit or dotenv)")
                    }
                };
                Ok((kind, std::path::PathBuf::from(path)))
            })
            .collect::<anyhow::Result<_>>()
            .map(CiOutputs)
    }

    /// Writes each file (its folder made first), whole or not at all.
    pub fn write(
        &self,
        junit: impl Fn() -> String,
        dotenv: impl Fn() -> String,
    ) -> anyhow::Result<()> {
        use anyhow::Context as _;
        for (kind, path) in &self.0 {
            let text = match kind {
                CiKind::Junit => junit(),
                CiKind::Dotenv => dotenv(),
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs_err::create_dir_all(dir)?;
            }
            im_render::output::write_atomic(path, text.as_bytes(), None, None)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}
