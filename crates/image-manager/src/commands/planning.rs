//! Turning the command line's selection into [`PlanOptions`].

use std::collections::BTreeMap;

use im_diag::{Diagnostic, Diagnostics};
use im_exec::bases::Mode;
use im_exec::planning::{Detect, Planned, Request};
use im_plan::PlanOptions;
use im_project::Platform;

use crate::cli::SelectionArgs;

/// The `--platform` values, each once, or `None` (each image's own).
pub fn parse_platforms(values: &[Platform]) -> Option<Vec<Platform>> {
    if values.is_empty() {
        return None;
    }
    let mut platforms: Vec<Platform> = Vec::new();
    for platform in values {
        if !platforms.contains(platform) {
            platforms.push(platform.clone());
        }
    }
    Some(platforms)
}

/// The plan options of `selection` (the builder is chosen when planning).
pub fn plan_options(selection: &SelectionArgs) -> Result<PlanOptions, Diagnostics> {
    let mut build_args = BTreeMap::new();
    for pair in &selection.build_args {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(
                Diagnostic::error(format!("--build-arg `{pair}` has no `=`"))
                    .with_help("write --build-arg KEY=VALUE")
                    .into(),
            );
        };
        build_args.insert(key.to_owned(), value.to_owned());
    }
    Ok(PlanOptions {
        targets: selection.targets.clone(),
        with_deps: !selection.no_deps,
        dependents: selection.dependents,
        force: selection.force,
        platforms: parse_platforms(&selection.platform),
        build_args,
        ..PlanOptions::default()
    })
}

/// Plans `selection` for `plan` and `why` (`refresh_bases`: ask the registries; `detect`:
/// find the builder, to show each step's argv). Problems with external bases are warnings
/// here: nothing is built.
pub fn plan_only<'a>(
    context: &'a super::Context<'_>,
    prepared: &super::Prepared,
    selection: &SelectionArgs,
    refresh_bases: bool,
    detect: Detect,
) -> anyhow::Result<(im_exec::ExecContext<'a>, Planned)> {
    let exec = context.exec_with(context.dist.clone(), refresh_bases);
    let request = Request {
        options: plan_options(selection)?,
        builder: selection.builder,
        bases: if refresh_bases {
            Mode::Online
        } else {
            Mode::Offline
        },
        detect,
    };
    let planned = im_exec::planning::plan(&exec, prepared, request)?;
    context.printer.diagnostics(&planned.bases.warnings());
    Ok((exec, planned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_architecture_is_a_linux_platform() {
        let values: Vec<Platform> = ["amd64", "linux/arm64", "arm64", "linux/arm/v7"]
            .iter()
            .map(|v| crate::cli::parse_platform(v).unwrap())
            .collect();
        let platforms: Vec<String> = parse_platforms(&values)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
        let error = crate::cli::parse_platform("amd 64").unwrap_err();
        assert!(error.contains("`amd 64` is not a platform"), "{error}");
    }
}
