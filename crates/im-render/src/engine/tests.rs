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
        &[(
            "images/a/t.jinja2",
            "{% for a in range(10000) %}{% for b in range(10000) %}{{ b }}{% endfor %}{% endfor %}",
        )],
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
