//! What a custom pipeline template (`generate-ci --template DIR`) sees: the proof of
//! concept's names (`images`, `platforms`, `stages`, `generated_at`, `artifacts`, `ci_image`,
//! `config`) holding what they held there, plus the job graph (`nodes`, `jobs`, `edges`,
//! `runners`, `install`, `provider`). Plain data: nothing here can hold a password or a key.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::graph::{Job, JobGraph, Tag};

/// A registry as templates see it (no credentials).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Registry {
    pub url: String,
    pub default: bool,
    pub insecure: bool,
    pub name: Option<String>,
    pub mirror_of: Option<String>,
}

/// The build cache as templates see it (no access or secret key), under the names
/// `.image-manager.yml` gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cache {
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub path: Option<String>,
}

/// The project-wide OCI labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Labels {
    pub vendor: Option<String>,
    pub authors: Option<String>,
    pub url: Option<String>,
    pub documentation: Option<String>,
    pub licenses: Option<String>,
}

/// `config`: the settings a pipeline may need, secrets removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The URL of the registry images are pushed to.
    pub registry: Option<String>,
    pub registries: Vec<Registry>,
    pub cache: Option<Cache>,
    pub labels: Labels,
}

/// What the context is made from.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    /// The image tags of the pipeline, parents first (as for [`crate::job_graph`]).
    pub tags: &'a [Tag],
    /// The nodes of `tags` that are variant tags (`python:3.13-dev`): the proof of concept's
    /// `images[].tags` lists base tags only.
    pub variants: &'a BTreeSet<String>,
    pub graph: &'a JobGraph,
    /// `--provider` / `ci.provider`, if named.
    pub provider: Option<&'a str>,
    /// `ci.runners`: runner tags per platform.
    pub runners: &'a BTreeMap<String, Vec<String>>,
    /// `ci.image`.
    pub image: Option<&'a str>,
    /// `ci.install`: commands that get image-manager and a builder onto a runner.
    pub install: &'a [String],
    /// `--artifacts` / `ci.artifacts`.
    pub artifacts: bool,
    /// ISO 8601 (`2025-01-02T14:30:00+00:00`), or empty (see the binary).
    pub generated_at: &'a str,
    pub config: Config,
}

/// One image (all its definitions), as the proof of concept listed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Image {
    pub name: String,
    /// Base tags (not variant tags), in build order.
    pub tags: Vec<String>,
    /// The other images it is built on, sorted.
    pub dependencies: Vec<String>,
    /// 0: built on no other image; n: on images of depth < n, one of them n - 1.
    pub depth: usize,
}

/// One node of the graph: an image tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node {
    /// `name:tag`.
    pub id: String,
    pub image: String,
    pub tag: String,
    pub variant: bool,
    /// `os/arch[/variant]`.
    pub platforms: Vec<String>,
    /// The nodes it is built on.
    pub parents: Vec<String>,
    /// The rendered test config jobs use (`dist/<name>/<tag>/test.yml`), if it has one.
    pub test_config: Option<String>,
}

/// A dependency: `to` is built on `from`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// Everything a pipeline template sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Context<'a> {
    pub images: Vec<Image>,
    /// The architectures built, as the proof of concept named them: `amd64`, `arm64`
    /// (`os/arch[/variant]` written in full for anything but Linux).
    pub platforms: Vec<String>,
    /// `build-<image>`, `manifest-<image>` per image by depth then name, then `test`.
    pub stages: Vec<String>,
    pub generated_at: &'a str,
    pub artifacts: bool,
    /// Only present when `ci.image` is set (templates write `ci_image | default(...)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_image: Option<&'a str>,
    pub config: Config,
    pub provider: Option<&'a str>,
    pub nodes: Vec<Node>,
    pub jobs: &'a [Job],
    pub edges: Vec<Edge>,
    pub runners: &'a BTreeMap<String, Vec<String>>,
    pub install: &'a [String],
}

/// `linux/amd64` → `amd64`; other systems keep their full name.
fn short_platform(platform: &str) -> &str {
    platform.strip_prefix("linux/").unwrap_or(platform)
}

/// `name:tag` → (`name`, `tag`): image names hold no `:`.
fn split(node: &str) -> (&str, &str) {
    node.split_once(':').unwrap_or((node, ""))
}

/// The proof of concept's depths: repeatedly, the images whose dependencies all have a
/// depth get the next one; images left in a cycle all get the last.
fn depths(dependencies: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, usize> {
    let mut depths = BTreeMap::new();
    let mut remaining: BTreeSet<&String> = dependencies.keys().collect();
    let mut depth = 0;
    while !remaining.is_empty() {
        let ready: Vec<&String> = remaining
            .iter()
            .copied()
            .filter(|name| dependencies[*name].iter().all(|d| depths.contains_key(d)))
            .collect();
        if ready.is_empty() {
            for name in remaining {
                depths.insert(name.clone(), depth);
            }
            break;
        }
        for name in ready {
            depths.insert(name.clone(), depth);
            remaining.remove(name);
        }
        depth += 1;
    }
    depths
}

/// The context of a pipeline template.
pub fn context<'a>(input: &Input<'a>) -> Context<'a> {
    let mut order: Vec<String> = Vec::new();
    let mut tags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut dependencies: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut platforms: Vec<String> = Vec::new();
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for tag in input.tags {
        let (image, name) = split(&tag.node);
        if !tags.contains_key(image) {
            order.push(image.to_owned());
        }
        let image_tags = tags.entry(image.to_owned()).or_default();
        let variant = input.variants.contains(&tag.node);
        if !variant {
            image_tags.push(name.to_owned());
        }
        let deps = dependencies.entry(image.to_owned()).or_default();
        for parent in &tag.parents {
            let (parent_image, _) = split(parent);
            if parent_image != image {
                deps.insert(parent_image.to_owned());
            }
            edges.push(Edge {
                from: parent.clone(),
                to: tag.node.clone(),
            });
        }
        for platform in &tag.platforms {
            let short = short_platform(platform);
            if !platforms.iter().any(|p| p == short) {
                platforms.push(short.to_owned());
            }
        }
        nodes.push(Node {
            id: tag.node.clone(),
            image: image.to_owned(),
            tag: name.to_owned(),
            variant,
            platforms: tag.platforms.clone(),
            parents: tag.parents.clone(),
            test_config: tag.test_config.clone(),
        });
    }
    // Parents outside the pipeline (none when it holds every ancestor) are no dependency.
    for deps in dependencies.values_mut() {
        deps.retain(|d| tags.contains_key(d));
    }
    let depths = depths(&dependencies);
    let images: Vec<Image> = order
        .iter()
        .map(|name| Image {
            name: name.clone(),
            tags: tags[name].clone(),
            dependencies: dependencies[name].iter().cloned().collect(),
            depth: depths[name],
        })
        .collect();
    let mut by_depth: Vec<&Image> = images.iter().collect();
    by_depth.sort_by(|a, b| (a.depth, &a.name).cmp(&(b.depth, &b.name)));
    let mut stages: Vec<String> = by_depth
        .iter()
        .flat_map(|image| {
            [
                format!("build-{}", image.name),
                format!("manifest-{}", image.name),
            ]
        })
        .collect();
    stages.push("test".to_owned());
    Context {
        images,
        platforms,
        stages,
        generated_at: input.generated_at,
        artifacts: input.artifacts,
        ci_image: input.image,
        config: input.config.clone(),
        provider: input.provider,
        nodes,
        jobs: &input.graph.jobs,
        edges,
        runners: input.runners,
        install: input.install,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Options, job_graph};

    fn tag(node: &str, parents: &[&str]) -> Tag {
        Tag {
            node: node.into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
            test_config: None,
            why: Vec::new(),
        }
    }

    fn input<'a>(
        tags: &'a [Tag],
        variants: &'a BTreeSet<String>,
        graph: &'a JobGraph,
        runners: &'a BTreeMap<String, Vec<String>>,
    ) -> Input<'a> {
        Input {
            tags,
            variants,
            graph,
            provider: None,
            runners,
            image: None,
            install: &[],
            artifacts: false,
            generated_at: "",
            config: Config::default(),
        }
    }

    fn tags() -> Vec<Tag> {
        vec![
            tag("base:2025.09", &[]),
            tag("python:3.13.7", &["base:2025.09"]),
            tag("python:3.13.7-dev", &["python:3.13.7"]),
            tag("dotnet:9.0.100", &["base:2025.09"]),
            tag("tool:1", &["python:3.13.7", "dotnet:9.0.100"]),
            tag("python:3.12.11", &["base:2025.09"]),
        ]
    }

    #[test]
    fn images_keep_the_proof_of_concepts_names_and_meaning() {
        let tags = tags();
        let graph = job_graph(&tags, &Options::default());
        let variants: BTreeSet<String> = ["python:3.13.7-dev".to_owned()].into();
        let runners = BTreeMap::new();
        let context = context(&input(&tags, &variants, &graph, &runners));
        let summary: Vec<(&str, Vec<&str>, Vec<&str>, usize)> = context
            .images
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.tags.iter().map(String::as_str).collect(),
                    i.dependencies.iter().map(String::as_str).collect(),
                    i.depth,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("base", vec!["2025.09"], vec![], 0),
                // Base tags only; the variant built on python:3.13.7 is no dependency.
                ("python", vec!["3.13.7", "3.12.11"], vec!["base"], 1),
                ("dotnet", vec!["9.0.100"], vec!["base"], 1),
                ("tool", vec!["1"], vec!["dotnet", "python"], 2),
            ]
        );
        assert_eq!(context.platforms, ["amd64", "arm64"]);
        assert_eq!(
            context.stages,
            [
                "build-base",
                "manifest-base",
                "build-dotnet",
                "manifest-dotnet",
                "build-python",
                "manifest-python",
                "build-tool",
                "manifest-tool",
                "test"
            ]
        );
        assert_eq!(context.nodes[2].image, "python");
        assert_eq!(context.nodes[2].tag, "3.13.7-dev");
        assert!(context.nodes[2].variant);
        assert_eq!(
            context.edges[1],
            Edge {
                from: "python:3.13.7".into(),
                to: "python:3.13.7-dev".into()
            }
        );
        assert_eq!(context.jobs.len(), graph.jobs.len());
    }

    #[test]
    fn depths_of_a_cycle_are_the_last_depth_as_in_the_proof_of_concept() {
        let deps: BTreeMap<String, BTreeSet<String>> = [
            ("a".to_owned(), BTreeSet::new()),
            ("b".to_owned(), ["a".to_owned(), "c".to_owned()].into()),
            ("c".to_owned(), ["b".to_owned()].into()),
        ]
        .into();
        let depths = depths(&deps);
        assert_eq!(depths["a"], 0);
        assert_eq!(depths["b"], 1);
        assert_eq!(depths["c"], 1);
    }

    #[test]
    fn ci_image_is_left_out_unless_set_and_platforms_of_other_systems_stay_whole() {
        let tags = vec![Tag {
            platforms: vec!["linux/arm/v7".into(), "windows/amd64".into()],
            ..tag("a:1", &[])
        }];
        let graph = job_graph(&tags, &Options::default());
        let (variants, runners) = (BTreeSet::new(), BTreeMap::new());
        let context = context(&input(&tags, &variants, &graph, &runners));
        assert_eq!(context.platforms, ["arm/v7", "windows/amd64"]);
        assert_eq!(context.ci_image, None);
    }
}
