//! `image-manager why NAME:TAG`: which key inputs differ from the last build.

use serde::Serialize;

use im_exec::planning::Detect;

use super::{Context, Outcome, planning};
use crate::cli::{Format, WhyArgs};

#[derive(Serialize)]
struct Explanation {
    node: String,
    platform: String,
    key: String,
    previous_key: Option<String>,
    up_to_date: bool,
    reasons: Vec<im_plan::Reason>,
}

pub fn run(context: &Context<'_>, args: &WhyArgs) -> anyhow::Result<Outcome> {
    let prepared = context.prepare_for_builds(None)?;
    let selection = crate::cli::SelectionArgs {
        targets: vec![args.target.clone()],
        no_deps: false,
        dependents: false,
        force: false,
        platform: args.platform.iter().cloned().collect(),
        builder: args.builder,
        build_args: Vec::new(),
        snapshot: crate::cli::SnapshotArgs { snapshot_id: None },
    };
    let (_, planned) = planning::plan_only(
        context,
        &prepared,
        &selection,
        args.refresh_bases,
        Detect::No,
    )?;
    let (plan, ledger) = (planned.plan, planned.ledger);
    let explanations: Vec<Explanation> = plan
        .nodes
        .iter()
        .filter(|node| node.selected)
        .map(|node| {
            let previous = ledger.nodes.get(&im_plan::ledger::entry_name(
                &node.id.to_string(),
                &node.platform.to_string(),
            ));
            Explanation {
                node: node.id.to_string(),
                platform: node.platform.to_string(),
                key: node.key.clone(),
                previous_key: previous.map(|entry| entry.key.clone()),
                up_to_date: node.action == im_plan::Action::UpToDate,
                reasons: node.reasons.clone(),
            }
        })
        .collect();
    match args.format {
        Format::Json => context.printer.json(&explanations)?,
        Format::Text => {
            let mut out = String::new();
            for explanation in &explanations {
                out.push_str(&format!(
                    "{} ({})\n",
                    explanation.node, explanation.platform
                ));
                out.push_str(&format!("  key       {}\n", explanation.key));
                match &explanation.previous_key {
                    Some(previous) => out.push_str(&format!("  last key  {previous}\n")),
                    None => out.push_str("  last key  (never built)\n"),
                }
                if explanation.up_to_date {
                    out.push_str("  up to date: every input is the same as in the last build\n");
                }
                for reason in &explanation.reasons {
                    out.push_str(&format!("  - {reason}\n"));
                }
            }
            context.printer.data(out.trim_end())?;
        }
    }
    Ok(Outcome::Success)
}
