//! `image-manager push`: publish built images from `dist/` to the default registry — per
//! image tag, every platform's image, the multi-platform index under `name:tag`, then each
//! alias — and the registry side of `build --push` and `plan --registry-keys`: a node whose
//! build key the registry already holds is not built again (see [`before_build`]).
//!
//! What exists locally comes from the plan: a selected node must be up to date (its ledger
//! key matches its inputs and its archive exists), or push refuses before sending anything.
//! Tags of an image tag are written only after all its platforms are uploaded (the library's
//! publishing order); what the registry already has is not sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use im_diag::{Diagnostic, Diagnostics};
use im_plan::{Action, Ledger, LedgerEntry, Plan, PlanNode, Reason};
use im_project::Platform;
use im_registry::LocalImage;
use im_registry::ops::TransferStats;
use im_registry::ops::push::{PushOptions, push_image, push_platform_images};
use serde::Serialize;

use super::{Context, Outcome, Prepared, plural, service};
use crate::cli::{Format, PushArgs};
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
        format!(
            "{}-{}",
            self.published,
            registry::platform(platform).tag_suffix()
        )
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
            parents: parent_images(prepared, &id.image, &id.tag),
        });
    }
    Ok(jobs)
}

/// How one image tag ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Result_ {
    /// Something was written.
    Pushed,
    /// The registry had everything already.
    UpToDate,
    /// The source of a copy does not exist (sync).
    Missing,
    Failed,
}

impl Result_ {
    fn verb(self) -> &'static str {
        match self {
            Result_::Pushed => "Written",
            Result_::UpToDate => "Up to date",
            Result_::Missing => "Missing",
            Result_::Failed => "Failed",
        }
    }
}

/// What happened to one image tag.
#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    /// `name:tag` in the project.
    pub node: String,
    /// The reference written (`registry/repository:tag`).
    pub reference: String,
    pub result: Result_,
    pub digest: Option<String>,
    pub media_type: Option<String>,
    /// Every tag written or confirmed, the main one first.
    pub tags: Vec<String>,
    pub platforms: Vec<String>,
    pub blobs_uploaded: usize,
    pub blobs_mounted: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
    pub manifests_written: usize,
    pub manifests_present: usize,
    pub error: Option<String>,
}

impl TagReport {
    pub fn new(job: &TagJob, reference: String) -> Self {
        Self {
            node: job.node(),
            reference,
            result: Result_::UpToDate,
            digest: None,
            media_type: None,
            tags: Vec::new(),
            platforms: job.platforms.iter().map(ToString::to_string).collect(),
            blobs_uploaded: 0,
            blobs_mounted: 0,
            blobs_present: 0,
            bytes_uploaded: 0,
            manifests_written: 0,
            manifests_present: 0,
            error: None,
        }
    }

    /// Adds what one library call did.
    pub fn add(&mut self, published: &im_registry::ops::Published) {
        let TransferStats {
            blobs_uploaded,
            blobs_mounted,
            blobs_present,
            bytes_uploaded,
            manifests_written,
            manifests_present,
        } = published.stats;
        self.blobs_uploaded += blobs_uploaded;
        self.blobs_mounted += blobs_mounted;
        self.blobs_present += blobs_present;
        self.bytes_uploaded += bytes_uploaded;
        self.manifests_written += manifests_written;
        self.manifests_present += manifests_present;
        self.tags.extend(published.tags.iter().cloned());
        if self.digest.is_none() {
            self.digest = Some(published.digest.to_string());
            self.media_type = Some(published.media_type.clone());
        }
        if self.blobs_uploaded + self.blobs_mounted + self.manifests_written > 0 {
            self.result = Result_::Pushed;
        }
    }

    pub fn fail(&mut self, error: &anyhow::Error) {
        self.result = Result_::Failed;
        self.error = Some(format!("{error:#}"));
    }

    /// The status line for people; `written` is the verb for a tag that was written
    /// (`Pushed`, `Copied`, ...).
    pub fn status(&self, printer: &Printer, written: &str) {
        match self.result {
            Result_::Failed => printer.error(format!(
                "{}: {}",
                self.reference,
                self.error.as_deref().unwrap_or("failed")
            )),
            Result_::Missing => printer.status(
                self.result.verb(),
                format!("{} ({})", self.node, self.error.as_deref().unwrap_or("")),
            ),
            Result_::Pushed | Result_::UpToDate => {
                let mut details = Vec::new();
                if let Some(digest) = &self.digest {
                    details.push(short_digest(digest));
                }
                if self.result == Result_::Pushed {
                    details.push(format!(
                        "{} uploaded ({}), {} mounted, {} already there",
                        plural(self.blobs_uploaded, "blob"),
                        human_bytes(self.bytes_uploaded),
                        self.blobs_mounted,
                        self.blobs_present
                    ));
                }
                let extra: Vec<&str> = self.tags.iter().skip(1).map(String::as_str).collect();
                if !extra.is_empty() {
                    details.push(format!("also {}", extra.join(", ")));
                }
                let verb = if self.result == Result_::Pushed {
                    written
                } else {
                    self.result.verb()
                };
                let details = if details.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", details.join("; "))
                };
                printer.status(verb, format!("{} → {}{details}", self.node, self.reference));
            }
        }
    }
}

/// `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> String {
    digest.chars().take(19).collect()
}

/// `1.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)] // display only
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What a publishing command did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub registry: String,
    pub snapshot_id: Option<String>,
    pub tags: Vec<TagReport>,
    pub seconds: f64,
    pub interrupted: bool,
}

impl Report {
    /// The report of a registry command that started at `started` and ran in `session`.
    pub fn new(
        registry: String,
        snapshot_id: Option<String>,
        tags: Vec<TagReport>,
        started: Instant,
        session: &Session,
    ) -> Self {
        Self {
            registry,
            snapshot_id,
            tags,
            seconds: started.elapsed().as_secs_f64(),
            interrupted: session.interrupted(),
        }
    }

    pub fn count(&self, result: Result_) -> usize {
        self.tags.iter().filter(|t| t.result == result).count()
    }

    /// Prints the summary (text) or the report (json) and turns it into an outcome; `done`
    /// names what happened to written tags (`pushed`, `copied`, ...).
    pub fn finish(&self, printer: &Printer, format: Format, done: &str) -> anyhow::Result<Outcome> {
        match format {
            Format::Json => printer.json(self)?,
            Format::Text => {
                let missing = self.count(Result_::Missing);
                printer.status(
                    "Finished",
                    format!(
                        "{} {done}, {} up to date, {} failed{} in {:.1}s ({})",
                        self.count(Result_::Pushed),
                        self.count(Result_::UpToDate),
                        self.count(Result_::Failed),
                        if missing > 0 {
                            format!(", {missing} missing")
                        } else {
                            String::new()
                        },
                        self.seconds,
                        self.registry,
                    ),
                );
            }
        }
        Ok(self.outcome())
    }

    pub fn outcome(&self) -> Outcome {
        if self.interrupted {
            Outcome::Interrupted
        } else if self.count(Result_::Failed) > 0 {
            Outcome::Failed
        } else {
            Outcome::Success
        }
    }
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
                let digest = blob.digest();
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
            _ => push_platform_images(client, &images, &reference, &options).await?,
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
        let shown = if platform_tags {
            format!(
                "{}/{}:{}-<platform>",
                target.url(),
                job.image,
                job.published
            )
        } else {
            format!("{}/{}:{}", target.url(), job.image, job.published)
        };
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
fn jobs_from_nodes<'a>(
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

/// Where the registry holds a node: the main tag, the per-platform tag, or (for `plan`)
/// either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlace {
    Tag,
    PlatformTag,
    Either,
}

/// Asks the registry, for every node the plan would build (unless forced), whether it holds
/// the node's build key. Returns plan index → where it was found.
fn find_keys(
    session: &Session,
    target: &Target,
    prepared: &Prepared,
    plan: &Plan,
    place: KeyPlace,
) -> anyhow::Result<BTreeMap<usize, im_registry::Reference>> {
    let mut queries = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        if node.action != Action::Build || node.reasons.contains(&Reason::Forced) {
            continue;
        }
        let tag = published_tag(&node.id.tag, prepared.snapshot_id.as_deref());
        let platform_tag = format!("{tag}-{}", registry::platform(&node.platform).tag_suffix());
        let candidates = match place {
            KeyPlace::Tag => vec![tag],
            KeyPlace::PlatformTag => vec![platform_tag],
            KeyPlace::Either => vec![tag, platform_tag],
        };
        for candidate in candidates {
            queries.push((i, target.reference(&node.id.image, &candidate)?));
        }
    }
    let client = session.client();
    let found: Vec<(usize, im_registry::Reference, Option<String>)> = session.run(async {
        futures_util::stream::iter(queries.into_iter().map(|(i, reference)| async move {
            let key = registry::build_key(client, &reference, &plan.nodes[i].platform).await;
            key.map(|key| (i, reference, key))
        }))
        .buffered(client.concurrency())
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
    })?;
    let mut places = BTreeMap::new();
    for (i, reference, key) in found {
        if key.as_deref() == Some(plan.nodes[i].key.as_str()) {
            places.entry(i).or_insert(reference);
        }
    }
    Ok(places)
}

/// `plan --registry-keys`: marks nodes whose key the default registry holds (at `name:tag`
/// or `name:tag-os-arch`) as up to date. Returns plan index → where the key was found.
pub fn mark_registry_keys(
    prepared: &Prepared,
    plan: &mut Plan,
) -> anyhow::Result<Result<BTreeMap<usize, String>, Diagnostics>> {
    let target = match registry::default_target(&prepared.project.settings) {
        Ok(target) => target,
        Err(diagnostics) => return Ok(Err(diagnostics)),
    };
    let session = Session::new(&prepared.project.settings)?;
    let found = find_keys(&session, &target, prepared, plan, KeyPlace::Either)?;
    let mut marked = BTreeMap::new();
    for (i, reference) in found {
        let node = &mut plan.nodes[i];
        node.action = Action::UpToDate;
        node.reasons.clear();
        marked.insert(i, reference.to_string());
    }
    Ok(Ok(marked))
}

/// What `build --push` carries from before the build to after it.
pub struct BuildPush {
    session: Session,
    target: Target,
    platform_tags: bool,
    /// Image tags wholly in the registry already (nothing of them is built or fetched).
    remote: Vec<TagJob>,
}

/// `build --push`, before building: nodes whose build key the registry already holds at the
/// tag this push writes are not built. One that a node still to build needs — as its parent,
/// or as a sibling platform of the same index — is fetched from the registry into
/// `dist/<name>/<tag>/<os>-<arch>/image.tar` and recorded in the ledger (so later plans
/// agree); the others are dropped from the plan and stay remote.
pub fn before_build(
    context: &Context<'_>,
    prepared: &Prepared,
    dist: &std::path::Path,
    plan: &mut Plan,
    ledger: &mut Ledger,
    platform_tags: bool,
) -> anyhow::Result<Result<BuildPush, Outcome>> {
    let printer = context.printer;
    let target = match registry::default_target(&prepared.project.settings) {
        Ok(target) => target,
        Err(diagnostics) => return Ok(Err(Outcome::Invalid(diagnostics))),
    };
    service::ensure_for(&context.root, &target.host, printer)?;
    let session = Session::new(&prepared.project.settings)?;
    let place = if platform_tags {
        KeyPlace::PlatformTag
    } else {
        KeyPlace::Tag
    };
    let found = find_keys(&session, &target, prepared, plan, place)?;
    if session.interrupted() {
        return Ok(Err(Outcome::Interrupted));
    }
    let to_build: BTreeSet<usize> = (0..plan.nodes.len())
        .filter(|i| plan.nodes[*i].action == Action::Build && !found.contains_key(i))
        .collect();
    // Needed locally: a parent of a node to build, or (for an index) a sibling platform.
    let needed: BTreeSet<usize> = found
        .keys()
        .copied()
        .filter(|&i| {
            to_build.iter().any(|&b| {
                let other = &plan.nodes[b];
                other.parents.contains(&i) || (!platform_tags && other.id == plan.nodes[i].id)
            })
        })
        .collect();
    let mut remote = BTreeSet::new();
    for (&i, reference) in &found {
        let node = &plan.nodes[i];
        let label = format!("{} ({})", node.id, node.platform);
        if !needed.contains(&i) {
            printer.status(
                "In registry",
                format!("{label}: {reference} has its build key; not built"),
            );
            remote.insert(i);
            continue;
        }
        let output = dist.join(&node.output);
        let digest = session
            .run(registry::fetch_archive(
                session.client(),
                reference,
                &node.platform,
                &output,
                &node.id.to_string(),
            ))
            .with_context(|| format!("fetching {label} from {reference}"))?;
        im_plan::ledger::record_inputs(dist, &node.key, &node.inputs)?;
        ledger.nodes.insert(
            im_plan::ledger::entry_name(&node.id.to_string(), &node.platform.to_string()),
            LedgerEntry::new(node, digest.to_string(), std::time::Duration::ZERO),
        );
        ledger.save(dist)?;
        printer.status(
            "Fetched",
            format!("{label} from {reference}: it has the same build key, so it is not rebuilt"),
        );
        let node = &mut plan.nodes[i];
        node.action = Action::UpToDate;
        node.reasons.clear();
    }
    let remote_jobs = jobs_from_nodes(prepared, dist, remote.iter().map(|&i| &plan.nodes[i]));
    remove_nodes(plan, &remote);
    Ok(Ok(BuildPush {
        session,
        target,
        platform_tags,
        remote: remote_jobs,
    }))
}

impl BuildPush {
    /// Cancels the push's transfers (the build's Ctrl-C handler calls it).
    pub fn cancellation(&self) -> im_registry::CancellationToken {
        self.session.client().cancellation().clone()
    }
}

/// Drops `remove` from the plan, renumbering the parent links of the rest.
fn remove_nodes(plan: &mut Plan, remove: &BTreeSet<usize>) {
    if remove.is_empty() {
        return;
    }
    let mut renumbered = vec![None; plan.nodes.len()];
    let mut next = 0;
    for (i, slot) in renumbered.iter_mut().enumerate() {
        if !remove.contains(&i) {
            *slot = Some(next);
            next += 1;
        }
    }
    let nodes = std::mem::take(&mut plan.nodes);
    plan.nodes = nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !remove.contains(i))
        .map(|(_, mut node)| {
            node.parents = node.parents.iter().filter_map(|&p| renumbered[p]).collect();
            node.parent_refs = node
                .parent_refs
                .into_iter()
                .filter_map(|(reference, p)| renumbered[p].map(|q| (reference, q)))
                .collect();
            node
        })
        .collect();
}

/// `build --push`, after a successful build: pushes every image tag of the plan (the targets
/// and what they needed) and makes sure the aliases of image tags that stayed remote point
/// at them.
pub fn after_build(
    context: &Context<'_>,
    prepared: &Prepared,
    plan: &Plan,
    state: &BuildPush,
) -> Report {
    let started = Instant::now();
    let printer = context.printer;
    let dist = fs_err::canonicalize(&context.dist).unwrap_or_else(|_| context.dist.clone());
    let jobs = jobs_from_nodes(prepared, &dist, plan.nodes.iter());
    if !jobs.is_empty() {
        printer.status(
            "Pushing",
            format!(
                "{} to {}",
                plural(jobs.len(), "image tag"),
                state.target.url()
            ),
        );
    }
    let mut tags = publish(
        &state.session,
        &state.target,
        &jobs,
        state.platform_tags,
        printer,
    );
    for job in &state.remote {
        if state.session.interrupted() {
            break;
        }
        let reference = format!("{}/{}:{}", state.target.url(), job.image, job.published);
        let mut report = TagReport::new(job, reference);
        if !state.platform_tags {
            // The tag is there with the right key; make sure its aliases point at it.
            let client = state.session.client();
            let result = state.session.run(async {
                let source = state.target.reference(&job.image, &job.published)?;
                let mut tags = vec![job.published.clone()];
                tags.extend(job.aliases.iter().cloned());
                Ok::<_, anyhow::Error>(
                    im_registry::ops::tag::tag_image(client, &source, &tags).await?,
                )
            });
            match result {
                Ok(published) => report.add(&published),
                Err(error) => report.fail(&error),
            }
        }
        report.status(printer, "Tagged");
        tags.push(report);
    }
    Report {
        registry: state.target.url(),
        snapshot_id: prepared.snapshot_id.clone(),
        tags,
        seconds: started.elapsed().as_secs_f64(),
        interrupted: state.session.interrupted(),
    }
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
            parents: Vec::new(),
        };
        assert_eq!(
            job.platform_tag(&"linux/arm/v7".parse().unwrap()),
            "1.0-pr-1-linux-arm-v7"
        );
    }

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
