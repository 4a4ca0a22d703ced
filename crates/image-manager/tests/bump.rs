//! `bump`: version cascades edit `image.yml` in place, keeping comments and formatting.
//!
//! The golden project `tests/data/bump/before` is a three-level chain (base → mid → app)
//! with comments, quoted and flow-style tags, a variant, explicit aliases and `extends`;
//! `tests/data/bump/after` is exactly what `bump patch base:1.2.3 --cascade` must leave.

mod common;

use std::path::{Path, PathBuf};

use common::{Project, Run, json};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bump");

/// A temp copy of the golden `before` project.
fn before() -> Project {
    let project = Project::new();
    copy(&Path::new(DATA).join("before"), project.dir.path());
    project
}

fn copy(from: &Path, to: &Path) {
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs_err::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every `image.yml` under `root/images`, relative path → text.
fn definitions(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for image in ["app", "base", "mid"] {
        let path = Path::new("images").join(image).join("image.yml");
        out.push((
            path.clone(),
            fs_err::read_to_string(root.join(&path)).unwrap(),
        ));
    }
    out
}

fn bump(project: &Project, args: &[&str]) -> Run {
    project.run(&[&["bump"], args].concat())
}

#[test]
fn cascade_on_a_three_level_chain_changes_exactly_the_golden_lines() {
    let project = before();
    let run = bump(&project, &["patch", "base:1.2.3", "--cascade"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(
        definitions(project.dir.path()),
        definitions(&Path::new(DATA).join("after")),
        "the files differ from tests/data/bump/after"
    );
    insta::assert_snapshot!(run.stdout, @r#"
    --- a/images/app/image.yml
    +++ b/images/app/image.yml
    @@ -1,4 +1,4 @@
     # The application, on mid.
    -extends: mid:2.0.0
    -tags: [0.9.1, '1.0.0']   # flow style, one quoted
    -aliases: {stable: 0.9.1}
    +extends: mid:2.0.1
    +tags: [0.9.2, '1.0.1']   # flow style, one quoted
    +aliases: {stable: 0.9.2}
    --- a/images/base/image.yml
    +++ b/images/base/image.yml
    @@ -2,7 +2,7 @@
     is_base_image: true
     description: the shared base   # keep it small
     tags:
    -  - "1.2.3"        # current
    +  - "1.2.4"        # current
       - 1.1.9          # previous line, still supported
     variants:
       - {name: dev, tag_suffix: -dev}
    --- a/images/mid/image.yml
    +++ b/images/mid/image.yml
    @@ -1,6 +1,6 @@
     # Built on base 1.2 (the alias follows the bump).
     tags:
    -  - name: 2.0.0   # mid's own version
    +  - name: 2.0.1   # mid's own version
         versions: {tool: 2.0.0}
         # a comment between keys
         variables:
    "#);
    assert!(
        run.stderr
            .contains("Bumped base:1.2.3 to 1.2.4 (images/base/image.yml:5)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Bumped app:1.0.0 to 1.0.1 (images/app/image.yml:3, built on base:1.2.3)"),
        "{}",
        run.stderr
    );
    // The project still loads, with the aliases following the new tags.
    let list = json(&project.ok(&["list", "--format", "json"]).stdout);
    let base = list
        .as_array()
        .unwrap()
        .iter()
        .find(|image| image["name"] == "base")
        .unwrap();
    assert_eq!(base["aliases"]["1.2"], "1.2.4", "{base}");
    assert_eq!(base["aliases"]["1.2-dev"], "1.2.4-dev", "{base}");
}

#[test]
fn dry_run_prints_the_same_diff_and_writes_nothing() {
    let project = before();
    let dry = bump(&project, &["patch", "base:1.2", "--cascade", "--dry-run"]);
    assert_eq!(dry.status, 0, "{}", dry.stderr);
    assert_eq!(
        definitions(project.dir.path()),
        definitions(&Path::new(DATA).join("before"))
    );
    assert!(
        dry.stderr.contains("Would bump base:1.2.3 to 1.2.4"),
        "{}",
        dry.stderr
    );
    let real = bump(&project, &["patch", "base:1.2", "--cascade"]);
    assert_eq!(dry.stdout, real.stdout);
}

#[test]
fn without_cascade_only_the_target_moves_and_json_lists_the_changes() {
    let project = before();
    let run = bump(&project, &["minor", "mid", "--format", "json"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let report = json(&run.stdout);
    assert_eq!(report["written"], true);
    assert_eq!(
        report["changes"],
        serde_json::json!([{
            "image": "mid", "from": "2.0.0", "to": "2.1.0", "level": "minor",
            "file": "images/mid/image.yml", "line": 3, "cause": "target"
        }])
    );
    // The extends in app follows; no app tag changes.
    let files: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["images/app/image.yml", "images/mid/image.yml"]);
    assert!(
        project
            .read("images/app/image.yml")
            .contains("extends: mid:2.1.0\n")
    );
}

/// Runs `bump args`, which must fail as bad input (exit 2) with each of `wanted` in its
/// errors.
fn refused(project: &Project, args: &[&str], wanted: &[&str]) -> Run {
    let run = bump(project, args);
    assert_eq!(run.status, 2, "{}", run.stderr);
    for text in wanted {
        assert!(run.stderr.contains(text), "no `{text}` in:\n{}", run.stderr);
    }
    run
}

#[test]
fn a_tag_that_is_not_semver_is_refused_at_its_line() {
    let project = Project::new()
        .file(
            "images/base/image.yml",
            "is_base_image: true\nversion_scheme: calver\ntags:\n  - 2025.10   # calver\n",
        )
        .file("images/base/Dockerfile", "FROM scratch\n");
    refused(
        &project,
        &["patch", "base:2025.10"],
        &[
            "base:2025.10 cannot be bumped: `2025.10` has 2 version part(s)",
            "--> images/base/image.yml:4:5",
        ],
    );
}

#[test]
fn an_unknown_target_is_refused_with_a_suggestion() {
    let project = before();
    refused(
        &project,
        &["patch", "bsae:1.2.3"],
        &[
            "`bsae` is not an image of this project",
            "did you mean `base`?",
        ],
    );
    refused(&project, &["patch", "base"], &["`base` names several tags"]);
}

#[test]
fn a_tag_written_through_an_alias_names_the_line_to_edit() {
    let project = before().file(
        "images/base/image.yml",
        "is_base_image: true\nvariables: {current: &current 1.2.3}\ntags:\n  - *current\nvariants: [{name: dev, tag_suffix: -dev}]\n",
    );
    refused(
        &project,
        &["patch", "base:1.2.3"],
        &[
            "the tag `1.2.3` is not written as a literal value here",
            "--> images/base/image.yml:4:5",
        ],
    );
}

#[test]
fn a_dockerfile_naming_the_old_tag_undoes_the_bump() {
    let project = before().file("images/mid/Dockerfile", "FROM base:1.2.3\n");
    refused(
        &project,
        &["patch", "base:1.2.3"],
        &["every file was put back", "--> images/mid/Dockerfile:1:6"],
    );
    assert_eq!(
        project.read("images/base/image.yml"),
        fs_err::read_to_string(Path::new(DATA).join("before/images/base/image.yml")).unwrap()
    );
}

#[test]
fn a_new_tag_that_exists_is_refused() {
    let project = before().file(
        "images/base/image.yml",
        "is_base_image: true\ntags: [1.2.3, 1.2.4]\nvariants: [{name: dev, tag_suffix: -dev}]\n",
    );
    refused(
        &project,
        &["patch", "base:1.2.3"],
        &["gives base:1.2.4, which already exists"],
    );
}
