//! `image-manager generate-k8s`: the project's builds as Kubernetes manifests (see
//! [`im_exec::k8s`] and `im_k8s`).

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::cli::GenerateK8sArgs;

pub fn run(context: &Context<'_>, args: &GenerateK8sArgs) -> anyhow::Result<Outcome> {
    let printer = context.printer;
    let prepared = context.prepare_for_builds(None)?;
    printer.diagnostics(&prepared.warnings);
    let builds = im_exec::k8s::builds(&prepared, &args.targets, args.per_level)?;
    let settings = im_k8s::Settings {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        repository: args.repository.clone(),
        revision: args.revision.clone(),
        project_dir: args.project_path.clone(),
        registry_secret: args.registry_secret.clone(),
        schedule: args.schedule.clone(),
    };
    let written = im_exec::k8s::write(&args.output, &settings, &builds)
        .with_context(|| format!("writing {}", args.output.display()))?;
    printer.status(
        "Wrote",
        format!(
            "{} and the refresh CronJob and Kargo AnalysisTemplate to {}",
            im_exec::plural(builds.len(), "Job"),
            args.output.display()
        ),
    );
    let list: Vec<String> = written
        .iter()
        .map(|name| args.output.join(name).display().to_string())
        .collect();
    printer.data(list.join("\n"))?;
    Ok(Outcome::Success)
}
