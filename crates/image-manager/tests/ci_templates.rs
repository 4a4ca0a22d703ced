//! `generate-ci --template DIR`: a project's own pipeline template, rendered by the real
//! binary with the proof of concept's context names and the job graph, written (or checked,
//! or printed) like the built-in pipelines; errors name the template's `file:line` and
//! write nothing. The CircleCI example in `examples/ci-templates/` gives a config CircleCI's
//! schema accepts.

mod common;

use std::path::Path;

use common::{Project, Run};

/// base (two tags) → app (two tags, a `-dev` variant, a test config).
fn images() -> Project {
    Project::new()
        .file(
            "images/base/image.yml",
            "is_base_image: true\ntags: [2025.10, 2025.11]\nversion_scheme: calver\n",
        )
        .file("images/base/Dockerfile.jinja2", "FROM scratch\n")
        .file(
            "images/app/image.yml",
            "tags: [1.2.3, 1.3.0]\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        )
        .file(
            "images/app/Dockerfile.jinja2",
            "FROM {{ \"base\" | resolve_base_image(\"2025.11\") }}\n",
        )
        .file(
            "images/app/dev/Dockerfile.jinja2",
            "FROM {{ base_image }}\n",
        )
        .file("images/app/test.yml.jinja2", "schemaVersion: 2.0.0\n")
}

const SETTINGS: &str = "\
registries:
  - {name: ci, url: reg.example/acme, username: bot, password: '${REGISTRY_PASSWORD}', default: true}
cache: {type: s3, endpoint: 'https://s3.example', bucket: layers, access_key: '${S3_KEY}', secret_key: '${S3_SECRET}'}
labels: {vendor: ACME}
ci:
  template: ci/templates
  output: ci/pipeline.yml
  image: tools.example/image-manager:1
  runners: {linux/arm64: [arm64]}
";

const SECRETS: [(&str, &str); 3] = [
    ("REGISTRY_PASSWORD", "hunter2-registry"),
    ("S3_KEY", "AKIA-s3-key"),
    ("S3_SECRET", "s3-secret-value"),
];

/// A template folder that includes and imports, printing what the proof of concept's
/// templates use and the job graph.
fn templated() -> Project {
    images()
        .file(".image-manager.yml", SETTINGS)
        .file(
            "ci/templates/pipeline.yml.j2",
            "{% import 'lib/macros.j2' as m %}\
# at {{ generated_at }} for {{ provider }}
image: {{ ci_image | default('none') }}
artifacts: {{ artifacts }}
stages: {{ stages | join(', ') }}
platforms: {{ platforms | join(', ') }}
config: {{ config | tojson }}
{% for image in images %}{% include 'image.j2' %}{% endfor %}
{%- for job in jobs if job.kind == 'build' %}
{{ m.job(job) }}
{%- endfor %}
edges: {{ edges | length }}, nodes: {{ nodes | map(attribute='id') | join(' ') }}
",
        )
        .file(
            "ci/templates/image.j2",
            "image {{ image.name }} depth {{ image.depth }} tags {{ image.tags | join(' ') }} on [{{ image.dependencies | join(' ') }}]\n",
        )
        .file(
            "ci/templates/lib/macros.j2",
            "{% macro job(job) %}{{ job.id }} <- [{{ job.needs | join(' ') }}] on [{{ job.runners | join(' ') }}]{% endmacro %}",
        )
}

#[test]
fn a_template_folder_renders_the_proof_of_concepts_context_and_the_job_graph() {
    let project = templated();
    let run = run_ci(&project, &["generate-ci"], &SECRETS);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("Generated ci/pipeline.yml"),
        "{}",
        run.stderr
    );
    let text = project.read("ci/pipeline.yml");
    for secret in SECRETS.map(|(_, value)| value) {
        assert!(!text.contains(secret), "a secret reached the file:\n{text}");
    }
    insta::assert_snapshot!(text);

    // SOURCE_DATE_EPOCH gives the time; --provider is a value like any other.
    let printed = project.run_with(
        &["generate-ci", "--provider", "github", "--output", "-"],
        &[SECRETS.as_slice(), &[("SOURCE_DATE_EPOCH", "1700000000")]].concat(),
    );
    assert_eq!(printed.status, 0, "{}", printed.stderr);
    assert!(
        printed
            .stdout
            .contains("# at 2023-11-14T22:13:20+00:00 for github\n"),
        "{}",
        printed.stdout
    );
}

#[test]
fn check_says_when_the_templated_file_is_stale() {
    let project = templated();
    assert_eq!(run_ci(&project, &["generate-ci"], &SECRETS).status, 0);
    let check = run_ci(&project, &["generate-ci", "--check"], &SECRETS);
    assert_eq!(check.status, 0, "{}", check.stderr);
    assert!(
        check.stderr.contains("Up to date ci/pipeline.yml"),
        "{}",
        check.stderr
    );

    let project = project.file(
        "ci/templates/image.j2",
        "image {{ image.name }} (changed)\n",
    );
    let stale = run_ci(&project, &["generate-ci", "--check"], &SECRETS);
    assert_eq!(stale.status, 1, "{}", stale.stderr);
    assert!(
        stale.stderr.contains(
            "ci/pipeline.yml is stale: run `image-manager generate-ci --template ci/templates --output ci/pipeline.yml` and commit it"
        ),
        "{}",
        stale.stderr
    );
    assert!(
        !project.read("ci/pipeline.yml").contains("(changed)"),
        "--check writes nothing"
    );
}

#[test]
fn a_template_error_names_the_included_files_line_and_writes_nothing() {
    let project = templated().file(
        "ci/templates/image.j2",
        "image {{ image.name }}\n  tags: {{ image.tagz }}\n",
    );
    let run = run_ci(&project, &["generate-ci"], &SECRETS);
    assert_eq!(run.status, 2, "{}", run.stderr);
    insta::assert_snapshot!(run.stderr, @r"
    error: `image.tagz` is not defined
     --> ci/templates/image.j2:2:12
      |
    2 |   tags: {{ image.tagz }}
      |            ^^^^^^^^^^
      = note: included at ci/templates/pipeline.yml.j2:7
      = help: the context has: images, platforms, stages, generated_at, artifacts, ci_image, config, provider, nodes, jobs, edges, runners, install

    error: 1 problem found; nothing was changed
    ");
    assert!(!project.path("ci/pipeline.yml").exists());

    let project = project.file(
        "ci/templates/image.j2",
        "{{ '../x' }}{% include '../secret' %}\n",
    );
    let run = run_ci(&project, &["generate-ci"], &SECRETS);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`../secret` is outside the template folder ci/templates/"),
        "{}",
        run.stderr
    );
}

/// Runs with `env` and without a `SOURCE_DATE_EPOCH` (blank is unset).
fn run_ci(project: &Project, args: &[&str], env: &[(&str, &str)]) -> Run {
    project.run_with(args, &[env, &[("SOURCE_DATE_EPOCH", "")]].concat())
}

/// `args` fail with a usage error (2) that says `message`.
fn refused(project: &Project, args: &[&str], message: &str) {
    let run = run_ci(project, args, &[]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
}

#[test]
fn a_missing_folder_entry_or_output_is_a_clear_error() {
    let project = images()
        .file("ci/empty/README.md", "no entry here\n")
        .file("ci/tpl/pipeline.yml.j2", "x: 1\n");
    let template = |dir: &'static str| ["generate-ci", "--template", dir, "--output", "x.yml"];
    refused(
        &project,
        &template("ci/nope"),
        "the template folder `ci/nope` (--template) does not exist",
    );
    refused(
        &project,
        &template("ci/empty"),
        "the template folder `ci/empty` has no `pipeline.yml.j2`",
    );
    refused(
        &project,
        &template("../outside"),
        "is not inside the project",
    );
    refused(
        &project,
        &["generate-ci", "--template", "ci/tpl"],
        "a pipeline template needs to be told where its file goes",
    );
    assert!(!project.path("x.yml").exists(), "nothing was written");
    let project = project.file(
        ".image-manager.yml",
        "ci: {template: ci/gone, output: x.yml}\n",
    );
    refused(
        &project,
        &["generate-ci"],
        "the template folder `ci/gone` (`ci.template` in .image-manager.yml) does not exist",
    );
}

/// A template folder in the proof of concept's shape (its GitLab templates' constructs:
/// `stages`, `ci_image | default`, `artifacts`, per-image includes that see the loop's
/// `image`, `platforms` as architectures, `image.dependencies`).
fn proof_of_concept_style() -> Project {
    images()
        .file(
            ".image-manager.yml",
            "ci: {template: ci/gitlab, output: ci/images.yml}\n",
        )
        .file(
            "ci/gitlab/pipeline.yml.j2",
            "# Generated: {{ generated_at }}

stages:
  - generate
{%- for stage in stages %}
  - {{ stage }}
{%- endfor %}

variables:
  SNAPSHOT_ID: ${CI_MERGE_REQUEST_IID}

.build:
  image: {{ ci_image | default('registry.example.com/ci/image-manager:latest') }}
  script:
    - image-manager build ${IMAGE_NAME} --platform ${PLATFORM} --snapshot-id \"$SNAPSHOT_ID\"
{%- if artifacts %}
  artifacts:
    paths:
      - dist/${IMAGE_NAME}/*/linux-${PLATFORM}/
{%- endif %}

generate:
  stage: generate
  script:
    - image-manager generate
{% for image in images %}

# === {{ image.name | upper }} (depth {{ image.depth }}) ===
{% include 'build-job.yml.j2' -%}
{% include 'test-job.yml.j2' -%}
{% endfor %}
",
        )
        .file(
            "ci/gitlab/build-job.yml.j2",
            "{% for platform in platforms %}
build-{{ image.name }}-{{ platform }}:
  extends: .build
  stage: build-{{ image.name }}
  variables:
    IMAGE_NAME: {{ image.name }}
    PLATFORM: {{ platform }}
  needs:
    - generate
{%- for dep in image.dependencies %}
    - build-{{ dep }}-{{ platform }}
{%- endfor %}
{% endfor %}
",
        )
        .file(
            "ci/gitlab/test-job.yml.j2",
            "test-{{ image.name }}:
  stage: test
  needs:
{%- for platform in platforms %}
    - build-{{ image.name }}-{{ platform }}
{%- endfor %}
  script:
{%- for tag in image.tags %}
    - image-manager test {{ image.name }}:{{ tag }} --pull
{%- endfor %}
",
        )
}

#[test]
fn a_proof_of_concept_style_template_renders_as_python_jinja2_renders_it() {
    let project = proof_of_concept_style();
    let context = run_ci(&project, &["generate-ci", "--format", "json"], &[]);
    assert_eq!(context.status, 0, "{}", context.stderr);
    let values = common::json(&context.stdout);
    assert!(
        values["jobs"]
            .as_array()
            .is_some_and(|jobs| !jobs.is_empty())
    );
    assert_eq!(
        values["images"][1]["dependencies"],
        serde_json::json!(["base"])
    );
    fs_err::write(project.path("context.json"), &context.stdout).unwrap();

    let run = run_ci(&project, &["generate-ci"], &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let ours = project.read("ci/images.yml");
    let jinja2 = std::process::Command::new(im_testkit::jinja2_python())
        .arg("-c")
        .arg(
            "import json, sys, jinja2\n\
             env = jinja2.Environment(loader=jinja2.FileSystemLoader(sys.argv[1]), keep_trailing_newline=True)\n\
             context = json.load(open(sys.argv[2]))\n\
             sys.stdout.write(env.get_template('pipeline.yml.j2').render(**context))",
        )
        .arg(project.path("ci/gitlab"))
        .arg(project.path("context.json"))
        .output()
        .unwrap();
    assert!(
        jinja2.status.success(),
        "{}",
        String::from_utf8_lossy(&jinja2.stderr)
    );
    let body = ours.splitn(4, '\n').nth(3).unwrap();
    assert!(
        ours.starts_with(
            "# Generated by `image-manager generate-ci --template ci/gitlab --output ci/images.yml`"
        ),
        "{ours}"
    );
    assert_eq!(
        body,
        String::from_utf8_lossy(&jinja2.stdout),
        "image-manager and Jinja2 differ"
    );

    assert_schema_accepts("vendor.gitlab-ci", &project.path("ci/images.yml"));
}

/// check-jsonschema's built-in copy of a CI system's schema accepts `file`.
fn assert_schema_accepts(schema: &str, file: &Path) {
    let output = std::process::Command::new(im_testkit::check_jsonschema_bin())
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{schema} refuses {}:\n{}{}\n{}",
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        fs_err::read_to_string(file).unwrap()
    );
}

#[test]
fn artifacts_reach_templates_and_built_in_pipelines_say_they_ignore_it() {
    let project = proof_of_concept_style();
    let run = run_ci(
        &project,
        &["generate-ci", "--artifacts", "--output", "-"],
        &[],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("      - dist/${IMAGE_NAME}/*/linux-${PLATFORM}/\n"),
        "{}",
        run.stdout
    );
    let run = run_ci(
        &project,
        &[
            "generate-ci",
            "--provider",
            "gitlab",
            "--template",
            "",
            "--artifacts",
            "--output",
            "-",
        ],
        &[],
    );
    assert_eq!(
        run.status, 2,
        "an empty --template is no folder: {}",
        run.stderr
    );
    let project = project.file(
        ".image-manager.yml",
        "ci: {provider: gitlab, artifacts: true}\n",
    );
    let run = run_ci(&project, &["generate-ci", "--output", "-"], &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`artifacts` is only passed to custom pipeline templates"),
        "{}",
        run.stderr
    );
}

/// Every job a workflow lists exists, and so does every job it `requires`.
fn assert_requires_name_jobs(text: &str) -> usize {
    let document = im_yaml::parse(
        Path::new("config.yml"),
        text.to_owned(),
        &im_yaml::Limits::default(),
    )
    .unwrap();
    let jobs: Vec<&str> = document
        .root
        .get("jobs")
        .and_then(im_yaml::Node::as_map)
        .unwrap()
        .iter()
        .map(|(key, _)| key.as_scalar().unwrap())
        .collect();
    let im_yaml::Value::Seq(listed) = &document
        .root
        .get("workflows")
        .and_then(|w| w.get("images"))
        .and_then(|w| w.get("jobs"))
        .unwrap()
        .value
    else {
        panic!("workflows.images.jobs is a list");
    };
    let mut requires = 0;
    for entry in listed {
        let (name, config) = match entry.as_map() {
            Some([(name, config)]) => (name.as_scalar().unwrap(), Some(config)),
            _ => (entry.as_scalar().unwrap(), None),
        };
        assert!(jobs.contains(&name), "{name} is no job");
        if let Some(im_yaml::Value::Seq(needs)) =
            config.and_then(|c| c.get("requires")).map(|r| &r.value)
        {
            for need in needs {
                let need = need.as_scalar().unwrap();
                assert!(jobs.contains(&need), "{name} requires {need}, no job");
                requires += 1;
            }
        }
    }
    assert_eq!(listed.len(), jobs.len(), "every job runs in the workflow");
    requires
}

#[test]
fn the_circleci_example_gives_a_valid_circleci_config_for_examples() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().unwrap();
    // Writes nothing into examples/ (no --dist: job scripts name the project's own dist/).
    let output = common::command(&examples)
        .args([
            "generate-ci",
            "--template",
            "ci-templates/circleci",
            "--output",
            "-",
        ])
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("REGISTRY")
        .output()
        .unwrap();
    let run = Run::of(&output);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(assert_requires_name_jobs(&run.stdout) > 0);
    let file = dir.path().join("config.yml");
    fs_err::write(&file, &run.stdout).unwrap();
    assert_schema_accepts("vendor.circle-ci", &file);
    insta::assert_snapshot!(run.stdout);
}
