//! End-to-end tests of the `image-manager` binary in temp projects.
//!
//! Each test writes a small project, runs the real binary, and checks its exit code, output
//! and the files it wrote. [`Project`] is a small fluent builder in the style of `just`'s
//! test harness.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Project;

const BASE: &str = "is_base_image: true\ntags: [2025.10, 2025.11]\nversion_scheme: calver\n";
const BASE_DOCKERFILE: &str = "FROM debian:bookworm-slim\nRUN echo base {{ tag.name }}\n";

fn small() -> Project {
    Project::new()
        .file("images/base/image.yml", BASE)
        .file("images/base/Dockerfile.jinja2", BASE_DOCKERFILE)
        .file(
            "images/app/image.yml",
            "versions: {tool: 1.0}\ntags:\n  - name: 1.2.3\n  - name: 1.3.0\n    versions: {tool: 2.0}\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        )
        .file("images/app/Dockerfile.jinja2", "FROM {{ \"base\" | resolve_base_image(\"2025.11\") }}\nENV TOOL={{ \"tool\" | resolve_version }}\n")
        .file("images/app/dev/Dockerfile.jinja2", "FROM {{ base_image }}\nRUN echo dev\n")
        .file("images/app/test.yml.jinja2", "schemaVersion: 2.0.0\nmetadataTest:\n  envVars:\n    - {key: TOOL, value: \"{{ tag.versions.tool }}\"}\n")
}

/// Every file under `dir`, with contents, for one snapshot of all generated output.
fn all_files(dir: &Path) -> String {
    let mut out = String::new();
    let mut paths: Vec<PathBuf> = walk(dir);
    paths.sort();
    for path in paths {
        let relative = path.strip_prefix(dir).unwrap().display().to_string();
        if relative == ".generate-stamp" {
            // Holds inode numbers and times: different on every run by design.
            continue;
        }
        let meta = fs_err::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            out.push_str(&format!(
                "=== {relative} -> {}\n",
                fs_err::read_link(&path).unwrap().display()
            ));
        } else {
            out.push_str(&format!(
                "=== {relative}\n{}",
                fs_err::read_to_string(&path).unwrap()
            ));
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs_err::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let file_type = entry.file_type().unwrap();
        if file_type.is_dir() {
            found.extend(walk(&entry.path()));
        } else {
            found.push(entry.path());
        }
    }
    found
}

#[test]
fn examples_generate_every_file() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let output = Command::new(env!("CARGO_BIN_EXE_image-manager"))
        .arg("-C")
        .arg(&examples)
        .arg("--dist")
        .arg(&dist)
        .arg("generate")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files = all_files(&dist).replace(&dist.display().to_string(), "[DIST]");
    insta::assert_snapshot!(files);
}

#[test]
fn rerun_writes_nothing_and_changes_touch_only_what_changed() {
    let project = small();
    let first = project.ok(&["generate"]);
    assert!(
        first.stderr.contains("Generated 6 tags of 2 images"),
        "{}",
        first.stderr
    );
    let second = project.ok(&["generate"]);
    assert!(
        second
            .stderr
            .contains("(0 files written, 6 tags unchanged)"),
        "{}",
        second.stderr
    );
    let before = fs_err::metadata(project.path("dist/app/1.2.3/Dockerfile"))
        .unwrap()
        .modified()
        .unwrap();
    // A build output next to the generated files must survive generate.
    fs_err::write(project.path("dist/app/1.3.0/image.tar"), "built").unwrap();
    fs_err::write(
        project.path("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN echo changed\n",
    )
    .unwrap();
    let third = project.ok(&["generate"]);
    assert!(
        third.stderr.contains("(2 files written, 4 tags unchanged)"),
        "{}",
        third.stderr
    );
    assert_eq!(
        fs_err::metadata(project.path("dist/app/1.2.3/Dockerfile"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert_eq!(project.read("dist/app/1.3.0/image.tar"), "built");
    assert!(
        project
            .read("dist/app/1.2.3-dev/Dockerfile")
            .contains("RUN echo changed")
    );
}

#[test]
fn an_unchanged_rerun_stops_at_the_stamp_and_a_lost_output_is_restored() {
    let project = small();
    project.ok(&["generate"]);
    let rerun = project.ok(&["generate", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&rerun.stdout).unwrap();
    assert_eq!(
        (
            report["written"].as_u64(),
            report["unchanged_tags"].as_u64()
        ),
        (Some(0), Some(6))
    );
    fs_err::remove_file(project.path("dist/app/1.3.0/Dockerfile")).unwrap();
    let restored = project.ok(&["generate"]);
    assert!(
        restored
            .stderr
            .contains("(1 file written, 5 tags unchanged)"),
        "{}",
        restored.stderr
    );
    assert!(project.path("dist/app/1.3.0/Dockerfile").is_file());
    // A different snapshot id is a different output, not a stamp hit.
    project.ok(&["generate", "--snapshot-id", "s1"]);
    assert!(
        project
            .read("dist/app/1.3.0/Dockerfile")
            .contains("base:2025.11-s1")
    );
    // A hand edit in dist/ of a tag whose inputs did not change is trusted away when another
    // input changes, and repaired by --full.
    fs_err::write(project.path("dist/app/1.2.3/test.yml"), "edited\n").unwrap();
    fs_err::write(
        project.path("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN echo changed\n",
    )
    .unwrap();
    let edited = project.ok(&["generate"]);
    assert!(
        edited
            .stderr
            .contains("(6 files written, 2 tags unchanged)"),
        "back to no snapshot: app's 4 Dockerfiles, its edited test.yml (compared because its \
         Dockerfile changed) and index.json; base is unchanged; {}",
        edited.stderr
    );
    fs_err::write(project.path("dist/app/1.2.3/test.yml"), "edited\n").unwrap();
    fs_err::write(
        project.path("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN echo changed again\n",
    )
    .unwrap();
    let trusted = project.ok(&["generate"]);
    assert!(
        trusted
            .stderr
            .contains("(2 files written, 4 tags unchanged)"),
        "{}",
        trusted.stderr
    );
    assert_eq!(project.read("dist/app/1.2.3/test.yml"), "edited\n");
    let full = project.ok(&["generate", "--full"]);
    assert!(
        full.stderr.contains("(1 file written, 5 tags unchanged)"),
        "{}",
        full.stderr
    );
    assert_ne!(project.read("dist/app/1.2.3/test.yml"), "edited\n");
}

#[test]
fn staging_folders_of_killed_runs_are_removed_and_a_running_ones_kept() {
    let project = small();
    project.ok(&["generate"]);
    // A process id nobody has, and one that is running (this test).
    let gone = (4_000_000..4_100_000_u32)
        .find(|pid| !Path::new("/proc").join(pid.to_string()).exists())
        .unwrap();
    let running = std::process::id();
    for folder in [
        format!("dist/.web.new-{gone}"),
        format!("dist/app/.9.9.9.new-{gone}"),
        format!("dist/.web.new-{running}"),
    ] {
        fs_err::create_dir_all(project.path(&folder).join("rootfs")).unwrap();
    }
    // With the stamp of a finished generate there is nothing to look for...
    project.ok(&["generate", "--full"]);
    assert!(project.path(&format!("dist/.web.new-{gone}")).exists());
    // ...without it (the last write was interrupted), leftovers of dead runs go.
    fs_err::remove_file(project.path("dist/.generate-stamp")).unwrap();
    project.ok(&["generate"]);
    assert!(!project.path(&format!("dist/.web.new-{gone}")).exists());
    assert!(
        !project
            .path(&format!("dist/app/.9.9.9.new-{gone}"))
            .exists()
    );
    assert!(project.path(&format!("dist/.web.new-{running}")).exists());
}

#[test]
fn removed_tags_lose_their_folder_and_nothing_else_is_touched() {
    let project = small();
    project.ok(&["generate"]);
    fs_err::create_dir_all(project.path("dist/unrelated")).unwrap();
    fs_err::write(
        project.path("images/app/image.yml"),
        "versions: {tool: 1.0}\ntags: [1.3.0]\n",
    )
    .unwrap();
    let run = project.ok(&["generate"]);
    assert!(
        run.stderr.contains("Removed app:1.2.3 (no longer defined)"),
        "{}",
        run.stderr
    );
    assert!(!project.path("dist/app/1.2.3").exists());
    assert!(!project.path("dist/app/1.2.3-dev").exists());
    assert!(project.path("dist/app/1.3.0/Dockerfile").exists());
    assert!(project.path("dist/unrelated").exists());
}

#[test]
fn variants_use_their_folder_template_and_depend_on_their_base_tag() {
    let project = small();
    project.ok(&["generate"]);
    assert_eq!(
        project.read("dist/app/1.3.0-dev/Dockerfile"),
        "FROM app:1.3.0\nRUN echo dev\n"
    );
    assert_eq!(
        project.read("dist/app/1.3.0/Dockerfile"),
        "FROM base:2025.11\nENV TOOL=2.0\n"
    );
    let index: serde_json::Value = serde_json::from_str(&project.read("dist/index.json")).unwrap();
    assert_eq!(
        index["order"],
        serde_json::json!([
            "base:2025.10",
            "base:2025.11",
            "app:1.2.3",
            "app:1.2.3-dev",
            "app:1.3.0",
            "app:1.3.0-dev"
        ])
    );
    assert_eq!(
        index["external_bases"]["debian:bookworm-slim"],
        serde_json::json!(["base:2025.10", "base:2025.11"])
    );
    let app = &index["images"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["aliases"]["1"], "1.3.0");
    assert_eq!(app["aliases"]["1-dev"], "1.3.0-dev");
    assert_eq!(
        app["tags"][3]["depends_on"],
        serde_json::json!(["app:1.3.0"])
    );
    assert_eq!(
        app["tags"][3]["sources"]["dockerfile"],
        "images/app/dev/Dockerfile.jinja2"
    );
}

#[test]
fn snapshot_ids_reach_from_lines_and_the_graph_still_resolves() {
    let project = small();
    project.ok(&["generate", "--snapshot-id", "pr42"]);
    assert_eq!(
        project.read("dist/app/1.3.0/Dockerfile"),
        "FROM base:2025.11-pr42\nENV TOOL=2.0\n"
    );
    assert_eq!(
        project.read("dist/app/1.3.0-dev/Dockerfile"),
        "FROM app:1.3.0-pr42\nRUN echo dev\n"
    );
    let run = project.ok(&["graph", "--snapshot-id", "pr42", "--format", "json"]);
    let graph: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "base:2025.11" && e["to"] == "app:1.3.0")
    );
}

#[test]
fn rootfs_is_copied_after_the_final_stage_and_symlinks_stay_symlinks() {
    let project = Project::new()
        .file("images/tool/image.yml", "tags: ['1']\nrootfs_user: 1000:1000\n")
        .file("images/tool/Dockerfile.jinja2", "FROM golang:1.22 AS build\nRUN go build\nFROM debian:bookworm\nCOPY --from=build /app /app\n")
        .file("images/tool/rootfs/etc/tool.conf", "x=1\n")
        .symlink("images/tool/rootfs/usr/bin/tool", "/app")
        .file("images/copies/image.yml", "tags: ['1']\n")
        .file("images/copies/Dockerfile", "FROM debian:bookworm\nCOPY rootfs/ /\n")
        .file("images/copies/rootfs/a", "a\n");
    project.ok(&["generate"]);
    assert_eq!(
        project.read("dist/tool/1/Dockerfile"),
        "FROM golang:1.22 AS build\nRUN go build\nFROM debian:bookworm\nCOPY --chown=1000:1000 rootfs/ /\nCOPY --from=build /app /app\n"
    );
    assert_eq!(
        fs_err::read_link(project.path("dist/tool/1/rootfs/usr/bin/tool")).unwrap(),
        Path::new("/app")
    );
    assert_eq!(
        project.read("dist/copies/1/Dockerfile"),
        "FROM debian:bookworm\nCOPY rootfs/ /\n",
        "an existing COPY rootfs/ is kept"
    );
}

#[test]
fn tags_share_rootfs_files_by_hard_link_and_a_change_reaches_only_its_own_tags() {
    use std::os::unix::fs::MetadataExt;
    let project = Project::new()
        .file("images/group/rootfs/etc/motd", "group\n")
        .file(
            "images/group/app/image.yml",
            "name: app\ntags: ['1', '2']\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
        )
        .file("images/group/app/Dockerfile", "FROM debian:bookworm\n")
        .file("images/group/app/rootfs/etc/app.conf", "a=1\n")
        .file("images/group/app/rootfs/etc/app.key", "secret-looking\n")
        .file("images/group/other/image.yml", "name: other\ntags: ['1']\n")
        .file("images/group/other/Dockerfile", "FROM debian:bookworm\n");
    fs_err::set_permissions(
        project.path("images/group/app/rootfs/etc/app.conf"),
        std::os::unix::fs::PermissionsExt::from_mode(0o640),
    )
    .unwrap();
    // One thread, so the first copy of each file is there before any other tag needs it
    // (with more, tags written at the same moment may each write a copy).
    let run = project.run_with(&["generate"], &[("RAYON_NUM_THREADS", "1")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    // Two definitions read the group layer, four tags use the key file: warned once.
    assert_eq!(
        run.stderr.matches("looks like a secret").count(),
        1,
        "{}",
        run.stderr
    );
    let meta = |path: &str| fs_err::symlink_metadata(project.path(path)).unwrap();
    let tags = ["app/1", "app/2", "app/1-dev", "app/2-dev", "other/1"];
    let motd: Vec<_> = tags
        .iter()
        .map(|tag| meta(&format!("dist/{tag}/rootfs/etc/motd")))
        .collect();
    assert!(
        motd.iter()
            .all(|m| m.ino() == motd[0].ino() && m.nlink() == 5)
    );
    let conf = meta("dist/app/2-dev/rootfs/etc/app.conf");
    assert_eq!(conf.ino(), meta("dist/app/1/rootfs/etc/app.conf").ino());
    assert_eq!(conf.mode() & 0o7777, 0o640, "the source's mode is kept");
    assert_eq!(
        conf.mtime(),
        meta("images/group/app/rootfs/etc/app.conf").mtime(),
        "and its modification time"
    );
    // Within one tag, every path is its own file: a build context never holds hard links.
    for tag in tags {
        let mut inodes: Vec<u64> = walk(&project.path(&format!("dist/{tag}")))
            .iter()
            .map(|path| fs_err::symlink_metadata(path).unwrap().ino())
            .collect();
        let count = inodes.len();
        inodes.sort_unstable();
        inodes.dedup();
        assert_eq!(inodes.len(), count, "{tag} has two paths on one inode");
    }
    // Changing a shared source replaces the copies by rename, and a copy edited in place
    // in dist/ (which edits every link) is restored everywhere.
    fs_err::write(project.path("images/group/rootfs/etc/motd"), "changed\n").unwrap();
    fs_err::write(project.path("dist/app/2/rootfs/etc/app.conf"), "edited\n").unwrap();
    project.ok(&["generate"]);
    for tag in tags {
        assert_eq!(
            project.read(&format!("dist/{tag}/rootfs/etc/motd")),
            "changed\n"
        );
    }
    for tag in ["app/1", "app/2", "app/1-dev", "app/2-dev"] {
        assert_eq!(
            project.read(&format!("dist/{tag}/rootfs/etc/app.conf")),
            "a=1\n"
        );
    }
    assert_eq!(meta("dist/app/1/rootfs/etc/motd").nlink(), 1);
    assert!(
        walk(&project.path("dist"))
            .iter()
            .all(|path| !path.to_string_lossy().contains(".new-")),
        "no staging folder is left behind"
    );
}

#[test]
fn secrets_in_rootfs_are_warned_about() {
    let project = small().file("images/base/rootfs/root/.ssh/id_rsa", "-----BEGIN");
    let run = project.ok(&["generate"]);
    assert!(
        run.stderr.contains("warning: `id_rsa` looks like a secret"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("--> [ROOT]/images/base/rootfs/root/.ssh/id_rsa")
            || run
                .stderr
                .contains("--> images/base/rootfs/root/.ssh/id_rsa"),
        "{}",
        run.stderr
    );
}

#[test]
fn undefined_template_values_point_at_the_template_and_list_what_exists() {
    let project = small().file(
        "images/app/Dockerfile.jinja2",
        "FROM base:2025.11\n\nENV X={{ tag.versions.nodejs }}\n",
    );
    let run = project.fails(&["generate"], 2);
    assert!(
        run.stderr
            .contains("error: `tag.versions.nodejs` is not defined"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--> images/app/Dockerfile.jinja2:3:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("help: `tag.versions` has: tool"),
        "{}",
        run.stderr
    );
    assert!(
        !project.path("dist").exists(),
        "nothing is written when anything is invalid"
    );
}

#[test]
fn config_errors_from_every_file_are_reported_at_once_with_exit_code_2() {
    let project = small()
        .file("images/broken/image.yml", "tagz: [1]\n")
        .file("images/other/image.yml", "tags: [1]\nlatest: maybe\n")
        .file(
            ".image-manager.yml",
            "registry:\n  url: ${IM_TEST_UNSET_VARIABLE}\n",
        );
    let run = project.fails(&["check"], 2);
    for expected in [
        "unknown key `tagz` in an image definition",
        "did you mean `tags`?",
        "`latest` must be `true` or `false`",
        "uses the environment variable `IM_TEST_UNSET_VARIABLE`, which is not set",
        ".image-manager.yml:2:8",
        "4 problems found; nothing was changed",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing {expected:?} in:\n{}",
            run.stderr
        );
    }
}

#[test]
fn template_problems_in_several_tags_are_all_reported() {
    let project = small()
        .file(
            "images/app/Dockerfile.jinja2",
            "FROM {{ \"base\" | resolve_base_image }}\n",
        )
        .file(
            "images/base/Dockerfile.jinja2",
            "FROM x\n{% include \"../../../etc/passwd\" %}\n",
        );
    let run = project.fails(&["check"], 2);
    assert!(
        run.stderr
            .contains("image `base` has several tags (2025.10, 2025.11)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("outside the image's folders"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_list_doubled_in_a_loop_is_stopped_at_its_template_line() {
    // Issue 13, item 2: this grew past 1.9 GB and kept going.
    let project = small().file(
        "images/base/Dockerfile.jinja2",
        "FROM x\n{% set ns = namespace(s=[1]) %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}\n",
    );
    let started = std::time::Instant::now();
    let run = project.fails(&["generate"], 2);
    assert!(run.stderr.contains("used up its budget"), "{}", run.stderr);
    assert!(
        run.stderr.contains("images/base/Dockerfile.jinja2:2:"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn runaway_templates_are_stopped() {
    let project = small().file(
        "images/base/Dockerfile.jinja2",
        "FROM x\n{% for a in range(10000) %}{% for b in range(10000) %}{{ a }}{% endfor %}{% endfor %}\n",
    );
    let started = std::time::Instant::now();
    let run = project.fails(&["generate"], 2);
    assert!(run.stderr.contains("used up its budget"), "{}", run.stderr);
    assert!(
        run.stderr.contains("images/base/Dockerfile.jinja2:2"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn billion_laughs_fail_fast() {
    let mut text = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
    let mut previous = 'a';
    for name in 'b'..='j' {
        let refs = vec![format!("*{previous}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        previous = name;
    }
    text.push_str("tags: [1]\n");
    let project = Project::new().file("images/bomb/image.yml", &text);
    let started = std::time::Instant::now();
    let run = project.fails(&["check"], 2);
    assert!(
        run.stderr.contains("expands to more than"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn cycles_show_the_whole_cycle_and_its_files() {
    let project = Project::new()
        .file("images/a/image.yml", "tags: ['1']\n")
        .file("images/a/Dockerfile", "FROM b:1\n")
        .file("images/b/image.yml", "tags: ['1']\n")
        .file("images/b/Dockerfile.jinja2", "FROM a:1\n");
    let run = project.fails(&["graph"], 2);
    assert!(
        run.stderr
            .contains("the images depend on each other in a cycle: a:1 -> b:1 -> a:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("a:1 comes from images/a/Dockerfile"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("b:1 comes from images/b/Dockerfile.jinja2"),
        "{}",
        run.stderr
    );
}

#[test]
fn references_to_missing_tags_of_managed_images_are_errors() {
    let project = small().file("images/app/Dockerfile.jinja2", "FROM base:2024.01\n");
    let run = project.fails(&["check"], 2);
    assert!(
        run.stderr.contains(
            "`base:2024.01` names the managed image `base`, which has no tag or alias `2024.01`"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("base has: 2025.10, 2025.11"),
        "{}",
        run.stderr
    );
}

#[test]
fn list_and_graph_formats() {
    let project = small();
    let list = project.ok(&["list", "--format", "json"]);
    let images: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(
        images[0]["tags"][1]["aliases"],
        serde_json::json!(["1", "1.3"])
    );
    let text = project.ok(&["list"]);
    assert!(
        text.stdout.contains("  1.3.0      aliases: 1, 1.3"),
        "{}",
        text.stdout
    );
    let tree = project.ok(&["graph"]);
    insta::assert_snapshot!(tree.stdout, @r"
    base:2025.10  (from debian:bookworm-slim)
    base:2025.11  (from debian:bookworm-slim)
      app:1.2.3
        app:1.2.3-dev
      app:1.3.0
        app:1.3.0-dev
    ");
    let dot = project.ok(&["graph", "--format", "dot"]);
    assert!(
        dot.stdout.contains("\"base:2025.11\" -> \"app:1.3.0\";"),
        "{}",
        dot.stdout
    );
    let mermaid = project.ok(&["graph", "--format", "mermaid"]);
    assert!(
        mermaid.stdout.starts_with("flowchart LR\n"),
        "{}",
        mermaid.stdout
    );
}

#[test]
fn check_warns_about_tags_without_tests() {
    let run = small().ok(&["check"]);
    assert!(
        run.stderr
            .contains("warning: base:2025.10 has no test config"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Checked 2 images and 6 tags: no errors, 2 warnings"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let project = small();
    project.fails(&["frobnicate"], 2);
    let help = project.ok(&["--help"]);
    assert!(
        help.stdout
            .contains("Exit codes: 0 success, 1 the work failed, 2 usage or configuration error.")
    );
    let generate_help = project.ok(&["generate", "--help"]);
    assert!(generate_help.stdout.contains("--snapshot-id"));
    let missing = Project::new().fails(&["list"], 2);
    assert!(
        missing.stderr.contains("there is no `images/` folder"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_closed_stdout_pipe_is_not_an_error() {
    let project = small();
    let child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' -C '{}' list | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}",
            env!("CARGO_BIN_EXE_image-manager"),
            project.dir.path().display()
        ))
        .output()
        .unwrap();
    assert!(child.status.success());
    assert_eq!(
        String::from_utf8_lossy(&child.stdout).trim(),
        "0",
        "image-manager's own exit status"
    );
}

#[test]
fn yaml_variables_keep_their_types_in_templates_and_render_as_written() {
    let project = Project::new()
        .file(
            "images/base/image.yml",
            "tags: [\"1\"]\nvariables:\n  port: 8080\n  ratio: 0.75\n  release: 2025.10\n  quoted: \"8080\"\n  debug: true\n  sizes: [1, 2, 3]\n",
        )
        .file(
            "images/base/Dockerfile.jinja2",
            "FROM scratch\n# {{ variables.port }} {{ variables.port + 1 }} {{ variables.ratio * 2 }} {{ variables.release }} {{ variables.quoted ~ 1 }} {{ variables.sizes | sum }} {{ variables.port is divisibleby 8 }}\n# {{ variables | tojson }}\n# {{ \"curl git\".split() | join(\",\") }} {{ \"abc\" | center(7) }}|\n",
        );
    project.ok(&["generate"]);
    assert_eq!(
        project.read("dist/base/1/Dockerfile"),
        "FROM scratch\n# 8080 8081 1.5 2025.10 80801 6 True\n\
         # {\"debug\": true, \"port\": 8080, \"quoted\": \"8080\", \"ratio\": 0.75, \"release\": \"2025.10\", \"sizes\": [1, 2, 3]}\n\
         # curl,git   abc  |\n"
    );
}

#[test]
fn generate_ci_writes_checks_and_prints_the_pipeline() {
    let project = small().file(
        ".image-manager.yml",
        "ci:\n  provider: gitlab\n  runners: {linux/arm64: [arm64]}\n",
    );
    let written = project.run(&["generate-ci"]);
    assert_eq!(written.status, 0, "{}", written.stderr);
    assert!(
        written.stderr.contains("Generated ci/images.gitlab-ci.yml"),
        "{}",
        written.stderr
    );
    let text = project.read("ci/images.gitlab-ci.yml");
    assert!(text.starts_with("# Generated by `image-manager generate-ci --provider gitlab`"));
    // app's build on arm64 waits for base's build on arm64 only, and runs on an arm64 runner.
    let job = text
        .split("\n\"")
        .find(|job| job.starts_with("build app:1.3.0 linux/arm64\""))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        job.contains("needs:\n    - \"build base:2025.11 linux/arm64\"\n  tags:\n    - \"arm64\""),
        "{job}"
    );
    assert!(
        text.contains("\"test app:1.3.0 linux/amd64\":"),
        "tags with a test config get test jobs"
    );
    assert!(
        !text.contains("\"test base:2025.11"),
        "tags without one get none"
    );

    let check = project.run(&["generate-ci", "--check"]);
    assert_eq!(check.status, 0, "{}", check.stderr);
    project.run(&["generate-ci", "--output", "-"]);
    let printed = project.run(&["generate-ci", "--output", "-"]);
    assert_eq!(
        printed.stdout, text,
        "the same project gives the same bytes"
    );

    let definition = project
        .read("images/app/image.yml")
        .replace("1.3.0", "1.4.0");
    let project = project.file("images/app/image.yml", &definition);
    let stale = project.run(&["generate-ci", "--check"]);
    assert_eq!(stale.status, 1, "{}", stale.stderr);
    assert!(
        stale.stderr.contains("ci/images.gitlab-ci.yml is stale"),
        "{}",
        stale.stderr
    );

    let graph = common::json(&project.run(&["generate-ci", "--format", "json"]).stdout);
    let jobs = graph["jobs"].as_array().unwrap();
    assert!(
        jobs.iter()
            .any(|j| j["id"] == "promote-app-1-4-0" && j["default_branch_only"] == true)
    );

    let github = project.run(&["generate-ci", "--provider", "github"]);
    assert_eq!(github.status, 0, "{}", github.stderr);
    assert!(
        project
            .read(".github/workflows/images.yml")
            .contains("runs-on:")
    );
}

#[test]
fn generate_ci_without_a_provider_says_how_to_name_one() {
    let project = small();
    let run = project.run(&["generate-ci"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no CI provider was named"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--provider gitlab"), "{}", run.stderr);
    assert!(!project.path("ci").exists(), "nothing was written");
}

#[test]
fn plan_json_says_why_a_step_is_not_known_yet() {
    // base starts from debian:bookworm-slim, never resolved here (plan does not ask registries).
    let project = small();
    let run = project.run(&["plan", "--builder", "buildah", "--format", "json"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let plan = common::json(&run.stdout);
    let base = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"]["image"] == "base")
        .unwrap();
    assert!(base.get("step").is_none(), "{base}");
    let why = base["step_unavailable"].as_str().unwrap();
    assert!(why.contains("debian:bookworm-slim"), "{why}");
}
