//! `image-manager plan`: what `build` would do, node by node, and why; with `--format json`,
//! every step's labels and the exact commands the builder runs.

use std::collections::{BTreeMap, HashMap};

use im_exec::planning::{Detect, Planned};
use im_exec::steps::{Provenance, StepPreview, Steps};
use serde::Serialize;

use super::{Context, Outcome, planning};
use crate::cli::{Format, PlanArgs};

#[derive(Serialize)]
struct JsonPlan<'a> {
    builder: &'a str,
    /// What each external base resolved to (reference as written → digests).
    bases: &'a BTreeMap<String, im_bases::Resolved>,
    /// Labels every step gets that change with each build (never part of a key).
    provenance: &'a Provenance,
    to_build: usize,
    up_to_date: usize,
    nodes: Vec<JsonNode<'a>>,
}

#[derive(Serialize)]
struct JsonNode<'a> {
    #[serde(flatten)]
    node: &'a im_plan::PlanNode,
    /// Everything the key is made of (`--show-inputs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<&'a im_plan::KeyInputs>,
    /// Where the registry holds its build key (`--registry-keys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    in_registry: Option<&'a str>,
    /// A node to build: its labels and the builder's commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<StepPreview>,
    /// Why a node to build has no `step` yet (an external base not resolved, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    step_unavailable: Option<String>,
}

pub fn run(context: &Context<'_>, args: &PlanArgs) -> anyhow::Result<Outcome> {
    let prepared = context.prepare_for_builds(args.selection.snapshot.snapshot_id.as_deref())?;
    context.printer.diagnostics(&prepared.warnings);
    let detect = match args.format {
        Format::Json => Detect::IfPresent,
        Format::Text => Detect::No,
    };
    let (exec, mut planned) = planning::plan_only(
        context,
        &prepared,
        &args.selection,
        args.refresh_bases,
        detect,
    )?;
    let in_registry = if args.registry_keys {
        im_exec::publish::mark_registry_keys(&exec, &prepared, &mut planned.plan)?
    } else {
        BTreeMap::new()
    };
    let plan = &planned.plan;
    let to_build = plan.to_build();
    match args.format {
        Format::Json => {
            if let Some(why) = &planned.not_detected {
                context.printer.diagnostics(why);
                context
                    .printer
                    .info("each step's commands are left out: no builder was found");
            }
            let provenance = Provenance::read(
                &prepared.project.root,
                exec.environment.source_date_epoch.as_deref(),
            );
            let steps = previews(
                &exec,
                &planned,
                provenance.clone(),
                prepared.snapshot_id.clone(),
            )?;
            context.printer.json(&JsonPlan {
                builder: &planned.builder,
                bases: &planned.bases.resolution.resolved,
                provenance: &provenance,
                to_build,
                up_to_date: plan.nodes.len() - to_build,
                nodes: plan
                    .nodes
                    .iter()
                    .enumerate()
                    .map(|(i, node)| JsonNode {
                        node,
                        inputs: args.show_inputs.then_some(&node.inputs),
                        in_registry: in_registry.get(&i).map(String::as_str),
                        step: steps.get(&i).and_then(|s| s.as_ref().ok()).cloned(),
                        step_unavailable: steps.get(&i).and_then(|s| s.as_ref().err()).cloned(),
                    })
                    .collect(),
            })?;
        }
        Format::Text => {
            let width = plan
                .nodes
                .iter()
                .map(|n| n.id.to_string().len())
                .max()
                .unwrap_or(0);
            let mut out = String::new();
            for (i, node) in plan.nodes.iter().enumerate() {
                let action = match node.action {
                    im_plan::Action::Build => "build",
                    _ if in_registry.contains_key(&i) => "up to date (in registry)",
                    im_plan::Action::UpToDate => "up to date",
                };
                let reasons: Vec<String> = node.reasons.iter().map(ToString::to_string).collect();
                let why = if reasons.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", reasons.join(", "))
                };
                out.push_str(&format!(
                    "{:width$}  {:<14}  {action}{why}\n",
                    node.id.to_string(),
                    node.platform.to_string()
                ));
            }
            context.printer.data(out.trim_end())?;
            context.printer.status(
                "Planned",
                format!(
                    "{} to build, {} up to date, with {}",
                    to_build,
                    plan.nodes.len() - to_build,
                    planned.builder
                ),
            );
        }
    }
    // The process exits next: let the OS take the memory back instead of freeing a
    // 60,000-node plan piece by piece.
    std::mem::forget(planned);
    std::mem::forget(prepared);
    Ok(Outcome::Success)
}

/// The step of every node to build (or why it has none yet), when the builder was found.
fn previews(
    exec: &im_exec::ExecContext<'_>,
    planned: &Planned,
    provenance: Provenance,
    snapshot_id: Option<String>,
) -> anyhow::Result<HashMap<usize, Result<StepPreview, String>>> {
    let Some((choice, settings)) = &planned.choice else {
        return Ok(HashMap::new());
    };
    let builder = im_build::builder_for(choice, settings);
    let dist = std::path::absolute(&exec.dist)?;
    let plan = &planned.plan;
    let known = planned.ledger_digests(plan);
    let steps = Steps {
        plan,
        dist: &dist,
        bases: planned.bases.expected(&im_exec::bases::needed(plan)),
        provenance,
        no_cache: false,
        cache: None,
        snapshot_id,
    };
    let mut out = HashMap::new();
    for index in im_exec::build::to_build(plan) {
        let preview = steps.preview(index, &known, builder.as_ref());
        out.insert(index, preview.map_err(|error| im_exec::error_chain(&error)));
    }
    Ok(out)
}
