//! Which file renders a tag's Dockerfile and test config.
//!
//! First match wins: the explicit `template` (variant's, then image's); for a variant,
//! `<dir>/<variant>/Dockerfile.jinja2`, `<dir>/<variant>/Dockerfile`, then
//! `Dockerfile.<variant>.jinja2`; then `Dockerfile.jinja2`; then a plain `Dockerfile` used
//! verbatim. Each name is looked up in the `image.yml` folder, then in the sibling
//! `templates/` folder (`images/dotnet/templates/` serves `images/dotnet/8.0/` and
//! `images/dotnet/9.0/`), then in the project's `templates/` folder. Test configs follow
//! the same rules with `test.yml.jinja2` / `test.yml` (and `test.<variant>.yml.jinja2`).
//!
//! Any entry that is not a folder counts as found ([`im_input::Confined::is_candidate`]), so a
//! FIFO, a broken link or a link out of the project is reported when it is read
//! ([`read_template`]) instead of being passed over for the next candidate.

use std::path::{Path, PathBuf};

use im_input::Confined;

use serde::Serialize;

/// How a found file is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Rendered with minijinja.
    Template,
    /// Copied as it is.
    Verbatim,
}

/// The file chosen for an output, and every place that was looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    pub path: PathBuf,
    pub kind: SourceKind,
}

/// What is being looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Dockerfile,
    Test,
}

impl Output {
    fn names(self, variant: Option<&str>) -> Vec<(String, SourceKind)> {
        let (template, plain, stem, extension) = match self {
            Output::Dockerfile => ("Dockerfile.jinja2", "Dockerfile", "Dockerfile", ""),
            Output::Test => ("test.yml.jinja2", "test.yml", "test", ".yml"),
        };
        let variant_template = |v: &str| format!("{stem}.{v}{extension}.jinja2");
        let mut names = Vec::new();
        if let Some(variant) = variant {
            names.push((format!("{variant}/{template}"), SourceKind::Template));
            names.push((format!("{variant}/{plain}"), SourceKind::Verbatim));
            names.push((variant_template(variant), SourceKind::Template));
        }
        names.push((template.to_owned(), SourceKind::Template));
        names.push((plain.to_owned(), SourceKind::Verbatim));
        names
    }
}

/// The folders a name is looked up in, in order.
pub fn search_dirs(root: &Path, image_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![image_dir.to_path_buf()];
    if let Some(parent) = image_dir.parent() {
        let sibling = parent.join("templates");
        if parent.starts_with(root.join(im_project::model::IMAGES_DIR)) {
            dirs.push(sibling);
        }
    }
    let shared = root.join("templates");
    if !dirs.contains(&shared) {
        dirs.push(shared);
    }
    dirs
}

fn kind_of(name: &str) -> SourceKind {
    if name.ends_with(".jinja2") || name.ends_with(".j2") || name.ends_with(".jinja") {
        SourceKind::Template
    } else {
        SourceKind::Verbatim
    }
}

/// Finds the file for `output`. `explicit` is the `template` value from the file, if any.
/// Returns `Err(looked_at)` when an explicit template does not exist (that is an error);
/// `Ok(None)` when nothing matched.
pub fn find(
    root: &Path,
    image_dir: &Path,
    output: Output,
    variant: Option<&str>,
    explicit: Option<&str>,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Option<Found>, Vec<PathBuf>> {
    let dirs = search_dirs(root, image_dir);
    if let Some(explicit) = explicit {
        let candidates: Vec<PathBuf> = dirs.iter().map(|dir| dir.join(explicit)).collect();
        return match candidates.iter().find(|path| exists(path)) {
            Some(path) => Ok(Some(Found {
                path: path.clone(),
                kind: kind_of(explicit),
            })),
            None => Err(candidates),
        };
    }
    for (name, kind) in output.names(variant) {
        for dir in &dirs {
            let path = dir.join(&name);
            if exists(&path) {
                return Ok(Some(Found { path, kind }));
            }
        }
    }
    Ok(None)
}

/// Reads a template for the engine's loader: `Ok(None)` when there is nothing at `path`;
/// a file that is not a regular file inside the project is an error carrying the
/// [`im_diag::Diagnostic`] that says so (the engine reports it as it is).
pub(crate) fn read_template(
    confined: &Confined,
    root: &Path,
    path: &Path,
) -> Result<Option<String>, minijinja::Error> {
    match confined.read_text(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.is_missing() => Ok(None),
        Err(error) => {
            let diagnostic = error.diagnostic(&im_diag::display_path(root, path));
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                diagnostic.message.clone(),
            )
            .with_source(diagnostic))
        }
    }
}

/// The [`im_diag::Diagnostic`] a failed [`read_template`] put in `error`'s chain, if any.
pub(crate) fn input_diagnostic(error: &minijinja::Error) -> Option<im_diag::Diagnostic> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        if let Some(diagnostic) = current.downcast_ref::<im_diag::Diagnostic>() {
            return Some(diagnostic.clone());
        }
        source = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn finder(files: &[&str]) -> impl Fn(&Path) -> bool {
        let set: BTreeSet<PathBuf> = files.iter().map(PathBuf::from).collect();
        move |path: &Path| set.contains(path)
    }

    fn found(files: &[&str], variant: Option<&str>, explicit: Option<&str>) -> Option<String> {
        let exists = finder(files);
        find(
            Path::new("/p"),
            Path::new("/p/images/dotnet/9.0"),
            Output::Dockerfile,
            variant,
            explicit,
            &exists,
        )
        .unwrap()
        .map(|f| f.path.display().to_string())
    }

    #[test]
    fn variant_folder_beats_variant_file_beats_default() {
        let all = [
            "/p/images/dotnet/9.0/semantic/Dockerfile.jinja2",
            "/p/images/dotnet/9.0/Dockerfile.semantic.jinja2",
            "/p/images/dotnet/9.0/Dockerfile.jinja2",
        ];
        assert_eq!(found(&all, Some("semantic"), None).unwrap(), all[0]);
        assert_eq!(found(&all[1..], Some("semantic"), None).unwrap(), all[1]);
        assert_eq!(found(&all[2..], Some("semantic"), None).unwrap(), all[2]);
        assert_eq!(found(&all, None, None).unwrap(), all[2]);
    }

    #[test]
    fn sibling_templates_then_project_templates_then_plain_dockerfile() {
        let sibling = "/p/images/dotnet/templates/Dockerfile.jinja2";
        let shared = "/p/templates/Dockerfile.jinja2";
        assert_eq!(found(&[sibling, shared], None, None).unwrap(), sibling);
        assert_eq!(found(&[shared], None, None).unwrap(), shared);
        assert_eq!(
            found(&["/p/images/dotnet/9.0/Dockerfile"], None, None).unwrap(),
            "/p/images/dotnet/9.0/Dockerfile"
        );
        assert_eq!(found(&[], None, None), None);
    }

    #[test]
    fn explicit_template_is_looked_up_and_missing_is_an_error() {
        assert_eq!(
            found(&["/p/templates/custom.jinja2"], None, Some("custom.jinja2")).unwrap(),
            "/p/templates/custom.jinja2"
        );
        let exists = finder(&[]);
        let looked = find(
            Path::new("/p"),
            Path::new("/p/images/a"),
            Output::Dockerfile,
            None,
            Some("x.j2"),
            &exists,
        )
        .unwrap_err();
        assert_eq!(looked.len(), 3);
    }
}
