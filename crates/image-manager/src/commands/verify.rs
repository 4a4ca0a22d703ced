//! `image-manager verify-reproducible [targets]`: rebuild in a scratch copy of the project at
//! another path (offline, other parallelism) and compare every digest with this build's
//! ledger; name the first difference of each node that differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use im_diag::Diagnostic;
use serde::Serialize;

use super::{Context, Outcome, plural};
use crate::cli::{Format, VerifyArgs};

#[derive(Serialize)]
struct NodeResult {
    node: String,
    platform: String,
    digest: String,
    rebuilt: String,
    identical: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    difference: Option<im_oci::compare::Difference>,
}

#[derive(Serialize)]
struct Report {
    scratch: Option<String>,
    identical: usize,
    total: usize,
    nodes: Vec<NodeResult>,
}

pub fn run(context: &Context<'_>, args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let ledger = im_plan::Ledger::load(&context.dist)?;
    if ledger.nodes.is_empty() {
        return Err(
            Diagnostic::error("nothing has been built in this project yet")
                .with_help("run `image-manager build` first")
                .into(),
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("image-manager-verify-")
        .tempdir()
        .context("making a scratch folder")?;
    let root = fs_err::canonicalize(&context.root)?;
    let copy = scratch.path().join("a/different/checkout");
    let dist = fs_err::canonicalize(&context.dist)?;
    copy_project(&root, &copy, &dist)?;
    // External bases at the digests this build used, from the same cache.
    let copy_dist = copy.join(dist.strip_prefix(&root).unwrap_or(Path::new("dist")));
    fs_err::create_dir_all(&copy_dist)?;
    let record = dist.join(im_bases::RECORD_FILE);
    if record.is_file() {
        fs_err::copy(&record, copy_dist.join(im_bases::RECORD_FILE))?;
    }
    let cache = root.join(im_exec::bases::CACHE_DIR);
    if cache.is_dir() {
        let linked = copy.join(im_exec::bases::CACHE_DIR);
        fs_err::create_dir_all(linked.parent().expect("a nested path"))?;
        fs_err::os::unix::fs::symlink(&cache, &linked)?;
    }
    let jobs = args.jobs.unwrap_or(4).max(1);
    printer.status(
        "Rebuilding",
        format!("in {} (-j {jobs}, offline)", copy.display()),
    );
    let mut command = Command::new(std::env::current_exe().context("finding image-manager")?);
    command
        .arg("-C")
        .arg(&copy)
        .arg("--dist")
        .arg(&copy_dist)
        .args(["build", "--offline", "--format", "json", "-j"])
        .arg(jobs.to_string())
        .args(&args.targets)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if !args.platform.is_empty() {
        let platforms: Vec<String> = args.platform.iter().map(ToString::to_string).collect();
        command.arg("--platform").arg(platforms.join(","));
    }
    let output = command.output().context("running the scratch build")?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("the scratch build in {} did not finish", copy.display()))?;
    let mut nodes = Vec::new();
    for rebuilt in report["nodes"].as_array().into_iter().flatten() {
        let (Some(node), Some(platform)) = (rebuilt["node"].as_str(), rebuilt["platform"].as_str())
        else {
            continue;
        };
        let Some(entry) = ledger
            .nodes
            .get(&im_plan::ledger::entry_name(node, platform))
        else {
            continue;
        };
        let digest = rebuilt["digest"].as_str().unwrap_or_default().to_owned();
        let identical = digest == entry.digest;
        let difference = if identical {
            None
        } else {
            first_difference(&dist.join(&entry.output), &copy_dist.join(&entry.output))
        };
        nodes.push(NodeResult {
            node: node.to_owned(),
            platform: platform.to_owned(),
            digest: entry.digest.clone(),
            rebuilt: digest,
            identical,
            difference,
        });
    }
    if !output.status.success() && nodes.is_empty() {
        anyhow::bail!("the scratch build in {} failed", copy.display());
    }
    let identical = nodes.iter().filter(|n| n.identical).count();
    let total = nodes.len();
    let keep = args.keep || identical < total || !output.status.success();
    let kept = keep.then(|| scratch.keep());
    let report = Report {
        scratch: kept.as_ref().map(|p| p.display().to_string()),
        identical,
        total,
        nodes,
    };
    match args.format {
        Format::Json => printer.json(&report)?,
        Format::Text => {
            let mut out = String::new();
            for node in &report.nodes {
                match &node.difference {
                    _ if node.identical => out.push_str(&format!(
                        "{} ({})  identical  {}\n",
                        node.node, node.platform, node.digest
                    )),
                    Some(difference) => out.push_str(&format!(
                        "{} ({})  DIFFERS  {} vs {}: {difference}\n",
                        node.node, node.platform, node.digest, node.rebuilt
                    )),
                    None => out.push_str(&format!(
                        "{} ({})  DIFFERS  {} vs {}\n",
                        node.node, node.platform, node.digest, node.rebuilt
                    )),
                }
            }
            printer.data(out.trim_end())?;
            printer.status(
                "Verified",
                format!(
                    "{identical} of {} identical{}",
                    plural(total, "node"),
                    kept.map(|p| format!("; scratch copy kept in {}", p.display()))
                        .unwrap_or_default()
                ),
            );
        }
    }
    Ok(if identical == total && output.status.success() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Where two archives of one node first differ, if they can be read.
fn first_difference(first: &Path, second: &Path) -> Option<im_oci::compare::Difference> {
    let open = |path: &Path| im_oci::open_image(path, &im_oci::OpenOptions::default());
    match (open(first), open(second)) {
        (Ok(a), Ok(b)) => im_oci::compare::first_difference(&a, &b).unwrap_or_else(|error| {
            tracing::warn!(
                "comparing {} and {}: {error}",
                first.display(),
                second.display()
            );
            None
        }),
        _ => None,
    }
}

/// Copies the project at `root` to `dest`, leaving out `dist` and image-manager's own state;
/// symlinks stay symlinks.
fn copy_project(root: &Path, dest: &Path, dist: &Path) -> anyhow::Result<()> {
    let skip: Vec<PathBuf> = vec![dist.to_path_buf(), root.join(".image-manager")];
    let mut stack = vec![(root.to_path_buf(), dest.to_path_buf())];
    while let Some((from, to)) = stack.pop() {
        fs_err::create_dir_all(&to)?;
        let mut entries: BTreeMap<PathBuf, std::fs::FileType> = BTreeMap::new();
        for entry in fs_err::read_dir(&from)? {
            let entry = entry?;
            entries.insert(entry.path(), entry.file_type()?);
        }
        for (path, kind) in entries {
            if skip.contains(&path) {
                continue;
            }
            let target = to.join(path.file_name().expect("a directory entry has a name"));
            if kind.is_symlink() {
                fs_err::os::unix::fs::symlink(fs_err::read_link(&path)?, &target)?;
            } else if kind.is_dir() {
                stack.push((path, target));
            } else if kind.is_file() {
                fs_err::copy(&path, &target)?;
            }
        }
    }
    Ok(())
}
