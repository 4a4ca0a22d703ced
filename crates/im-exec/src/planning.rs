//! Planning a run: the builder, the options, the external bases' digests, the ledger, and
//! the plan they give.

use im_build::{BackendChoice, BuilderKind, BuilderSettings};
use std::collections::HashMap;

use im_plan::{Action, Ledger, Plan, PlanOptions};

use crate::bases::{self, Bases, Mode};
use crate::builder;
use crate::context::ExecContext;
use crate::prepare::Prepared;
use crate::registry::Session;

/// What to plan.
pub struct Request {
    /// Targets, platforms, build args, `--force`...; `builder` is filled in here.
    pub options: PlanOptions,
    /// `--builder`, else `builder:` of the settings, else detected.
    pub builder: Option<BuilderKind>,
    /// How external bases get their digests.
    pub bases: Mode,
    /// Whether to find the builder on this machine (to build, or to show each step's argv).
    pub detect: Detect,
}

/// Whether planning finds the builder on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detect {
    /// Only Docker is probed, whose flavor is part of the keys.
    No,
    /// The builder must be there (to build).
    Required,
    /// Found if it is there (to show each step's commands); the reason it is not is kept.
    IfPresent,
}

/// A plan and what it was made with.
pub struct Planned {
    pub plan: Plan,
    pub ledger: Ledger,
    /// The builder's name in build keys (`buildah`, `docker-classic`, ...).
    pub builder: String,
    /// The builder found on this machine, when detection was asked for and found it.
    pub choice: Option<(BackendChoice, BuilderSettings)>,
    /// Why detection found no builder ([`Detect::IfPresent`]).
    pub not_detected: Option<im_diag::Diagnostics>,
    pub bases: Bases,
    /// The registry session the bases were resolved with, if one was needed.
    pub session: Option<Session>,
}

/// Plans `request` over `prepared`, reading the ledger in `context.dist`.
pub fn plan(
    context: &ExecContext<'_>,
    prepared: &Prepared,
    request: Request,
) -> anyhow::Result<Planned> {
    let settings =
        builder::builder_settings(&prepared.project, request.builder, &context.environment)?;
    let detected = match request.detect {
        Detect::No => None,
        Detect::Required => Some(Ok(builder::choose_builder(
            &settings,
            &context.environment,
        )?)),
        Detect::IfPresent => Some(builder::choose_builder(&settings, &context.environment)),
    };
    let (builder, choice, not_detected) = match detected {
        Some(Ok(choice)) => {
            tracing::debug!("builder: {}", choice.reason);
            (builder::key_name(&choice), Some((choice, settings)), None)
        }
        Some(Err(why)) => (
            builder::planned_builder(&settings, &context.environment)?,
            None,
            Some(why),
        ),
        None => (
            builder::planned_builder(&settings, &context.environment)?,
            None,
            None,
        ),
    };
    let options = PlanOptions {
        builder: builder.clone(),
        ..request.options
    };
    let ledger = load_ledger(context)?;
    let mut session = None;
    let (plan, bases) = plan_with(
        context,
        prepared,
        &ledger,
        options,
        request.bases,
        &mut session,
    )?;
    Ok(Planned {
        plan,
        ledger,
        builder,
        choice,
        not_detected,
        bases,
        session,
    })
}

impl Planned {
    /// The manifest digests the ledger records for the plan's up-to-date nodes, by index.
    pub fn ledger_digests(&self, plan: &Plan) -> HashMap<usize, String> {
        ledger_digests(&self.ledger, plan)
    }
}

/// The manifest digests `ledger` records for `plan`'s up-to-date nodes, by plan index.
pub fn ledger_digests(ledger: &Ledger, plan: &Plan) -> HashMap<usize, String> {
    plan.nodes
        .iter()
        .enumerate()
        .filter(|(_, node)| node.action == Action::UpToDate)
        .filter_map(|(i, node)| {
            let name =
                im_plan::ledger::entry_name(&node.id.to_string(), &node.platform.to_string());
            ledger
                .nodes
                .get(&name)
                .map(|entry| (i, entry.digest.clone()))
        })
        .collect()
}

/// `dist/ledger.json`; a corrupt one is the user's to fix.
pub fn load_ledger(context: &ExecContext<'_>) -> anyhow::Result<Ledger> {
    Ledger::load(&context.dist)
        .map_err(|error| im_diag::Diagnostic::error(im_diag::error_chain(&error)).into())
}

/// Plans with `options` (the builder already named), after putting the external bases'
/// digests (as `mode` gets them) into the options.
pub fn plan_with(
    context: &ExecContext<'_>,
    prepared: &Prepared,
    ledger: &Ledger,
    mut options: PlanOptions,
    mode: Mode,
    session: &mut Option<Session>,
) -> anyhow::Result<(Plan, Bases)> {
    options.snapshot_id.clone_from(&prepared.snapshot_id);
    let bases = bases::resolve(context, prepared, &mut options, mode, session)?;
    let plan = im_plan::plan(
        &prepared.project,
        &prepared.graph,
        &prepared.rendered.tags,
        ledger,
        &context.dist,
        &options,
    )?;
    Ok((plan, bases))
}
