//! `image-manager generate-ci`: the CI pipeline of the project's image graph (see
//! [`im_ci`]), written to the provider's file, printed, checked against the committed file,
//! or shown as the job graph.

use std::path::PathBuf;

use anyhow::Context as _;
use im_ci::{Options, Provider};
use im_diag::Diagnostic;

use super::{Context, Outcome};
use crate::cli::{CiProvider, Format, GenerateCiArgs};

pub fn run(context: &Context<'_>, args: &GenerateCiArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    // Which tags have a test config is known without rendering the configs; what changed
    // since a revision needs them (a changed test config reruns the tests).
    let prepared = if args.affected_since.is_some() {
        context.prepare(None)?
    } else {
        context.prepare_for_builds(None)?
    };
    printer.diagnostics(&prepared.warnings);
    let ci = &prepared.project.settings.ci;
    let provider = match (args.provider, ci.provider.as_deref()) {
        (Some(CiProvider::Gitlab), _) | (None, Some("gitlab")) => Provider::Gitlab,
        (Some(CiProvider::Github), _) | (None, Some("github")) => Provider::Github,
        _ => {
            return Err(Diagnostic::error("no CI provider was named")
                .with_help("pass --provider gitlab or --provider github, or set `ci: {provider: gitlab}` in .image-manager.yml")
                .into());
        }
    };
    let affected = match &args.affected_since {
        Some(reference) => Some(im_exec::affected::since(
            &prepared,
            reference,
            &args.targets,
            &crate::env_vars::lookup,
        )?),
        None => None,
    };
    let mut tags = im_exec::ci::tags(
        &prepared,
        &args.targets,
        &context.dist_name(),
        affected.as_ref(),
    )?;
    if args.registry_keys {
        let exec = context.exec();
        let released = im_exec::ci::released(&exec, &prepared, &args.targets)?;
        tags.retain(|tag| !released.contains(&tag.node));
    }
    let graph = im_ci::job_graph(
        &tags,
        &Options {
            platform_split: ci.platform_split.unwrap_or(true),
            runners: ci.runners.clone(),
            install: ci.install.clone(),
            program: "image-manager".into(),
        },
    );
    if let Some(job) = graph
        .jobs
        .iter()
        .find(|job| job.needs.len() > provider.max_needs())
    {
        return Err(Diagnostic::error(format!(
            "the job `{}` needs {} jobs; {} allows at most {}",
            job.name,
            job.needs.len(),
            provider.as_str(),
            provider.max_needs()
        ))
        .with_help("set `ci: {platform_split: false}` to need one job per parent image tag, or generate the pipeline for fewer targets")
        .into());
    }
    if args.format == Format::Json {
        printer.json(&graph)?;
        return Ok(Outcome::Success);
    }
    let settings = im_ci::Settings {
        image: ci.image.clone(),
        install: ci.install.clone(),
        header: header(provider, args, graph.jobs.len()),
    };
    let text = match provider {
        Provider::Gitlab => im_ci::gitlab(&graph, &settings),
        Provider::Github => im_ci::github(&graph, &settings),
    };
    let output = args
        .output
        .clone()
        .or_else(|| ci.output.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(provider.default_output()));
    if output.as_os_str() == "-" {
        // The printer ends the data with the newline the file ends with.
        printer.data(text.trim_end_matches('\n'))?;
        return Ok(Outcome::Success);
    }
    let path = context.root.join(&output);
    if args.check {
        let current = fs_err::read_to_string(&path).ok();
        if current.as_deref() == Some(text.as_str()) {
            printer.status("Up to date", output.display());
            return Ok(Outcome::Success);
        }
        printer.error(format!(
            "{} is {}: run `image-manager generate-ci --provider {}` and commit it",
            output.display(),
            if current.is_some() {
                "stale"
            } else {
                "missing"
            },
            provider.as_str()
        ));
        return Ok(Outcome::Failed);
    }
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    // Through a temporary file, so a reader never sees half a pipeline.
    im_render::output::write_atomic(&path, text.as_bytes(), None, None)
        .with_context(|| format!("writing {}", path.display()))?;
    printer.status(
        "Generated",
        format!(
            "{} ({} jobs, at most {} needs per job)",
            output.display(),
            graph.jobs.len(),
            graph.widest_needs()
        ),
    );
    Ok(Outcome::Success)
}

/// What generated the file, and how to keep it current.
fn header(provider: Provider, args: &GenerateCiArgs, jobs: usize) -> String {
    let jobs = im_exec::plural(jobs, "job");
    let mut command = format!("image-manager generate-ci --provider {}", provider.as_str());
    for target in &args.targets {
        command.push(' ');
        command.push_str(target);
    }
    match (&args.affected_since, args.registry_keys) {
        (None, false) => format!(
            "Generated by `{command}`: do not edit.\n\
             Run it again after changing images/ (`image-manager generate-ci --check` in a\n\
             lint job says when this file is stale). {jobs}."
        ),
        (since, registry_keys) => {
            if let Some(reference) = since {
                command.push_str(" --affected-since ");
                command.push_str(reference);
            }
            if registry_keys {
                command.push_str(" --registry-keys");
            }
            format!(
                "Generated by `{command}`: do not edit.\n\
                 Pruned to what changed, for one pipeline. {jobs}."
            )
        }
    }
}
