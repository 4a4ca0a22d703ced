//! What `generate-ci` hands [`im_ci`]: the selected image tags with everything they are
//! built on, in build order, each with its platforms, parents and test config.

use std::collections::BTreeSet;
use std::path::Path;

use im_diag::Diagnostics;

use crate::prepare::Prepared;

/// The tags `targets` select and every tag they are built on, parents first. `dist_name` is
/// how jobs name `dist/` (relative to the project).
pub fn tags(
    prepared: &Prepared,
    targets: &[String],
    dist_name: &Path,
) -> Result<Vec<im_ci::Tag>, Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, targets)?;
    let graph = &prepared.graph;
    let mut wanted: BTreeSet<usize> = BTreeSet::new();
    let mut stack: Vec<usize> = selected.iter().copied().collect();
    while let Some(node) = stack.pop() {
        if wanted.insert(node) {
            stack.extend(graph.parent_nodes(node));
        }
    }
    let tested: BTreeSet<(&str, &str)> = prepared
        .rendered
        .tags
        .iter()
        .filter(|t| t.has_test)
        .map(|t| (t.image.as_str(), t.tag.as_str()))
        .collect();
    let mut out = Vec::new();
    for &node in graph.order.iter().filter(|n| wanted.contains(n)) {
        let id = &graph.nodes[node];
        let Some(tag) = prepared.project.tag_of(&id.image, &id.tag) else {
            continue;
        };
        let why = if selected.contains(&node) {
            vec!["a target".to_owned()]
        } else {
            vec!["a target is built on it".to_owned()]
        };
        out.push(im_ci::Tag {
            why,
            node: id.to_string(),
            platforms: tag.platforms.iter().map(ToString::to_string).collect(),
            parents: graph
                .parent_nodes(node)
                .into_iter()
                .map(|p| graph.nodes[p].to_string())
                .collect(),
            test_config: tested
                .contains(&(id.image.as_str(), id.tag.as_str()))
                .then(|| {
                    dist_name
                        .join(&id.image)
                        .join(&id.tag)
                        .join("test.yml")
                        .display()
                        .to_string()
                }),
        });
    }
    Ok(out)
}

/// The tags of `tags` that `affected` names (see [`crate::affected`]), with its reasons.
pub fn only_affected(tags: &[im_ci::Tag], affected: &crate::affected::Affected) -> Vec<im_ci::Tag> {
    tags.iter()
        .filter_map(|tag| {
            let why = affected.get(&tag.node)?;
            Some(im_ci::Tag {
                why: why.clone(),
                ..tag.clone()
            })
        })
        .collect()
}

/// The image tags of `targets` (with what they are built on) whose release tag in the
/// default registry holds their build key for every platform (`generate-ci
/// --registry-keys`). Keys are computed as `build` computes them: the configured builder,
/// external bases resolved in their registries.
pub fn released(
    context: &crate::ExecContext<'_>,
    prepared: &Prepared,
    targets: &[String],
) -> anyhow::Result<BTreeSet<String>> {
    let request = crate::planning::Request {
        options: im_plan::PlanOptions {
            targets: targets.to_vec(),
            with_deps: true,
            ..im_plan::PlanOptions::default()
        },
        builder: None,
        bases: crate::bases::Mode::Online,
        detect: crate::planning::Detect::No,
    };
    let planned = crate::planning::plan(context, prepared, request)?;
    crate::publish::released_tags(context, prepared, &planned.plan)
}
