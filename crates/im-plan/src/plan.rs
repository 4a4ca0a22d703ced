//! The build plan: every node (image:tag × platform) with its build key, what to do, and why.
//!
//! Plans are pure data computed from the rendered project, the graph and the ledger; nothing
//! is built or written here. `plan` prints them, `build` executes them, and most tests assert
//! on them without any daemon.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use im_diag::{Diagnostic, Diagnostics};
use im_dockerfile::StageBase;
use im_graph::{Edge, Graph, NodeId};
use im_project::{Platform, Project};
use im_render::RenderedTag;
use im_render::output::OpenDir;
use rayon::prelude::*;
use serde::Serialize;

use crate::key::{
    DockerIgnore, GENERATED_DOCKERIGNORE, HashCache, KeyInputs, overlay_inputs, sha256_hex,
};
use crate::ledger::{Ledger, entry_name, load_inputs};
use crate::targets;

/// What the plan does with a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Build,
    UpToDate,
}

/// Why a node is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum Reason {
    /// Never built (or the ledger does not know it).
    New,
    Forced,
    /// Its output is gone although the key matches.
    OutputMissing,
    DockerfileChanged,
    ContextFileChanged {
        path: String,
    },
    ContextFileAdded {
        path: String,
    },
    ContextFileRemoved {
        path: String,
    },
    BuildArgsChanged,
    LabelsChanged,
    BuilderChanged {
        from: String,
        to: String,
    },
    ParentChanged {
        parent: String,
    },
    BaseDigestChanged {
        reference: String,
        /// The digest it resolves to now, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// The external repository of a `source:` image changed: `what` is `commit`, `git`,
    /// `context` or `patch <file>`.
    SourceChanged {
        what: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// A `packages.lock` pin changed: a package's version or a base's digest (`FROM <base>`).
    PinChanged {
        pin: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::New => f.write_str("new"),
            Reason::Forced => f.write_str("forced"),
            Reason::OutputMissing => f.write_str("output missing"),
            Reason::DockerfileChanged => f.write_str("Dockerfile changed"),
            Reason::ContextFileChanged { path } => write!(f, "context file {path} changed"),
            Reason::ContextFileAdded { path } => write!(f, "context file {path} added"),
            Reason::ContextFileRemoved { path } => write!(f, "context file {path} removed"),
            Reason::BuildArgsChanged => f.write_str("build args changed"),
            Reason::LabelsChanged => f.write_str("labels changed"),
            Reason::BuilderChanged { from, to } => write!(f, "builder changed from {from} to {to}"),
            Reason::ParentChanged { parent } => write!(f, "parent {parent} changed"),
            Reason::BaseDigestChanged {
                reference,
                digest: Some(digest),
            } => write!(f, "base {reference} moved to {digest}"),
            Reason::BaseDigestChanged {
                reference,
                digest: None,
            } => write!(f, "base {reference} digest changed"),
            Reason::SourceChanged { what, from, to } => {
                let short = |v: &Option<String>| match v.as_deref() {
                    Some(v) if what == "commit" => v[..v.len().min(12)].to_owned(),
                    Some(v) => v.to_owned(),
                    None => "none".to_owned(),
                };
                match what.as_str() {
                    "commit" => write!(f, "upstream moved from {} to {}", short(from), short(to)),
                    _ if from.is_none() => write!(f, "source {what} added"),
                    _ if to.is_none() => write!(f, "source {what} removed"),
                    _ => write!(f, "source {what} changed"),
                }
            }
            Reason::PinChanged { pin, from, to } => {
                let what = match pin.strip_prefix("FROM ") {
                    Some(base) => format!("base digest changed: {base} (packages.lock)"),
                    None => format!("package pin changed: {pin}"),
                };
                match (from, to) {
                    (Some(from), Some(to)) => write!(f, "{what} {from} → {to}"),
                    (None, Some(to)) => write!(f, "{what} (now {to})"),
                    (Some(from), None) => write!(f, "{what} (was {from}, now unpinned)"),
                    (None, None) => f.write_str(&what),
                }
            }
        }
    }
}

/// One node of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlanNode {
    pub id: NodeId,
    pub platform: Platform,
    pub key: String,
    pub action: Action,
    pub reasons: Vec<Reason>,
    /// Whether the user's targets named it (as opposed to being needed by them).
    pub selected: bool,
    /// Indices of parent nodes (same platform) in [`Plan::nodes`].
    pub parents: Vec<usize>,
    /// Parent references as the Dockerfile names them, with the parent's plan index.
    pub parent_refs: Vec<(String, usize)>,
    /// `<name>/<tag>/<os>-<arch>/image.tar`, relative to `dist/`.
    pub output: PathBuf,
    #[serde(skip)]
    pub inputs: KeyInputs,
    /// The checkout a `source:` image builds from (its context), when it has one.
    #[serde(skip)]
    pub source: Option<Arc<im_render::upstream::ResolvedSource>>,
}

/// A whole plan, nodes in build order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub nodes: Vec<PlanNode>,
}

impl Plan {
    pub fn to_build(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.action == Action::Build)
            .count()
    }
}

/// Settings of one plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub targets: Vec<String>,
    /// Build the targets' missing or outdated ancestors too (the default).
    pub with_deps: bool,
    /// Also rebuild everything built on the targets.
    pub dependents: bool,
    pub force: bool,
    /// `--platform`: replaces every image's platforms.
    pub platforms: Option<Vec<Platform>>,
    /// The builder kind (`buildah`, `docker`, ...): part of every key.
    pub builder: String,
    pub build_args: BTreeMap<String, String>,
    /// Digests resolved for external base references: the reference as written
    /// (`debian:bookworm-slim`) → platform (`linux/amd64`) → the digest of that platform's
    /// image manifest. A reference pinned by digest in the Dockerfile needs no entry.
    pub external_digests: BTreeMap<String, BTreeMap<String, String>>,
    /// `--snapshot-id` the project was rendered with: a managed parent written as
    /// `<tag>-<id>` counts as `<tag>` in keys and labels, so a snapshot build and a release
    /// build of the same inputs have the same key (the parent's own key is an input anyway).
    pub snapshot_id: Option<String>,
}

/// The output path of a node, relative to `dist/`.
pub fn output_path(id: &NodeId, platform: &Platform) -> PathBuf {
    Path::new(&id.image)
        .join(&id.tag)
        .join(platform.slug())
        .join("image.tar")
}

/// Labels that are the same on every build of the same inputs (part of the key).
pub fn static_labels(
    project: &Project,
    id: &NodeId,
    rendered: &RenderedTag,
    release: &dyn Fn(&str) -> String,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let prefix = "org.opencontainers.image";
    labels.insert(format!("{prefix}.ref.name"), id.to_string());
    labels.insert(format!("{prefix}.version"), id.tag.clone());
    labels.insert(format!("{prefix}.title"), id.image.clone());
    if let Some(tag) = project.tag_of(&id.image, &id.tag) {
        let file = project.file_of(tag);
        if let Some(description) = &file.description {
            labels.insert(format!("{prefix}.description"), description.clone());
        }
        if let Some(licenses) = &file.licenses {
            labels.insert(format!("{prefix}.licenses"), licenses.clone());
        }
    }
    for (key, value) in project.settings.labels.resolve(&id.image, &id.tag) {
        labels.insert(key.to_owned(), value);
    }
    if let StageBase::Image(reference) = &rendered.parsed.final_stage().base {
        labels.insert(
            format!("{prefix}.base.name"),
            release(&reference.to_string()),
        );
    }
    labels
}

/// What identifies a `source:` image's context in its key: the repository, the commit, the
/// context folder and each patch's hash (the checkout is made from exactly these).
fn source_inputs(source: &im_render::upstream::ResolvedSource) -> BTreeMap<String, String> {
    let mut inputs = BTreeMap::from([
        ("git".to_owned(), source.git.clone()),
        ("commit".to_owned(), source.commit.clone()),
        ("context".to_owned(), source.context_path.clone()),
    ]);
    for (patch, hash) in &source.patches {
        inputs.insert(format!("patch {patch}"), hash.clone());
    }
    inputs
}

/// `reference` as a release names it: a managed parent's `<tag>-<snapshot id>` as `<tag>`.
fn release_reference(reference: &str, parents: &[Edge], snapshot: Option<&str>) -> String {
    if parents.iter().any(|edge| edge.reference == reference) {
        release_name(reference, snapshot).to_owned()
    } else {
        reference.to_owned()
    }
}

/// A managed parent's reference as written under `--snapshot-id` (`base:1-ci-7`) as the
/// release names it (`base:1`); unchanged without a snapshot or the suffix.
pub fn release_name<'a>(reference: &'a str, snapshot: Option<&str>) -> &'a str {
    snapshot
        .and_then(|id| reference.strip_suffix(id)?.strip_suffix('-'))
        .unwrap_or(reference)
}

/// The Dockerfile as a release build renders it: every managed parent written with the
/// snapshot suffix (`FROM base:1-ci-7`) named without it.
fn release_dockerfile<'a>(
    text: &'a str,
    parents: &[Edge],
    snapshot: Option<&str>,
) -> std::borrow::Cow<'a, str> {
    let mut out = std::borrow::Cow::Borrowed(text);
    for edge in parents {
        let release = release_name(&edge.reference, snapshot);
        if release != edge.reference {
            out = replace_word(&out, &edge.reference, release).into();
        }
    }
    out
}

/// `text` with `word` replaced where it is not the start of a longer name (`base:1-ci-7`
/// is not replaced inside `base:1-ci-70`).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let end = at + word.len();
        let continues = rest[end..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        out.push_str(&rest[..at]);
        out.push_str(if continues { word } else { with });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A reason for each key of `old` or `new` whose value differs (added, changed or removed).
fn map_changes(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    reasons: &mut Vec<Reason>,
    reason: impl Fn(String, Option<String>, Option<String>) -> Reason,
) {
    for (key, value) in new {
        if old.get(key) != Some(value) {
            reasons.push(reason(
                key.clone(),
                old.get(key).cloned(),
                Some(value.clone()),
            ));
        }
    }
    for (key, value) in old {
        if !new.contains_key(key) {
            reasons.push(reason(key.clone(), Some(value.clone()), None));
        }
    }
}

/// Why a node whose inputs were `old` has to be built again with `new` (empty: same key).
pub fn changes(old: &KeyInputs, new: &KeyInputs) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if old.builder != new.builder {
        reasons.push(Reason::BuilderChanged {
            from: old.builder.clone(),
            to: new.builder.clone(),
        });
    }
    if old.dockerfile != new.dockerfile {
        reasons.push(Reason::DockerfileChanged);
    }
    map_changes(&old.pins, &new.pins, &mut reasons, |pin, from, to| {
        Reason::PinChanged { pin, from, to }
    });
    map_changes(&old.source, &new.source, &mut reasons, |what, from, to| {
        Reason::SourceChanged { what, from, to }
    });
    for (path, hash) in new.context.iter() {
        match old.context.get(path) {
            None => reasons.push(Reason::ContextFileAdded { path: path.clone() }),
            Some(previous) if previous != hash => {
                reasons.push(Reason::ContextFileChanged { path: path.clone() });
            }
            Some(_) => {}
        }
    }
    for path in old.context.keys() {
        if !new.context.contains_key(path) {
            reasons.push(Reason::ContextFileRemoved { path: path.clone() });
        }
    }
    if old.build_args != new.build_args {
        reasons.push(Reason::BuildArgsChanged);
    }
    if old.labels != new.labels {
        reasons.push(Reason::LabelsChanged);
    }
    for (parent, key) in &new.parents {
        if old.parents.get(parent) != Some(key) {
            reasons.push(Reason::ParentChanged {
                parent: parent.clone(),
            });
        }
    }
    for (reference, digest) in &new.externals {
        if old.externals.get(reference) != Some(digest) {
            reasons.push(Reason::BaseDigestChanged {
                reference: reference.clone(),
                digest: digest.clone(),
            });
        }
    }
    reasons
}

/// Sets a node's action and reasons from the ledger; returns a problem if it cannot be
/// built although it has to be.
fn decide(
    node: &mut PlanNode,
    ledger: &Ledger,
    dist: &Path,
    outputs: Option<&OpenDir>,
    options: &PlanOptions,
) -> Option<Diagnostic> {
    let previous = ledger.nodes.get(&entry_name(
        &node.id.to_string(),
        &node.platform.to_string(),
    ));
    let mut reasons = Vec::new();
    if node.selected && options.force {
        reasons.push(Reason::Forced);
    }
    match previous {
        None => reasons.push(Reason::New),
        Some(entry) if entry.key != node.key => {
            if let Some(old) = load_inputs(dist, &entry.key) {
                reasons.extend(changes(&old, &node.inputs));
            }
            // Nothing to compare with (the inputs of the last build were not kept), or
            // nothing differs that the comparison knows: the key still changed.
            if reasons.is_empty() {
                reasons.push(Reason::New);
            }
        }
        Some(_) if !outputs.is_some_and(|dist| dist.is_file(&node.output)) => {
            reasons.push(Reason::OutputMissing);
        }
        Some(_) => {}
    }
    node.action = if reasons.is_empty() {
        Action::UpToDate
    } else {
        Action::Build
    };
    let problem =
        (node.action == Action::Build && !node.selected && !options.with_deps).then(|| {
            Diagnostic::error(format!(
                "{} ({}) is needed but not up to date ({})",
                node.id, node.platform, reasons[0]
            ))
            .with_help("drop --no-deps to build it too, or name it as a target")
        });
    if problem.is_some() {
        node.action = Action::UpToDate;
    }
    node.reasons = reasons;
    problem
}

/// The key inputs every platform of a tag shares (the context also shared by every tag with
/// the same rootfs overlay), and their [`KeyInputs::tag_hash`].
type TagInputs = (KeyInputs, String);

/// The nodes the user's targets select (with `dependents`, and everything built on them) and
/// every node they need: those and their ancestors.
pub fn selection(
    project: &Project,
    graph: &Graph,
    options: &PlanOptions,
) -> Result<(BTreeSet<usize>, BTreeSet<usize>), Diagnostics> {
    let mut selected = targets::select(project, graph, &options.targets)?;
    if options.dependents {
        selected = targets::with_descendants(graph, &selected);
    }
    let needed = targets::with_ancestors(graph, &selected);
    Ok((selected, needed))
}

/// The external bases a plan with `options` needs: each reference as written, with the
/// platforms of the nodes that use it. Resolve these (see `im-bases`) and pass the digests
/// in [`PlanOptions::external_digests`].
pub fn external_bases(
    project: &Project,
    graph: &Graph,
    options: &PlanOptions,
) -> Result<BTreeMap<String, BTreeSet<Platform>>, Diagnostics> {
    let (_, needed) = selection(project, graph, options)?;
    let mut out: BTreeMap<String, BTreeSet<Platform>> = BTreeMap::new();
    for &node in &needed {
        if graph.externals[node].is_empty() {
            continue;
        }
        let id = &graph.nodes[node];
        let Some(tag) = project.tag_of(&id.image, &id.tag) else {
            continue;
        };
        let platforms = options.platforms.as_ref().unwrap_or(&tag.platforms);
        for external in &graph.externals[node] {
            out.entry(external.reference.clone())
                .or_default()
                .extend(platforms.iter().cloned());
        }
    }
    Ok(out)
}

/// Computes the plan.
pub fn plan(
    project: &Project,
    graph: &Graph,
    rendered: &[RenderedTag],
    ledger: &Ledger,
    dist: &Path,
    options: &PlanOptions,
) -> Result<Plan, Diagnostics> {
    let (selected, needed) = selection(project, graph, options)?;
    let by_id: HashMap<(&str, &str), &RenderedTag> = rendered
        .iter()
        .map(|r| ((r.image.as_str(), r.tag.as_str()), r))
        .collect();

    // Per tag: the Dockerfile hash and the context inputs (shared by all platforms).
    let ignore = DockerIgnore::parse(GENERATED_DOCKERIGNORE);
    let cache = HashCache::default();
    // Overlays are shared by every tag of a definition (and variant): hash each one once.
    let mut overlays: Vec<&Arc<im_render::rootfs::Overlay>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &node in &needed {
        let id = &graph.nodes[node];
        if let Some(tag) = by_id.get(&(id.image.as_str(), id.tag.as_str()))
            && seen.insert(Arc::as_ptr(&tag.overlay) as usize)
        {
            overlays.push(&tag.overlay);
        }
    }
    let contexts: HashMap<usize, Result<Arc<BTreeMap<String, String>>, String>> = overlays
        .par_iter()
        .map(|overlay| {
            (
                Arc::as_ptr(overlay) as usize,
                overlay_inputs(overlay, &ignore, &cache)
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
            )
        })
        .collect();
    let snapshot = options.snapshot_id.as_deref();
    // Most tags pin nothing and build no `source:`: they share one empty map.
    let none: Arc<BTreeMap<String, String>> = Arc::default();
    let hashed: Vec<(usize, Result<TagInputs, Diagnostic>)> = needed
        .par_iter()
        .map(|&node| {
            let id = &graph.nodes[node];
            let result = match by_id.get(&(id.image.as_str(), id.tag.as_str())) {
                Some(tag) => contexts
                    .get(&(Arc::as_ptr(&tag.overlay) as usize))
                    .cloned()
                    .unwrap_or_else(|| {
                        overlay_inputs(&tag.overlay, &ignore, &cache)
                            .map(Arc::new)
                            .map_err(|e| e.to_string())
                    })
                    .map(|context| {
                        // Everything but the platform, builder, parents and external bases.
                        let release = |reference: &str| {
                            release_reference(reference, &graph.parents[node], snapshot)
                        };
                        let (text, pins) = match &tag.pins {
                            Some(pins) => (&pins.unpinned, Arc::new(pins.pins.clone())),
                            None => (&tag.dockerfile, none.clone()),
                        };
                        let inputs = KeyInputs {
                            dockerfile: sha256_hex(
                                release_dockerfile(text, &graph.parents[node], snapshot).as_bytes(),
                            ),
                            pins,
                            source: tag
                                .source
                                .as_deref()
                                .map_or_else(|| none.clone(), |s| Arc::new(source_inputs(s))),
                            context,
                            build_args: options.build_args.clone(),
                            labels: Arc::new(static_labels(project, id, tag, &release)),
                            builder: options.builder.clone(),
                            ..KeyInputs::default()
                        };
                        let tag_hash = inputs.tag_hash();
                        (inputs, tag_hash)
                    })
                    .map_err(std::io::Error::other)
                    .map_err(|error| {
                        Diagnostic::error(format!("cannot read the build context of {id}: {error}"))
                    }),
                None => Err(Diagnostic::error(format!("{id} was not rendered"))),
            };
            (node, result)
        })
        .collect();
    let mut diagnostics = Diagnostics::new();
    let mut tag_inputs: HashMap<usize, TagInputs> = HashMap::new();
    for (node, result) in hashed {
        match result {
            Ok(inputs) => {
                tag_inputs.insert(node, inputs);
            }
            Err(error) => diagnostics.push(error),
        }
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let mut nodes: Vec<PlanNode> = Vec::new();
    let mut index: HashMap<(usize, Platform), usize> = HashMap::new();
    for &node in graph.order.iter().filter(|n| needed.contains(n)) {
        let id = &graph.nodes[node];
        let Some(image) = project.image(&id.image) else {
            continue;
        };
        let Some(tag) = image.tag(&id.tag) else {
            continue;
        };
        let platforms = options
            .platforms
            .clone()
            .unwrap_or_else(|| tag.platforms.clone());
        let (tag_part, tag_hash) = &tag_inputs[&node];
        for platform in platforms {
            let mut parents = Vec::new();
            let mut parent_refs = Vec::new();
            let mut parent_keys = BTreeMap::new();
            for edge in &graph.parents[node] {
                let parent_id = &graph.nodes[edge.parent];
                match index.get(&(edge.parent, platform.clone())) {
                    Some(&at) => {
                        if !parents.contains(&at) {
                            parents.push(at);
                        }
                        parent_keys.insert(parent_id.to_string(), nodes[at].key.clone());
                        if !edge.reference.is_empty() {
                            parent_refs.push((edge.reference.clone(), at));
                        }
                    }
                    None => diagnostics.push(
                        Diagnostic::error(format!(
                            "{id} is built for {platform}, but its parent {parent_id} is not"
                        ))
                        .with_help(format!(
                            "add {platform} to the platforms of {}, or remove it from {}",
                            parent_id.image, id.image
                        )),
                    ),
                }
            }
            let externals = graph.externals[node]
                .iter()
                .map(|e| {
                    (
                        e.reference.clone(),
                        options
                            .external_digests
                            .get(&e.reference)
                            .and_then(|per_platform| per_platform.get(&platform.to_string()))
                            .cloned()
                            .or_else(|| e.digest.clone()),
                    )
                })
                .collect();
            let inputs = KeyInputs {
                platform: platform.to_string(),
                parents: parent_keys,
                externals,
                ..tag_part.clone()
            };
            let key = inputs.key_with(tag_hash);
            let output = output_path(id, &platform);
            index.insert((node, platform.clone()), nodes.len());
            nodes.push(PlanNode {
                id: id.clone(),
                platform,
                key,
                action: Action::UpToDate,
                reasons: Vec::new(),
                selected: selected.contains(&node),
                parents,
                parent_refs,
                output,
                inputs,
                source: by_id
                    .get(&(id.image.as_str(), id.tag.as_str()))
                    .and_then(|tag| tag.source.clone()),
            });
        }
    }
    // What to do with each node and why: independent per node, and it may read files (the
    // output, the inputs of the previous key), so in parallel.
    let outputs = OpenDir::open(dist).ok();
    let problems: Vec<Diagnostic> = nodes
        .par_iter_mut()
        .filter_map(|node| decide(node, ledger, dist, outputs.as_ref(), options))
        .collect();
    for problem in problems {
        diagnostics.push(problem);
    }
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }
    Ok(Plan { nodes })
}
