//! What a killed build left in buildah's store that no cleanup command names: the working
//! containers of `FROM scratch` stages. buildah names those `working-container`,
//! `working-container-1`, ... — as it names a user's own `buildah from scratch` — and records
//! no image for them, so neither their names nor `rmi --force` of the step's parents can tell
//! them apart from the user's.
//!
//! So a build marks its containers: it passes the build arg [`STEP_ARG`] with a value unique
//! to the step (its work directory). No Dockerfile declares that arg, so it changes nothing
//! in the image (buildah only warns that it was not consumed), but buildah keeps every
//! build arg in the container's metadata (`buildah.json` in the container's folder of the
//! store). When a later run finds that the step's earlier run was killed (its owner record
//! names a process that is gone), it removes exactly the containers carrying its marker.
//!
//! `buildah inspect` does not show build args (1.28), so the metadata is read from the store:
//! `<GraphRoot>/<driver>-containers/<id>/userdata/buildah.json`, the layout of
//! containers/storage, with the root and driver asked from `buildah info`.

use std::path::Path;

use im_process::{CancelToken, CommandSpec, Log, Run, run};
use serde::Deserialize;

/// The build arg that marks a step's working containers.
pub const STEP_ARG: &str = "IMAGE_MANAGER_STEP";

/// How to find and remove the containers a killed build of one step left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkedContainers {
    /// Prints the store's `GraphRoot|GraphDriverName`.
    pub store: CommandSpec,
    /// Lists the store's containers as JSON.
    pub list: CommandSpec,
    /// Removes containers, given their ids after it.
    pub remove: CommandSpec,
    /// The value of [`STEP_ARG`] in this step's builds.
    pub marker: String,
}

/// One entry of `buildah containers --json`.
#[derive(Deserialize)]
struct Listed {
    id: String,
    #[serde(default)]
    builder: bool,
}

/// The part of a container's `buildah.json` that says which build made it.
#[derive(Deserialize)]
struct Metadata {
    #[serde(rename = "Args", default)]
    args: std::collections::BTreeMap<String, String>,
}

impl MarkedContainers {
    /// Removes the containers carrying this step's marker. Best effort: what it does and
    /// what fails goes to `log`, never stops the step.
    pub(crate) fn remove_all(&self, log: &mut Log) {
        let ids = match self.find(log) {
            Ok(ids) => ids,
            Err(why) => {
                let _ = log.line(&format!(
                    "# could not look for working containers left by the killed run: {why}"
                ));
                return;
            }
        };
        if ids.is_empty() {
            return;
        }
        let remove = ids.iter().fold(self.remove.clone(), CommandSpec::arg);
        let _ = run(&remove, log, &CancelToken::new(), &mut |_| {});
    }

    /// The ids of the builder containers whose build args carry the marker.
    fn find(&self, log: &mut Log) -> Result<Vec<String>, String> {
        let store = capture(&self.store, log)?;
        let (root, driver) = store
            .trim()
            .rsplit_once('|')
            .ok_or_else(|| format!("unexpected store description `{}`", store.trim()))?;
        let listed = capture(&self.list, log)?;
        // An empty store lists `null`.
        let containers: Option<Vec<Listed>> =
            serde_json::from_str(&listed).map_err(|error| error.to_string())?;
        let folder = Path::new(root).join(format!("{driver}-containers"));
        Ok(containers
            .unwrap_or_default()
            .into_iter()
            .filter(|container| container.builder)
            .filter(|container| {
                let metadata = folder.join(&container.id).join("userdata/buildah.json");
                fs_err::read(&metadata)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<Metadata>(&bytes).ok())
                    .is_some_and(|metadata| {
                        metadata.args.get(STEP_ARG).map(String::as_str) == Some(&self.marker)
                    })
            })
            .map(|container| container.id)
            .collect())
    }
}

/// Runs `cmd` and returns its stdout; the command goes to `log`.
fn capture(cmd: &CommandSpec, log: &mut Log) -> Result<String, String> {
    let _ = log.line(&format!("$ {}", cmd.display()));
    let output = Run::new(cmd)
        .capture(None)
        .map_err(|error| error.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            cmd.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|error| error.to_string())
}
