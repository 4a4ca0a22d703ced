//! `history`: what the ledger knows of each node — its last build (when, with which key, the
//! digest, builder, external bases and time taken) and the builds that failed since, with when
//! a scheduled run tries it again — and that back-off itself ([`back_off`]): a node that
//! failed N times in a row with the same key is left alone by scheduled runs for 2^N hours.
//! With the registry ([`read_registry`]) it also says what the default registry holds under
//! each tag: what this or another machine pushed, and whether it is the ledger's build.

use std::collections::BTreeMap;

use im_diag::Diagnostics;
use im_plan::ledger::entry_name;
use im_plan::{Action, Ledger, Plan};
use serde::Serialize;

use crate::prepare::Prepared;
use crate::steps::rfc3339;

/// One node on one platform.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub node: String,
    pub platform: String,
    /// Its last successful build, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built: Option<Built>,
    /// The builds that failed since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failed>,
    /// What the default registry holds under the tag (`history --registry`): what this or
    /// another machine pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<Pushed>,
}

/// The image a registry holds under a node's tag, for one platform.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub reference: String,
    /// Its build key label; `None` when the registry has no such tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its `org.opencontainers.image.created` label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Whether it has the key of the ledger's last build.
    pub same_as_built: bool,
}

/// Fills in [`Entry::registry`]: the build key and creation time labels of each node's tag
/// in the default registry, for its platform.
pub fn read_registry(
    context: &crate::ExecContext<'_>,
    prepared: &Prepared,
    entries: &mut [Entry],
) -> anyhow::Result<()> {
    let settings = &prepared.project.settings;
    let target = crate::registry::default_target(settings)?;
    let session = context.session(settings)?;
    for entry in entries {
        let (image, tag) = entry.node.split_once(':').expect("a node is name:tag");
        let reference = target.reference(image, tag)?;
        let platform: im_project::Platform = entry
            .platform
            .parse()
            .map_err(|_| anyhow::anyhow!("`{}` is not a platform", entry.platform))?;
        let label = |key: &str| {
            session
                .run(im_registry::ops::inspect::read_metadata(
                    session.client(),
                    &reference,
                    key,
                    Some(&platform),
                ))
                .map_err(|error| {
                    anyhow::anyhow!("reading {reference}: {}", im_diag::error_chain(&error))
                })
        };
        let key = label(crate::registry::BUILD_KEY_LABEL)?;
        let created = match key {
            Some(_) => label("org.opencontainers.image.created")?,
            None => None,
        };
        entry.registry = Some(Pushed {
            reference: reference.to_string(),
            same_as_built: key.is_some() && entry.built.as_ref().map(|b| &b.key) == key.as_ref(),
            key,
            created,
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Built {
    pub at: String,
    pub key: String,
    pub digest: String,
    pub builder: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bases: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    /// How many builds with `key` failed in a row.
    pub count: u32,
    pub key: String,
    /// When the last one failed.
    pub at: String,
    pub error: String,
    /// When scheduled runs (`build --refresh-bases`) try it again.
    pub retry_after: String,
    /// Whether that is still to come.
    pub backing_off: bool,
}

fn time(epoch: i64) -> String {
    rfc3339(epoch).unwrap_or_else(|| epoch.to_string())
}

/// The history of the nodes `targets` name (every node when empty), in build order, each on
/// every platform of its tag.
pub fn history(
    prepared: &Prepared,
    ledger: &Ledger,
    targets: &[String],
    now: i64,
) -> Result<Vec<Entry>, Diagnostics> {
    let graph = &prepared.graph;
    let selected = im_plan::targets::select(&prepared.project, graph, targets)?;
    let mut out = Vec::new();
    for &node in graph.order.iter().filter(|n| selected.contains(n)) {
        let id = &graph.nodes[node];
        let Some(tag) = prepared.project.tag_of(&id.image, &id.tag) else {
            continue;
        };
        for platform in &tag.platforms {
            let name = entry_name(&id.to_string(), &platform.to_string());
            let built = ledger.nodes.get(&name).map(|entry| Built {
                at: time(entry.built_at),
                key: entry.key.clone(),
                digest: entry.digest.clone(),
                builder: entry.builder.clone(),
                duration_ms: entry.duration_ms,
                bases: entry.bases.clone(),
            });
            let failed = ledger.failures.get(&name).map(|failure| Failed {
                count: failure.count,
                key: failure.key.clone(),
                at: time(failure.failed_at),
                error: failure.error.clone(),
                retry_after: time(failure.backoff_until()),
                backing_off: failure.backoff_until() > now,
            });
            out.push(Entry {
                node: id.to_string(),
                platform: platform.to_string(),
                built,
                failed,
                registry: None,
            });
        }
    }
    Ok(out)
}

/// A node a scheduled run leaves alone.
#[derive(Debug, Clone, Serialize)]
pub struct BackedOff {
    pub node: String,
    pub platform: String,
    /// How many builds with its key failed in a row; `None` for a node left alone because a
    /// node it is built on is.
    pub failures: Option<u32>,
    /// When it is tried again.
    pub retry_after: String,
}

/// The nodes of `plan` to build that a scheduled run leaves alone: those whose builds with the
/// same key failed recently (see [`im_plan::Failure::backoff_until`]), and the nodes built on
/// them.
pub fn back_off(plan: &Plan, ledger: &Ledger, now: i64) -> Vec<BackedOff> {
    let mut until: Vec<Option<i64>> = vec![None; plan.nodes.len()];
    let mut out = Vec::new();
    for index in 0..plan.nodes.len() {
        let node = &plan.nodes[index];
        if node.action != Action::Build {
            continue;
        }
        let id = node.id.to_string();
        let platform = node.platform.to_string();
        let own = ledger.backing_off(&id, &platform, &node.key, now);
        let inherited = node.parents.iter().filter_map(|&p| until[p]).max();
        let Some(retry) = own.max(inherited) else {
            continue;
        };
        until[index] = Some(retry);
        out.push(BackedOff {
            failures: own.and_then(|_| {
                ledger
                    .failures
                    .get(&entry_name(&id, &platform))
                    .map(|f| f.count)
            }),
            node: id,
            platform,
            retry_after: time(retry),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use im_graph::NodeId;
    use im_plan::{Failure, PlanNode};
    use im_project::Platform;

    use super::*;

    fn node(image: &str, key: &str, parents: Vec<usize>) -> PlanNode {
        PlanNode {
            id: NodeId::new(image, "1"),
            platform: "linux/amd64".parse::<Platform>().unwrap(),
            key: key.into(),
            action: Action::Build,
            reasons: Vec::new(),
            selected: true,
            parents,
            parent_refs: Vec::new(),
            output: std::path::PathBuf::new(),
            inputs: im_plan::KeyInputs::default(),
            source: None,
        }
    }

    #[test]
    fn a_node_failing_with_its_key_backs_off_with_what_is_built_on_it() {
        let plan = Plan {
            nodes: vec![
                node("base", "k-base", vec![]),
                node("app", "k-app", vec![0]),
                node("solo", "k-solo", vec![]),
                node("other", "k-other", vec![]),
            ],
        };
        let mut ledger = Ledger::empty();
        let failure = |key: &str| Failure {
            key: key.into(),
            count: 2,
            failed_at: 1_000,
            error: "boom".into(),
        };
        ledger
            .failures
            .insert(entry_name("base:1", "linux/amd64"), failure("k-base"));
        // Failed with another key: its inputs changed since, so it is tried.
        ledger
            .failures
            .insert(entry_name("other:1", "linux/amd64"), failure("k-old"));
        let backed = back_off(&plan, &ledger, 2_000);
        let names: Vec<(&str, Option<u32>)> = backed
            .iter()
            .map(|b| (b.node.as_str(), b.failures))
            .collect();
        assert_eq!(names, [("base:1", Some(2)), ("app:1", None)]);
        assert_eq!(backed[0].retry_after, time(1_000 + 4 * 3600));
        // Four hours later everything is tried again.
        assert!(back_off(&plan, &ledger, 1_000 + 4 * 3600).is_empty());
    }
}
