//! Differential test against Python's Jinja2: every snippet of `tests/jinja2/corpus.yml` is
//! rendered by image-manager's engine and by Jinja2 3.1.6 (the venv python `scripts/setup`
//! installs) with the same context, whose values are typed by image-manager's rule for
//! `variables`. Outputs must be byte-identical, except for the cases marked `difference:`,
//! where both outputs are pinned and the difference is listed in the README's "Deliberate
//! differences" section. A missing python or Jinja2 fails the test: it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use im_render::engine::{Engine, FilterData, RenderContext};
use im_yaml::{Limits, Node};

/// The Jinja2 release the corpus is checked against (pinned in scripts/python-tools.txt).
const JINJA2_VERSION: &str = "3.1.6";
/// The corpus must cover at least this many snippets.
const MIN_CASES: usize = 60;
/// Where each case's template is written, relative to the project root.
const CASE_DIR: &str = "images/t";

struct Case {
    name: String,
    template: String,
    context: serde_json::Value,
    /// A deliberate difference: words of its README entry, and each engine's pinned output (or
    /// the first line of its error).
    difference: Option<Difference>,
    /// Both engines must refuse this template.
    error: bool,
}

struct Difference {
    readme: String,
    image_manager: String,
    jinja2: String,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(node: &Node, key: &str) -> Option<String> {
    node.get(key)
        .map(|n| n.as_scalar().unwrap_or_default().to_owned())
}

/// The corpus: the shared context, extra files (for includes and imports), and the cases.
fn load_corpus() -> (Vec<(String, String)>, Vec<Case>) {
    let path = manifest_dir().join("tests/jinja2/corpus.yml");
    let source = fs_err::read_to_string(&path).unwrap();
    let doc =
        im_yaml::parse(&path, source, &Limits::default()).unwrap_or_else(|error| panic!("{error}"));
    let shared = im_project::template_value::from_yaml(doc.root.get("context").unwrap());
    let files = doc
        .root
        .get("files")
        .and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| {
            (
                k.as_scalar().unwrap().to_owned(),
                v.as_scalar().unwrap().to_owned(),
            )
        })
        .collect();
    let im_yaml::Value::Seq(items) = &doc.root.get("cases").unwrap().value else {
        panic!("`cases` is a list");
    };
    let cases = items
        .iter()
        .map(|item| {
            let mut context = shared.clone();
            if let Some(extra) = item.get("context") {
                let serde_json::Value::Object(extra) = im_project::template_value::from_yaml(extra)
                else {
                    panic!("a case's context is a mapping");
                };
                context.as_object_mut().unwrap().extend(extra);
            }
            let name = text(item, "name").expect("every case has a name");
            let difference = text(item, "difference").map(|readme| Difference {
                readme,
                image_manager: text(item, "image_manager")
                    .unwrap_or_else(|| panic!("{name}: a difference pins `image_manager`")),
                jinja2: text(item, "jinja2")
                    .unwrap_or_else(|| panic!("{name}: a difference pins `jinja2`")),
            });
            Case {
                template: text(item, "template").expect("every case has a template"),
                error: text(item, "error").as_deref() == Some("true"),
                name,
                context,
                difference,
            }
        })
        .collect();
    (files, cases)
}

/// The case's template file name (inside [`CASE_DIR`]).
fn file_name(index: usize) -> String {
    format!("case-{index:03}.jinja2")
}

/// What Jinja2 made of each case: `Ok(text)` or `Err(message)`.
fn render_with_jinja2(root: &Path, cases: &[Case]) -> Vec<Result<String, String>> {
    let job = serde_json::json!({
        "root": root,
        "cases": cases.iter().enumerate().map(|(index, case)| serde_json::json!({
            "name": case.name,
            "dir": CASE_DIR,
            "template": file_name(index),
            "context": case.context,
        })).collect::<Vec<_>>(),
    });
    let python = im_testkit::jinja2_python();
    let stdout = im_testkit::run_with_stdin(
        Command::new(&python).arg(manifest_dir().join("tests/jinja2/render.py")),
        job.to_string().as_bytes(),
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        answer["version"],
        JINJA2_VERSION,
        "{} has another Jinja2 than scripts/python-tools.txt pins",
        python.display()
    );
    cases
        .iter()
        .map(|case| {
            let result = &answer["results"][&case.name];
            match (result["ok"].as_str(), result["error"].as_str()) {
                (Some(text), _) => Ok(text.to_owned()),
                (None, Some(error)) => Err(error.to_owned()),
                _ => panic!("{}: no result from Jinja2: {result}", case.name),
            }
        })
        .collect()
}

/// An output, or the first line of an error (what a difference pins).
fn shown(result: &Result<String, String>) -> String {
    match result {
        Ok(text) => text.clone(),
        Err(error) => error.lines().next().unwrap_or_default().to_owned(),
    }
}

#[test]
fn templates_render_as_python_jinja2_renders_them() {
    let (files, cases) = load_corpus();
    assert!(
        cases.len() >= MIN_CASES,
        "the corpus has {} cases, fewer than {MIN_CASES}",
        cases.len()
    );
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");

    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    for (path, content) in &files {
        let path = root.join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, content).unwrap();
    }
    fs_err::create_dir_all(root.join(CASE_DIR)).unwrap();
    for (index, case) in cases.iter().enumerate() {
        fs_err::write(root.join(CASE_DIR).join(file_name(index)), &case.template).unwrap();
    }

    let engine = Engine::new(root, FilterData::default());
    let ours: Vec<Result<String, String>> = cases
        .iter()
        .enumerate()
        .map(|(index, case)| {
            let path = root.join(CASE_DIR).join(file_name(index));
            engine
                .render(&path, &RenderContext::new(&case.context))
                .map_err(|d| d.to_string())
        })
        .collect();
    let theirs = render_with_jinja2(root, &cases);

    let readme = fs_err::read_to_string(manifest_dir().join("../../README.md")).unwrap();
    let mut failures = Vec::new();
    let (mut identical, mut refused, mut different) = (0, 0, 0);
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        let problem = match (&case.difference, case.error) {
            (_, true) => match (ours, theirs) {
                (Err(_), Err(_)) => {
                    refused += 1;
                    None
                }
                _ => Some("both engines should refuse this template".to_owned()),
            },
            (None, false) => match (ours, theirs) {
                (Ok(a), Ok(b)) if a == b => {
                    identical += 1;
                    None
                }
                _ => Some("outputs differ".to_owned()),
            },
            (Some(difference), false) => {
                different += 1;
                let pinned = (difference.image_manager.clone(), difference.jinja2.clone());
                if !readme.contains(&difference.readme) {
                    Some(format!(
                        "the README's \"Deliberate differences\" does not mention `{}`",
                        difference.readme
                    ))
                } else if (shown(ours), shown(theirs)) == pinned {
                    None
                } else {
                    Some("the outputs are not the pinned deliberate difference".to_owned())
                }
            }
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{}: {problem}\n  template:      {:?}\n  image-manager: {ours:?}\n  jinja2:        {theirs:?}",
                case.name, case.template
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{} cases: {identical} identical, {refused} refused by both, {different} documented differences",
        cases.len()
    );
}
