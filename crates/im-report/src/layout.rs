//! A layered (Sugiyama-style) drawing of a directed acyclic graph, computed when the report is
//! made: longest-path layering (a node sits one layer below its lowest parent), barycenter
//! crossing reduction (alternating sweeps that order each layer by the mean position of its
//! neighbours in the layer before), then simple coordinates (nodes side by side, each layer
//! centred; a layer wider than [`Options::max_per_row`] wraps onto several rows, so a base
//! with a thousand children stays readable). Long edges get no dummy nodes: the SVG draws
//! them as curves.

/// Sizes of the drawing, in pixels.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub node_height: f64,
    pub horizontal_gap: f64,
    pub vertical_gap: f64,
    /// Pixels per character of a label.
    pub char_width: f64,
    pub min_width: f64,
    pub max_width: f64,
    pub max_per_row: usize,
    /// Barycenter sweeps (each one down and one up).
    pub sweeps: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_height: 28.0,
            horizontal_gap: 16.0,
            vertical_gap: 48.0,
            char_width: 7.5,
            min_width: 48.0,
            max_width: 260.0,
            max_per_row: 24,
            sweeps: 4,
        }
    }
}

/// Where a node is drawn: its top-left corner and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub layer: usize,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub nodes: Vec<Placed>,
    pub width: f64,
    pub height: f64,
}

/// Lays out `labels.len()` nodes with `edges` `(parent, child)` (indices into `labels`).
/// Edges that would close a cycle or point at unknown nodes are ignored.
pub fn layout(labels: &[&str], edges: &[(usize, usize)], options: &Options) -> Layout {
    let n = labels.len();
    let mut parents = vec![Vec::new(); n];
    let mut children = vec![Vec::new(); n];
    for &(from, to) in edges {
        if from < n && to < n && from != to {
            parents[to].push(from);
            children[from].push(to);
        }
    }
    let layer = longest_path_layers(&parents, &children);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layer.iter().max().map_or(0, |l| l + 1)];
    for (node, &l) in layer.iter().enumerate() {
        layers[l].push(node);
    }
    order_layers(&mut layers, &parents, &children, options.sweeps);
    let widths: Vec<f64> = labels
        .iter()
        .map(|label| {
            #[allow(clippy::cast_precision_loss)] // label lengths are small
            let w = label.chars().count() as f64 * options.char_width + 20.0;
            w.clamp(options.min_width, options.max_width)
        })
        .collect();
    place(&layers, &layer, &widths, options)
}

/// Each node's layer: 0 without parents, else one more than its deepest parent (Kahn's order;
/// nodes on a cycle, which a DAG never has, stay in layer 0).
fn longest_path_layers(parents: &[Vec<usize>], children: &[Vec<usize>]) -> Vec<usize> {
    let n = parents.len();
    let mut layer = vec![0usize; n];
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&v| waiting[v] == 0).collect();
    while let Some(node) = ready.pop() {
        for &child in &children[node] {
            layer[child] = layer[child].max(layer[node] + 1);
            waiting[child] -= 1;
            if waiting[child] == 0 {
                ready.push(child);
            }
        }
    }
    layer
}

/// Barycenter sweeps: down (by parents), then up (by children).
fn order_layers(
    layers: &mut [Vec<usize>],
    parents: &[Vec<usize>],
    children: &[Vec<usize>],
    sweeps: usize,
) {
    let n = parents.len();
    // A node's position: its index in its layer, scaled to [0, 1] so layers of different
    // widths compare.
    let mut position = vec![0.0f64; n];
    let update = |layer: &[usize], position: &mut [f64]| {
        #[allow(clippy::cast_precision_loss)]
        let len = layer.len().max(1) as f64;
        for (i, &node) in layer.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let i = i as f64;
            position[node] = (i + 0.5) / len;
        }
    };
    for layer in layers.iter() {
        update(layer, &mut position);
    }
    let sort = |layer: &mut Vec<usize>, neighbours: &[Vec<usize>], position: &[f64]| {
        let key = |node: usize| {
            let around = &neighbours[node];
            if around.is_empty() {
                position[node]
            } else {
                #[allow(clippy::cast_precision_loss)]
                let count = around.len() as f64;
                around.iter().map(|&m| position[m]).sum::<f64>() / count
            }
        };
        let mut keyed: Vec<(f64, usize)> = layer.iter().map(|&node| (key(node), node)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        *layer = keyed.into_iter().map(|(_, node)| node).collect();
    };
    for _ in 0..sweeps {
        for layer in layers.iter_mut().skip(1) {
            sort(layer, parents, &position);
            update(layer, &mut position);
        }
        for l in (0..layers.len().saturating_sub(1)).rev() {
            sort(&mut layers[l], children, &position);
            update(&layers[l], &mut position);
        }
    }
}

/// Coordinates: rows of at most `max_per_row` nodes, each row centred on the widest.
fn place(layers: &[Vec<usize>], layer: &[usize], widths: &[f64], options: &Options) -> Layout {
    let mut nodes = vec![
        Placed {
            layer: 0,
            x: 0.0,
            y: 0.0,
            width: 0.0,
            height: options.node_height,
        };
        layer.len()
    ];
    let rows: Vec<&[usize]> = layers
        .iter()
        .flat_map(|l| l.chunks(options.max_per_row.max(1)))
        .collect();
    #[allow(clippy::cast_precision_loss)] // rows are short
    let row_width = |row: &[usize]| {
        row.iter().map(|&n| widths[n]).sum::<f64>()
            + options.horizontal_gap * row.len().saturating_sub(1) as f64
    };
    let width = rows.iter().map(|row| row_width(row)).fold(0.0, f64::max);
    let mut y = options.vertical_gap / 2.0;
    let margin = options.horizontal_gap;
    for row in &rows {
        let mut x = margin + (width - row_width(row)) / 2.0;
        for &node in *row {
            nodes[node] = Placed {
                layer: layer[node],
                x,
                y,
                width: widths[node],
                height: options.node_height,
            };
            x += widths[node] + options.horizontal_gap;
        }
        y += options.node_height + options.vertical_gap;
    }
    Layout {
        nodes,
        width: width + 2.0 * margin,
        height: y - options.vertical_gap / 2.0,
    }
}

/// How many pairs of edges between adjacent layers cross (for tests and tuning).
pub fn crossings(layout: &Layout, edges: &[(usize, usize)]) -> usize {
    let mut count = 0;
    for (i, &(a, b)) in edges.iter().enumerate() {
        for &(c, d) in &edges[i + 1..] {
            let (pa, pb, pc, pd) = (
                layout.nodes[a],
                layout.nodes[b],
                layout.nodes[c],
                layout.nodes[d],
            );
            if pa.layer != pc.layer || pb.layer != pd.layer || a == c || b == d {
                continue;
            }
            if (pa.x - pc.x) * (pb.x - pd.x) < 0.0 {
                count += 1;
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_edge_points_down_a_layer_or_more() {
        let labels = ["base", "python", "node", "python-dev", "app"];
        let edges = [(0, 1), (0, 2), (1, 3), (3, 4), (2, 4)];
        let drawn = layout(&labels, &edges, &Options::default());
        for (from, to) in edges {
            assert!(drawn.nodes[from].layer < drawn.nodes[to].layer);
            assert!(drawn.nodes[from].y < drawn.nodes[to].y);
        }
        // Longest path: app sits below python-dev, not just below node.
        assert_eq!(drawn.nodes[4].layer, 3);
    }

    #[test]
    fn barycenters_undo_a_crossing_order() {
        // Two parents, each with two children, listed so that the input order crosses.
        let labels = ["a", "b", "b1", "a1", "b2", "a2"];
        let edges = [(0, 3), (0, 5), (1, 2), (1, 4)];
        let unsorted = layout(
            &labels,
            &edges,
            &Options {
                sweeps: 0,
                ..Options::default()
            },
        );
        let sorted = layout(&labels, &edges, &Options::default());
        assert!(crossings(&unsorted, &edges) > 0);
        assert_eq!(crossings(&sorted, &edges), 0);
    }

    #[test]
    fn nodes_never_overlap_and_wide_layers_wrap() {
        let labels: Vec<String> = (0..60).map(|i| format!("image-{i}")).collect();
        let labels: Vec<&str> = std::iter::once("base")
            .chain(labels.iter().map(String::as_str))
            .collect();
        let edges: Vec<(usize, usize)> = (1..labels.len()).map(|i| (0, i)).collect();
        let drawn = layout(&labels, &edges, &Options::default());
        let rows: std::collections::BTreeSet<u64> =
            drawn.nodes.iter().map(|p| p.y.to_bits()).collect();
        assert_eq!(rows.len(), 1 + 3, "60 children wrap onto 3 rows of 24");
        for (i, a) in drawn.nodes.iter().enumerate() {
            for b in &drawn.nodes[i + 1..] {
                let apart =
                    a.x + a.width <= b.x || b.x + b.width <= a.x || a.y.to_bits() != b.y.to_bits();
                assert!(apart, "{a:?} overlaps {b:?}");
            }
            assert!(a.x >= 0.0 && a.x + a.width <= drawn.width);
        }
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let drawn = layout(&["a", "b"], &[(0, 1), (1, 0)], &Options::default());
        assert_eq!(drawn.nodes.len(), 2);
    }
}
