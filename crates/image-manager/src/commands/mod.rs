//! One module per command (each loads, plans, hands the plan to an executor of `im_exec`, and
//! prints), and what they share: the [`Context`] with the printer and the one cancellation
//! token, how an [`ExecContext`] is made from it, and how a registry command starts.

mod build;
mod bump;
mod cache;
mod check;
mod dist_lock;
mod generate;
mod generate_ci;
mod generate_k8s;
mod graph;
mod history;
mod inspect;
mod lint;
mod list;
mod manifest;
mod outdated;
mod packages_lock;
mod plan;
mod planning;
mod promote;
mod published;
mod push;
mod report;
mod sbom;
mod service;
mod sign;
mod summary;
mod sync;
mod test;
mod verify;
mod why;

use std::path::PathBuf;

use im_build::CancelToken;
use im_diag::Diagnostics;
use im_exec::ExecContext;
pub use im_exec::plural;
use im_exec::publish::ops::Sources;
use im_exec::publish::{self, TagJob};
use im_exec::registry::{self, Session, Target};
use im_render::Options;

use crate::cli::{Cli, Command};
use crate::env_vars;
use crate::printer::Printer;

/// How a command ended when it ran to its end. Everything else is an error, and `?` carries
/// it to `main`: the user's input was invalid ([`Diagnostics`] or one [`Diagnostic`]: exit 2,
/// every problem printed) or something else went wrong (exit 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The work itself failed (a build); details were already printed.
    Failed,
    /// Interrupted by Ctrl-C.
    Interrupted,
    /// Part of what was asked could not be checked (an unreachable registry: exit 3).
    Incomplete,
}

pub fn run(cli: &Cli, printer: &Printer, cancel: &CancelToken) -> anyhow::Result<Outcome> {
    let root = cli.global.project_dir.clone();
    let context = Context {
        root: root.clone(),
        dist: root.join(&cli.global.dist),
        printer,
        cancel,
        environment: env_vars::environment(),
        step_summary: env_vars::step_summary(),
        armed: std::cell::Cell::new(false),
    };
    match &cli.command {
        Command::Generate(args) => generate::run(&context, args),
        Command::List(args) => list::run(&context, args),
        Command::Graph(args) => graph::run(&context, args),
        Command::Check(args) => check::run(&context, args),
        Command::Sbom(args) => sbom::run(&context, args),
        Command::Lock(args) => packages_lock::run(&context, args),
        Command::Plan(args) => plan::run(&context, args),
        Command::Why(args) => why::run(&context, args),
        Command::Build(args) => build::run(&context, args),
        Command::Test(args) => test::run(&context, args),
        Command::VerifyReproducible(args) => verify::run(&context, args),
        Command::Push(args) => push::run(&context, args),
        Command::Promote(args) => promote::run(&context, args),
        Command::Manifest(args) => manifest::run(&context, args),
        Command::Sync(args) => sync::run(&context, args),
        Command::Inspect(args) => inspect::run(&context, args),
        Command::GenerateCi(args) => generate_ci::run(&context, args),
        Command::Sign(args) => sign::run_sign(&context, args),
        Command::Verify(args) => sign::run_verify(&context, args),
        Command::Start(args) => service::run_start(&context, args),
        Command::Stop(args) => service::run_stop(&context, args),
        Command::Status(args) => service::run_status(&context, args),
        Command::Lint(args) => lint::run(&context, args),
        Command::Report(args) => report::run(&context, args),
        Command::Bump(args) => bump::run(&context, args),
        Command::Outdated(args) => outdated::run(&context, args),
        Command::GenerateK8s(args) => generate_k8s::run(&context, args),
        Command::History(args) => history::run(&context, args),
    }
}

/// What every command gets.
pub struct Context<'a> {
    pub root: PathBuf,
    pub dist: PathBuf,
    pub printer: &'a Printer,
    /// The one cancellation of the process: Ctrl-C cancels it once a command armed it
    /// ([`Context::exec`]); before that, Ctrl-C ends the process.
    cancel: &'a CancelToken,
    /// What the layers below need from the environment, read once.
    environment: im_exec::Environment,
    /// `$GITHUB_STEP_SUMMARY`, where `build`, `test` and `push` append a Markdown summary.
    step_summary: Option<PathBuf>,
    /// Whether Ctrl-C already cancels `cancel`.
    armed: std::cell::Cell<bool>,
}

pub use im_exec::Prepared;

impl Context<'_> {
    /// What executors get: the project, `dist/`, the printer, the environment, and the
    /// cancellation, which Ctrl-C now cancels (the command stops cleanly from here on).
    pub fn exec(&self) -> ExecContext<'_> {
        self.exec_with(self.dist.clone(), true)
    }

    /// [`Context::exec`] with `dist/` as given (absolute, for builds); `stops_cleanly: false`
    /// leaves Ctrl-C ending the process at once (for commands that only read and compute).
    pub fn exec_with(&self, dist: PathBuf, stops_cleanly: bool) -> ExecContext<'_> {
        if stops_cleanly && !self.armed.replace(true) {
            let cancel = self.cancel.clone();
            crate::interrupt::on_interrupt(move || cancel.cancel());
        }
        ExecContext {
            root: self.root.clone(),
            dist,
            reporter: self.printer,
            cancel: self.cancel.clone(),
            environment: self.environment.clone(),
        }
    }

    /// `dist/` as `index.json` names it: relative to the project when inside it.
    pub fn dist_name(&self) -> PathBuf {
        self.dist
            .strip_prefix(&self.root)
            .unwrap_or(&self.dist)
            .to_path_buf()
    }

    pub fn load(&self) -> Result<im_project::Loaded, Diagnostics> {
        Prepared::load_project(&self.root, &env_vars::lookup)
    }

    /// Loads, renders and builds the graph, collecting every problem.
    pub fn prepare(&self, snapshot_id: Option<&str>) -> Result<Prepared, Diagnostics> {
        self.prepare_refreshing(snapshot_id, false)
    }

    /// [`Context::prepare`]; `refresh_sources` asks where every `source:` ref points now,
    /// tags included (`build --refresh-bases`).
    pub fn prepare_refreshing(
        &self,
        snapshot_id: Option<&str>,
        refresh_sources: bool,
    ) -> Result<Prepared, Diagnostics> {
        Prepared::new(
            &self.root,
            &env_vars::lookup,
            Options {
                snapshot_id: snapshot_id.map(str::to_owned),
                skip_tests: false,
                refresh_sources,
                ..Options::default()
            },
        )
    }

    /// [`Context::prepare`] for commands that only need what builds (plan, why, graph and the
    /// registry commands): test configs are not rendered.
    pub fn prepare_for_builds(&self, snapshot_id: Option<&str>) -> Result<Prepared, Diagnostics> {
        Prepared::new(
            &self.root,
            &env_vars::lookup,
            Options {
                snapshot_id: snapshot_id.map(str::to_owned),
                skip_tests: true,
                ..Options::default()
            },
        )
    }
}

/// What a registry command (`manifest`, `promote`) starts from: the project rendered for
/// `snapshot_id`, the default registry (started when it is the local one), the jobs of
/// `targets`, and a session.
pub struct Opened {
    pub prepared: Prepared,
    pub target: Target,
    pub jobs: Vec<TagJob>,
    pub session: Session,
}

impl Context<'_> {
    pub fn open_registry(
        &self,
        snapshot_id: Option<&str>,
        targets: &[String],
        platforms: Option<&[im_project::Platform]>,
    ) -> anyhow::Result<Opened> {
        let prepared = self.prepare_for_builds(snapshot_id)?;
        self.printer.diagnostics(&prepared.warnings);
        let target = registry::default_target(&prepared.project.settings)?;
        let jobs = publish::select_jobs(&prepared, targets, platforms)?;
        service::ensure_for(&self.root, &target.host, self.printer)?;
        let session = self.exec().session(&prepared.project.settings)?;
        Ok(Opened {
            prepared,
            target,
            jobs,
            session,
        })
    }
}

/// Before a registry command writes anything: the sources, or how the command ends — at
/// Ctrl-C, or with every missing source (`what`, e.g. "snapshot tag") reported and a line
/// saying that nothing was written.
pub fn found<S>(
    sources: Sources<S>,
    printer: &Printer,
    what: &str,
    nothing_written: &str,
) -> Result<Vec<S>, Outcome> {
    match sources {
        Sources::Found(found) => Ok(found),
        Sources::Interrupted => Err(Outcome::Interrupted),
        Sources::Missing(missing) => {
            printer.diagnostics(&missing);
            printer.error(format!(
                "{} missing; {nothing_written}",
                plural(missing.error_count(), what)
            ));
            Err(Outcome::Failed)
        }
    }
}
