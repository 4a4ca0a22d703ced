//! `generate-ci` pruned to what changed: `--affected-since REF` on a real git repository.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{git, json, run_cli, succeeded, write};

/// base → app (two tags, with a test config) → app's dev variant; tool on an external base.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join(".image-manager.yml"),
        "platforms: [linux/amd64, linux/arm64]\nci: {provider: gitlab}\n",
    );
    write(&root.join("images/base/image.yml"), "tags: ['1']\n");
    write(
        &root.join("images/base/Dockerfile.jinja2"),
        "FROM scratch\n{% include 'base.part' %}\n",
    );
    write(&root.join("templates/base.part"), "COPY rootfs/ /\n");
    write(&root.join("images/base/rootfs/etc/base.conf"), "base\n");
    write(
        &root.join("images/app/image.yml"),
        "tags: ['1.0.0', '2.0.0']\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
    );
    write(
        &root.join("images/app/Dockerfile.jinja2"),
        "FROM {{ \"base\" | resolve_base_image }}\nRUN echo {{ tag.name }} > /v\n",
    );
    write(
        &root.join("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN touch /dev-tools\n",
    );
    write(
        &root.join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: v, path: /v, shouldExist: true}\n",
    );
    write(
        &root.join("images/tool/image.yml"),
        "tags: ['0.1']\nplatforms: [linux/amd64]\n",
    );
    write(
        &root.join("images/tool/Dockerfile"),
        "FROM debian:bookworm-slim\nRUN true\n",
    );
    write(&root.join(".gitignore"), "dist/\n");
    git(root, &["init", "-q", "-b", "main"]);
    commit(root, "images");
    dir
}

fn commit(root: &Path, message: &str) {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", message]);
}

/// The pruned job graph: image tag → why it is in.
fn affected(root: &Path, reference: &str) -> (BTreeMap<String, Vec<String>>, serde_json::Value) {
    let args = [
        "generate-ci",
        "--affected-since",
        reference,
        "--format",
        "json",
    ];
    let run = succeeded(run_cli(root, &args, &BTreeMap::new()), &args);
    let graph = json(&run.stdout);
    let nodes = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap().to_owned(),
                n["why"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| w.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    (nodes, graph)
}

fn names(nodes: &BTreeMap<String, Vec<String>>) -> Vec<&str> {
    nodes.keys().map(String::as_str).collect()
}

#[test]
fn only_what_changed_since_a_revision_and_everything_built_on_it_gets_jobs() {
    let repo = repository();
    let root = repo.path();

    // Nothing changed: one job saying so (a CI file needs a job).
    let (nodes, graph) = affected(root, "HEAD");
    assert!(nodes.is_empty(), "{nodes:?}");
    assert_eq!(graph["jobs"][0]["kind"], "nothing", "{graph}");

    // A leaf's template: only that leaf, and its jobs need nothing outside the pipeline.
    write(
        &root.join("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN touch /dev-tools /more\n",
    );
    let (nodes, graph) = affected(root, "HEAD");
    assert_eq!(names(&nodes), ["app:1.0.0-dev", "app:2.0.0-dev"]);
    assert_eq!(nodes["app:2.0.0-dev"], ["Dockerfile changed"]);
    let build = graph["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == "build-app-2-0-0-dev-linux-arm64")
        .unwrap_or_else(|| panic!("{graph}"));
    assert_eq!(
        build["needs"],
        serde_json::json!([]),
        "its parent is not rebuilt"
    );
    commit(root, "dev tools");

    // The base's rootfs, through an untracked file: the base and every descendant, not the
    // image on an external base.
    write(&root.join("images/base/rootfs/etc/new.conf"), "new\n");
    let (nodes, _) = affected(root, "HEAD");
    assert_eq!(
        names(&nodes),
        [
            "app:1.0.0",
            "app:1.0.0-dev",
            "app:2.0.0",
            "app:2.0.0-dev",
            "base:1"
        ]
    );
    assert_eq!(nodes["base:1"], ["context file rootfs/etc/new.conf added"]);
    assert_eq!(nodes["app:1.0.0"], ["parent base:1 changed"]);
    // Against the first commit, both changes count.
    let (nodes, _) = affected(root, "HEAD~1");
    assert_eq!(
        nodes["app:1.0.0-dev"],
        ["Dockerfile changed", "parent app:1.0.0 changed"]
    );
    commit(root, "new conf");

    // A shared include that renders to the same bytes changes nothing; one that does not
    // reaches every image using it.
    write(
        &root.join("templates/base.part"),
        "{# a comment #}COPY rootfs/ /\n",
    );
    assert!(affected(root, "HEAD").0.is_empty());
    write(
        &root.join("templates/base.part"),
        "COPY rootfs/ /\nENV A=1\n",
    );
    assert!(affected(root, "HEAD").0.contains_key("base:1"));
    git(root, &["checkout", "-q", "--", "templates"]);

    // A test config or an alias: no key changes, but the tests or the promote must run.
    write(
        &root.join("images/app/test.yml.jinja2"),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - {name: v, path: /v, shouldExist: false}\n",
    );
    let (nodes, _) = affected(root, "HEAD");
    assert_eq!(nodes["app:1.0.0"], ["test config changed"]);
    assert!(!nodes.contains_key("base:1"));
    git(root, &["checkout", "-q", "--", "images"]);
    write(
        &root.join("images/app/image.yml"),
        "tags: ['1.0.0', '2.0.0']\nlatest: true\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
    );
    let (nodes, _) = affected(root, "HEAD");
    assert_eq!(nodes["app:2.0.0"], ["aliases changed"]);
    git(root, &["checkout", "-q", "--", "images"]);

    // A new image tag is new; targets still select.
    write(
        &root.join("images/tool/image.yml"),
        "tags: ['0.1', '0.2']\nplatforms: [linux/amd64]\n",
    );
    let (nodes, _) = affected(root, "HEAD");
    assert_eq!(names(&nodes), ["tool:0.2"]);
    assert_eq!(nodes["tool:0.2"], ["new since HEAD"]);
    let args = [
        "generate-ci",
        "--affected-since",
        "HEAD",
        "--format",
        "json",
        "app",
    ];
    let graph = json(&succeeded(run_cli(root, &args, &BTreeMap::new()), &args).stdout);
    assert_eq!(
        graph["nodes"],
        serde_json::json!([]),
        "tool is not app's parent"
    );

    // The user's index and working tree are untouched.
    assert_eq!(
        git(root, &["status", "--porcelain"]),
        " M images/tool/image.yml\n"
    );
}

#[test]
fn a_project_in_a_subfolder_of_the_repository_compares_its_own_files() {
    let repo = repository();
    let outer = tempfile::tempdir().unwrap();
    let root = outer.path().join("containers/images-project");
    fs_err::create_dir_all(root.parent().unwrap()).unwrap();
    fs_err::rename(repo.path(), &root).unwrap();
    fs_err::remove_dir_all(root.join(".git")).unwrap();
    write(&outer.path().join("README"), "monorepo\n");
    git(outer.path(), &["init", "-q", "-b", "main"]);
    commit(outer.path(), "all");
    write(&outer.path().join("README"), "changed\n");
    assert!(affected(&root, "HEAD").0.is_empty());
    write(&root.join("images/base/rootfs/etc/base.conf"), "base 2\n");
    let (nodes, _) = affected(&root, "HEAD");
    assert_eq!(
        nodes["base:1"],
        ["context file rootfs/etc/base.conf changed"]
    );
}

#[test]
fn affected_since_names_a_bad_revision_or_a_missing_repository_and_writes_nothing() {
    let repo = repository();
    let args = ["generate-ci", "--affected-since", "no-such-branch"];
    let run = run_cli(repo.path(), &args, &BTreeMap::new());
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`no-such-branch` is not a commit of this repository"),
        "{}",
        run.stderr
    );
    assert!(!repo.path().join("ci").exists());

    fs_err::remove_dir_all(repo.path().join(".git")).unwrap();
    let run = run_cli(
        repo.path(),
        &["generate-ci", "--affected-since", "HEAD"],
        &BTreeMap::new(),
    );
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("needs the project in a git repository"),
        "{}",
        run.stderr
    );
    assert!(!repo.path().join("ci").exists());
}

#[test]
fn a_pipeline_too_big_to_list_is_generated_at_pipeline_time() {
    let repo = repository();
    let root = repo.path();
    write(
        &root.join(".image-manager.yml"),
        "platforms: [linux/amd64, linux/arm64]\nci: {provider: gitlab, max_jobs: 20}\n",
    );
    let args = ["generate-ci"];
    let run = succeeded(run_cli(root, &args, &BTreeMap::new()), &args);
    assert!(
        run.stderr.contains("dynamic: its plan job generates up to"),
        "{}",
        run.stderr
    );
    let committed = fs_err::read_to_string(root.join("ci/images.gitlab-ci.yml")).unwrap();
    assert!(committed.contains("--shape child"), "{committed}");
    assert!(committed.contains("artifact: \"images-child.gitlab-ci.yml\""));

    // What its plan job runs: the child, pruned to what changed, with its own limit.
    write(
        &root.join("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN touch /x\n",
    );
    let args = [
        "generate-ci",
        "--shape",
        "child",
        "--affected-since",
        "HEAD",
        "--output",
        "images-child.gitlab-ci.yml",
    ];
    succeeded(run_cli(root, &args, &BTreeMap::new()), &args);
    let child = fs_err::read_to_string(root.join("images-child.gitlab-ci.yml")).unwrap();
    assert!(child.starts_with("# Generated at pipeline time"), "{child}");
    assert!(child.contains("\"build app:2.0.0-dev linux/arm64\":"));
    assert!(!child.contains("\"build base:1"));

    // Shapes belong to their provider; one job per node, asked for, names the limit.
    let args = ["generate-ci", "--provider", "github", "--shape", "child"];
    let run = run_cli(root, &args, &BTreeMap::new());
    assert_eq!(run.status, 2, "{}", run.stderr);
    let args = ["generate-ci", "--shape", "nodes", "--output", "-"];
    let run = run_cli(root, &args, &BTreeMap::new());
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("more than `ci.max_jobs` (20)"),
        "{}",
        run.stderr
    );
}

/// `tool` with `args` and then `file` succeeds, or the test fails showing why.
fn passes(tool: &Path, args: &[&str], file: &Path, dir: &Path) {
    let output = Command::new(tool)
        .args(args)
        .arg(file)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} {args:?} {}:\n{}{}",
        tool.display(),
        file.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The synthetic 1,000-image monorepo (30,000 tags, 180,000 nodes' jobs) is far past both
/// providers' limits: its committed pipelines are the dynamic ones, and they pass GitLab's
/// and GitHub's schemas and actionlint.
#[test]
fn the_synthetic_monorepo_gets_dynamic_pipelines_the_providers_accept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("synthetic");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/lib/synthetic-monorepo.py");
    let made = Command::new("python3")
        .arg(&script)
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    git(&root, &["init", "-q", "-b", "main"]);
    let schema = im_testkit::check_jsonschema_bin();
    for (provider, output, builtin) in [
        ("gitlab", "ci/images.gitlab-ci.yml", "vendor.gitlab-ci"),
        (
            "github",
            ".github/workflows/images.yml",
            "vendor.github-workflows",
        ),
    ] {
        let args = ["generate-ci", "--provider", provider];
        let run = succeeded(run_cli(&root, &args, &BTreeMap::new()), &args);
        assert!(
            run.stderr.contains("dynamic: its plan job generates up to"),
            "{}",
            run.stderr
        );
        let file = root.join(output);
        passes(&schema, &["--builtin-schema", builtin], &file, &root);
        if provider == "github" {
            passes(&im_testkit::actionlint_bin(), &[], &file, &root);
            let text = fs_err::read_to_string(&file).unwrap();
            assert!(text.len() < 500_000, "{} bytes", text.len());
        }
    }
}
