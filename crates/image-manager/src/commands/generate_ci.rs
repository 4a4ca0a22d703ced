//! `image-manager generate-ci`: the CI pipeline of the project's image graph (see
//! [`im_ci`]), written to the provider's file, printed, checked against the committed file,
//! or shown as the job graph.

use std::path::PathBuf;

use anyhow::Context as _;
use im_ci::{Options, Provider, Shape};
use im_diag::Diagnostic;

use super::{Context, Outcome};
use crate::cli::{CiProvider, CiShape, Format, GenerateCiArgs};

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
    let ci = prepared.project.settings.ci.clone();
    let named = match (args.provider, ci.provider.as_deref()) {
        (Some(CiProvider::Gitlab), _) | (None, Some("gitlab")) => Some(Provider::Gitlab),
        (Some(CiProvider::Github), _) | (None, Some("github")) => Some(Provider::Github),
        _ => None,
    };
    let template = args
        .template
        .clone()
        .map(|dir| (dir, "--template"))
        .or_else(|| {
            ci.template
                .as_ref()
                .map(|dir| (PathBuf::from(dir), "`ci.template` in .image-manager.yml"))
        });
    let provider = match (named, &template) {
        (Some(provider), _) => provider,
        (None, Some(_)) => Provider::Gitlab, // only a context value, and none was named
        (None, None) => {
            return Err(Diagnostic::error("no CI provider was named")
                .with_help("pass --provider gitlab or --provider github, or set `ci: {provider: gitlab}` in .image-manager.yml; any other CI system: --template DIR")
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
    let all = im_exec::ci::tags(&prepared, &args.targets, &context.dist_name())?;
    let mut pipeline = match &affected {
        Some(affected) => im_exec::ci::only_affected(&all, affected),
        None => all.clone(),
    };
    if args.registry_keys {
        let exec = context.exec();
        let released = im_exec::ci::released(&exec, &prepared, &args.targets)?;
        pipeline.retain(|tag| !released.contains(&tag.node));
    }
    let options = Options {
        platform_split: ci.platform_split.unwrap_or(true),
        runners: ci.runners.clone(),
        install: ci.install.clone(),
        program: "image-manager".into(),
    };
    if let Some((dir, named_by)) = &template {
        let graph = im_ci::job_graph(&pipeline, &options);
        let request = im_exec::ci_template::Request {
            dir,
            named_by,
            provider: named.map(Provider::as_str),
            artifacts: args.artifacts || ci.artifacts,
            source_date_epoch: context.environment.source_date_epoch.as_deref(),
        };
        if args.format == Format::Json {
            // What the template sees (a superset of the job graph: `jobs` is there too).
            im_exec::ci_template::with_context(
                &prepared,
                &pipeline,
                &graph,
                &request,
                |values| printer.json(values),
            )??;
            return Ok(Outcome::Success);
        }
        let text = im_exec::ci_template::render(&prepared, &pipeline, &graph, &request)?;
        return write_template(context, args, &text, &graph, dir, ci.output.as_deref());
    }
    if args.artifacts || ci.artifacts {
        printer.diagnostics([&Diagnostic::warning("`artifacts` is only passed to custom pipeline templates (--template): the built-in pipelines hand images from job to job through the registry")]);
    }
    let shape = match args
        .shape
        .or(ci.shape.as_deref().and_then(|s| s.parse().ok()))
    {
        Some(CiShape::Auto) | None => Shape::Auto,
        Some(CiShape::Nodes) => Shape::Nodes,
        Some(CiShape::Dynamic) => Shape::Dynamic,
        Some(CiShape::Child) => Shape::Child,
        Some(CiShape::Matrices) => Shape::Matrices,
    };
    let settings = im_ci::Settings {
        image: ci.image.clone(),
        install: ci.install.clone(),
        header: header(provider, args, shape),
    };
    match (shape, provider) {
        (Shape::Child, Provider::Github) | (Shape::Matrices, Provider::Gitlab) => {
            return Err(Diagnostic::error(format!(
                "--shape {} is not for {}",
                if shape == Shape::Child { "child" } else { "matrices" },
                provider.as_str()
            ))
            .with_help("GitLab's plan job writes a child pipeline (--shape child), GitHub's prints matrices (--shape matrices)")
            .into());
        }
        _ => {}
    }
    let plan_args = plan_args(
        provider,
        args,
        !prepared.project.settings.registries.is_empty(),
    );
    // Nothing below reads the project: free it while the pipeline is made.
    let _freeing = prepared.free_in_background();
    let generated = im_ci::generate(&im_ci::Request {
        provider,
        shape,
        all: &all,
        pipeline: &pipeline,
        options: &options,
        settings: &settings,
        max_jobs: ci.max_jobs.unwrap_or(im_ci::pipeline::DEFAULT_MAX_JOBS),
        matrix_jobs: ci
            .matrix_jobs
            .unwrap_or(im_ci::pipeline::DEFAULT_MATRIX_JOBS),
        plan_args: &plan_args,
        layout: args.layout.as_deref(),
    })
    .map_err(|limit| Diagnostic::error(limit.message).with_help(limit.help))?;
    let graph = &generated.graph;
    if args.format == Format::Json {
        printer.json(graph)?;
        return Ok(Outcome::Success);
    }
    let text = generated.text;
    let output = args
        .output
        .clone()
        .or_else(|| ci.output.as_ref().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(provider.default_output()));
    let what = if generated.shape == "dynamic" {
        format!(
            "dynamic: its plan job generates up to {} at pipeline time",
            im_exec::plural(graph.jobs.len(), "job")
        )
    } else {
        summary(graph)
    };
    write(
        context,
        args.check,
        &text,
        &output,
        &format!("image-manager generate-ci --provider {}", provider.as_str()),
        &what,
    )
}

/// `12 jobs, at most 2 needs per job`.
fn summary(graph: &im_ci::JobGraph) -> String {
    format!(
        "{}, at most {} needs per job",
        im_exec::plural(graph.jobs.len(), "job"),
        graph.widest_needs()
    )
}

/// What generated the file, and how to keep it current.
fn header(provider: Provider, args: &GenerateCiArgs, shape: Shape) -> String {
    let mut command = format!("image-manager generate-ci --provider {}", provider.as_str());
    for target in &args.targets {
        command.push(' ');
        command.push_str(target);
    }
    if let Some(reference) = &args.affected_since {
        command.push_str(" --affected-since ");
        command.push_str(reference);
    }
    if args.registry_keys {
        command.push_str(" --registry-keys");
    }
    if shape == Shape::Child {
        format!("Generated at pipeline time by `{command} --shape child`: one job per node.")
    } else if args.affected_since.is_some() || args.registry_keys {
        format!("Generated by `{command}`: do not edit.\nPruned to what changed, for one pipeline.")
    } else {
        format!(
            "Generated by `{command}`: do not edit.\n\
             Run it again after changing images/ (`image-manager generate-ci --check` in a\n\
             lint job says when this file is stale)."
        )
    }
}

/// What a dynamic pipeline's plan job passes `generate-ci` besides its shape: the targets,
/// what the registry already released (with a registry), and the merge or pull request's base
/// to compare with.
fn plan_args(provider: Provider, args: &GenerateCiArgs, registry: bool) -> String {
    let mut words: Vec<String> = Vec::new();
    if registry {
        words.push("--registry-keys".to_owned());
    }
    words.push(
        match provider {
            Provider::Gitlab => {
                "${CI_MERGE_REQUEST_DIFF_BASE_SHA:+--affected-since \"$CI_MERGE_REQUEST_DIFF_BASE_SHA\"}"
            }
            Provider::Github => "${BASE_SHA:+--affected-since \"$BASE_SHA\"}",
        }
        .to_owned(),
    );
    words.extend(args.targets.iter().map(|t| im_ci::graph::shell_word(t)));
    words.join(" ")
}

/// A custom template's pipeline, with the header built-in files carry, to `--output` or
/// `ci.output` (a template has no default path).
fn write_template(
    context: &Context<'_>,
    args: &GenerateCiArgs,
    text: &str,
    graph: &im_ci::JobGraph,
    dir: &std::path::Path,
    ci_output: Option<&str>,
) -> anyhow::Result<Outcome> {
    let Some(output) = args.output.clone().or(ci_output.map(PathBuf::from)) else {
        return Err(Diagnostic::error("a pipeline template needs to be told where its file goes")
            .with_help(format!("pass --output PATH (`--output -` prints it), or set `ci: {{output: PATH}}` in .image-manager.yml, e.g. `image-manager generate-ci --template {} --output .circleci/config.yml`", dir.display()))
            .into());
    };
    let mut command = format!("image-manager generate-ci --template {}", dir.display());
    if output.as_os_str() != "-" {
        command.push_str(&format!(" --output {}", output.display()));
    }
    let header = format!(
        "# Generated by `{command}`: do not edit.\n\
         # Run it again after changing images/ or the template (`generate-ci --check` in a lint\n\
         # job says when this file is stale). {} jobs.\n",
        graph.jobs.len()
    );
    write(
        context,
        args.check,
        &(header + text),
        &output,
        &command,
        &summary(graph),
    )
}

/// Prints `text` (`-`), checks it against the file at `output`, or writes it there atomically.
fn write(
    context: &Context<'_>,
    check: bool,
    text: &str,
    output: &std::path::Path,
    command: &str,
    what: &str,
) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    if output.as_os_str() == "-" {
        // The printer ends the data with the newline the file ends with.
        printer.data(text.trim_end_matches('\n'))?;
        return Ok(Outcome::Success);
    }
    let path = context.root.join(output);
    if check {
        let current = fs_err::read_to_string(&path).ok();
        if current.as_deref() == Some(text) {
            printer.status("Up to date", output.display());
            return Ok(Outcome::Success);
        }
        printer.error(format!(
            "{} is {}: run `{command}` and commit it",
            output.display(),
            if current.is_some() {
                "stale"
            } else {
                "missing"
            },
        ));
        return Ok(Outcome::Failed);
    }
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir)?;
    }
    // Through a temporary file, so a reader never sees half a pipeline.
    im_render::output::write_atomic(&path, text.as_bytes(), None, None)
        .with_context(|| format!("writing {}", path.display()))?;
    printer.status("Generated", format!("{} ({what})", output.display()));
    Ok(Outcome::Success)
}
