//! The template engine: minijinja confined to the project, with limits and helpful errors.
//!
//! Templates are named by their path relative to the project root. The loader only reads
//! files under `images/` and `templates/`; `{% include %}` names resolve next to the including
//! template, then in the image's sibling `templates/` folder, then in the project's
//! `templates/` folder, and may not contain `..` or start with `/`. Templates see only the
//! context they are given: no environment, no files, no commands. Undefined values are errors
//! (strict mode), each rendering has an instruction budget (fuel) and an output cap. The
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
    over: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + data.len() > MAX_OUTPUT {
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

    /// A context built as minijinja values (parts shared between tags are cheap to clone).
    pub fn from_value(value: Value) -> Self {
        Self { value }
    }

    pub(crate) fn value(&self) -> &Value {
        &self.value
    }
}

/// A configured environment for one project.
pub struct Engine {
    pub(crate) env: Environment<'static>,
    root: PathBuf,
    confined: Arc<im_input::Confined>,
}

fn is_confined(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && (name.starts_with("images/") || name.starts_with("templates/"))
}

fn parent_dir(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(dir, _)| dir)
}

impl Engine {
    pub fn new(root: &Path, data: FilterData) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        // Dockerfiles and YAML are not HTML or JSON: values go in exactly as they are (the
        // default would JSON-quote every value in a `.yml` template).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("the default delimiters are valid"),
        );
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
        env.set_unknown_method_callback(crate::pycompat::call_method);
        crate::filters::register(&mut env);
        env.add_function("cycler", |items: minijinja::value::Rest<Value>| {
            minijinja_contrib::globals::cycler(items.0)
        });
        env.add_function("joiner", minijinja_contrib::globals::joiner);
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
        let mut output = CappedOutput::default();
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
                    "this template's output passed the {MAX_OUTPUT} bytes allowed here"
                ))
                .at(location)
                .with_help("check loops and string repetition in the template"))
            }
            Err(error) => Err(self.diagnostic(&name, &error, &context.value)),
        }
    }

    /// Turns a minijinja error into a diagnostic at the template's `file:line`.
    pub(crate) fn diagnostic(&self, name: &str, error: &Error, context: &Value) -> Diagnostic {
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
                format!("this template used up its budget of {FUEL} steps (the values it builds and prints count too) and was stopped"),
                Some("look for a loop that never ends, recursion without a base case, or a value that doubles in a loop".to_owned()),
            ),
            ErrorKind::TemplateNotFound => (
                detail.clone().unwrap_or_else(|| "an included template does not exist".into()),
                Some("included templates are looked up next to the template, in the image's sibling templates/ folder, then in the project's templates/ folder".into()),
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
mod tests {
    use super::*;

    fn engine(files: &[(&str, &str)]) -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            fs_err::create_dir_all(path.parent().unwrap()).unwrap();
            fs_err::write(path, text).unwrap();
        }
        let mut data = FilterData::default();
        data.images.insert(
            "base".into(),
            ImageEntry {
                base_tags: vec!["1".into(), "2".into()],
                tags: vec!["1".into(), "2".into()],
                aliases: [("latest".to_owned(), "2".to_owned())].into(),
            },
        );
        data.images.insert(
            "single".into(),
            ImageEntry {
                base_tags: vec!["9".into()],
                tags: vec!["9".into()],
                aliases: BTreeMap::new(),
            },
        );
        let engine = Engine::new(dir.path(), data);
        (dir, engine)
    }

    fn context() -> serde_json::Value {
        serde_json::json!({"tag": {"name": "1.0", "versions": {"python": "3.13", "pip": "25"}}, "variant": null})
    }

    fn render(files: &[(&str, &str)], name: &str) -> Result<String, Diagnostic> {
        let (dir, engine) = engine(files);
        engine.render(&dir.path().join(name), &RenderContext::new(&context()))
    }

    #[test]
    fn undefined_values_name_the_template_line_and_what_exists() {
        let error = render(
            &[(
                "images/a/Dockerfile.jinja2",
                "FROM x\nENV V={{ tag.versions.nodejs }}\n",
            )],
            "images/a/Dockerfile.jinja2",
        )
        .unwrap_err();
        insta::assert_snapshot!(error.to_string(), @r"
        error: `tag.versions.nodejs` is not defined
         --> images/a/Dockerfile.jinja2:2:10
          |
        2 | ENV V={{ tag.versions.nodejs }}
          |          ^^^^^^^^^^^^^^^^^^^
          = help: `tag.versions` has: python, pip
        ");
    }

    #[test]
    fn output_past_the_cap_names_the_line_that_was_writing() {
        let started = std::time::Instant::now();
        let error = render(
            &[(
                "images/a/Dockerfile.jinja2",
                "FROM x\n{% for i in range(100000) %}\nRUN echo {{ \"x\" * 100 }}\n{% endfor %}\n",
            )],
            "images/a/Dockerfile.jinja2",
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("passed the 4194304 bytes allowed here"),
            "{text}"
        );
        assert!(
            text.contains("--> images/a/Dockerfile.jinja2:3:1"),
            "the line inside the loop: {text}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn filters_resolve_managed_images_and_versions() {
        let files = [(
            "images/a/Dockerfile.jinja2",
            "FROM {{ \"single\" | resolve_base_image }}\nFROM {{ \"base\" | resolve_base_image(\"latest\") }}\nENV P={{ \"python\" | resolve_version }}",
        )];
        let text = render(&files, "images/a/Dockerfile.jinja2").unwrap();
        assert_eq!(
            text, "FROM single:9\nFROM base:2\nENV P=3.13\n",
            "a final newline is added"
        );
    }

    #[test]
    fn filter_errors_say_what_to_write() {
        let ambiguous = render(
            &[("images/a/t.jinja2", "{{ \"base\" | resolve_base_image }}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(
            ambiguous
                .message
                .contains("image `base` has several tags (1, 2)"),
            "{ambiguous}"
        );
        let unknown = render(
            &[("images/a/t.jinja2", "{{ \"nope\" | resolve_base_image }}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(
            unknown
                .message
                .contains("`nope` is not a managed image (managed: base, single)"),
            "{unknown}"
        );
        let version = render(
            &[("images/a/t.jinja2", "{{ \"node\" | resolve_version }}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(
            version
                .message
                .contains("no version `node` for this tag (versions: python, pip)"),
            "{version}"
        );
        assert_eq!(version.location.unwrap().line, 1);
    }

    #[test]
    fn includes_resolve_in_order_and_stay_confined() {
        let files = [
            (
                "images/a/Dockerfile.jinja2",
                "{% include \"part.j2\" %}|{% include \"shared.j2\" %}",
            ),
            ("images/a/part.j2", "local"),
            ("images/templates/shared.j2", "sibling"),
            ("templates/shared.j2", "project"),
        ];
        assert_eq!(
            render(&files, "images/a/Dockerfile.jinja2").unwrap(),
            "local|sibling\n"
        );
        let project_only = [files[0], files[1], files[3]];
        assert_eq!(
            render(&project_only, "images/a/Dockerfile.jinja2").unwrap(),
            "local|project\n"
        );
        let escape = render(
            &[("images/a/t.jinja2", "{% include \"../../../etc/passwd\" %}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(
            escape.message.contains("outside the image's folders"),
            "{escape}"
        );
        let absolute = render(
            &[("images/a/t.jinja2", "{% include \"/etc/passwd\" %}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(
            absolute.message.contains("outside the image's folders"),
            "{absolute}"
        );
    }

    #[test]
    fn runaway_loops_and_outputs_are_stopped() {
        let looping = render(
            &[("images/a/t.jinja2", "{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(looping.message.contains("used up its budget"), "{looping}");
        let big = render(
            &[("images/a/t.jinja2", "{{ \"x\" * 5000000 }}")],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        assert!(big.message.contains("bytes allowed here"), "{big}");
        assert_eq!(big.location.as_ref().map(|l| l.line), Some(1), "{big}");
    }

    #[test]
    fn yaml_templates_are_not_escaped() {
        let text = render(
            &[(
                "images/a/test.yml.jinja2",
                "value: {{ tag.name }}\nquote: \"{{ '<a&b>' }}\"",
            )],
            "images/a/test.yml.jinja2",
        )
        .unwrap();
        assert_eq!(text, "value: 1.0\nquote: \"<a&b>\"\n");
    }

    /// Renders `template` and expects it to be stopped by the budget (or, for what it prints,
    /// by the output cap, whichever comes first), quickly, at `line`.
    fn assert_stopped_by_the_budget(template: &str, line: usize) {
        let started = std::time::Instant::now();
        let error = render(&[("images/a/t.jinja2", template)], "images/a/t.jinja2").unwrap_err();
        let took = started.elapsed();
        assert!(
            error.message.contains("used up its budget")
                || error.message.contains("bytes allowed here"),
            "{error}"
        );
        assert_eq!(
            error.location.as_ref().map(|l| l.line),
            Some(line),
            "{error}"
        );
        assert!(
            took < std::time::Duration::from_secs(10),
            "took {took:?}: {template}"
        );
    }

    #[test]
    fn list_doubling_in_a_namespace_is_stopped_at_its_line() {
        // The reproduction of issue 13 (it grew past 1.9 GB and kept going).
        assert_stopped_by_the_budget(
            "FROM x\n{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            2,
        );
        let error = render(
            &[(
                "images/a/t.jinja2",
                "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
            )],
            "images/a/t.jinja2",
        )
        .unwrap_err();
        insta::assert_snapshot!(error.to_string(), @r"
        error: this template used up its budget of 2000000 steps (the values it builds and prints count too) and was stopped
         --> images/a/t.jinja2:1:70
          |
        1 | {% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}
          |                                                                      ^^^^^^^^^^^
          = help: look for a loop that never ends, recursion without a base case, or a value that doubles in a loop
        ");
    }

    #[test]
    fn values_that_double_without_a_loop_are_stopped() {
        let doubled = "{% set x = [1] %}".to_owned() + &"{% set x = x + x %}".repeat(40);
        assert_stopped_by_the_budget(&doubled, 1);
        let nested = "{% set x = [1] %}".to_owned() + &"{% set x = [x, x] %}".repeat(40);
        for print in [
            "{{ x }}",
            "{{ x ~ '' }}",
            "{{ x | string }}",
            "{{ '{}'.format(x) }}",
        ] {
            assert_stopped_by_the_budget(&format!("{nested}\n{print}"), 2);
        }
        assert_stopped_by_the_budget(
            "{% macro f(x, n) %}{% if n %}{{ f(x + x, n - 1) }}{% else %}{{ x | length }}{% endif %}{% endmacro %}{{ f([1], 40) }}",
            1,
        );
        assert_stopped_by_the_budget(
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            1,
        );
    }
}
