//! `graph.html` (the dependency graph of images: one node per image, an edge when a tag of
//! one is built from a tag of the other) and `outdated.html`.

use std::collections::{BTreeSet, HashMap};

use crate::Report;
use crate::html::{esc, image_path, root_of, table};
use crate::svg::{Node, graph};

pub fn render(report: &Report<'_>, path: &str) -> (String, String) {
    let site = report.site;
    let index: HashMap<&str, usize> = site
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| (image.name.as_str(), i))
        .collect();
    let mut edges = BTreeSet::new();
    for (to, image) in site.images.iter().enumerate() {
        for tag in &image.tags {
            for parent in &tag.depends_on {
                let name = parent.split_once(':').map_or(parent.as_str(), |(i, _)| i);
                if let Some(&from) = index.get(name)
                    && from != to
                {
                    edges.insert((from, to));
                }
            }
        }
    }
    let root = root_of(path);
    let nodes: Vec<Node<'_>> = site
        .images
        .iter()
        .map(|image| Node {
            label: &image.name,
            href: format!("{root}{}", image_path(&image.name)),
            current: false,
        })
        .collect();
    let edges: Vec<(usize, usize)> = edges.into_iter().collect();
    let mut main = String::from("<h1>Dependency graph</h1>\n");
    main.push_str(
        "<p>Each box is an image; an arrow runs from an image to the images built on it. \
         Select a box to open the image; hover or focus one to highlight what it is built \
         from and what is built on it. Each image's page shows the graph of its tags.</p>\n",
    );
    main.push_str(
        "<p class=\"filter\" hidden><label for=\"graph-filter\">Filter images by name</label>\
         <input id=\"graph-filter\" type=\"search\" autocomplete=\"off\" hidden> \
         <span id=\"graph-filter-status\" role=\"status\"></span></p>\n",
    );
    main.push_str(&graph(
        "Images and what they are built from",
        &nodes,
        &edges,
    ));
    ("Dependency graph".into(), main)
}

pub fn outdated(report: &Report<'_>, path: &str) -> (String, String) {
    let bases = report.site.outdated.as_deref().unwrap_or_default();
    let mut main = String::from("<h1>Outdated bases</h1>\n");
    if bases.is_empty() {
        main.push_str("<p>Every external base is at its newest version.</p>\n");
    } else {
        let rows: Vec<Vec<String>> = bases
            .iter()
            .map(|base| {
                vec![
                    format!("<code>{}</code>", esc(&base.reference)),
                    esc(&base.current),
                    esc(&base.latest),
                    report.node_links(path, &base.affected),
                ]
            })
            .collect();
        main.push_str(&table(
            "External bases with a newer version, and the image tags built on them",
            "outdated-table",
            &["base", "current", "newest", "affected image tags"],
            &rows,
        ));
    }
    ("Outdated bases".into(), main)
}
