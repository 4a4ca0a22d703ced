//! `images/<name>.html`: the image's definitions and aliases, the graph of its tags with what
//! they are built from and (up to a limit) what is built on them, and a row per tag.

use std::collections::HashMap;

use super::table_filter;
use crate::Report;
use crate::html::{badge, esc, node_path, root_of, table, tag_path};
use crate::svg::{Node, graph};

/// At most this many tags of other images built on this one are drawn.
const DRAWN_CHILDREN: usize = 40;

pub fn render(report: &Report<'_>, path: &str, index: usize) -> (String, String) {
    let image = &report.site.images[index];
    let mut main = format!("<h1>Image {}</h1>\n<dl class=\"facts\">", esc(&image.name));
    main.push_str(&format!(
        "<dt>Defined in</dt><dd>{}</dd><dt>Tags</dt><dd>{}</dd><dt>Aliases</dt><dd>{}</dd></dl>\n",
        image
            .definitions
            .iter()
            .map(|d| format!("<code>{}</code>", esc(d)))
            .collect::<Vec<_>>()
            .join(", "),
        image.tags.len(),
        if image.aliases.is_empty() {
            "none".into()
        } else {
            image
                .aliases
                .iter()
                .map(|(alias, tag)| format!("<code>{}</code> → {}", esc(alias), esc(tag)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    main.push_str("<section aria-labelledby=\"tags\"><h2 id=\"tags\">Tags</h2>\n");
    main.push_str(&table_filter("tags-filter", "tags-table", "tags"));
    let rows: Vec<Vec<String>> = image
        .tags
        .iter()
        .map(|tag| {
            let built = tag.builds.iter().filter(|b| b.key.is_some()).count();
            vec![
                crate::html::link(path, &tag_path(&image.name, &tag.name), &tag.name),
                esc(tag.variant.as_deref().unwrap_or("")),
                esc(&tag.aliases.join(", ")),
                esc(&tag.platforms.join(", ")),
                format!("{built} of {}", tag.builds.len()),
                esc(&tag
                    .builds
                    .iter()
                    .filter(|b| b.built_at.is_some())
                    .max_by_key(|b| b.built_at)
                    .and_then(|b| b.built_at_text.clone())
                    .unwrap_or_else(|| "never".into())),
                badge(tag.test_status().as_str()),
                tag.lint.len().to_string(),
            ]
        })
        .collect();
    main.push_str(&table(
        &format!("The tags of {}", image.name),
        "tags-table",
        &[
            "tag",
            "variant",
            "aliases",
            "platforms",
            "built",
            "last build",
            "tests",
            "lint findings",
        ],
        &rows,
    ));
    main.push_str(
        "</section>\n<section aria-labelledby=\"graph\"><h2 id=\"graph\">Graph of its tags</h2>\n",
    );
    main.push_str(&subgraph(report, path, index));
    main.push_str("</section>\n");
    (format!("Image {}", image.name), main)
}

/// This image's tags, the tags they are built from, and tags of other images built on them.
fn subgraph(report: &Report<'_>, path: &str, index: usize) -> String {
    let image = &report.site.images[index];
    let mut names: Vec<String> = image
        .tags
        .iter()
        .map(|t| format!("{}:{}", image.name, t.name))
        .collect();
    let own = names.len();
    let mut seen: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    for tag in &image.tags {
        for parent in &tag.depends_on {
            if !seen.contains_key(parent) {
                seen.insert(parent.clone(), names.len());
                names.push(parent.clone());
            }
        }
    }
    let prefix = format!("{}:", image.name);
    let mut children: Vec<&String> = image
        .tags
        .iter()
        .flat_map(|t| &t.used_by)
        .filter(|child| !child.starts_with(&prefix) && !seen.contains_key(*child))
        .collect();
    children.sort();
    children.dedup();
    let hidden = children.len().saturating_sub(DRAWN_CHILDREN);
    for child in children.into_iter().take(DRAWN_CHILDREN) {
        seen.insert(child.clone(), names.len());
        names.push(child.clone());
    }
    let mut edges = Vec::new();
    for (to, name) in names.iter().enumerate() {
        if let Some((_, tag)) = report.tag_of(name) {
            for parent in &tag.depends_on {
                if let Some(&from) = seen.get(parent) {
                    edges.push((from, to));
                }
            }
        }
    }
    let root = root_of(path);
    let nodes: Vec<Node<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Node {
            label: name,
            href: format!("{root}{}", node_path(name)),
            current: i < own,
        })
        .collect();
    let mut out = graph(
        &format!("The tags of {} and their neighbours", image.name),
        &nodes,
        &edges,
    );
    if hidden > 0 {
        out.push_str(&format!(
            "<p>{hidden} more tags of other images are built on this image; each tag's page lists them.</p>\n"
        ));
    }
    out
}
