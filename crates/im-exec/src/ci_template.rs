//! `generate-ci --template DIR`: the project's own pipeline template. `DIR/pipeline.yml.j2`
//! is rendered with [`im_ci::template::context`] by the image templates' engine, confined to
//! `DIR` ([`im_render::engine::Engine::for_folder`]); its errors point at the template's
//! `file:line` as image templates' do.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use im_ci::template::{Cache, Config, Context, Input, Labels, Registry};
use im_ci::{JobGraph, Tag};
use im_diag::{Diagnostic, Diagnostics};
use im_project::Settings;
use im_render::engine::{Engine, RenderContext};

use crate::prepare::Prepared;

/// The entry template of a template folder.
pub const ENTRY: &str = "pipeline.yml.j2";

/// What the caller decided besides the graph.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The folder as the user wrote it (`--template` or `ci.template`).
    pub dir: &'a Path,
    /// Where it was named, for errors (`--template`, `ci.template in .image-manager.yml`).
    pub named_by: &'a str,
    pub provider: Option<&'a str>,
    pub artifacts: bool,
    /// `SOURCE_DATE_EPOCH`, if set.
    pub source_date_epoch: Option<&'a str>,
}

/// `DIR` relative to the project root, checked: a plain path inside the project, a folder
/// with a [`ENTRY`].
pub fn folder(root: &Path, request: &Request<'_>) -> Result<String, Diagnostic> {
    let written = request.dir;
    let relative = if written.is_absolute() {
        written.strip_prefix(root).ok()
    } else {
        Some(written)
    };
    let parts: Option<Vec<String>> = relative.and_then(|path| {
        path.components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| match c {
                Component::Normal(part) => part.to_str().map(str::to_owned),
                _ => None,
            })
            .collect()
    });
    let outside = || {
        Diagnostic::error(format!(
            "the template folder `{}` ({}) is not inside the project",
            written.display(),
            request.named_by
        ))
        .with_help("keep pipeline templates in the project, e.g. `ci/templates/`, and name that folder relative to the project")
    };
    let dir = match parts {
        Some(parts) if !parts.is_empty() => parts.join("/"),
        Some(_) => return Err(outside().with_note("the project root itself is no template folder")),
        None => return Err(outside()),
    };
    if !root.join(&dir).is_dir() {
        return Err(Diagnostic::error(format!(
            "the template folder `{dir}` ({}) does not exist",
            request.named_by
        ))
        .with_help(format!(
            "create `{dir}/{ENTRY}`, the pipeline's entry template, or name another folder"
        )));
    }
    if !im_input::Confined::is_candidate(&root.join(&dir).join(ENTRY)) {
        return Err(Diagnostic::error(format!(
            "the template folder `{dir}` has no `{ENTRY}`"
        ))
        .with_help(format!(
            "`{dir}/{ENTRY}` is the pipeline's entry template; it may include and import the folder's other files"
        )));
    }
    Ok(dir)
}

/// `SOURCE_DATE_EPOCH` as the proof of concept wrote times (`2025-01-02T14:30:00+00:00`), or
/// empty without it: a wall-clock time would make every run's output differ, and the time of
/// a commit changes with the commit that adds the file (so `--check` would never pass).
pub fn generated_at(source_date_epoch: Option<&str>) -> Result<String, Diagnostic> {
    let Some(text) = source_date_epoch.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(String::new());
    };
    let time = text
        .parse::<i64>()
        .ok()
        .and_then(|epoch| time::OffsetDateTime::from_unix_timestamp(epoch).ok())
        .ok_or_else(|| {
            Diagnostic::error(format!(
                "SOURCE_DATE_EPOCH is `{text}`, not a number of seconds since 1970"
            ))
            .with_help("set it to an integer such as 1700000000, or unset it")
        })?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    ))
}

/// `config`: the settings a pipeline may need, with no credential.
fn config(settings: &Settings) -> Config {
    Config {
        registry: settings.default_registry().map(|r| r.url.clone()),
        registries: settings
            .registries
            .iter()
            .map(|r| Registry {
                url: r.url.clone(),
                default: r.default,
                insecure: r.insecure,
                name: r.name.clone(),
                mirror_of: r.mirror_of.clone(),
            })
            .collect(),
        cache: settings.cache.as_ref().map(|c| Cache {
            kind: c.kind.clone(),
            endpoint: c.endpoint.clone(),
            bucket: c.bucket.clone(),
            region: c.region.clone(),
            reference: c.reference.clone(),
            path: c.path.clone(),
        }),
        labels: Labels {
            vendor: settings.labels.vendor.clone(),
            authors: settings.labels.authors.clone(),
            url: settings.labels.url.clone(),
            documentation: settings.labels.documentation.clone(),
            licenses: settings.labels.licenses.clone(),
        },
    }
}

/// Renders `DIR/pipeline.yml.j2` for the pipeline of `tags` (whose jobs are `graph`).
pub fn render(
    prepared: &Prepared,
    tags: &[Tag],
    graph: &JobGraph,
    request: &Request<'_>,
) -> Result<String, Diagnostics> {
    let root = &prepared.project.root;
    let dir = folder(root, request)?;
    let entry: PathBuf = root.join(&dir).join(ENTRY);
    with_context(prepared, tags, graph, request, |context| {
        Engine::for_folder(root, &dir).render(&entry, &RenderContext::from_serialize(context))
    })?
    .map_err(Into::into)
}

/// Calls `use_context` with what the template of `request` sees (for `--format json`: a
/// template's author sees the very values).
pub fn with_context<R>(
    prepared: &Prepared,
    tags: &[Tag],
    graph: &JobGraph,
    request: &Request<'_>,
    use_context: impl FnOnce(&Context<'_>) -> R,
) -> Result<R, Diagnostics> {
    let generated_at = generated_at(request.source_date_epoch)?;
    let variants: BTreeSet<String> = tags
        .iter()
        .filter(|tag| {
            tag.node.split_once(':').is_some_and(|(image, name)| {
                prepared
                    .project
                    .tag_of(image, name)
                    .is_some_and(|t| t.variant.is_some())
            })
        })
        .map(|tag| tag.node.clone())
        .collect();
    let settings = &prepared.project.settings;
    let context = im_ci::template::context(&Input {
        tags,
        variants: &variants,
        graph,
        provider: request.provider,
        runners: &settings.ci.runners,
        image: settings.ci.image.as_deref(),
        install: &settings.ci.install,
        artifacts: request.artifacts,
        generated_at: &generated_at,
        config: config(settings),
    });
    Ok(use_context(&context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_at_is_source_date_epoch_as_the_proof_of_concept_wrote_it_or_empty() {
        assert_eq!(
            generated_at(Some("1700000000")).unwrap(),
            "2023-11-14T22:13:20+00:00"
        );
        assert_eq!(generated_at(None).unwrap(), "");
        assert_eq!(generated_at(Some(" ")).unwrap(), "");
        let error = generated_at(Some("yesterday")).unwrap_err().to_string();
        assert!(
            error.contains("SOURCE_DATE_EPOCH is `yesterday`"),
            "{error}"
        );
    }

    #[test]
    fn the_folder_must_be_inside_the_project_and_hold_the_entry() {
        let root = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(root.path().join("ci/tpl")).unwrap();
        fs_err::create_dir_all(root.path().join("ci/empty")).unwrap();
        fs_err::write(root.path().join("ci/tpl").join(ENTRY), "x").unwrap();
        let check = |dir: &Path| {
            folder(
                root.path(),
                &Request {
                    dir,
                    named_by: "--template",
                    provider: None,
                    artifacts: false,
                    source_date_epoch: None,
                },
            )
            .map_err(|e| e.to_string())
        };
        assert_eq!(check(Path::new("./ci/tpl/")).unwrap(), "ci/tpl");
        assert_eq!(check(&root.path().join("ci/tpl")).unwrap(), "ci/tpl");
        for outside in ["../x", "/etc", ".", "ci/../../x"] {
            let error = check(Path::new(outside)).unwrap_err();
            assert!(
                error.contains("is not inside the project"),
                "{outside}: {error}"
            );
        }
        let error = check(Path::new("ci/nope")).unwrap_err();
        assert!(
            error.contains("the template folder `ci/nope` (--template) does not exist"),
            "{error}"
        );
        let error = check(Path::new("ci/empty")).unwrap_err();
        assert!(
            error.contains("the template folder `ci/empty` has no `pipeline.yml.j2`"),
            "{error}"
        );
    }
}
