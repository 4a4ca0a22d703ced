//! `Engine::for_folder`: the templates of one folder (CI pipeline templates), with include
//! names relative to it as in Jinja2's `FileSystemLoader`, nothing read outside it, and
//! errors at the template's `file:line`.

use std::path::Path;

use im_render::engine::{Engine, RenderContext};

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

fn render(root: &Path, dir: &str) -> Result<String, String> {
    let context = RenderContext::new(&serde_json::json!({
        "images": [{"name": "base", "tags": ["1"]}, {"name": "app", "tags": ["2.0"]}],
        "platforms": ["amd64", "arm64"],
    }));
    Engine::for_folder(root, dir)
        .render(&root.join(dir).join("pipeline.yml.j2"), &context)
        .map_err(|error| error.to_string())
}

#[test]
fn includes_and_imports_are_named_relative_to_the_folder() {
    let dir = project(&[
        (
            "ci/tpl/pipeline.yml.j2",
            "{% import 'macros/job.j2' as job %}{% for image in images %}{% include 'image.yml.j2' %}{% endfor %}{{ job.line('end') }}\n",
        ),
        ("ci/tpl/image.yml.j2", "{% include 'parts/platforms.j2' %}"),
        (
            "ci/tpl/parts/platforms.j2",
            "{{ image.name }}:{% for p in platforms %} {{ p }}{% endfor %}\n",
        ),
        (
            "ci/tpl/macros/job.j2",
            "{% macro line(text) %}# {{ text }}{% endmacro %}",
        ),
    ]);
    assert_eq!(
        render(dir.path(), "ci/tpl").unwrap(),
        "base: amd64 arm64\napp: amd64 arm64\n# end\n"
    );
}

#[test]
fn a_pipeline_may_extend_a_layout_of_the_folder() {
    let dir = project(&[
        (
            "ci/tpl/pipeline.yml.j2",
            "{% extends 'layouts/base.j2' %}{% block jobs %}{% for i in images %}- {{ i.name }}\n{% endfor %}{% endblock %}",
        ),
        (
            "ci/tpl/layouts/base.j2",
            "version: 1\njobs:\n{% block jobs %}{% endblock %}",
        ),
    ]);
    assert_eq!(
        render(dir.path(), "ci/tpl").unwrap(),
        "version: 1\njobs:\n- base\n- app\n"
    );
}

#[test]
fn nothing_outside_the_folder_is_read() {
    for include in [
        "../secret.txt",
        "/etc/passwd",
        "./image.yml.j2",
        "a/../../secret.txt",
    ] {
        let dir = project(&[
            (
                "ci/tpl/pipeline.yml.j2",
                &format!("x\n{{% include '{include}' %}}\n"),
            ),
            ("ci/secret.txt", "SECRET"),
            ("ci/tpl/image.yml.j2", "fine"),
        ]);
        let error = render(dir.path(), "ci/tpl").unwrap_err();
        assert!(
            error.contains("is outside the template folder ci/tpl/"),
            "{include}: {error}"
        );
        assert!(error.contains("ci/tpl/pipeline.yml.j2:2"), "{error}");
        assert!(!error.contains("SECRET"), "{error}");
    }
    // A link out of the project is refused when it is read.
    let outside = project(&[("secret.txt", "SECRET")]);
    let dir = project(&[("ci/tpl/pipeline.yml.j2", "{% include 'link.j2' %}\n")]);
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("ci/tpl/link.j2"),
    )
    .unwrap();
    let error = render(dir.path(), "ci/tpl").unwrap_err();
    assert!(error.contains("ci/tpl/link.j2"), "{error}");
    assert!(error.contains("outside the project"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");
}

#[test]
fn errors_point_at_the_included_templates_line() {
    let dir = project(&[
        (
            "ci/tpl/pipeline.yml.j2",
            "stages:\n{% include 'jobs.j2' %}\n",
        ),
        ("ci/tpl/jobs.j2", "a:\n  b: {{ images[0].nmae }}\n"),
    ]);
    insta::assert_snapshot!(render(dir.path(), "ci/tpl").unwrap_err(), @r"
    error: `images[0].nmae` is not defined
     --> ci/tpl/jobs.j2:2:9
      |
    2 |   b: {{ images[0].nmae }}
      |         ^^^^^^^^^^^^^^
      = note: included at ci/tpl/pipeline.yml.j2:2
      = help: the context has: images, platforms
    ");
    let dir = project(&[("ci/tpl/pipeline.yml.j2", "x\n{% include 'nope.j2' %}\n")]);
    let error = render(dir.path(), "ci/tpl").unwrap_err();
    assert!(error.contains("ci/tpl/pipeline.yml.j2:2"), "{error}");
    assert!(
        error.contains("include and import names are relative to the template folder ci/tpl/"),
        "{error}"
    );
}
