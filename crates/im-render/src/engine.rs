//! The template engine: minijinja confined to the project, with limits and helpful errors.
//!
//! Templates are named by their path relative to the project root. The loader only reads
//! files under `images/` and `templates/`; `{% include %}` names resolve next to the including
//! template, then in the image's sibling `templates/` folder, then in the project's
//! `templates/` folder, and may not contain `..` or start with `/`. Templates see only the
//! context they are given: no environment, no files, no commands. Undefined values are errors
//! (strict mode), each rendering has an instruction budget (fuel) and an output cap.
//! [`Engine::for_folder`] serves the templates of one folder instead (CI pipeline templates):
//! names relative to that folder, nothing read outside it. The
//! fuel also pays for the values a template builds and prints (with the patch in
//! `third_party/minijinja`), which bounds the memory a template may use.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use im_diag::{Diagnostic, Location};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

/// Instructions one rendering may execute (a normal Dockerfile template needs a few thousand).
pub const FUEL: u64 = 2_000_000;
/// The largest output a template may produce.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;

/// A rendering's output, refusing to grow past [`MAX_OUTPUT`]: the write that would cross it
/// fails, which stops the template at that line.
#[derive(Default)]
struct CappedOutput {
    bytes: Vec<u8>,
    cap: usize,
    over: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + data.len() > self.cap {
            self.over = true;
            return Err(std::io::Error::other("the output cap was reached"));
        }
        self.bytes.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the `resolve_base_image` filter knows about one managed image.
#[derive(Debug, Clone, Default)]
pub struct ImageEntry {
    /// Base tags (not variant tags), in file order.
    pub base_tags: Vec<String>,
    /// Every tag, variant tags included.
    pub tags: Vec<String>,
    pub aliases: BTreeMap<String, String>,
}

/// The project facts the filters need.
#[derive(Debug, Clone, Default)]
pub struct FilterData {
    pub images: BTreeMap<String, ImageEntry>,
    pub snapshot_id: Option<String>,
}

/// A template context, built once for every template rendered with it.
pub struct RenderContext {
    value: Value,
}

impl RenderContext {
    pub fn new(json: &serde_json::Value) -> Self {
        Self::from_value(Value::from(minijinja::value::Serde(json)))
    }

    /// A context from any serialisable value (a struct's fields become the names).
    pub fn from_serialize<T: serde::Serialize>(value: &T) -> Self {
        Self::from_value(Value::from(minijinja::value::Serde(value)))
    }

    /// A context built as minijinja values (parts shared between tags are cheap to clone).
    pub fn from_value(value: Value) -> Self {
        Self { value }
    }

    pub(crate) fn value(&self) -> &Value {
        &self.value
    }
}

/// Instructions a pipeline template may execute: it renders the whole job graph at once
/// (thousands of jobs in a large monorepo), not one tag.
pub const FOLDER_FUEL: u64 = 100_000_000;
/// The largest pipeline a template folder may produce.
pub const FOLDER_MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// A configured environment for one project.
pub struct Engine {
    pub(crate) env: Environment<'static>,
    root: PathBuf,
    confined: Arc<im_input::Confined>,
    /// The instruction budget and output cap of each rendering.
    fuel: u64,
    max_output: usize,
    /// Where includes are looked up, for the help of a missing one.
    include_help: String,
    /// What to do about an output past the cap.
    output_help: String,
}

fn is_confined(name: &str) -> bool {
    is_plain(name) && (name.starts_with("images/") || name.starts_with("templates/"))
}

fn parent_dir(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// What every template sees, whatever it renders: strict undefined values, the budget, no
/// escaping, Jinja2's trailing newline, Python methods, Jinja2's filters, `cycler`, `joiner`.
fn environment(fuel: u64) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(fuel));
    // Dockerfiles and YAML are not HTML or JSON: values go in exactly as they are (the
    // default would JSON-quote every value in a `.yml` template).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.set_unknown_method_callback(crate::pycompat::call_method);
    crate::filters::register(&mut env);
    env.add_function("cycler", |items: minijinja::value::Rest<Value>| {
        minijinja_contrib::globals::cycler(items.0)
    });
    env.add_function("joiner", minijinja_contrib::globals::joiner);
    env
}

/// Whether `name` is a plain relative path (no `..`, `.`, leading `/` or empty part).
fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

impl Engine {
    pub fn new(root: &Path, data: FilterData) -> Self {
        let mut env = environment(FUEL);
        let loader_root = root.to_path_buf();
        let confined = Arc::new(im_input::Confined::new(root));
        let loader_confined = confined.clone();
        env.set_loader(move |name| {
            if !is_confined(name) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("`{name}` is outside the image's folders: templates may only include files by plain relative names"),
                ));
            }
            crate::discovery::read_template(&loader_confined, &loader_root, &loader_root.join(name))
        });
        let join_root = root.to_path_buf();
        // Includes are resolved once per (name, folder): thousands of templates include the
        // same few files.
        let joined: Mutex<HashMap<(String, String), String>> = Mutex::new(HashMap::new());
        env.set_path_join_callback(move |name, parent| {
            if name.starts_with('/') || name.split('/').any(|part| part == ".." || part == ".") {
                return name.to_owned().into();
            }
            let dir = parent_dir(parent);
            let key = (name.to_owned(), dir.to_owned());
            if let Some(known) = joined.lock().expect("include cache lock").get(&key) {
                return known.clone().into();
            }
            let mut candidates = vec![format!("{dir}/{name}")];
            let grand = parent_dir(dir);
            if !grand.is_empty() {
                candidates.push(format!("{grand}/templates/{name}"));
            }
            candidates.push(format!("templates/{name}"));
            let chosen = candidates
                .iter()
                .find(|c| im_input::Confined::is_candidate(&join_root.join(c)))
                .unwrap_or(&candidates[0])
                .clone();
            joined
                .lock()
                .expect("include cache lock")
                .insert(key, chosen.clone());
            chosen.into()
        });
        let data = Arc::new(data);
        let filter_data = data.clone();
        env.add_filter(
            "resolve_base_image",
            move |name: String, tag: Option<String>| {
                resolve_base_image(&filter_data, &name, tag.as_deref())
            },
        );
        env.add_filter("resolve_version", |state: &State<'_, '_>, name: String| {
            resolve_version(state, &name)
        });
        Self {
            env,
            root: root.to_path_buf(),
            confined,
            fuel: FUEL,
            max_output: MAX_OUTPUT,
            include_help: "included templates are looked up next to the template, in the image's sibling templates/ folder, then in the project's templates/ folder".into(),
            output_help: "check loops and string repetition in the template".into(),
        }
    }

    /// An engine for the templates of one folder of the project (`dir`, a plain relative
    /// path such as `ci/templates`), as Jinja2's `FileSystemLoader(dir)` sees them: include
    /// and import names are relative to `dir`, and nothing outside it is read (no `..`, no
    /// absolute names, no link out of the project). Without the image filters, and with
    /// [`FOLDER_FUEL`] and [`FOLDER_MAX_OUTPUT`].
    pub fn for_folder(root: &Path, dir: &str) -> Self {
        let mut env = environment(FOLDER_FUEL);
        let confined = Arc::new(im_input::Confined::new(root));
        let loader_confined = confined.clone();
        let loader_root = root.to_path_buf();
        let prefix = format!("{dir}/");
        let loader_dir = dir.to_owned();
        env.set_loader(move |name| {
            if !is_plain(name) || !name.starts_with(&prefix) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("`{name}` is outside the template folder {loader_dir}/: templates may only include files of that folder by plain relative names"),
                ));
            }
            crate::discovery::read_template(&loader_confined, &loader_root, &loader_root.join(name))
        });
        let join_dir = dir.to_owned();
        env.set_path_join_callback(move |name, _parent| {
            if is_plain(name) {
                format!("{join_dir}/{name}").into()
            } else {
                // Refused by the loader, which names it as written.
                name.to_owned().into()
            }
        });
        Self {
            env,
            root: root.to_path_buf(),
            confined,
            fuel: FOLDER_FUEL,
            max_output: FOLDER_MAX_OUTPUT,
            include_help: format!(
                "include and import names are relative to the template folder {dir}/"
            ),
            output_help: "check loops and string repetition in the template; a pipeline this large is more than a CI system takes in one file: generate it for fewer targets".into(),
        }
    }

    /// How this engine reads the project's files.
    pub fn confined(&self) -> &im_input::Confined {
        &self.confined
    }

    /// Renders the template at `path` (absolute, inside the project) with `context`.
    pub fn render(&self, path: &Path, context: &RenderContext) -> Result<String, Diagnostic> {
        let name = path
            .strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let mut output = CappedOutput {
            cap: self.max_output,
            ..CappedOutput::default()
        };
        let result = self
            .env
            .get_template(&name)
            .and_then(|template| template.render_captured_to(&context.value, &mut output));
        match result {
            Ok(_) => {
                let mut text = String::from_utf8(output.bytes)
                    .expect("templates write UTF-8: they are rendered from str");
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                Ok(text)
            }
            Err(error) if output.over => {
                // Where the output crossed the cap: the line being written then (the patched
                // minijinja keeps it on write failures).
                let file = error.name().unwrap_or(&name).to_owned();
                let location = match error.line() {
                    Some(line) => {
                        let source = self
                            .confined
                            .read_text(&self.root.join(&file))
                            .unwrap_or_default();
                        let len = source
                            .lines()
                            .nth(line.saturating_sub(1))
                            .map_or(1, |text| text.chars().count().max(1));
                        Location::in_source(&file, &source, line, 1, len)
                    }
                    None => Location::file(&file),
                };
                Err(Diagnostic::error(format!(
                    "this template's output passed the {} bytes allowed here",
                    self.max_output
                ))
                .at(location)
                .with_help(self.output_help.clone()))
            }
            Err(error) => Err(self.diagnostic(&name, &error, &context.value)),
        }
    }

    /// Turns a minijinja error into a diagnostic at the template's `file:line`.
    /// An error inside an included or imported template reaches minijinja's caller wrapped
    /// at the `{% include %}` line: the diagnostic points at the innermost template's line
    /// and notes where each was included.
    pub(crate) fn diagnostic(&self, name: &str, error: &Error, context: &Value) -> Diagnostic {
        let mut chain = vec![error];
        while let Some(inner) = std::error::Error::source(chain[chain.len() - 1])
            .and_then(|source| source.downcast_ref::<Error>())
            .filter(|inner| inner.name().is_some() && inner.line().is_some())
        {
            chain.push(inner);
        }
        let innermost = chain[chain.len() - 1];
        let mut diagnostic = self.diagnostic_of(name, innermost, context);
        for outer in chain[..chain.len() - 1].iter().rev() {
            if let (Some(including), Some(line)) = (outer.name(), outer.line()) {
                diagnostic = diagnostic.with_note(format!("included at {including}:{line}"));
            }
        }
        diagnostic
    }

    fn diagnostic_of(&self, name: &str, error: &Error, context: &Value) -> Diagnostic {
        if let Some(diagnostic) = crate::discovery::input_diagnostic(error) {
            return match (error.name(), error.line()) {
                (Some(including), Some(line)) => {
                    diagnostic.with_note(format!("included at {including}:{line}"))
                }
                _ => diagnostic,
            };
        }
        let file = error.name().unwrap_or(name).to_owned();
        let source = error
            .template_source()
            .map(str::to_owned)
            .or_else(|| self.confined.read_text(&self.root.join(&file)).ok())
            .unwrap_or_default();
        let detail = error.detail().map(str::to_owned);
        let (message, help) = match error.kind() {
            ErrorKind::UndefinedError => {
                let expression = error.range().and_then(|r| source.get(r)).unwrap_or("").trim().to_owned();
                let message = if expression.is_empty() {
                    "this template uses an undefined value".to_owned()
                } else {
                    format!("`{expression}` is not defined")
                };
                (message, Some(undefined_help(&expression, context)))
            }
            ErrorKind::OutOfFuel => (
                format!("this template used up its budget of {} steps (the values it builds and prints count too) and was stopped", self.fuel),
                Some("look for a loop that never ends, recursion without a base case, or a value that doubles in a loop".to_owned()),
            ),
            ErrorKind::TemplateNotFound => (
                detail.clone().unwrap_or_else(|| "an included template does not exist".into()),
                Some(self.include_help.clone()),
            ),
            ErrorKind::SyntaxError => (format!("template syntax error: {}", detail.clone().unwrap_or_default()), None),
            _ => (
                match &detail {
                    Some(detail) if error.kind() == ErrorKind::InvalidOperation => detail.clone(),
                    Some(detail) => format!("{}: {detail}", error.kind()),
                    None => error.kind().to_string(),
                },
                None,
            ),
        };
        let mut diagnostic = Diagnostic::error(message);
        diagnostic.help = help;
        match error.line() {
            Some(line) => {
                let (column, len) = error
                    .range()
                    .and_then(|range| {
                        let line_start = source[..range.start.min(source.len())]
                            .rfind('\n')
                            .map_or(0, |i| i + 1);
                        let column = source.get(line_start..range.start)?.chars().count() + 1;
                        let len = source
                            .get(range.clone())?
                            .lines()
                            .next()
                            .map_or(1, |l| l.chars().count());
                        Some((column, len))
                    })
                    .unwrap_or((1, 1));
                diagnostic.at(Location::in_source(file, &source, line, column, len))
            }
            None => diagnostic.at(Location::file(file)),
        }
    }
}

/// "`tag.versions` has: python, pip" for an undefined `tag.versions.nodejs`.
fn undefined_help(expression: &str, context: &Value) -> String {
    let path = expression.split('|').next().unwrap_or("").trim();
    let parts: Vec<&str> = path.split('.').map(str::trim).collect();
    let mut current = context.clone();
    let mut walked: Vec<&str> = Vec::new();
    for part in &parts {
        match current.get_attr(part) {
            Ok(next) if next.kind() == minijinja::value::ValueKind::Map => {
                current = next;
                walked.push(part);
            }
            _ => break,
        }
    }
    let keys: Vec<String> = if current.kind() == minijinja::value::ValueKind::Map {
        current
            .try_iter()
            .map(|keys| keys.map(|key| key.to_string()).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let owner = if walked.is_empty() {
        "the context".to_owned()
    } else {
        format!("`{}`", walked.join("."))
    };
    if keys.is_empty() {
        format!("{owner} is empty here")
    } else {
        format!("{owner} has: {}", keys.join(", "))
    }
}

fn resolve_base_image(data: &FilterData, name: &str, tag: Option<&str>) -> Result<String, Error> {
    let Some(image) = data.images.get(name) else {
        let known: Vec<&str> = data.images.keys().map(String::as_str).collect();
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "`{name}` is not a managed image (managed: {})",
                known.join(", ")
            ),
        ));
    };
    let chosen = match tag {
        Some(tag) if image.tags.iter().any(|t| t == tag) => tag.to_owned(),
        Some(tag) => match image.aliases.get(tag) {
            Some(target) => target.clone(),
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "image `{name}` has no tag or alias `{tag}` (tags: {})",
                        image.tags.join(", ")
                    ),
                ));
            }
        },
        None => match image.base_tags.as_slice() {
            [only] => only.clone(),
            tags => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "image `{name}` has several tags ({}); say which: `\"{name}\" | resolve_base_image(\"<tag>\")`",
                        tags.join(", ")
                    ),
                ));
            }
        },
    };
    Ok(match &data.snapshot_id {
        Some(id) => format!("{name}:{chosen}-{id}"),
        None => format!("{name}:{chosen}"),
    })
}

fn resolve_version(state: &State<'_, '_>, name: &str) -> Result<String, Error> {
    let versions = state
        .lookup("tag")
        .and_then(|tag| tag.get_attr("versions").ok());
    if let Some(versions) = versions {
        if let Ok(value) = versions.get_item(&Value::from(name))
            && !value.is_undefined()
            && !value.is_none()
        {
            return Ok(value.to_string());
        }
        let known: Vec<String> = versions
            .try_iter()
            .map(|keys| keys.map(|k| k.to_string()).collect())
            .unwrap_or_default();
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "no version `{name}` for this tag (versions: {})",
                known.join(", ")
            ),
        ));
    }
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("no version `{name}`: this tag has no versions"),
    ))
}

#[cfg(test)]
mod tests;
