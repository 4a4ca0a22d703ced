//! `outdated`: which external bases moved upstream since the last build, and which managed
//! nodes that rebuilds.
//!
//! Every external base the selection needs, and every base its `packages.lock` files pin, is
//! resolved again through the registries in one round (mirrors first, as for builds:
//! [`crate::bases::resolve_references`], which also records the answers in
//! `dist/bases.json`), and each platform's digest is compared with the digest the node used
//! last ([`last_used`]: the ledger), each pinned base's with the digest its locks pin. A base
//! that moved is reported with the nodes built directly on it and everything built on those.
//! A base whose registry cannot be reached is reported apart: its nodes stay as they are.

use std::collections::{BTreeMap, BTreeSet};

use im_diag::error_chain;
use im_graph::NodeId;
use im_plan::{Ledger, PlanOptions};
use im_project::Platform;
use serde::Serialize;

use crate::bases::{self, Bases, Mode};
use crate::context::ExecContext;
use crate::planning;
use crate::prepare::Prepared;
use crate::registry::Session;

/// Where the digest a node used last is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Since {
    /// The node's last build (`dist/ledger.json`).
    Ledger,
}

/// One platform of a base that moved.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub platform: String,
    /// The digest used last.
    pub was: String,
    /// The digest the tag points at now.
    pub now: String,
    pub since: Since,
}

/// An external base whose tag points at another image than the one used last.
#[derive(Debug, Clone, Serialize)]
pub struct MovedBase {
    /// The reference as the Dockerfiles write it.
    pub reference: String,
    pub platforms: Vec<Move>,
    /// The nodes (`name:tag`) built directly on it.
    pub direct: Vec<String>,
    /// Every node a refresh rebuilds: `direct` and everything built on them, in build order.
    pub nodes: Vec<String>,
}

/// A base pinned by a `packages.lock` whose tag moved on.
#[derive(Debug, Clone, Serialize)]
pub struct LockedBase {
    /// The base as the Dockerfiles write it (the lock's key).
    pub reference: String,
    /// The lock files that pin it.
    pub locks: Vec<String>,
    /// The digest the locks pin.
    pub locked: String,
    /// The digest the tag points at now.
    pub now: String,
    /// The nodes whose `FROM` is pinned to it, and everything built on them, in build order:
    /// what rebuilds once the lock is updated.
    pub nodes: Vec<String>,
}

/// An external base that could not be checked.
#[derive(Debug, Clone, Serialize)]
pub struct Unchecked {
    pub reference: String,
    /// Why, when the registry said (a base kept at an earlier digest has no error here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The nodes built on it, which stay as they are.
    pub nodes: Vec<String>,
}

/// What `outdated` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How many external bases were compared (asked about and answered).
    pub checked: usize,
    pub outdated: Vec<MovedBase>,
    /// Bases a `packages.lock` pins whose tag points at another image now: `lock --update`
    /// moves the pin (a refresh cannot: the `FROM` names the locked digest).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<LockedBase>,
    /// Bases whose registry could not be reached.
    pub unreachable: Vec<Unchecked>,
    /// Bases the registry answered about with an error (not found, refused, no platform).
    pub failed: Vec<Unchecked>,
    /// `source:` images whose ref moved since the last build, or with newer tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<crate::source::outdated::MovedSource>,
    /// `source:` repositories that could not be asked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable_sources: Vec<crate::source::outdated::UnreachableSource>,
}

impl Report {
    /// Writes `dist/outdated.json` for `report`'s outdated-bases page: each base that moved,
    /// the digests used last and now (per platform when there are several), and the image
    /// tags a refresh rebuilds.
    pub fn record(&self, dist: &std::path::Path) -> std::io::Result<()> {
        let digests = |pick: fn(&Move) -> &str, base: &MovedBase| -> String {
            match base.platforms.as_slice() {
                [one] => pick(one).to_owned(),
                many => many
                    .iter()
                    .map(|m| format!("{} {}", m.platform, pick(m)))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        };
        let bases: Vec<serde_json::Value> = self
            .outdated
            .iter()
            .map(|base| {
                serde_json::json!({
                    "reference": base.reference,
                    "current": digests(|m| m.was.as_str(), base),
                    "latest": digests(|m| m.now.as_str(), base),
                    "affected": base.nodes,
                })
            })
            .chain(self.locked.iter().map(|base| {
                serde_json::json!({
                    "reference": format!("{} (pinned in {})", base.reference, base.locks.join(", ")),
                    "current": base.locked,
                    "latest": base.now,
                    "affected": base.nodes,
                })
            }))
            .chain(self.sources.iter().map(|source| {
                serde_json::json!({
                    "reference": format!("{} ({} {})", source.git, source.kind, source.reference),
                    "current": source.built,
                    "latest": source.now.clone().unwrap_or_else(|| source.newer_tags.join(", ")),
                    "affected": source.nodes,
                })
            }))
            .collect();
        fs_err::create_dir_all(dist)?;
        let text = serde_json::to_string_pretty(&serde_json::json!({ "bases": bases }))
            .map_err(std::io::Error::other)?;
        im_render::output::write_atomic(
            &dist.join(crate::report::OUTDATED_FILE),
            text.as_bytes(),
            Some(0o644),
            None,
        )
    }

    /// Every node a refresh rebuilds, each once, as `name:tag`.
    pub fn nodes(&self) -> BTreeSet<String> {
        self.outdated
            .iter()
            .flat_map(|base| base.nodes.iter().cloned())
            .chain(self.sources.iter().flat_map(|s| s.nodes.iter().cloned()))
            .collect()
    }

    /// Whether a refresh has something to rebuild.
    pub fn moved(&self) -> bool {
        !self.outdated.is_empty() || self.sources.iter().any(|s| s.now.is_some())
    }

    /// Whether some base or source could not be checked.
    pub fn incomplete(&self) -> bool {
        !self.unreachable.is_empty()
            || !self.failed.is_empty()
            || !self.unreachable_sources.is_empty()
    }
}

/// The digest `reference` had on `platform` when `node` last used it, and where that is
/// recorded. The one place that says what a node used: the ledger; a digest pinned by a lock
/// file is another source and belongs here.
pub fn last_used(
    ledger: &Ledger,
    node: &NodeId,
    platform: &Platform,
    reference: &str,
) -> Option<(String, Since)> {
    let entry = ledger.nodes.get(&im_plan::ledger::entry_name(
        &node.to_string(),
        &platform.to_string(),
    ))?;
    entry
        .bases
        .get(reference)
        .map(|digest| (digest.clone(), Since::Ledger))
}

/// Resolves the external bases of the nodes `options` selects (and their ancestors) and
/// compares each with what those nodes used last. Returns the report, the resolution (with
/// its warnings) and the registry session it used.
pub fn check(
    context: &ExecContext<'_>,
    prepared: &Prepared,
    mut options: PlanOptions,
) -> anyhow::Result<(Report, Bases, Option<Session>)> {
    options.snapshot_id.clone_from(&prepared.snapshot_id);
    let ledger = planning::load_ledger(context)?;
    let project = &prepared.project;
    let graph = &prepared.graph;
    let (_, needed) = im_plan::selection(project, graph, &options)?;
    let pinned = pinned_bases(prepared, &needed);
    // One registry round, and one write of `dist/bases.json`, for the bases the Dockerfiles
    // name and those the locks pin.
    let mut wanted = im_plan::external_bases(project, graph, &options)?;
    for (base, pin) in &pinned {
        wanted
            .entry(base.clone())
            .or_default()
            .extend(pin.platforms.iter().cloned());
    }
    let mut session = None;
    let bases = bases::resolve_references(
        context,
        &project.settings,
        &wanted,
        Mode::Online,
        &mut session,
    )?;

    let mut users: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (base, pin) in &pinned {
        users.entry(base).or_default().extend(&pin.nodes);
    }
    let mut moved: BTreeMap<&str, (BTreeMap<String, Move>, BTreeSet<usize>)> = BTreeMap::new();
    for &node in &needed {
        let id = &graph.nodes[node];
        let Some(tag) = project.tag_of(&id.image, &id.tag) else {
            continue;
        };
        let platforms = options.platforms.as_ref().unwrap_or(&tag.platforms);
        for external in &graph.externals[node] {
            let reference = external.reference.as_str();
            users.entry(reference).or_default().insert(node);
            // Pinned by digest in the Dockerfile: it cannot move; not asked: nothing to say.
            if external.digest.is_some() || bases.unreachable.contains(reference) {
                continue;
            }
            for platform in platforms {
                let Some(now) = bases.resolution.digest(reference, platform) else {
                    continue;
                };
                let Some((was, since)) = last_used(&ledger, id, platform, reference) else {
                    continue;
                };
                if was != now {
                    let (moves, direct) = moved.entry(reference).or_default();
                    moves.insert(
                        platform.to_string(),
                        Move {
                            platform: platform.to_string(),
                            was,
                            now: now.to_owned(),
                            since,
                        },
                    );
                    direct.insert(node);
                }
            }
        }
    }

    let names = |nodes: &BTreeSet<usize>| -> Vec<String> {
        graph
            .order
            .iter()
            .filter(|node| nodes.contains(node))
            .map(|&node| graph.nodes[node].to_string())
            .collect()
    };
    let outdated = moved
        .into_iter()
        .map(|(reference, (moves, direct))| {
            let all: BTreeSet<usize> = im_plan::targets::with_descendants(graph, &direct)
                .intersection(&needed)
                .copied()
                .collect();
            MovedBase {
                reference: reference.to_owned(),
                platforms: moves.into_values().collect(),
                direct: names(&direct),
                nodes: names(&all),
            }
        })
        .collect();
    let unchecked = |reference: &str, error: Option<String>| Unchecked {
        reference: reference.to_owned(),
        error,
        nodes: users.get(reference).map(&names).unwrap_or_default(),
    };
    let unreachable: Vec<Unchecked> = bases
        .unreachable
        .iter()
        .map(|reference| {
            let error = bases
                .resolution
                .failed
                .get(reference)
                .map(|error| error_chain(error));
            unchecked(reference, error)
        })
        .collect();
    let failed: Vec<Unchecked> = bases
        .resolution
        .failed
        .iter()
        .filter(|(reference, _)| !bases.unreachable.contains(*reference))
        .map(|(reference, error)| unchecked(reference, Some(error_chain(error))))
        .collect();
    let checked = users.len().saturating_sub(unreachable.len() + failed.len());
    let locked = pinned
        .into_iter()
        .filter(|(base, _)| !bases.unreachable.contains(base))
        .filter_map(|(base, pin)| {
            let now = &bases.resolution.resolved.get(&base)?.digest;
            (*now != pin.digest).then(|| LockedBase {
                locks: pin.locks.into_iter().collect(),
                locked: pin.digest,
                now: now.clone(),
                nodes: names(&im_plan::targets::with_descendants(graph, &pin.nodes)),
                reference: base,
            })
        })
        .collect();
    let (sources, unreachable_sources) =
        crate::source::outdated::check(prepared, &ledger, &context.dist, &needed);
    let report = Report {
        checked,
        outdated,
        locked,
        unreachable,
        failed,
        sources,
        unreachable_sources,
    };
    Ok((report, bases, session))
}

/// One base as the locks pin it.
struct Pinned {
    platforms: BTreeSet<Platform>,
    digest: String,
    locks: BTreeSet<String>,
    /// The nodes whose `FROM` is pinned to it.
    nodes: BTreeSet<usize>,
}

/// The bases the `packages.lock` files of the `needed` nodes pin, by reference as the
/// Dockerfiles write it.
fn pinned_bases(prepared: &Prepared, needed: &BTreeSet<usize>) -> BTreeMap<String, Pinned> {
    let graph = &prepared.graph;
    let project = &prepared.project;
    let mut pinned: BTreeMap<String, Pinned> = BTreeMap::new();
    for tag in &prepared.rendered.tags {
        let Some(pins) = &tag.pins else {
            continue;
        };
        let Some(node) = graph.index_of(&NodeId::new(&tag.image, &tag.tag)) else {
            continue;
        };
        if !needed.contains(&node) {
            continue;
        }
        let platforms = project
            .tag_of(&tag.image, &tag.tag)
            .map(|t| t.platforms.clone())
            .unwrap_or_default();
        for (pin, digest) in &pins.pins {
            let Some(base) = pin.strip_prefix("FROM ") else {
                continue;
            };
            let entry = pinned.entry(base.to_owned()).or_insert_with(|| Pinned {
                platforms: BTreeSet::new(),
                digest: digest.clone(),
                locks: BTreeSet::new(),
                nodes: BTreeSet::new(),
            });
            entry.platforms.extend(platforms.iter().cloned());
            entry.locks.insert(pins.lock.display().to_string());
            entry.nodes.insert(node);
        }
    }
    pinned
}
