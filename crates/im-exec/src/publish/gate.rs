//! The registry side of `build --push` and `plan --registry-keys`: a node whose build key the
//! registry already holds is not built again (see [`before_build`]); after a successful
//! build, every image tag the build covered is pushed (see [`after_build`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use im_plan::{Action, Ledger, Plan, Reason};
use im_project::Platform;

use super::jobs::{TagJob, jobs_from_nodes, published_tag};
use super::push::publish;
use super::report::{Report, TagReport};
use crate::context::ExecContext;
use crate::plural;
use crate::prepare::Prepared;
use crate::registry::{self, Session, Target};

/// Where the registry holds a node: the main tag, the per-platform tag, or (for `plan`)
/// either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPlace {
    Tag,
    PlatformTag,
    Either,
}

/// Which nodes [`find_keys`] asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Those the plan would build (unless forced).
    ToBuild,
    /// Every node, whatever this machine's ledger says.
    Every,
}

/// Asks the registry, for the nodes `ask` names, whether it holds the node's build key.
/// Returns plan index → where it was found.
fn find_keys(
    session: &Session,
    target: &Target,
    prepared: &Prepared,
    plan: &Plan,
    place: KeyPlace,
    ask: Ask,
) -> anyhow::Result<BTreeMap<usize, im_registry::Reference>> {
    let mut queries = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        if ask == Ask::ToBuild
            && (node.action != Action::Build || node.reasons.contains(&Reason::Forced))
        {
            continue;
        }
        let tag = published_tag(&node.id.tag, prepared.snapshot_id.as_deref());
        let platform_tag = format!("{tag}-{}", node.platform.slug());
        let mut candidates = match place {
            KeyPlace::Tag => vec![tag],
            KeyPlace::PlatformTag => vec![platform_tag],
            KeyPlace::Either => vec![tag, platform_tag],
        };
        if prepared.snapshot_id.is_some() {
            // A snapshot has the key of the release build of the same inputs: what an
            // earlier pipeline promoted is as good as what this one built.
            candidates.push(node.id.tag.clone());
            if place != KeyPlace::Tag {
                candidates.push(format!("{}-{}", node.id.tag, node.platform.slug()));
            }
        }
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
    context: &ExecContext<'_>,
    prepared: &Prepared,
    plan: &mut Plan,
) -> anyhow::Result<BTreeMap<usize, String>> {
    let target = registry::default_target(&prepared.project.settings)?;
    let session = context.session(&prepared.project.settings)?;
    let found = find_keys(
        &session,
        &target,
        prepared,
        plan,
        KeyPlace::Either,
        Ask::ToBuild,
    )?;
    let mut marked = BTreeMap::new();
    for (i, reference) in found {
        let node = &mut plan.nodes[i];
        node.action = Action::UpToDate;
        node.reasons.clear();
        marked.insert(i, reference.to_string());
    }
    Ok(marked)
}

/// The image tags (`name:tag`) whose release tag in the default registry holds the build
/// key of every platform of `plan` (`generate-ci --registry-keys`: nothing of them needs a
/// job).
pub fn released_tags(
    context: &ExecContext<'_>,
    prepared: &Prepared,
    plan: &Plan,
) -> anyhow::Result<BTreeSet<String>> {
    let target = registry::default_target(&prepared.project.settings)?;
    let session = context.session(&prepared.project.settings)?;
    let found = find_keys(&session, &target, prepared, plan, KeyPlace::Tag, Ask::Every)?;
    let mut missing = BTreeSet::new();
    let mut tags = BTreeSet::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let id = node.id.to_string();
        if found.contains_key(&i) {
            tags.insert(id);
        } else {
            missing.insert(id);
        }
    }
    Ok(tags.difference(&missing).cloned().collect())
}

/// What `build --push` carries from before the build to after it.
pub struct BuildPush {
    pub target: Target,
    platform_tags: bool,
    /// Image tags wholly in the registry already (nothing of them is built or fetched).
    remote: Vec<TagJob>,
    /// Where the registry holds each node of `remote`: (`name:tag`, platform) → reference.
    found: BTreeMap<(String, Platform), im_registry::Reference>,
}

/// `build --push`, before building: nodes whose build key the registry already holds at the
/// tag this push writes are not built. One that a node still to build needs — as its parent,
/// or as a sibling platform of the same index — is fetched from the registry into
/// `dist/<name>/<tag>/<os>-<arch>/image.tar` and recorded in the ledger (so later plans
/// agree); the others are dropped from the plan and stay remote.
///
/// `target` is the default registry (the caller made sure it is reachable); `None` is
/// returned when the command was interrupted.
pub fn before_build(
    context: &ExecContext<'_>,
    session: &Session,
    prepared: &Prepared,
    target: Target,
    plan: &mut Plan,
    ledger: &mut Ledger,
    platform_tags: bool,
) -> anyhow::Result<Option<BuildPush>> {
    let reporter = context.reporter;
    let dist = context.dist.as_path();
    let place = if platform_tags {
        KeyPlace::PlatformTag
    } else {
        KeyPlace::Tag
    };
    let found = find_keys(session, &target, prepared, plan, place, Ask::ToBuild)?;
    if session.interrupted() {
        return Ok(None);
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
    let mut remote_at = BTreeMap::new();
    for (&i, reference) in &found {
        let node = &plan.nodes[i];
        let label = format!("{} ({})", node.id, node.platform);
        if !needed.contains(&i) {
            reporter.status(
                "In registry",
                &format!("{label}: {reference} has its build key; not built"),
            );
            remote.insert(i);
            // Per-platform tags are for the manifest job of the node a CI job builds; an
            // ancestor it only took from the registry has its own job (or none, when pruned).
            if !platform_tags || node.selected {
                remote_at.insert(
                    (node.id.to_string(), node.platform.clone()),
                    reference.clone(),
                );
            }
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
        ledger.record(dist, node, &digest.to_string(), std::time::Duration::ZERO)?;
        reporter.status(
            "Fetched",
            &format!("{label} from {reference}: it has the same build key, so it is not rebuilt"),
        );
        let node = &mut plan.nodes[i];
        node.action = Action::UpToDate;
        node.reasons.clear();
    }
    let remote_jobs = jobs_from_nodes(prepared, dist, remote.iter().map(|&i| &plan.nodes[i]));
    remove_nodes(plan, &remote);
    Ok(Some(BuildPush {
        target,
        platform_tags,
        remote: remote_jobs,
        found: remote_at,
    }))
}

impl BuildPush {
    /// How many nodes (image tag × platform) the registry already held, so were not built.
    pub fn in_registry(&self) -> usize {
        self.remote.iter().map(|job| job.platforms.len()).sum()
    }
}

impl BuildPush {
    /// Where the registry holds `job`'s platforms (in `job.platforms` order).
    fn sources(&self, job: &TagJob) -> Vec<&im_registry::Reference> {
        let node = job.node();
        job.platforms
            .iter()
            .filter_map(|platform| self.found.get(&(node.clone(), platform.clone())))
            .collect()
    }

    /// A whole image tag held by the registry with the right key: its tag (when the key
    /// was found elsewhere, such as the release tag for a snapshot) and its aliases point
    /// at it.
    fn tag_whole(
        &self,
        session: &Session,
        job: &TagJob,
    ) -> anyhow::Result<Vec<im_registry::ops::Published>> {
        let sources = self.sources(job);
        let Some(&source) = sources.first() else {
            return Ok(Vec::new());
        };
        if sources.iter().any(|other| *other != source) {
            anyhow::bail!(
                "the platforms of {} have their build keys in different tags ({}); rebuild it with --force",
                job.node(),
                sources
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut tags = vec![job.published.clone()];
        tags.extend(job.aliases.iter().cloned());
        let client = session.client();
        let published =
            session.run(async { im_registry::ops::tag::tag_image(client, source, &tags).await })?;
        Ok(vec![published])
    }

    /// Per-platform tags of an image tag whose platforms the registry holds with the right
    /// key somewhere else (the release tag, for a snapshot): `<published>-<os>-<arch>` is
    /// pointed at each platform's manifest, for the manifest job to join.
    fn tag_platforms(
        &self,
        session: &Session,
        job: &TagJob,
    ) -> anyhow::Result<Vec<im_registry::ops::Published>> {
        let node = job.node();
        let client = session.client();
        let mut out = Vec::new();
        for platform in &job.platforms {
            let Some(source) = self.found.get(&(node.clone(), platform.clone())) else {
                continue;
            };
            let wanted = job.platform_tag(platform);
            if source.tag() == Some(wanted.as_str()) {
                continue;
            }
            let published = session.run(async {
                let manifest =
                    im_registry::ops::inspect::select_platform(client, source, platform).await?;
                let by_digest = source.repository().digest(manifest.digest());
                im_registry::ops::tag::tag_image(client, &by_digest, &[wanted]).await
            })?;
            out.push(published);
        }
        Ok(out)
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
/// and what they needed; with per-platform tags, the targets only) and makes sure the aliases of image tags that stayed remote point
/// at them.
pub fn after_build(
    context: &ExecContext<'_>,
    session: &Session,
    prepared: &Prepared,
    plan: &Plan,
    state: &BuildPush,
) -> Report {
    let started = Instant::now();
    let reporter = context.reporter;
    // Per-platform tags (a CI job's) are written for the job's own targets only: a parent
    // it fetched has its own job, or none when the pipeline was pruned.
    let jobs = jobs_from_nodes(
        prepared,
        &context.dist,
        plan.nodes
            .iter()
            .filter(|node| !state.platform_tags || node.selected),
    );
    if !jobs.is_empty() {
        reporter.status(
            "Pushing",
            &format!(
                "{} to {}",
                plural(jobs.len(), "image tag"),
                state.target.url()
            ),
        );
    }
    let mut tags = publish(session, &state.target, &jobs, state.platform_tags, reporter);
    for job in &state.remote {
        if session.interrupted() {
            break;
        }
        let reference = format!("{}/{}:{}", state.target.url(), job.image, job.published);
        let mut report = TagReport::new(job, reference);
        let result = if state.platform_tags {
            state.tag_platforms(session, job)
        } else {
            state.tag_whole(session, job)
        };
        match result {
            Ok(published) => published.iter().for_each(|p| report.add(p)),
            Err(error) => report.fail(&error),
        }
        if job.revision && !state.platform_tags {
            super::revision::revise_report(
                session,
                &state.target,
                (&job.image, &job.published),
                &mut report,
            );
        }
        report.status(reporter, "Tagged");
        tags.push(report);
    }
    Report {
        registry: state.target.url(),
        snapshot_id: prepared.snapshot_id.clone(),
        tags,
        seconds: started.elapsed().as_secs_f64(),
        interrupted: session.interrupted(),
    }
}
