//! `image-manager history`: each node's last build and its failed builds, from the ledger
//! (see [`im_exec::history`]).

use super::{Context, Outcome};
use crate::cli::{Format, HistoryArgs};

pub fn run(context: &Context<'_>, args: &HistoryArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = context.prepare_for_builds(None)?;
    printer.diagnostics(&prepared.warnings);
    let exec = context.exec_with(context.dist.clone(), false);
    let ledger = im_exec::planning::load_ledger(&exec)?;
    let now = im_plan::ledger::now();
    let mut entries = im_exec::history::history(&prepared, &ledger, &args.targets, now)?;
    if args.registry {
        let target = im_exec::registry::default_target(&prepared.project.settings)?;
        super::service::ensure_for(&context.root, &target.host, printer)?;
        im_exec::history::read_registry(&exec, &prepared, &mut entries)?;
    }
    match args.format {
        Format::Json => printer.json(&entries)?,
        Format::Text => {
            let mut out = String::new();
            for entry in &entries {
                out.push_str(&format!("{} ({})\n", entry.node, entry.platform));
                match &entry.built {
                    Some(built) => out.push_str(&format!(
                        "  built   {}  {}  {:.1}s\n          key {}  digest {}\n",
                        built.at,
                        built.builder,
                        std::time::Duration::from_millis(built.duration_ms).as_secs_f64(),
                        built.key,
                        built.digest
                    )),
                    None => out.push_str("  never built\n"),
                }
                if let Some(pushed) = &entry.registry {
                    match (&pushed.key, &pushed.created) {
                        (Some(key), created) => out.push_str(&format!(
                            "  pushed  {}  created {}\n          key {key}{}\n",
                            pushed.reference,
                            created.as_deref().unwrap_or("?"),
                            if pushed.same_as_built {
                                " (the last build here)"
                            } else {
                                " (another build)"
                            }
                        )),
                        (None, _) => {
                            out.push_str(&format!("  pushed  nothing at {}\n", pushed.reference));
                        }
                    }
                }
                if let Some(failed) = &entry.failed {
                    out.push_str(&format!(
                        "  failed  {} with key {}, last at {}\n",
                        im_exec::plural(failed.count as usize, "time"),
                        failed.key,
                        failed.at
                    ));
                    for line in failed.error.lines() {
                        out.push_str(&format!("          | {line}\n"));
                    }
                    out.push_str(&format!(
                        "          scheduled runs {} it after {}\n",
                        if failed.backing_off {
                            "try"
                        } else {
                            "could try"
                        },
                        failed.retry_after
                    ));
                }
            }
            printer.data(out.trim_end())?;
        }
    }
    Ok(Outcome::Success)
}
