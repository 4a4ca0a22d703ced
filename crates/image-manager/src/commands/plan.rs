//! `image-manager plan`: what `build` would do, node by node, and why.

use serde::Serialize;

use super::{Context, Outcome, planning};
use crate::cli::{Format, PlanArgs};

#[derive(Serialize)]
struct JsonPlan<'a> {
    builder: &'a str,
    /// What each external base resolved to (reference as written → digests).
    bases: &'a std::collections::BTreeMap<String, im_bases::Resolved>,
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
}

pub fn run(context: &Context<'_>, args: &PlanArgs) -> anyhow::Result<Outcome> {
    let prepared = match context.prepare_for_builds(args.selection.snapshot.snapshot_id.as_deref())
    {
        Ok(prepared) => prepared,
        Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
    };
    context.printer.diagnostics(&prepared.warnings);
    let mode = if args.refresh_bases {
        super::bases::Mode::Online
    } else {
        super::bases::Mode::Offline
    };
    let (mut plan, builder, bases) =
        match planning::plan_only(context, &prepared, &args.selection, mode)? {
            Ok(planned) => (planned.plan, planned.builder, planned.bases),
            Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
        };
    let in_registry = if args.registry_keys {
        match super::push::mark_registry_keys(&prepared, &mut plan)? {
            Ok(found) => found,
            Err(diagnostics) => return Ok(Outcome::Invalid(diagnostics)),
        }
    } else {
        std::collections::BTreeMap::new()
    };
    let to_build = plan.to_build();
    match args.format {
        Format::Json => context.printer.json(&JsonPlan {
            builder: &builder,
            bases: &bases.resolution.resolved,
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
                })
                .collect(),
        })?,
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
                    "{} to build, {} up to date, with {builder}",
                    to_build,
                    plan.nodes.len() - to_build
                ),
            );
        }
    }
    // The process exits next: let the OS take the memory back instead of freeing a
    // 60,000-node plan piece by piece.
    std::mem::forget(plan);
    std::mem::forget(prepared);
    Ok(Outcome::Success)
}
