//! `build --load`: puts the built images into the local Docker or podman store as
//! `name:tag`, as seed 002's `build` loads into Docker. A store holds one platform per name:
//! the image of this machine's platform, or the only platform a tag has. Each image is turned
//! into a docker-archive named `name:tag` (the one format both load) and loaded with the
//! store's own CLI through `im-process`.

use std::path::PathBuf;

use im_oci::Platform;
use im_plan::Plan;
use serde::Serialize;

use crate::build::Executed;
use crate::context::ExecContext;

/// Where images are loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Docker,
    Podman,
}

impl Store {
    pub fn program(self) -> &'static str {
        match self {
            Store::Docker => "docker",
            Store::Podman => "podman",
        }
    }
}

/// One image put into the store, or why not.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub reference: String,
    pub platform: String,
    /// Why it was not loaded (`None`: loaded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("`{program}` is not on PATH; --load puts images into its store")]
    Missing { program: &'static str },
    #[error("cannot turn {} into an image {program} loads", archive.display())]
    Convert {
        archive: PathBuf,
        program: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot load {reference} into {program}")]
    Run {
        reference: String,
        program: &'static str,
        #[source]
        source: im_process::RunError,
    },
}

/// Loads every selected image tag of `plan` whose archive stands after the run into `store`.
pub fn load(
    context: &ExecContext<'_>,
    plan: &Plan,
    executed: &Executed,
    store: Store,
) -> Result<Vec<Loaded>, LoadError> {
    let program = store.program();
    let tool = im_process::which(program, context.environment.path.as_deref())
        .ok_or(LoadError::Missing { program })?;
    let host = Platform::host();
    // Per image tag, in build order: its standing platform nodes.
    let mut tags: Vec<(String, Vec<usize>)> = Vec::new();
    for (index, node) in plan.nodes.iter().enumerate() {
        if !node.selected || !executed.nodes[index].result.stands() {
            continue;
        }
        let reference = node.id.to_string();
        match tags.iter_mut().find(|(r, _)| *r == reference) {
            Some((_, nodes)) => nodes.push(index),
            None => tags.push((reference, vec![index])),
        }
    }
    let mut out = Vec::new();
    for (reference, nodes) in tags {
        let chosen = nodes
            .iter()
            .copied()
            .find(|&i| plan.nodes[i].platform == host)
            .or_else(|| (nodes.len() == 1).then_some(nodes[0]));
        let Some(index) = chosen else {
            out.push(Loaded {
                reference,
                platform: host.to_string(),
                skipped: Some(format!(
                    "not built for {host}, and a store holds one platform per name"
                )),
            });
            continue;
        };
        let node = &plan.nodes[index];
        let archive = context.dist.join(&node.output);
        let named =
            im_structure_test::archive::docker_archive(&archive, Some(&node.platform), &reference)
                .map_err(|source| LoadError::Convert {
                    archive: archive.clone(),
                    program,
                    source: Box::new(source),
                })?;
        let command = im_process::CommandSpec::new(&tool)
            .args(["load", "--input"])
            .arg(named.path());
        im_process::Run::new(&command)
            .cancel(&context.cancel)
            .checked(None)
            .map_err(|source| LoadError::Run {
                reference: reference.clone(),
                program,
                source,
            })?;
        out.push(Loaded {
            reference,
            platform: node.platform.to_string(),
            skipped: None,
        });
    }
    Ok(out)
}
