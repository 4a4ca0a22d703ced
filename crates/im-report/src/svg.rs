//! The dependency graph as an inline SVG: one link (`<a>`) per node holding one shape
//! (`rect.node-shape`) and its label, one curve per edge. Each node carries its parents and
//! children (`data-parents`, `data-children`: node indices) and its name in lower case
//! (`data-name`), which `report.js` reads to highlight ancestors and descendants and to
//! filter by name. Without JavaScript the picture and its links still work.

use std::fmt::Write as _;

use crate::html::esc;
use crate::layout::{Layout, Options, layout};

/// A node to draw.
pub struct Node<'a> {
    pub label: &'a str,
    /// The link, relative to the page the graph is on.
    pub href: String,
    /// The node the page is about, drawn emphasised.
    pub current: bool,
}

/// The `<figure>` with the SVG of `nodes` and `edges` (`(parent, child)` indices).
pub fn graph(title: &str, nodes: &[Node<'_>], edges: &[(usize, usize)]) -> String {
    let options = Options::default();
    let labels: Vec<&str> = nodes.iter().map(|n| n.label).collect();
    let drawn = layout(&labels, edges, &options);
    let mut parents = vec![Vec::new(); nodes.len()];
    let mut children = vec![Vec::new(); nodes.len()];
    for &(from, to) in edges {
        parents[to].push(from);
        children[from].push(to);
    }
    let mut out = String::with_capacity(nodes.len() * 320 + edges.len() * 90 + 512);
    let _ = write!(
        out,
        "<figure class=\"graph\"><div class=\"scroll\"><svg xmlns=\"http://www.w3.org/2000/svg\" role=\"group\" aria-label=\"{}\" \
         viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\"><g class=\"edges\" aria-hidden=\"true\">",
        esc(title),
        w = drawn.width.max(1.0),
        h = drawn.height.max(1.0),
    );
    for &(from, to) in edges {
        edge(&mut out, &drawn, from, to);
    }
    out.push_str("</g><g class=\"nodes\">");
    for (i, node) in nodes.iter().enumerate() {
        let p = drawn.nodes[i];
        let join = |list: &[usize]| {
            list.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let max_chars = max_chars(&options, p.width);
        let shown = truncate(node.label, max_chars);
        let _ = write!(
            out,
            "<a href=\"{}\" class=\"node{}\" data-i=\"{i}\" data-parents=\"{}\" data-children=\"{}\" data-name=\"{}\">\
             <title>{}</title><rect class=\"node-shape\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text></a>",
            esc(&node.href),
            if node.current { " current" } else { "" },
            join(&parents[i]),
            join(&children[i]),
            esc(&node.label.to_lowercase()),
            esc(node.label),
            p.x,
            p.y,
            p.width,
            p.height,
            p.x + p.width / 2.0,
            p.y + p.height / 2.0 + 4.5,
            esc(&shown),
        );
    }
    out.push_str("</g></svg></div>");
    let _ = writeln!(
        out,
        "<figcaption>{} — {} nodes, {} edges. Select a node to open its page.</figcaption></figure>",
        esc(title),
        nodes.len(),
        edges.len()
    );
    out
}

fn edge(out: &mut String, drawn: &Layout, from: usize, to: usize) {
    let (a, b) = (drawn.nodes[from], drawn.nodes[to]);
    let (x1, y1) = (a.x + a.width / 2.0, a.y + a.height);
    let (x2, y2) = (b.x + b.width / 2.0, b.y);
    let bend = (y2 - y1).abs() / 2.0;
    let _ = write!(
        out,
        "<path data-from=\"{from}\" data-to=\"{to}\" d=\"M{x1:.1} {y1:.1}C{x1:.1} {:.1} {x2:.1} {:.1} {x2:.1} {y2:.1}\"/>",
        y1 + bend,
        y2 - bend
    );
}

fn max_chars(options: &Options, width: f64) -> usize {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // small positive
    let chars = ((width - 20.0) / options.char_width).floor().max(1.0) as usize;
    chars
}

/// `text` cut to `max` characters with an ellipsis.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shape_per_node_and_labels_are_escaped() {
        let nodes = [
            Node {
                label: "base:1",
                href: "a.html".into(),
                current: true,
            },
            Node {
                label: "<img src=x onerror=alert(1)>",
                href: "b\".html".into(),
                current: false,
            },
        ];
        let svg = graph("deps", &nodes, &[(0, 1)]);
        assert_eq!(svg.matches("class=\"node-shape\"").count(), 2);
        assert!(!svg.contains("<img"));
        assert!(svg.contains("href=\"b&quot;.html\""));
        assert!(svg.contains("data-children=\"1\""));
    }
}
