//! `image-manager push`: publish built images from `dist/` to the default registry — per
//! image tag, every platform's image, the multi-platform index under `name:tag` (the very
//! bytes `build` wrote into `dist/<name>/<tag>/image.tar`, so its digest is the one `build`
//! recorded), then each alias. The registry side of `build --push` and `plan
//! --registry-keys` is in [`super::build_push`].
//!
//! What exists locally comes from the plan: a selected node must be up to date (its ledger
//! key matches its inputs and its archive exists), or push refuses before sending anything.
//! Tags of an image tag are written only after all its platforms are uploaded (the library's
//! publishing order); what the registry already has is not sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use im_diag::{Diagnostic, Diagnostics};
use im_plan::{Action, Ledger, PlanNode, Reason};
use im_project::Platform;
use im_registry::LocalImage;
use im_registry::ops::push::{PushOptions, push_image, push_platform_images};

// `build` and `plan` reach these through `push`.
pub use super::build_push::{BuildPush, after_build, before_build, mark_registry_keys};
pub use super::publish_report::Report;
use super::publish_report::{Result_, TagReport};
use super::{Context, Outcome, Prepared, plural, service};
use crate::cli::PushArgs;
use crate::printer::Printer;
use crate::registry::{self, Session, Target};

/// One image tag to publish (or combine, copy, promote).
#[derive(Debug, Clone)]
pub struct TagJob {
    pub image: String,
    /// The project's tag.
    pub tag: String,
    /// The tag written: `tag`, or `tag-ID` for a snapshot.
    pub published: String,
    /// Alias tags written after it (none for a snapshot).
    pub aliases: Vec<String>,
    pub platforms: Vec<Platform>,
    /// The per-platform archives, in `platforms` order (only where the job pushes from
    /// `dist/`).
    pub archives: Vec<PathBuf>,
    /// The multi-platform OCI layout `build` wrote, `dist/<name>/<tag>/image.tar` (only
    /// where the job pushes from `dist/`).
    pub layout: Option<PathBuf>,
    /// Other images this one is built on: their repositories lend blobs by mount.
    pub parents: Vec<String>,
}

impl TagJob {
    /// `name:tag` as the project names it.
    pub fn node(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// `published-linux-amd64`, the per-platform tag.
    pub fn platform_tag(&self, platform: &Platform) -> String {
        format!("{}-{}", self.published, platform.slug())
    }
}

/// The other managed images `image:tag` is built on.
fn parent_images(prepared: &Prepared, image: &str, tag: &str) -> Vec<String> {
    let Some(node) = prepared.graph.index_of(&im_graph::NodeId::new(image, tag)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = prepared
        .graph
        .parent_nodes(node)
        .into_iter()
        .map(|p| prepared.graph.nodes[p].image.clone())
        .filter(|name| name != image)
        .collect();
    names.dedup();
    names
}

/// The tag written for `tag` (`tag-ID` for a snapshot).
pub fn published_tag(tag: &str, snapshot_id: Option<&str>) -> String {
    match snapshot_id {
        Some(id) => format!("{tag}-{id}"),
        None => tag.to_owned(),
    }
}

/// The jobs for the user's targets: each selected image tag with its platforms (`--platform`
/// or its own) and aliases.
pub fn select_jobs(
    prepared: &Prepared,
    targets: &[String],
    platforms: Option<&[Platform]>,
) -> Result<Vec<TagJob>, Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, targets)?;
    let mut jobs = Vec::new();
    for &node in prepared.graph.order.iter().filter(|n| selected.contains(n)) {
        let id = &prepared.graph.nodes[node];
        let Some(image) = prepared.project.image(&id.image) else {
            continue;
        };
        let Some(tag) = image.tag(&id.tag) else {
            continue;
        };
        jobs.push(TagJob {
            image: id.image.clone(),
            tag: id.tag.clone(),
            published: published_tag(&id.tag, prepared.snapshot_id.as_deref()),
            aliases: if prepared.snapshot_id.is_some() {
                Vec::new()
            } else {
                image.aliases_of(&tag.name).map(str::to_owned).collect()
            },
            platforms: platforms.map_or_else(|| tag.platforms.clone(), <[Platform]>::to_vec),
            archives: Vec::new(),
            layout: None,
            parents: parent_images(prepared, &id.image, &id.tag),
        });
    }
    Ok(jobs)
}

/// Mounts into the job's repository the blobs its parents' repositories already hold (base
/// layers), so pushing does not upload them again. Returns how many were mounted.
async fn mount_from_parents(
    session: &Session,
    target: &Target,
    job: &TagJob,
    images: &[LocalImage],
) -> anyhow::Result<usize> {
    if job.parents.is_empty() {
        return Ok(0);
    }
    let client = session.client();
    let repository = target.repository(&job.image)?;
    let parents = job
        .parents
        .iter()
        .map(|name| target.repository(name))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut seen = BTreeSet::new();
    let mut mounted = 0;
    for image in images {
        for manifest in image.images() {
            for blob in manifest.blobs() {
                let digest = &im_registry::Digest::try_from(blob.digest())?;
                if !seen.insert(digest.to_string())
                    || client.blob_exists(&repository, digest).await?.is_some()
                {
                    continue;
                }
                for parent in &parents {
                    if client.blob_exists(parent, digest).await?.is_some()
                        && client.mount_blob(&repository, digest, parent).await?
                    {
                        mounted += 1;
                        break;
                    }
                }
            }
        }
    }
    Ok(mounted)
}

/// Pushes one job from its archives.
async fn push_job(
    session: &Session,
    target: &Target,
    job: &TagJob,
    platform_tags: bool,
    report: &mut TagReport,
) -> anyhow::Result<()> {
    let client = session.client();
    let images = job
        .archives
        .iter()
        .map(|archive| {
            LocalImage::open(archive).with_context(|| format!("reading {}", archive.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mounted = mount_from_parents(session, target, job, &images).await?;
    if platform_tags {
        for (image, platform) in images.iter().zip(&job.platforms) {
            let reference = target.reference(&job.image, &job.platform_tag(platform))?;
            let published = push_image(client, image, &reference, &PushOptions::default()).await?;
            report.add(&published);
        }
    } else {
        let reference = target.reference(&job.image, &job.published)?;
        let options = PushOptions {
            extra_tags: job.aliases.clone(),
            ..PushOptions::default()
        };
        let published = match images.as_slice() {
            [single] => push_image(client, single, &reference, &options).await?,
            several => match built_index(job, several)? {
                Some(layout) => push_image(client, &layout, &reference, &options).await?,
                None => push_platform_images(client, several, &reference, &options).await?,
            },
        };
        report.add(&published);
    }
    // The push found the mounted blobs present: count them as mounted.
    if mounted > 0 {
        report.blobs_mounted += mounted;
        report.blobs_present = report.blobs_present.saturating_sub(mounted);
        report.result = Result_::Pushed;
    }
    Ok(())
}

/// The multi-platform layout `build` wrote for `job`, when it holds exactly `images` (the
/// job's platforms, as built): pushing it sends the index `build` made, byte for byte, so the
/// registry serves the digest `build` recorded. `None` when there is none or it holds other
/// images (a push of some platforms only, or a layout older than an archive); the index is
/// then assembled with the same encoding.
fn built_index(job: &TagJob, images: &[LocalImage]) -> anyhow::Result<Option<LocalImage>> {
    let Some(path) = job.layout.as_deref().filter(|path| path.is_file()) else {
        return Ok(None);
    };
    let layout = LocalImage::open(path).with_context(|| format!("reading {}", path.display()))?;
    let held: BTreeSet<String> = layout
        .root()
        .children()
        .iter()
        .map(|child| child.digest().to_string())
        .collect();
    let wanted: BTreeSet<String> = images
        .iter()
        .map(|image| image.root().digest().to_string())
        .collect();
    if layout.root().children().len() != images.len() || held != wanted {
        tracing::debug!(
            layout = %path.display(),
            "the layout does not hold exactly the pushed platforms; assembling the index"
        );
        return Ok(None);
    }
    Ok(Some(layout))
}

/// Pushes `jobs` one after another, printing a line per image tag.
pub fn publish(
    session: &Session,
    target: &Target,
    jobs: &[TagJob],
    platform_tags: bool,
    printer: &Printer,
) -> Vec<TagReport> {
    let mut reports = Vec::new();
    for job in jobs {
        if session.interrupted() {
            break;
        }
        // With platform tags: the first one; the status line lists the others ("also ...").
        let tag = match job.platforms.first() {
            Some(platform) if platform_tags => job.platform_tag(platform),
            _ => job.published.clone(),
        };
        let shown = format!("{}/{}:{tag}", target.url(), job.image);
        let mut report = TagReport::new(job, shown);
        if let Err(error) = session.run(push_job(session, target, job, platform_tags, &mut report))
        {
            report.fail(&error);
        }
        report.status(printer, "Pushed");
        reports.push(report);
    }
    reports
}

/// The builder kind and build args the selected nodes were built with (from the ledger), so
/// push computes the same keys as the build did.
fn built_with(
    prepared: &Prepared,
    ledger: &Ledger,
    targets: &[String],
) -> (String, BTreeMap<String, String>) {
    let selected =
        im_plan::targets::select(&prepared.project, &prepared.graph, targets).unwrap_or_default();
    let prefixes: Vec<String> = selected
        .iter()
        .map(|&n| format!("{} ", prepared.graph.nodes[n]))
        .collect();
    ledger
        .nodes
        .iter()
        .find(|(name, _)| prefixes.iter().any(|p| name.starts_with(p.as_str())))
        .map_or_else(
            || {
                (
                    prepared
                        .project
                        .settings
                        .builder
                        .clone()
                        .unwrap_or_default(),
                    BTreeMap::new(),
                )
            },
            |(_, entry)| {
                let builder = if entry.builder.is_empty() {
                    // Recorded before the ledger kept the builder.
                    prepared
                        .project
                        .settings
                        .builder
                        .clone()
                        .unwrap_or_default()
                } else {
                    entry.builder.clone()
                };
                (builder, entry.build_args.clone())
            },
        )
}

/// Why a node cannot be pushed, for people.
fn not_pushable(node: &PlanNode) -> Diagnostic {
    let what = format!("{} ({})", node.id, node.platform);
    let diagnostic = if node.reasons.contains(&Reason::New) {
        Diagnostic::error(format!("{what} is not built"))
    } else if node.reasons.contains(&Reason::OutputMissing) {
        Diagnostic::error(format!(
            "{what} is recorded as built but {} is missing",
            node.output.display()
        ))
    } else {
        let reasons: Vec<String> = node.reasons.iter().map(ToString::to_string).collect();
        Diagnostic::error(format!(
            "{what} changed since it was built ({})",
            reasons.join(", ")
        ))
    };
    diagnostic.with_help(format!(
        "run `image-manager build {}` first, or `image-manager build --push`",
        node.id
    ))
}

/// Groups plan nodes into jobs (plan order), with their archives.
pub(super) fn jobs_from_nodes<'a>(
    prepared: &Prepared,
    dist: &std::path::Path,
    nodes: impl Iterator<Item = &'a PlanNode>,
) -> Vec<TagJob> {
    let mut jobs: Vec<TagJob> = Vec::new();
    for node in nodes {
        let name = node.id.to_string();
        let position = jobs.iter().position(|j| j.node() == name);
        let job = if let Some(at) = position {
            &mut jobs[at]
        } else {
            let aliases = if prepared.snapshot_id.is_some() {
                Vec::new()
            } else {
                prepared
                    .project
                    .image(&node.id.image)
                    .map(|image| image.aliases_of(&node.id.tag).map(str::to_owned).collect())
                    .unwrap_or_default()
            };
            jobs.push(TagJob {
                image: node.id.image.clone(),
                tag: node.id.tag.clone(),
                published: published_tag(&node.id.tag, prepared.snapshot_id.as_deref()),
                aliases,
                platforms: Vec::new(),
                archives: Vec::new(),
                layout: Some(
                    dist.join(&node.id.image)
                        .join(&node.id.tag)
                        .join("image.tar"),
                ),
                parents: parent_images(prepared, &node.id.image, &node.id.tag),
            });
            jobs.last_mut().expect("just pushed")
        };
        job.platforms.push(node.platform.clone());
        job.archives.push(dist.join(&node.output));
    }
    jobs
}

/// `image-manager push [targets]`.
pub fn run(context: &Context<'_>, args: &PushArgs) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let printer = context.printer;
    let prepared = match context.prepare_for_builds(args.snapshot.snapshot_id.as_deref()) {
        Ok(prepared) => prepared,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    printer.diagnostics(&prepared.warnings);
    let target = match registry::default_target(&prepared.project.settings) {
        Ok(target) => target,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    let platforms = match super::planning::parse_platforms(&args.platform) {
        Ok(platforms) => platforms,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    let ledger = Ledger::load(&context.dist)?;
    let (builder, build_args) = built_with(&prepared, &ledger, &args.targets);
    let mut options = im_plan::PlanOptions {
        targets: args.targets.clone(),
        with_deps: true,
        platforms,
        builder,
        build_args,
        ..im_plan::PlanOptions::default()
    };
    // The keys of what was built: external bases at the digests the build resolved.
    if let Err(diagnostics) = super::bases::resolve(
        context,
        &prepared,
        &mut options,
        super::bases::Mode::Offline,
        &mut None,
    )? {
        return Ok(Outcome::Invalid(diagnostics));
    }
    let plan = match im_plan::plan(
        &prepared.project,
        &prepared.graph,
        &prepared.rendered.tags,
        &ledger,
        &context.dist,
        &options,
    ) {
        Ok(plan) => plan,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    let mut problems = Diagnostics::new();
    for node in plan
        .nodes
        .iter()
        .filter(|n| n.selected && n.action == Action::Build)
    {
        problems.push(not_pushable(node));
    }
    if problems.has_errors() {
        return Ok(Outcome::Invalid(problems));
    }
    let jobs = jobs_from_nodes(
        &prepared,
        &context.dist,
        plan.nodes.iter().filter(|n| n.selected),
    );
    service::ensure_for(&context.root, &target.host, printer)?;
    let session = Session::new(&prepared.project.settings)?;
    printer.status(
        "Pushing",
        format!("{} to {}", plural(jobs.len(), "image tag"), target.url()),
    );
    let tags = publish(&session, &target, &jobs, args.platform_tags, printer);
    let report = Report::new(
        target.url(),
        prepared.snapshot_id.clone(),
        tags,
        started,
        &session,
    );
    report.finish(printer, args.format, "pushed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_tags_carry_the_id() {
        assert_eq!(published_tag("1.2.3", None), "1.2.3");
        assert_eq!(published_tag("1.2.3", Some("pr-42")), "1.2.3-pr-42");
        let job = TagJob {
            image: "app".into(),
            tag: "1.0".into(),
            published: "1.0-pr-1".into(),
            aliases: Vec::new(),
            platforms: Vec::new(),
            archives: Vec::new(),
            layout: None,
            parents: Vec::new(),
        };
        assert_eq!(
            job.platform_tag(&"linux/arm/v7".parse().unwrap()),
            "1.0-pr-1-linux-arm-v7"
        );
    }
}
