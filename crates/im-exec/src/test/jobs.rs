//! What to test: each selected tag's rendered config against its built archive, per platform,
//! or one config against one image.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use im_diag::{Diagnostic, Diagnostics};
use im_project::Platform;
use im_structure_test::{ConfigError, ImageSource, Job, Target, load_config};

use crate::Prepared;

/// One `--config FILE --image TAR` run, as container-structure-test does it.
pub fn direct_jobs(
    config: &Path,
    image: &Path,
    platform: Option<im_oci::Platform>,
) -> Result<Vec<Job>, Diagnostics> {
    let loaded = load_config(config).map_err(|error| config_error(&error))?;
    Ok(vec![Job {
        config: Arc::new(loaded),
        config_path: config.to_path_buf(),
        target: Target {
            label: image.display().to_string(),
            source: ImageSource::Archive {
                path: image.to_path_buf(),
                tag: None,
            },
            platform,
        },
    }])
}

/// A job per platform (`platforms`, else each tag's own) of each tag `targets` selects that
/// has a test config, from the configs and archives in `dist`. A config or archive that is
/// not there is an error saying what to run first; every one is reported.
pub fn project_jobs(
    dist: &Path,
    prepared: &Prepared,
    targets: &[String],
    platforms: Option<&[Platform]>,
) -> Result<Vec<Job>, Diagnostics> {
    let selected = im_plan::targets::select(&prepared.project, &prepared.graph, targets)?;
    let mut jobs = Vec::new();
    let mut missing = Diagnostics::new();
    let by_id: HashMap<(&str, &str), &im_render::RenderedTag> = prepared
        .rendered
        .tags
        .iter()
        .map(|t| ((t.image.as_str(), t.tag.as_str()), t))
        .collect();
    for node in selected {
        let id = &prepared.graph.nodes[node];
        let Some(rendered) = by_id.get(&(id.image.as_str(), id.tag.as_str())).copied() else {
            continue;
        };
        if rendered.test.is_none() {
            continue;
        }
        let Some(tag) = prepared.project.tag_of(&id.image, &id.tag) else {
            continue;
        };
        let dir = dist.join(&id.image).join(&id.tag);
        let config_path = dir.join("test.yml");
        if !config_path.is_file() {
            missing.push(
                Diagnostic::error(format!(
                    "{id} has a test config, but {} does not exist",
                    config_path.display()
                ))
                .with_help("run `image-manager generate` (or `build`) first"),
            );
            continue;
        }
        let config = match load_config(&config_path) {
            Ok(config) => Arc::new(config),
            Err(error) => {
                for diagnostic in config_error(&error) {
                    missing.push(diagnostic.with_note(format!(
                            "{} is rendered from {}",
                            config_path.display(),
                            rendered
                                .test
                                .as_ref()
                                .map_or_else(String::new, |(_, found)| found
                                    .path
                                    .display()
                                    .to_string())
                        )));
                }
                continue;
            }
        };
        for platform in platforms.unwrap_or(&tag.platforms) {
            let archive = dir.join(platform.slug()).join("image.tar");
            if !archive.is_file() {
                missing.push(
                    Diagnostic::error(format!(
                        "{id} is not built for {platform} ({} is missing)",
                        archive.display()
                    ))
                    .with_help(format!(
                        "run `image-manager build {id} --platform {platform}` first"
                    )),
                );
                continue;
            }
            jobs.push(Job {
                config: config.clone(),
                config_path: config_path.clone(),
                target: Target {
                    // The platform is the report's own field: `display_name` adds it.
                    label: id.to_string(),
                    source: ImageSource::Archive {
                        path: archive,
                        tag: None,
                    },
                    platform: Some(platform.clone()),
                },
            });
        }
    }
    if missing.has_errors() {
        Err(missing)
    } else {
        Ok(jobs)
    }
}

fn config_error(error: &ConfigError) -> Diagnostics {
    match error {
        ConfigError::Invalid { diagnostics } => diagnostics.clone(),
        other @ ConfigError::Read { .. } => Diagnostic::error(other.to_string()).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project with `app:1.0.0` (tested, two platforms) and `plain:1.0.0` (no tests),
    /// generated into `dist/`, nothing built.
    fn generated() -> (tempfile::TempDir, Prepared) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let files = [
            (
                ".image-manager.yml",
                "platforms: [linux/amd64, linux/arm64]\n",
            ),
            ("images/app/image.yml", "tags: [1.0.0]\n"),
            ("images/app/Dockerfile", "FROM scratch\n"),
            (
                "images/app/test.yml",
                "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: hello\n    path: /hello\n    shouldExist: true\n",
            ),
            ("images/plain/image.yml", "tags: [1.0.0]\n"),
            ("images/plain/Dockerfile", "FROM scratch\n"),
        ];
        for (path, text) in files {
            let path = root.join(path);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, text).unwrap();
        }
        let prepared = Prepared::new(root, &|_| None, im_render::Options::default()).unwrap();
        prepared
            .write_dist(&root.join("dist"), Path::new("dist"), None)
            .unwrap();
        (dir, prepared)
    }

    #[test]
    fn every_platform_not_built_is_reported_with_the_build_that_fixes_it() {
        let (dir, prepared) = generated();
        let missing = project_jobs(&dir.path().join("dist"), &prepared, &[], None).unwrap_err();
        let messages: Vec<String> = missing.iter().map(ToString::to_string).collect();
        assert_eq!(missing.error_count(), 2, "{messages:#?}");
        assert!(
            messages[0]
                .contains("run `image-manager build app:1.0.0 --platform linux/amd64` first"),
            "{messages:#?}"
        );
        assert!(messages[1].contains("linux/arm64"), "{messages:#?}");
    }

    #[test]
    fn a_job_per_chosen_platform_of_each_tag_with_a_test_config() {
        let (dir, prepared) = generated();
        let dist = dir.path().join("dist");
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let archive = dist.join("app/1.0.0").join(amd64.slug()).join("image.tar");
        fs_err::create_dir_all(archive.parent().unwrap()).unwrap();
        fs_err::write(&archive, "").unwrap();
        let jobs = project_jobs(&dist, &prepared, &[], Some(&[amd64])).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].target.label, "app:1.0.0");
        assert_eq!(jobs[0].config_path, dist.join("app/1.0.0/test.yml"));
        assert_eq!(
            jobs[0].target.platform.as_ref().map(ToString::to_string),
            Some("linux/amd64".to_owned())
        );
    }
}
