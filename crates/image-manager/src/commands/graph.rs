//! `image-manager graph`: the dependency graph as a tree, Graphviz, Mermaid or JSON.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Context, Outcome};
use crate::cli::{GraphArgs, GraphFormat};

#[derive(Serialize)]
struct JsonGraph<'a> {
    nodes: Vec<String>,
    edges: Vec<JsonEdge>,
    external: Vec<JsonExternal<'a>>,
    order: Vec<String>,
}

#[derive(Serialize)]
struct JsonEdge {
    from: String,
    to: String,
    kind: im_graph::EdgeKind,
}

#[derive(Serialize)]
struct JsonExternal<'a> {
    node: String,
    reference: &'a str,
    kind: im_graph::EdgeKind,
}

pub fn run(context: &Context<'_>, args: &GraphArgs) -> anyhow::Result<Outcome> {
    let prepared = context.prepare_for_builds(args.snapshot.snapshot_id.as_deref())?;
    context.printer.diagnostics(&prepared.warnings);
    let graph = &prepared.graph;
    let name = |node: usize| graph.nodes[node].to_string();
    let children = graph.children();
    let text = match args.format {
        GraphFormat::Json => {
            let mut edges = Vec::new();
            let mut external = Vec::new();
            for (node, parents) in graph.parents.iter().enumerate() {
                for edge in parents {
                    edges.push(JsonEdge {
                        from: name(edge.parent),
                        to: name(node),
                        kind: edge.kind,
                    });
                }
                for ext in &graph.externals[node] {
                    external.push(JsonExternal {
                        node: name(node),
                        reference: &ext.reference,
                        kind: ext.kind,
                    });
                }
            }
            let value = JsonGraph {
                nodes: graph.nodes.iter().map(ToString::to_string).collect(),
                edges,
                external,
                order: graph.order.iter().map(|&n| name(n)).collect(),
            };
            serde_json::to_string_pretty(&value)?
        }
        GraphFormat::Dot => {
            let mut out = String::from("digraph images {\n  rankdir=LR;\n  node [shape=box];\n");
            for &node in &graph.order {
                writeln!(out, "  \"{}\";", name(node))?;
            }
            for (node, _) in graph.parents.iter().enumerate() {
                for parent in graph.parent_nodes(node) {
                    writeln!(out, "  \"{}\" -> \"{}\";", name(parent), name(node))?;
                }
                for ext in &graph.externals[node] {
                    writeln!(
                        out,
                        "  \"{}\" [style=dashed];\n  \"{}\" -> \"{}\" [style=dashed];",
                        ext.reference,
                        ext.reference,
                        name(node)
                    )?;
                }
            }
            out.push('}');
            out
        }
        GraphFormat::Mermaid => {
            let mut out = String::from("flowchart LR\n");
            for &node in &graph.order {
                writeln!(out, "  n{node}[\"{}\"]", name(node))?;
            }
            let mut external_ids: Vec<&str> = Vec::new();
            for (node, _) in graph.parents.iter().enumerate() {
                for parent in graph.parent_nodes(node) {
                    writeln!(out, "  n{parent} --> n{node}")?;
                }
                for ext in &graph.externals[node] {
                    let id = match external_ids.iter().position(|r| *r == ext.reference) {
                        Some(id) => id,
                        None => {
                            external_ids.push(&ext.reference);
                            writeln!(
                                out,
                                "  x{}([\"{}\"])",
                                external_ids.len() - 1,
                                ext.reference
                            )?;
                            external_ids.len() - 1
                        }
                    };
                    writeln!(out, "  x{id} -.-> n{node}")?;
                }
            }
            out.trim_end().to_owned()
        }
        GraphFormat::Text => {
            let mut out = String::new();
            let mut shown = BTreeSet::new();
            for &node in &graph.order {
                if graph.parents[node].is_empty() {
                    let externals: Vec<&str> = graph.externals[node]
                        .iter()
                        .map(|e| e.reference.as_str())
                        .collect();
                    let from = if externals.is_empty() {
                        String::new()
                    } else {
                        format!("  (from {})", externals.join(", "))
                    };
                    writeln!(out, "{}{from}", name(node))?;
                    tree(graph, &children, node, 1, &mut shown, &mut out)?;
                }
            }
            out.trim_end().to_owned()
        }
    };
    context.printer.data(text)?;
    Ok(Outcome::Success)
}

fn tree(
    graph: &im_graph::Graph,
    children: &[BTreeSet<usize>],
    node: usize,
    depth: usize,
    shown: &mut BTreeSet<usize>,
    out: &mut String,
) -> std::fmt::Result {
    shown.insert(node);
    for &child in &children[node] {
        let indent = "  ".repeat(depth);
        if shown.contains(&child) {
            writeln!(out, "{indent}{} (see above)", graph.nodes[child])?;
        } else {
            writeln!(out, "{indent}{}", graph.nodes[child])?;
            tree(graph, children, child, depth + 1, shown, out)?;
        }
    }
    Ok(())
}
