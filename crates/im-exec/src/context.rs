//! What running a plan needs from around it: where the project and `dist/` are, how to tell
//! people what happens, the command's cancellation, and the environment values the binary read.

use std::ffi::OsString;
use std::path::PathBuf;

use im_build::CancelToken;
use im_diag::Diagnostic;
use im_project::Settings;

use crate::registry::Session;

/// Where progress goes. The binary implements it with its printer; nothing in this crate
/// prints.
pub trait Reporter: Sync {
    /// A status line: `verb` (`Built`, `Pushed`, ...) and what it applies to.
    fn status(&self, verb: &str, message: &str);
    /// A problem that does not stop the command.
    fn warning(&self, diagnostic: &Diagnostic);
    /// A failure of one part of the work (the command goes on with the rest).
    fn error(&self, message: &str);
}

/// The environment variables the layers below the binary depend on, read once by the binary
/// and passed in as data.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<String>,
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_BUILDKIT`.
    pub docker_buildkit: Option<String>,
    /// `BUILDKIT_HOST`.
    pub buildkit_host: Option<String>,
    /// `ACTIONS_CACHE_URL` or `ACTIONS_RESULTS_URL` is set: GitHub Actions' cache is there.
    pub github_actions_cache: bool,
    /// `PATH`, where builders are looked for.
    pub path: Option<OsString>,
    /// Where Docker's `config.json` is (`DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config_dir: Option<PathBuf>,
}

/// Everything an executor gets.
pub struct ExecContext<'a> {
    /// The project folder.
    pub root: PathBuf,
    /// `dist/` (absolute once a build has written it).
    pub dist: PathBuf,
    pub reporter: &'a dyn Reporter,
    /// Cancelled on Ctrl-C.
    pub cancel: CancelToken,
    pub environment: Environment,
}

impl ExecContext<'_> {
    /// A registry session for the project's registries, cancelled with the command.
    pub fn session(&self, settings: &Settings) -> anyhow::Result<Session> {
        Session::new(
            settings,
            self.environment.docker_config_dir.as_deref(),
            &self.cancel,
        )
    }

    /// The session in `slot`, made on first use.
    pub fn session_in<'s>(
        &self,
        slot: &'s mut Option<Session>,
        settings: &Settings,
    ) -> anyhow::Result<&'s Session> {
        if slot.is_none() {
            *slot = Some(self.session(settings)?);
        }
        Ok(slot.as_ref().expect("just made"))
    }
}

/// An error and its causes, one per line (`caused by: ...`), for build failures whose causes
/// carry a log excerpt.
pub fn error_lines(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}
