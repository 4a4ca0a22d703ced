//! Pushing jobs from `dist/`: the per-platform images, the multi-platform index `build`
//! wrote (byte for byte, so the registry serves the digest `build` recorded), then each alias;
//! blobs the parents' repositories hold are mounted, not uploaded; with `revision: true`, the
//! revision tag (see [`super::revision`]). The SBOMs `sbom` made of the pushed images are
//! attached to their platform manifests as OCI 1.1 referrers.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use im_diag::{Diagnostic, Diagnostics};
use im_plan::{Action, Ledger, PlanNode, Reason};
use im_registry::LocalImage;
use im_registry::ops::push::{PushOptions, push_image, push_platform_images};

use super::jobs::{TagJob, jobs_from_nodes};
use super::report::{Result_, TagReport};
use super::revision::revise;
use crate::bases::Mode;
use crate::context::{ExecContext, Reporter};
use crate::prepare::Prepared;
use crate::registry::{Session, Target};

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
        if job.revision {
            let repository = target.repository(&job.image)?;
            let revision = revise(
                client,
                session.revision_tags(),
                &repository,
                &job.published,
                &published.digest,
            )
            .await
            .with_context(|| format!("writing the revision tag of {}", job.published))?;
            report.add_revision(revision);
        }
    }
    // The SBOMs `sbom` made of exactly these images, as referrers of their manifests.
    let repository = target.repository(&job.image)?;
    let sboms = crate::sbom::attach_sboms(client, &repository, &images, &job.archives).await?;
    report.sboms_attached += sboms.attached;
    report.sboms_stale += sboms.stale;
    report.manifests_written += sboms.written;
    if sboms.written > 0 {
        report.result = Result_::Pushed;
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
    reporter: &dyn Reporter,
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
        report.status(reporter, "Pushed");
        reports.push(report);
    }
    reports
}

/// How a node was built: the builder's name in keys and the build args.
type BuiltWith = (String, BTreeMap<String, String>);

/// The selected image tags grouped by how the ledger says they were built, so push computes
/// each node's key as its build did (two images built with two builders each keep theirs).
/// Tags never built plan with the project's builder (and are then reported as not built).
fn built_with(
    prepared: &Prepared,
    ledger: &Ledger,
    targets: &[String],
) -> Result<BTreeMap<BuiltWith, Vec<String>>, Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, targets)?;
    let default = prepared
        .project
        .settings
        .builder
        .clone()
        .unwrap_or_default();
    let mut groups: BTreeMap<BuiltWith, Vec<String>> = BTreeMap::new();
    for &node in prepared.graph.order.iter().filter(|n| selected.contains(n)) {
        let name = prepared.graph.nodes[node].to_string();
        let prefix = format!("{name} ");
        let entry = ledger
            .nodes
            .range(prefix.clone()..)
            .take_while(|(entry, _)| entry.starts_with(&prefix))
            .map(|(_, entry)| entry)
            .next();
        let how = match entry {
            // Recorded before the ledger kept the builder.
            Some(entry) if entry.builder.is_empty() => (default.clone(), entry.build_args.clone()),
            Some(entry) => (entry.builder.clone(), entry.build_args.clone()),
            None => (default.clone(), BTreeMap::new()),
        };
        groups.entry(how).or_default().push(name);
    }
    Ok(groups)
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

/// What `push` sends: the selected nodes, each of which must be up to date (built with the
/// builder and build args the ledger recorded, external bases at the digests the build
/// resolved), grouped into jobs. Every node that is not is an error naming the fix.
pub fn local_jobs(
    context: &ExecContext<'_>,
    prepared: &Prepared,
    targets: &[String],
    platforms: Option<&[im_project::Platform]>,
) -> anyhow::Result<Vec<TagJob>> {
    let ledger = crate::planning::load_ledger(context)?;
    let mut nodes = Vec::new();
    for ((builder, build_args), names) in built_with(prepared, &ledger, targets)? {
        let options = im_plan::PlanOptions {
            targets: names,
            with_deps: true,
            platforms: platforms.map(<[_]>::to_vec),
            builder,
            build_args,
            ..im_plan::PlanOptions::default()
        };
        // The keys of what was built: external bases at the digests the build resolved.
        let (plan, _) = crate::planning::plan_with(
            context,
            prepared,
            &ledger,
            options,
            Mode::Offline,
            &mut None,
        )?;
        nodes.extend(plan.nodes.into_iter().filter(|n| n.selected));
    }
    // In build order, as one plan would list them.
    let order: std::collections::HashMap<String, usize> = prepared
        .graph
        .order
        .iter()
        .enumerate()
        .map(|(position, &node)| (prepared.graph.nodes[node].to_string(), position))
        .collect();
    nodes.sort_by_key(|n| order.get(&n.id.to_string()).copied());
    let mut problems = Diagnostics::new();
    for node in nodes.iter().filter(|n| n.action == Action::Build) {
        problems.push(not_pushable(node));
    }
    if problems.has_errors() {
        return Err(problems.into());
    }
    Ok(jobs_from_nodes(prepared, &context.dist, nodes.iter()))
}
