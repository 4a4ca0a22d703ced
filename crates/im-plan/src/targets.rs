//! Which nodes a command works on: `name`, `name:tag`, `name:alias`, or shell-style globs
//! (`py*`, `python:3.13.*`). No target means every node.

use std::collections::BTreeSet;

use im_diag::{Diagnostic, Diagnostics, did_you_mean};
use im_graph::Graph;
use im_project::Project;

fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

fn glob(pattern: &str) -> Result<globset::GlobMatcher, Diagnostic> {
    globset::Glob::new(pattern)
        .map(|glob| glob.compile_matcher())
        .map_err(|error| Diagnostic::error(format!("`{pattern}` is not a valid pattern: {error}")))
}

/// The graph nodes the targets name.
pub fn select(
    project: &Project,
    graph: &Graph,
    targets: &[String],
) -> Result<BTreeSet<usize>, Diagnostics> {
    if targets.is_empty() {
        return Ok((0..graph.nodes.len()).collect());
    }
    let mut selected = BTreeSet::new();
    let mut diagnostics = Diagnostics::new();
    let names: Vec<&str> = project.images.iter().map(|i| i.name.as_str()).collect();
    for target in targets {
        let (name, tag) = match target.split_once(':') {
            Some((name, tag)) => (name, Some(tag)),
            None => (target.as_str(), None),
        };
        let before = selected.len();
        if is_glob(target) {
            let matcher = match glob(if tag.is_some() { target } else { name }) {
                Ok(matcher) => matcher,
                Err(error) => {
                    diagnostics.push(error);
                    continue;
                }
            };
            for (index, node) in graph.nodes.iter().enumerate() {
                let text = if tag.is_some() {
                    node.to_string()
                } else {
                    node.image.clone()
                };
                if matcher.is_match(&text) {
                    selected.insert(index);
                }
            }
            if selected.len() == before {
                diagnostics.push(Diagnostic::error(format!(
                    "the pattern `{target}` matches no image or tag"
                )));
            }
            continue;
        }
        let Some(image) = project.image(name) else {
            let help = did_you_mean(name, names.iter().copied()).map_or_else(
                || format!("images: {}", names.join(", ")),
                |hint| format!("did you mean `{hint}`?"),
            );
            diagnostics.push(
                Diagnostic::error(format!("`{name}` is not an image of this project"))
                    .with_help(help),
            );
            continue;
        };
        match tag {
            None => {
                for tag in &image.tags {
                    if let Some(index) =
                        graph.index_of(&im_graph::NodeId::new(&image.name, &tag.name))
                    {
                        selected.insert(index);
                    }
                }
            }
            Some(tag) => match image
                .resolve(tag)
                .and_then(|t| graph.index_of(&im_graph::NodeId::new(&image.name, &t.name)))
            {
                Some(index) => {
                    selected.insert(index);
                }
                None => {
                    let all: Vec<&str> = image
                        .tags
                        .iter()
                        .map(|t| t.name.as_str())
                        .chain(image.aliases.keys().map(String::as_str))
                        .collect();
                    let help = did_you_mean(tag, all.iter().copied()).map_or_else(
                        || format!("{name} has: {}", all.join(", ")),
                        |hint| format!("did you mean `{name}:{hint}`?"),
                    );
                    diagnostics.push(
                        Diagnostic::error(format!("`{name}` has no tag or alias `{tag}`"))
                            .with_help(help),
                    );
                }
            },
        }
    }
    if diagnostics.has_errors() {
        Err(diagnostics)
    } else {
        Ok(selected)
    }
}

/// `nodes` and everything they are built from.
pub fn with_ancestors(graph: &Graph, nodes: &BTreeSet<usize>) -> BTreeSet<usize> {
    let mut out = nodes.clone();
    let mut stack: Vec<usize> = nodes.iter().copied().collect();
    while let Some(node) = stack.pop() {
        for parent in graph.parent_nodes(node) {
            if out.insert(parent) {
                stack.push(parent);
            }
        }
    }
    out
}

/// `nodes` and everything built on them.
pub fn with_descendants(graph: &Graph, nodes: &BTreeSet<usize>) -> BTreeSet<usize> {
    let children = graph.children();
    let mut out = nodes.clone();
    let mut stack: Vec<usize> = nodes.iter().copied().collect();
    while let Some(node) = stack.pop() {
        for &child in &children[node] {
            if out.insert(child) {
                stack.push(child);
            }
        }
    }
    out
}
