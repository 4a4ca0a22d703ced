//! A project loaded, rendered and analysed — what every command starts from — and the
//! `dist/index.json` it describes.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use im_diag::{Diagnostic, Diagnostics, display_path};
use im_graph::{Graph, NodeId, NodeInput};
use im_project::{Loaded, Project};
use im_render::dist::{Index, IndexImage, IndexTag, TagSources};
use im_render::{Options, Rendered};

/// A project rendered and analysed.
pub struct Prepared {
    pub project: Project,
    pub rendered: Rendered,
    pub graph: Graph,
    pub warnings: Vec<Diagnostic>,
    pub snapshot_id: Option<String>,
    /// Images that install packages without a `packages.lock`.
    pub unlocked: Vec<String>,
}

impl Prepared {
    /// Loads the project at `root` (`${VAR}` in its settings looked up with `lookup`).
    pub fn load_project(
        root: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Loaded, Diagnostics> {
        Project::load(root, lookup)
    }

    /// Loads, renders and builds the graph, collecting every problem.
    pub fn new(
        root: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
        options: Options,
    ) -> Result<Prepared, Diagnostics> {
        let Loaded {
            project,
            mut warnings,
        } = Self::load_project(root, lookup)?;
        let mut fetched = crate::source::fetch(&project, options.refresh_sources)?;
        warnings.append(&mut fetched.warnings);
        let mut rendered = im_render::render_with(&project, &options, &fetched.sources)?;
        warnings.extend(rendered.warnings.iter().cloned());
        let mut graph = Self::graph(&project, &rendered, options.snapshot_id.as_deref())?;
        let mut unlocked = Vec::new();
        if !options.skip_locks {
            // Pinned `FROM`s name their bases with digests: `apply` updates those nodes'
            // external bases in the graph.
            let applied = crate::lock::apply(&project, &mut rendered, &mut graph)
                .map_err(|errors| in_templates(&project, &rendered, errors))?;
            warnings.extend(
                applied
                    .warnings
                    .into_iter()
                    .flat_map(|warning| in_templates(&project, &rendered, warning.into())),
            );
            unlocked = applied.unlocked;
        }
        // The commits `source:` refs resolved to, once everything else held.
        fetched.write_locks()?;
        Ok(Prepared {
            project,
            rendered,
            graph,
            warnings,
            snapshot_id: options.snapshot_id,
            unlocked,
        })
    }

    /// The graph of the rendered tags.
    fn graph(
        project: &Project,
        rendered: &Rendered,
        snapshot_id: Option<&str>,
    ) -> Result<Graph, Diagnostics> {
        let inputs: Vec<NodeInput<'_>> = rendered
            .tags
            .iter()
            .map(|tag| NodeInput {
                id: NodeId::new(&tag.image, &tag.tag),
                dockerfile: &tag.parsed,
                source: display_path(&project.root, &tag.dockerfile_source.path),
            })
            .collect();
        let graph = Graph::build(project, &inputs, snapshot_id)
            .map_err(|errors| in_templates(project, rendered, errors))?;
        tracing::debug!("dependency graph built: {} nodes", graph.nodes.len());
        Ok(graph)
    }

    /// Writes every rendered tag and `index.json` into `dist` (`dist_name`: how the index
    /// names it, relative to the project); see [`im_render::dist::write`] for `unchanged`.
    pub fn write_dist(
        &self,
        dist: &Path,
        dist_name: &Path,
        unchanged: Option<im_render::dist::Unchanged<'_>>,
    ) -> anyhow::Result<im_render::dist::WriteReport> {
        im_render::dist::write(
            dist,
            &self.rendered.tags,
            || self.index(dist_name),
            unchanged,
        )
        .with_context(|| format!("writing {}", dist.display()))
    }
}

impl Prepared {
    /// Drops the project on another thread while the caller goes on with what it took from it:
    /// a large monorepo's is hundreds of MB in millions of allocations, a good part of a
    /// second on one core. Dropping the returned guard waits for it.
    pub fn free_in_background(self) -> Freeing {
        Freeing(Some(std::thread::spawn(move || drop(self))))
    }
}

/// A value being dropped on another thread ([`Prepared::free_in_background`]); dropping this
/// waits until it is gone.
#[must_use = "dropping the guard at once waits for the drop, which is then not in the background"]
pub struct Freeing(Option<std::thread::JoinHandle<()>>);

impl Drop for Freeing {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            // A panic while dropping was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

/// Points diagnostics about rendered Dockerfiles (not written while there are errors) at
/// the templates they came from.
pub(crate) fn in_templates(
    project: &Project,
    rendered: &Rendered,
    errors: Diagnostics,
) -> Diagnostics {
    let confined = im_input::Confined::new(&project.root);
    let templates: std::collections::HashMap<PathBuf, &Path> = rendered
        .tags
        .iter()
        .filter(|tag| tag.dockerfile_source.kind == im_render::discovery::SourceKind::Template)
        .map(|tag| {
            (
                im_render::rendered_dockerfile_path(&tag.image, &tag.tag),
                tag.dockerfile_source.path.as_path(),
            )
        })
        .collect();
    let mut out = Diagnostics::new();
    for diagnostic in errors {
        let template = diagnostic
            .location
            .as_ref()
            .and_then(|location| templates.get(&location.path));
        out.push(match template {
            Some(template) => {
                im_render::in_template(diagnostic, &confined, &project.root, template)
            }
            None => diagnostic,
        });
    }
    out
}

fn relative(root: &Path, path: &Path) -> String {
    display_path(root, path).display().to_string()
}

impl Prepared {
    /// `dist/index.json` for this project.
    pub fn index(&self, dist_name: &Path) -> Index {
        let root = &self.project.root;
        let by_id: std::collections::HashMap<(&str, &str), &im_render::RenderedTag> = self
            .rendered
            .tags
            .iter()
            .map(|r| ((r.image.as_str(), r.tag.as_str()), r))
            .collect();
        let mut images = Vec::new();
        for image in &self.project.images {
            let mut tags = Vec::new();
            for tag in &image.tags {
                let id = NodeId::new(&image.name, &tag.name);
                let node = self.graph.index_of(&id);
                let rendered = by_id
                    .get(&(image.name.as_str(), tag.name.as_str()))
                    .copied();
                let (depends_on, external) = node.map_or_else(Default::default, |node| {
                    let parents = self
                        .graph
                        .parent_nodes(node)
                        .into_iter()
                        .map(|p| self.graph.nodes[p].to_string())
                        .collect();
                    let external = self.graph.externals[node]
                        .iter()
                        .map(|e| e.reference.clone())
                        .collect();
                    (parents, external)
                });
                let file = self.project.file_of(tag);
                let sources = rendered.map_or_else(
                    || TagSources {
                        definition: file.file.display().to_string(),
                        dockerfile: String::new(),
                        dockerfile_kind: String::new(),
                        test: None,
                        rootfs: Vec::new(),
                        rootfs_injected: false,
                        upstream: None,
                    },
                    |r| TagSources {
                        definition: file.file.display().to_string(),
                        dockerfile: relative(root, &r.dockerfile_source.path),
                        dockerfile_kind: format!("{:?}", r.dockerfile_source.kind).to_lowercase(),
                        test: r
                            .test
                            .as_ref()
                            .map(|(_, found)| relative(root, &found.path)),
                        rootfs: r.overlay.layers.iter().map(|l| relative(root, l)).collect(),
                        rootfs_injected: r.rootfs_injected,
                        upstream: r.source.as_deref().map(|source| {
                            im_render::dist::IndexUpstream {
                                git: source.git.clone(),
                                reference: source.reference.clone(),
                                kind: source.kind.to_owned(),
                                commit: source.commit.clone(),
                                context: source.context_path.clone(),
                                patches: source.patches.iter().map(|(p, _)| p.clone()).collect(),
                            }
                        }),
                    },
                );
                tags.push(IndexTag {
                    name: tag.name.clone(),
                    variant: tag.variant.as_ref().map(|v| v.name.clone()),
                    base_tag: tag.variant.as_ref().map(|v| v.base_tag.clone()),
                    aliases: image.aliases_of(&tag.name).map(str::to_owned).collect(),
                    platforms: tag.platforms.iter().map(ToString::to_string).collect(),
                    dir: dist_name
                        .join(&image.name)
                        .join(&tag.name)
                        .display()
                        .to_string(),
                    depends_on,
                    external,
                    sources,
                });
            }
            images.push(IndexImage {
                name: image.name.clone(),
                definitions: image
                    .files
                    .iter()
                    .map(|&f| self.project.files[f].file.display().to_string())
                    .collect(),
                aliases: image.aliases.clone(),
                tags,
            });
        }
        let mut edges = Vec::new();
        let mut external_bases: std::collections::BTreeMap<String, Vec<String>> =
            std::collections::BTreeMap::new();
        for (node, parents) in self.graph.parents.iter().enumerate() {
            for parent in self.graph.parent_nodes(node) {
                edges.push([
                    self.graph.nodes[parent].to_string(),
                    self.graph.nodes[node].to_string(),
                ]);
            }
            let _ = parents;
            for external in &self.graph.externals[node] {
                external_bases
                    .entry(external.reference.clone())
                    .or_default()
                    .push(self.graph.nodes[node].to_string());
            }
        }
        Index {
            version: 1,
            images,
            edges,
            external_bases,
            order: self
                .graph
                .order
                .iter()
                .map(|&n| self.graph.nodes[n].to_string())
                .collect(),
            snapshot_id: self.snapshot_id.clone(),
        }
    }
}
