//! `generate-k8s`: a project's builds as Kubernetes manifests (see [`im_k8s`]): a `Job` per
//! image tag, or per level of the graph (level 0: built on no managed image; level n: on
//! images of lower levels, so a level's Job may start once the level before it finished), the
//! refresh `CronJob` and the Kargo `AnalysisTemplate`, written into a folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use im_diag::Diagnostics;
use im_k8s::{Build, Settings};

use crate::prepare::Prepared;

/// The folder of the Job files inside the output folder.
pub const JOBS_DIR: &str = "jobs";

/// The build Jobs of `targets` and everything they are built on (every image tag when
/// empty): one per image tag in build order, or with `per_level` one per level of the graph.
pub fn builds(
    prepared: &Prepared,
    targets: &[String],
    per_level: bool,
) -> Result<Vec<Build>, Diagnostics> {
    let graph = &prepared.graph;
    let selected = im_plan::targets::with_ancestors(
        graph,
        &im_plan::targets::select(&prepared.project, graph, targets)?,
    );
    let mut depth = vec![0_usize; graph.nodes.len()];
    for &node in &graph.order {
        depth[node] = graph
            .parent_nodes(node)
            .iter()
            .map(|&parent| depth[parent] + 1)
            .max()
            .unwrap_or(0);
    }
    let ordered = graph.order.iter().filter(|node| selected.contains(node));
    let builds: Vec<(String, Vec<String>)> = if per_level {
        let mut levels: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for &node in ordered {
            levels
                .entry(depth[node])
                .or_default()
                .push(graph.nodes[node].to_string());
        }
        levels
            .into_iter()
            .map(|(level, targets)| (format!("build-level-{level}"), targets))
            .collect()
    } else {
        ordered
            .map(|&node| {
                let id = graph.nodes[node].to_string();
                (format!("build-{id}"), vec![id])
            })
            .collect()
    };
    // Names that normalise alike (`a:1.0`, `a:1-0`) get a number.
    let mut taken = BTreeSet::new();
    Ok(builds
        .into_iter()
        .map(|(name, targets)| {
            let base = im_k8s::object_name(&name);
            let mut name = base.clone();
            let mut n = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            Build { name, targets }
        })
        .collect())
}

/// Writes every manifest into `output` (each file atomically): `jobs/<name>.yaml` per build,
/// `refresh-bases-cronjob.yaml`, `kargo-analysis-template.yaml`. Returns the files written.
pub fn write(
    output: &Path,
    settings: &Settings,
    builds: &[Build],
) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<(PathBuf, String)> = builds
        .iter()
        .map(|build| {
            (
                Path::new(JOBS_DIR).join(format!("{}.yaml", build.name)),
                im_k8s::job(settings, build),
            )
        })
        .collect();
    files.push((
        PathBuf::from("refresh-bases-cronjob.yaml"),
        im_k8s::cron_job(settings),
    ));
    files.push((
        PathBuf::from("kargo-analysis-template.yaml"),
        im_k8s::analysis_template(settings),
    ));
    fs_err::create_dir_all(output.join(JOBS_DIR))?;
    let mut written = Vec::new();
    for (name, text) in files {
        let path = output.join(&name);
        im_render::output::write_atomic(&path, text.as_bytes(), Some(0o644), None)?;
        written.push(name);
    }
    Ok(written)
}
