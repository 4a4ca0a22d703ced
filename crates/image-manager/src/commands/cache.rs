//! The layer cache of `build`: chosen by [`im_exec::cache::select`] (`-v` says which and
//! why), the project's Garage started when its credentials say the project uses it, and a
//! cache that does not answer reported once.

use im_build::BackendChoice;
use im_exec::cache::{CacheInputs, Selected};
use im_exec::{ExecContext, Prepared};

use super::{Context, service};

/// The layer cache for this build, or none.
pub fn choose(
    context: &Context<'_>,
    exec: &ExecContext<'_>,
    prepared: &Prepared,
    builder: &BackendChoice,
    no_cache: bool,
) -> anyhow::Result<Option<Selected>> {
    let settings = &prepared.project.settings;
    if !no_cache && settings.cache.is_none() {
        // A project whose Garage was set up uses it: start it when it is stopped.
        service::ensure_garage(&context.root, context.printer)?;
    }
    let selected = im_exec::cache::select(
        settings,
        &CacheInputs {
            root: &prepared.project.root,
            builder,
            no_cache,
            github_actions: exec.environment.github_actions_cache,
        },
    )?;
    tracing::info!("{}", selected.reason);
    if let Some(warning) = &selected.warning {
        context.printer.diagnostic(warning);
    }
    Ok(selected.kind().is_some().then_some(selected))
}
