//! `source:` images: built from an external git repository (a real one, over `file://`) at a
//! ref, with a patch; the commit in the lock, the build key and the labels; `outdated` after
//! an upstream commit and a newer tag; a rebuild of exactly that image and its descendants;
//! and the errors of bad sources (real buildah builds).

mod common;

use common::{Project, git, json, node_results};

/// The upstream repository: a Dockerfile `FROM scratch` copying two files; `v1.0.0` on the
/// first commit, `v1.1.0` on the second, `main` at the second.
fn upstream() -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    common::write(
        &dir.join("app/Dockerfile"),
        "FROM scratch\nCOPY app.txt user.txt /\n",
    );
    common::write(&dir.join("app/app.txt"), "one\n");
    common::write(&dir.join("app/user.txt"), "root\n");
    common::write(&dir.join("cycle/Dockerfile"), "FROM child:1\n");
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "one"]);
    git(dir, &["tag", "-a", "v1.0.0", "-m", "v1.0.0"]);
    common::write(&dir.join("app/app.txt"), "two\n");
    git(dir, &["commit", "--quiet", "-am", "two"]);
    git(dir, &["tag", "v1.1.0"]);
    repo
}

const PATCH: &str = "--- a/app/user.txt\n+++ b/app/user.txt\n@@ -1 +1 @@\n-root\n+app\n";

fn project(upstream: &std::path::Path) -> Project {
    let url = format!("file://{}", upstream.display());
    Project::buildah_amd64()
        .file(
            "images/app/image.yml",
            &format!(
                "tags: ['1']\nsource:\n  git: {url}\n  ref: main\n  context: app\n  patches: [patches/user.patch]\n"
            ),
        )
        .file("images/app/patches/user.patch", PATCH)
        .file("images/app/rootfs/ignored", "not in the context\n")
        .file("images/child/image.yml", "tags: ['1']\n")
        .file("images/child/Dockerfile", "FROM app:1\nCOPY rootfs/ /\n")
        .file("images/child/rootfs/child", "child\n")
        .file("images/other/image.yml", "tags: ['1']\n")
        .file("images/other/Dockerfile", "FROM scratch\nCOPY rootfs/ /\n")
        .file("images/other/rootfs/other", "other\n")
        .file(
            "images/pinned/image.yml",
            &format!("tags: ['1.0.0']\nsource:\n  git: {url}\n  ref: v1.0.0\n  dockerfile: Dockerfile\n  context: app\n"),
        )
}

fn head(repo: &std::path::Path) -> String {
    git(repo, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[test]
fn source_images_build_from_the_upstream_commit_and_follow_its_branch() {
    let upstream = upstream();
    let repo = upstream.path();
    let project = project(repo);
    let two = head(repo);
    let one = git(repo, &["rev-parse", "v1.0.0^{commit}"])
        .trim()
        .to_owned();

    // The labels name the upstream repository and commit, not the project's.
    let run = project.ok(&["plan", "--format", "json"]);
    assert!(
        run.stderr
            .contains("images/app/rootfs is not copied into this image"),
        "{}",
        run.stderr
    );
    let plan = json(&run.stdout);
    let node = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"]["image"] == "app")
        .unwrap_or_else(|| panic!("{plan}"));
    let labels = &node["step"]["labels"];
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        two.as_str(),
        "{node}"
    );
    assert!(
        labels["org.opencontainers.image.source"]
            .as_str()
            .unwrap()
            .starts_with("file://"),
        "{node}"
    );

    let built = json(&project.ok(&["build", "--format", "json"]).stdout);
    let results = node_results(&built);
    assert!(results.values().all(|r| r == "built"), "{built}");

    // The lock records what each ref resolved to; the patch was applied to the context.
    let lock = project.read("images/app/packages.lock");
    assert!(lock.contains(&format!("commit: {two}")), "{lock}");
    assert!(lock.contains("kind: branch"), "{lock}");
    let pinned_lock = project.read("images/pinned/packages.lock");
    assert!(
        pinned_lock.contains(&format!("commit: {one}")),
        "{pinned_lock}"
    );
    assert!(pinned_lock.contains("kind: tag"), "{pinned_lock}");
    let checkout = fs_err::read_dir(project.path(".image-manager/cache/sources"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&two[..12])
        })
        .expect("a checkout of the branch's commit");
    assert_eq!(
        fs_err::read_to_string(checkout.join("app/user.txt")).unwrap(),
        "app\n"
    );
    assert_eq!(
        fs_err::read_to_string(checkout.join("app/app.txt")).unwrap(),
        "two\n"
    );

    // `dist/index.json` and the report's tag page name the repository and the commit.
    let index = json(&project.read("dist/index.json"));
    let app = &index["images"][0]["tags"][0]["sources"]["upstream"];
    assert_eq!(app["commit"], two.as_str(), "{index}");
    assert_eq!(app["ref"], "main", "{index}");
    assert_eq!(
        app["patches"],
        serde_json::json!(["images/app/patches/user.patch"])
    );
    let written = json(&project.ok(&["report", "--format", "json"]).stdout);
    let site = project.path(
        written["dir"]
            .as_str()
            .unwrap()
            .trim_start_matches("[ROOT]/"),
    );
    let page = fs_err::read_to_string(site.join("images/app/1.html")).unwrap();
    assert!(
        page.contains(&format!("commit <code>{two}</code>")),
        "{page}"
    );

    // Nothing moved: nothing to build, nothing outdated but the newer tag of `pinned`.
    let again = json(&project.ok(&["build", "--format", "json"]).stdout);
    assert!(
        node_results(&again).values().all(|r| r == "up-to-date"),
        "{again}"
    );
    let run = project.run(&["outdated", "--format", "json"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let outdated = json(&run.stdout);
    let sources = outdated["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{outdated}");
    assert_eq!(sources[0]["image"], "pinned");
    assert_eq!(sources[0]["newer_tags"], serde_json::json!(["v1.1.0"]));
    assert!(sources[0].get("now").is_none(), "{outdated}");

    project.ok(&["generate"]);

    // An upstream commit on the branch: `generate` follows it although no file of the
    // project changed, `outdated` names it and what it rebuilds ...
    common::write(&repo.join("app/app.txt"), "three\n");
    git(repo, &["commit", "--quiet", "-am", "three"]);
    let three = head(repo);
    project.ok(&["generate"]);
    let index = json(&project.read("dist/index.json"));
    assert_eq!(
        index["images"][0]["tags"][0]["sources"]["upstream"]["commit"],
        three.as_str(),
        "{index}"
    );
    let run = project.run(&["outdated", "--format", "json"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let outdated = json(&run.stdout);
    let app = outdated["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["image"] == "app")
        .unwrap_or_else(|| panic!("{outdated}"));
    assert_eq!(app["built"], two.as_str());
    assert_eq!(app["now"], three.as_str());
    assert_eq!(app["nodes"], serde_json::json!(["app:1", "child:1"]));
    let text = project.run(&["outdated"]);
    assert!(
        text.stdout.contains(&format!("built {two} -> now {three}")),
        "{}",
        text.stdout
    );

    // ... `plan` says why, and `build` rebuilds exactly that image and its descendants.
    let why = project.ok(&["why", "app:1"]).stdout;
    assert!(
        why.contains(&format!(
            "upstream moved from {} to {}",
            &two[..12],
            &three[..12]
        )),
        "{why}"
    );
    let rebuilt = node_results(&json(&project.ok(&["build", "--format", "json"]).stdout));
    assert_eq!(rebuilt["app:1"], "built");
    assert_eq!(rebuilt["child:1"], "built");
    assert_eq!(rebuilt["other:1"], "up-to-date");
    assert_eq!(rebuilt["pinned:1.0.0"], "up-to-date");
    assert!(project.read("images/app/packages.lock").contains(&three));

    // The repository is gone: the locked commits build (nothing to do) with a warning, and
    // `outdated` says it could not check them (exit 3).
    let moved = repo.with_extension("moved");
    fs_err::rename(repo, &moved).unwrap();
    let run = project.ok(&["build", "--format", "json"]);
    assert!(
        node_results(&json(&run.stdout))
            .values()
            .all(|r| r == "up-to-date"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains(&format!("building the locked commit {}", &three[..12])),
        "{}",
        run.stderr
    );
    let run = project.run(&["outdated", "--format", "json"]);
    assert_eq!(run.status, 3, "{}\n{}", run.stdout, run.stderr);
    let unreachable = &json(&run.stdout)["unreachable_sources"];
    let images: Vec<&str> = unreachable
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["app", "pinned"], "{unreachable}");
    fs_err::rename(&moved, repo).unwrap();
}

#[test]
fn bad_sources_are_errors_at_their_line_and_write_nothing() {
    let upstream = upstream();
    let url = format!("file://{}", upstream.path().display());
    let image = |body: &str| format!("tags: ['1']\nsource:\n  git: {url}\n{body}");

    // A patch whose hunk does not match the upstream file: the hunk's line in the patch.
    let stale = "--- a/app/app.txt\n+++ b/app/app.txt\n@@ -1 +1 @@\n-zero\n+nine\n";
    let project = Project::new()
        .file(
            "images/app/image.yml",
            &image("  ref: main\n  context: app\n  patches: [stale.patch]\n"),
        )
        .file("images/app/stale.patch", stale);
    let run = project.fails(&["generate"], 2);
    assert!(
        run.stderr.contains("images/app/stale.patch:3"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the hunk at app/app.txt:1 does not match"),
        "{}",
        run.stderr
    );
    assert!(!project.path("dist").exists());
    assert!(!project.path("images/app/packages.lock").exists());

    // A ref the repository does not have: at the `ref:` line.
    let project = Project::new().file(
        "images/app/image.yml",
        &image("  ref: no-such-branch\n  context: app\n"),
    );
    let run = project.fails(&["generate"], 2);
    assert!(
        run.stderr.contains("images/app/image.yml:4"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no branch or tag `no-such-branch`"),
        "{}",
        run.stderr
    );

    // A repository that is not there: at the `git:` line.
    let project = Project::new().file(
        "images/app/image.yml",
        "tags: ['1']\nsource:\n  git: file:///no/such/repository\n  ref: main\n",
    );
    let run = project.fails(&["generate"], 2);
    assert!(
        run.stderr.contains("images/app/image.yml:3"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot reach the repository"),
        "{}",
        run.stderr
    );

    // A Dockerfile that is not in the repository, and `template:` next to `source:`.
    let project = Project::new().file(
        "images/app/image.yml",
        &format!(
            "template: x.jinja2\n{}",
            image("  ref: main\n  dockerfile: nope/Dockerfile\n")
        ),
    );
    let run = project.fails(&["generate"], 2);
    assert!(run.stderr.contains("has no `template`"), "{}", run.stderr);
    let project = Project::new().file(
        "images/app/image.yml",
        &image("  ref: main\n  dockerfile: nope/Dockerfile\n"),
    );
    let run = project.fails(&["generate"], 2);
    assert!(
        run.stderr.contains("has no Dockerfile `nope/Dockerfile`"),
        "{}",
        run.stderr
    );

    // An upstream Dockerfile built on an image that is built on it: the cycle, named. Run as
    // `-C <relative path>`: git works in other folders, and the paths shown stay relative.
    let project = Project::new()
        .file(
            "images/app/image.yml",
            &image("  ref: main\n  context: cycle\n"),
        )
        .file("images/child/image.yml", "tags: ['1']\n")
        .file("images/child/Dockerfile", "FROM app:1\n");
    let dir = project.dir.path();
    let output = common::command(std::path::Path::new(dir.file_name().unwrap()))
        .current_dir(dir.parent().unwrap())
        .arg("generate")
        .output()
        .unwrap();
    let run = common::Run::of(&output);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("in a cycle: app:1 -> child:1 -> app:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("at .image-manager/cache/sources/"),
        "{}",
        run.stderr
    );
    assert!(!project.path("dist").exists());
}

/// Two upstream versions of one image are two definitions: `outdated` checks each.
#[test]
fn each_upstream_version_of_an_image_is_checked() {
    let upstream = upstream();
    let url = format!("file://{}", upstream.path().display());
    let version = |tag: &str, reference: &str| {
        format!("tags: ['{tag}']\nsource:\n  git: {url}\n  ref: {reference}\n  context: app\n")
    };
    let project = Project::buildah_amd64()
        .file("images/pinned/older/image.yml", &version("1.0.0", "v1.0.0"))
        .file("images/pinned/1.1/image.yml", &version("1.1.0", "v1.1.0"));
    project.ok(&["build"]);
    let run = project.run(&["outdated", "--format", "json"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let outdated = json(&run.stdout);
    let sources = outdated["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{outdated}");
    assert_eq!(sources[0]["ref"], "v1.0.0", "{outdated}");
    assert_eq!(sources[0]["newer_tags"], serde_json::json!(["v1.1.0"]));
}
