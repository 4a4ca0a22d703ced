//! The dependency graph between image tags.
//!
//! A node is one `image:tag`. Its parents come from its rendered Dockerfile — every `FROM`,
//! `COPY --from=<image>` and `RUN --mount=from=<image>` whose reference names a managed image
//! (by name, with a tag or alias of that image; registry prefixes are ignored) — plus the
//! variant's base tag and the definition's `extends`. References to images the project does
//! not manage are kept as external bases. [`Graph::order`] is a topological order that is the
//! same on every run (ties broken by image name, then tag); a cycle is an error showing the
//! whole cycle and the files involved.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

use im_diag::{Diagnostic, Diagnostics, Location};
use im_dockerfile::{Dockerfile, RefKind};
use im_project::Project;
use serde::Serialize;

/// `image:tag`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NodeId {
    pub image: String,
    pub tag: String,
}

impl NodeId {
    pub fn new(image: impl Into<String>, tag: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            tag: tag.into(),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.image, self.tag)
    }
}

/// Why a node depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    From,
    CopyFrom,
    MountFrom,
    Variant,
    Extends,
}

impl From<RefKind> for EdgeKind {
    fn from(kind: RefKind) -> Self {
        match kind {
            RefKind::From => EdgeKind::From,
            RefKind::CopyFrom => EdgeKind::CopyFrom,
            RefKind::MountFrom => EdgeKind::MountFrom,
        }
    }
}

/// A parent of a node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Edge {
    /// Index of the parent node.
    pub parent: usize,
    pub kind: EdgeKind,
    /// The reference as the Dockerfile wrote it (empty for variant/extends edges).
    pub reference: String,
}

/// A reference to an image the project does not manage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct External {
    pub reference: String,
    pub kind: EdgeKind,
    /// The digest pinned in the reference, if any.
    pub digest: Option<String>,
}

/// What the graph needs to know about one node.
pub struct NodeInput<'a> {
    pub id: NodeId,
    pub dockerfile: &'a Dockerfile,
    /// The file to name when this node is part of a cycle.
    pub source: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<NodeId>,
    /// Parents of each node, sorted, without duplicates.
    pub parents: Vec<Vec<Edge>>,
    pub externals: Vec<Vec<External>>,
    /// Node indices in build order.
    pub order: Vec<usize>,
}

impl Graph {
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes.binary_search(id).ok()
    }

    /// The distinct parent nodes of `node`.
    pub fn parent_nodes(&self, node: usize) -> BTreeSet<usize> {
        self.parents[node].iter().map(|edge| edge.parent).collect()
    }

    /// Children of every node (the reverse edges).
    pub fn children(&self) -> Vec<BTreeSet<usize>> {
        let mut children = vec![BTreeSet::new(); self.nodes.len()];
        for (child, edges) in self.parents.iter().enumerate() {
            for edge in edges {
                children[edge.parent].insert(child);
            }
        }
        children
    }

    /// Reads the external references of `node` again from `dockerfile`: the Dockerfile the
    /// graph was built from with only its external references changed (a `packages.lock`
    /// pinning them to digests). Its parents stay; a reference that is not one of their edges
    /// is external, as [`Graph::build`] decides, without building the graph again.
    pub fn refresh_externals(&mut self, node: usize, dockerfile: &Dockerfile) {
        let edges = &self.parents[node];
        let outside: BTreeSet<External> = dockerfile
            .external_refs()
            .iter()
            .filter(|reference| {
                let kind = EdgeKind::from(reference.kind);
                let written = reference.image.to_string();
                !edges
                    .iter()
                    .any(|edge| edge.kind == kind && edge.reference == written)
            })
            .map(|reference| External {
                reference: reference.image.to_string(),
                kind: reference.kind.into(),
                digest: reference.image.digest().map(str::to_owned),
            })
            .collect();
        self.externals[node] = outside.into_iter().collect();
    }

    /// Builds the graph of `inputs` (one per tag of `project`). `snapshot_id` strips a
    /// `-<id>` suffix from tags in references, as `--snapshot-id` renders them.
    pub fn build(
        project: &Project,
        inputs: &[NodeInput<'_>],
        snapshot_id: Option<&str>,
    ) -> Result<Self, Diagnostics> {
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by(|&a, &b| inputs[a].id.cmp(&inputs[b].id));
        let inputs: Vec<&NodeInput<'_>> = order.iter().map(|&i| &inputs[i]).collect();
        let nodes: Vec<NodeId> = inputs.iter().map(|input| input.id.clone()).collect();
        let index = |image: &str, tag: &str| nodes.binary_search(&NodeId::new(image, tag)).ok();
        let mut diagnostics = Diagnostics::new();
        let mut parents = vec![Vec::new(); nodes.len()];
        let mut externals = vec![Vec::new(); nodes.len()];
        // Managed images by the last component of their name, which every matching reference
        // ends with: a lookup instead of a scan of every image per reference.
        let mut by_last_component: HashMap<&str, Vec<&im_project::Image>> = HashMap::new();
        for image in &project.images {
            let last = image.name.rsplit('/').next().unwrap_or(&image.name);
            by_last_component.entry(last).or_default().push(image);
        }
        for (node, input) in inputs.iter().enumerate() {
            let Some(image) = project.image(&input.id.image) else {
                continue;
            };
            let Some(tag) = image.tag(&input.id.tag) else {
                continue;
            };
            let mut edges = BTreeSet::new();
            let mut outside = BTreeSet::new();
            for reference in input.dockerfile.external_refs() {
                let managed = by_last_component
                    .get(reference.image.name())
                    .into_iter()
                    .flatten()
                    .filter(|candidate| reference.image.matches_name(&candidate.name))
                    .max_by_key(|candidate| candidate.name.len());
                let Some(managed) = managed.filter(|_| reference.image.digest().is_none()) else {
                    outside.insert(External {
                        reference: reference.image.to_string(),
                        kind: reference.kind.into(),
                        digest: reference.image.digest().map(str::to_owned),
                    });
                    continue;
                };
                let written_tag = reference.image.tag().unwrap_or("latest");
                let wanted = snapshot_id
                    .and_then(|id| written_tag.strip_suffix(&format!("-{id}")))
                    .unwrap_or(written_tag);
                match managed
                    .resolve(wanted)
                    .and_then(|target| index(&managed.name, &target.name))
                {
                    Some(parent) => {
                        edges.insert(Edge {
                            parent,
                            kind: reference.kind.into(),
                            reference: reference.image.to_string(),
                        });
                    }
                    None => {
                        let tags: Vec<&str> =
                            managed.tags.iter().map(|t| t.name.as_str()).collect();
                        diagnostics.push(
                            Diagnostic::error(format!(
                                "`{}` names the managed image `{}`, which has no tag or alias `{wanted}`",
                                reference.image, managed.name
                            ))
                            .at(input.dockerfile.location(reference.position, reference.written.chars().count()))
                            .with_note(format!("{} has: {}", managed.name, tags.join(", ")))
                            .with_help("use one of its tags or aliases, or `{{ \"<image>\" | resolve_base_image(\"<tag>\") }}` in the template"),
                        );
                    }
                }
            }
            if let Some(variant) = &tag.variant
                && let Some(parent) = index(&image.name, &variant.base_tag)
            {
                edges.insert(Edge {
                    parent,
                    kind: EdgeKind::Variant,
                    reference: String::new(),
                });
            }
            let file = project.file_of(tag);
            if let Some(extends) = &file.extends {
                let (target, wanted) = extends
                    .value
                    .split_once(':')
                    .map_or((extends.value.as_str(), None), |(n, t)| (n, Some(t)));
                if let Some(target_image) = project.image(target) {
                    let chosen = match wanted {
                        Some(wanted) => target_image.resolve(wanted).map(|t| t.name.clone()),
                        None => target_image
                            .tag(&tag.name)
                            .map(|t| t.name.clone())
                            .or_else(|| {
                                let mut bases = target_image.base_tags();
                                match (bases.next(), bases.next()) {
                                    (Some(only), None) => Some(only.name.clone()),
                                    _ => None,
                                }
                            }),
                    };
                    match chosen.and_then(|t| index(target, &t)) {
                        Some(parent) => {
                            edges.insert(Edge {
                                parent,
                                kind: EdgeKind::Extends,
                                reference: extends.value.clone(),
                            });
                        }
                        None => diagnostics.push(
                            Diagnostic::error(format!(
                                "`extends: {}` does not say which tag of `{target}` {} builds on",
                                extends.value, input.id
                            ))
                            .at(file.location(extends.span))
                            .with_help(format!("write `extends: {target}:<tag>`")),
                        ),
                    }
                }
            }
            parents[node] = edges.into_iter().collect();
            externals[node] = outside.into_iter().collect();
        }
        if diagnostics.has_errors() {
            return Err(diagnostics);
        }
        let mut graph = Graph {
            nodes,
            parents,
            externals,
            order: Vec::new(),
        };
        match topological_order(&graph) {
            Ok(order) => graph.order = order,
            Err(cycle) => return Err(cycle_error(project, &graph, &inputs, &cycle).into()),
        }
        Ok(graph)
    }
}

/// The error for a dependency cycle: the whole cycle, and for each of its edges the line that
/// made it — the `FROM` (or `COPY --from`, `RUN --mount=from`) of the rendered Dockerfile, the
/// `extends:` or the variant entry of the `image.yml`. It points at the first `extends:` of
/// the cycle when there is one (that is the line to change), else at the first reference.
fn cycle_error(
    project: &Project,
    graph: &Graph,
    inputs: &[&NodeInput<'_>],
    cycle: &[usize],
) -> Diagnostic {
    let path: Vec<String> = cycle.iter().map(|&n| graph.nodes[n].to_string()).collect();
    let mut edges: Vec<(EdgeKind, Option<Location>, String)> = Vec::new();
    for (at, &parent) in cycle.iter().enumerate() {
        let child = cycle[(at + 1) % cycle.len()];
        let Some(edge) = graph.parents[child].iter().find(|e| e.parent == parent) else {
            continue;
        };
        let input = inputs[child];
        let tag = project
            .image(&input.id.image)
            .and_then(|image| image.tag(&input.id.tag));
        let location = match edge.kind {
            EdgeKind::Extends => tag.and_then(|tag| {
                let file = project.file_of(tag);
                file.extends.as_ref().map(|e| file.location(e.span))
            }),
            EdgeKind::Variant => tag.and_then(|tag| {
                let file = project.file_of(tag);
                let variant = tag.variant.as_ref()?;
                let def = file.variants.get(variant.index)?;
                Some(file.location(def.name.span))
            }),
            EdgeKind::From | EdgeKind::CopyFrom | EdgeKind::MountFrom => input
                .dockerfile
                .external_refs()
                .iter()
                .find(|r| r.image.to_string() == edge.reference)
                .map(|r| {
                    input
                        .dockerfile
                        .location(r.position, r.written.chars().count())
                }),
        };
        let what = match edge.kind {
            EdgeKind::Extends => format!("`extends: {}`", edge.reference),
            EdgeKind::Variant => "it is a variant of it".to_owned(),
            _ => format!("`{}`", edge.reference),
        };
        let place = match &location {
            Some(l) if l.path != input.source && l.path == input.dockerfile.path() => format!(
                ", line {} of the Dockerfile rendered from {}",
                l.line,
                input.source.display()
            ),
            Some(l) => format!(", at {l}"),
            None => String::new(),
        };
        edges.push((
            edge.kind,
            location,
            format!(
                "{} builds on {} ({what}{place})",
                graph.nodes[child], graph.nodes[parent]
            ),
        ));
    }
    let has_extends = edges.iter().any(|(kind, ..)| *kind == EdgeKind::Extends);
    let help = if has_extends {
        "an image cannot be built from itself, directly or through others: remove or change one of these `extends:` (or FROM) lines"
    } else {
        "an image cannot be built from itself, directly or through others: change one of these FROM lines"
    };
    let mut diagnostic = Diagnostic::error(format!(
        "the images depend on each other in a cycle: {} -> {}",
        path.join(" -> "),
        path[0]
    ))
    .with_help(help);
    let primary = edges
        .iter()
        .find(|(kind, location, _)| *kind == EdgeKind::Extends && location.is_some())
        .or_else(|| edges.iter().find(|(_, location, _)| location.is_some()))
        .and_then(|(_, location, _)| location.clone());
    for (_, _, text) in &edges {
        diagnostic = diagnostic.with_note(text.clone());
    }
    for &node in cycle {
        diagnostic = diagnostic.with_note(format!(
            "{} comes from {}",
            graph.nodes[node],
            inputs[node].source.display()
        ));
    }
    match primary {
        Some(location) => diagnostic.at(location),
        None => match cycle.first() {
            Some(&first) => diagnostic.at(Location::file(&inputs[first].source)),
            None => diagnostic,
        },
    }
}

/// Kahn's algorithm with the ready set ordered by node id (the nodes are sorted by id, so by
/// index). On a cycle returns the nodes of one cycle in dependency order.
pub fn topological_order(graph: &Graph) -> Result<Vec<usize>, Vec<usize>> {
    let count = graph.nodes.len();
    let children = graph.children();
    let mut waiting: Vec<usize> = (0..count)
        .map(|node| graph.parent_nodes(node).len())
        .collect();
    let mut ready: BTreeSet<usize> = (0..count).filter(|&node| waiting[node] == 0).collect();
    let mut order = Vec::with_capacity(count);
    while let Some(node) = ready.pop_first() {
        order.push(node);
        for &child in &children[node] {
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.insert(child);
            }
        }
    }
    if order.len() == count {
        return Ok(order);
    }
    // Walk parents from a node still waiting until a node repeats: that loop is a cycle.
    let left: BTreeSet<usize> = (0..count).filter(|&node| waiting[node] > 0).collect();
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut path = Vec::new();
    let mut node = *left
        .first()
        .expect("some node is left when the order is short");
    loop {
        if let Some(&at) = seen.get(&node) {
            let mut cycle: Vec<usize> = path[at..].to_vec();
            cycle.reverse();
            // Start at the smallest node so the report is the same on every run.
            let smallest = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, node)| **node)
                .map_or(0, |(i, _)| i);
            cycle.rotate_left(smallest);
            return Err(cycle);
        }
        seen.insert(node, path.len());
        path.push(node);
        node = graph
            .parent_nodes(node)
            .into_iter()
            .find(|parent| left.contains(parent))
            .expect("a waiting node has a waiting parent");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn graph_of(count: usize, edges: &[(usize, usize)]) -> Graph {
        let nodes = (0..count)
            .map(|i| NodeId::new(format!("n{i:03}"), "1"))
            .collect();
        let mut parents = vec![Vec::new(); count];
        for &(parent, child) in edges {
            parents[child].push(Edge {
                parent,
                kind: EdgeKind::From,
                reference: String::new(),
            });
        }
        Graph {
            nodes,
            parents,
            externals: vec![Vec::new(); count],
            order: Vec::new(),
        }
    }

    #[test]
    fn ties_are_broken_by_id() {
        let graph = graph_of(4, &[(3, 0), (2, 1)]);
        assert_eq!(topological_order(&graph).unwrap(), vec![2, 1, 3, 0]);
    }

    #[test]
    fn cycles_are_reported_in_dependency_order() {
        let graph = graph_of(4, &[(0, 1), (1, 2), (2, 3), (3, 1)]);
        let cycle = topological_order(&graph).unwrap_err();
        assert_eq!(cycle.len(), 3);
        for (i, &node) in cycle.iter().enumerate() {
            let next = cycle[(i + 1) % cycle.len()];
            assert!(graph.parent_nodes(next).contains(&node), "{cycle:?}");
        }
    }

    proptest! {
        /// For any DAG (edges only go from lower to higher index, then indices shuffled),
        /// the order contains every node once and every parent before its child.
        #[test]
        fn order_respects_every_edge(count in 1usize..40, raw in proptest::collection::vec((0usize..40, 0usize..40), 0..120), seed in 0u64..1000) {
            let mut permutation: Vec<usize> = (0..count).collect();
            let mut state = seed;
            for i in (1..count).rev() {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let j = usize::try_from(state >> 33).unwrap() % (i + 1);
                permutation.swap(i, j);
            }
            let edges: Vec<(usize, usize)> = raw.into_iter()
                .map(|(a, b)| (a % count, b % count))
                .filter(|(a, b)| a < b)
                .map(|(a, b)| (permutation[a], permutation[b]))
                .collect();
            let graph = graph_of(count, &edges);
            let order = topological_order(&graph).unwrap();
            prop_assert_eq!(order.len(), count);
            let position: BTreeMap<usize, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
            for (parent, child) in edges {
                prop_assert!(position[&parent] < position[&child]);
            }
        }
    }
}
