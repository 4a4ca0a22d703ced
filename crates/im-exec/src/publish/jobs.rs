//! What a publishing command works through: one job per image tag (its platforms, archives,
//! the tag it writes, its aliases, the repositories that lend it blobs).

use std::path::{Path, PathBuf};

use im_diag::Diagnostics;
use im_plan::PlanNode;
use im_project::Platform;

use crate::prepare::Prepared;

/// One image tag to publish (or combine, copy, promote).
#[derive(Debug, Clone)]
pub struct TagJob {
    pub image: String,
    /// The project's tag.
    pub tag: String,
    /// The tag written: `tag`, or `tag-ID` for a snapshot.
    pub published: String,
    /// Alias tags written after it (none for a snapshot).
    pub aliases: Vec<String>,
    pub platforms: Vec<Platform>,
    /// The per-platform archives, in `platforms` order (only where the job pushes from
    /// `dist/`).
    pub archives: Vec<PathBuf>,
    /// The multi-platform OCI layout `build` wrote, `dist/<name>/<tag>/image.tar` (only
    /// where the job pushes from `dist/`).
    pub layout: Option<PathBuf>,
    /// Other images this one is built on: their repositories lend blobs by mount.
    pub parents: Vec<String>,
    /// Whether writing `published` also writes a revision tag (`revision: true`, not a
    /// snapshot).
    pub revision: bool,
}

impl TagJob {
    /// `name:tag` as the project names it.
    pub fn node(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }

    /// `published-linux-amd64`, the per-platform tag.
    pub fn platform_tag(&self, platform: &Platform) -> String {
        format!("{}-{}", self.published, platform.slug())
    }
}

/// The other managed images `image:tag` is built on.
fn parent_images(prepared: &Prepared, image: &str, tag: &str) -> Vec<String> {
    let Some(node) = prepared.graph.index_of(&im_graph::NodeId::new(image, tag)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = prepared
        .graph
        .parent_nodes(node)
        .into_iter()
        .map(|p| prepared.graph.nodes[p].image.clone())
        .filter(|name| name != image)
        .collect();
    names.dedup();
    names
}

/// The tag written for `tag` (`tag-ID` for a snapshot).
pub fn published_tag(tag: &str, snapshot_id: Option<&str>) -> String {
    match snapshot_id {
        Some(id) => format!("{tag}-{id}"),
        None => tag.to_owned(),
    }
}

/// The jobs for the user's targets: each selected image tag with its platforms (`--platform`
/// or its own) and aliases.
pub fn select_jobs(
    prepared: &Prepared,
    targets: &[String],
    platforms: Option<&[Platform]>,
) -> Result<Vec<TagJob>, Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, targets)?;
    let mut jobs = Vec::new();
    for &node in prepared.graph.order.iter().filter(|n| selected.contains(n)) {
        let id = &prepared.graph.nodes[node];
        let Some(image) = prepared.project.image(&id.image) else {
            continue;
        };
        let Some(tag) = image.tag(&id.tag) else {
            continue;
        };
        jobs.push(TagJob {
            image: id.image.clone(),
            tag: id.tag.clone(),
            published: published_tag(&id.tag, prepared.snapshot_id.as_deref()),
            aliases: if prepared.snapshot_id.is_some() {
                Vec::new()
            } else {
                image.aliases_of(&tag.name).map(str::to_owned).collect()
            },
            platforms: platforms.map_or_else(|| tag.platforms.clone(), <[Platform]>::to_vec),
            archives: Vec::new(),
            layout: None,
            parents: parent_images(prepared, &id.image, &id.tag),
            revision: image.revision && prepared.snapshot_id.is_none(),
        });
    }
    Ok(jobs)
}

/// Groups plan nodes into jobs (plan order), with their archives.
pub fn jobs_from_nodes<'a>(
    prepared: &Prepared,
    dist: &Path,
    nodes: impl Iterator<Item = &'a PlanNode>,
) -> Vec<TagJob> {
    let mut jobs: Vec<TagJob> = Vec::new();
    for node in nodes {
        let name = node.id.to_string();
        let position = jobs.iter().position(|j| j.node() == name);
        let job = if let Some(at) = position {
            &mut jobs[at]
        } else {
            let aliases = if prepared.snapshot_id.is_some() {
                Vec::new()
            } else {
                prepared
                    .project
                    .image(&node.id.image)
                    .map(|image| image.aliases_of(&node.id.tag).map(str::to_owned).collect())
                    .unwrap_or_default()
            };
            jobs.push(TagJob {
                image: node.id.image.clone(),
                tag: node.id.tag.clone(),
                published: published_tag(&node.id.tag, prepared.snapshot_id.as_deref()),
                aliases,
                platforms: Vec::new(),
                archives: Vec::new(),
                layout: Some(
                    dist.join(&node.id.image)
                        .join(&node.id.tag)
                        .join("image.tar"),
                ),
                parents: parent_images(prepared, &node.id.image, &node.id.tag),
                revision: prepared.snapshot_id.is_none()
                    && prepared
                        .project
                        .image(&node.id.image)
                        .is_some_and(|image| image.revision),
            });
            jobs.last_mut().expect("just pushed")
        };
        job.platforms.push(node.platform.clone());
        job.archives.push(dist.join(&node.output));
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_tags_carry_the_id() {
        assert_eq!(published_tag("1.2.3", None), "1.2.3");
        assert_eq!(published_tag("1.2.3", Some("pr-42")), "1.2.3-pr-42");
        let job = TagJob {
            image: "app".into(),
            tag: "1.0".into(),
            published: "1.0-pr-1".into(),
            aliases: Vec::new(),
            platforms: Vec::new(),
            archives: Vec::new(),
            layout: None,
            parents: Vec::new(),
            revision: false,
        };
        assert_eq!(
            job.platform_tag(&"linux/arm/v7".parse().unwrap()),
            "1.0-pr-1-linux-arm-v7"
        );
    }
}
