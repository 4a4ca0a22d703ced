//! `history`: the ledger's record of each node's last build and of the builds that failed
//! since, counted per key, with the back-off scheduled runs keep; and `build --load` into a
//! real Docker engine (real buildah builds).

mod common;

use common::{Project, builder_settings, json};

fn project() -> Project {
    Project::buildah_amd64()
        .file("images/good/image.yml", "tags: ['1']\n")
        .file("images/good/Dockerfile", "FROM scratch\nCOPY rootfs/ /\n")
        .file("images/good/rootfs/hello", "hello\n")
        .file("images/bad/image.yml", "tags: ['1']\n")
        .file(
            "images/bad/Dockerfile",
            "FROM scratch\nRUN [\"/no-such-program\"]\n",
        )
}

fn entry<'a>(history: &'a serde_json::Value, node: &str) -> &'a serde_json::Value {
    history
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"] == node)
        .unwrap_or_else(|| panic!("{node} not in {history}"))
}

#[test]
fn history_shows_the_last_build_and_failures_counted_per_key() {
    let project = project();
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let first = project.run_with(&["build"], &env);
    assert_eq!(first.status, 1, "{}", first.stderr);
    let history = json(&project.ok(&["history", "--format", "json"]).stdout);
    let good = entry(&history, "good:1");
    assert!(
        good["built"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{good}"
    );
    assert!(good.get("failed").is_none(), "{good}");
    let bad = entry(&history, "bad:1");
    assert!(bad.get("built").is_none(), "{bad}");
    assert_eq!(bad["failed"]["count"], 1, "{bad}");
    assert_eq!(bad["failed"]["backing_off"], true, "{bad}");
    assert!(
        bad["failed"]["error"]
            .as_str()
            .unwrap()
            .contains("no-such-program"),
        "{bad}"
    );

    // The same inputs fail again: the count goes on. Other inputs start it again.
    assert_eq!(project.run_with(&["build"], &env).status, 1);
    let history = json(&project.ok(&["history", "bad", "--format", "json"]).stdout);
    assert_eq!(entry(&history, "bad:1")["failed"]["count"], 2);
    let text = project.ok(&["history", "bad"]).stdout;
    assert!(text.contains("failed  2 times with key sha256:"), "{text}");
    assert!(text.contains("scheduled runs try it after "), "{text}");

    // Fixed: the failures are gone.
    let project = project.file("images/bad/Dockerfile", "FROM scratch\nCOPY rootfs/ /\n");
    let project = project.file("images/bad/rootfs/ok", "ok\n");
    project.ok(&["build"]);
    let history = json(&project.ok(&["history", "--format", "json"]).stdout);
    assert!(
        entry(&history, "bad:1").get("failed").is_none(),
        "{history}"
    );
    assert!(
        entry(&history, "bad:1")["built"]["key"].is_string(),
        "{history}"
    );
}

/// `build --load docker` puts the built image into the Docker engine's store as `name:tag`.
#[test]
fn build_load_puts_the_image_into_the_docker_store() {
    let name = format!("im-load-{}", std::process::id());
    let project = project()
        .file("images/bad/Dockerfile", "FROM scratch\nCOPY rootfs/ /\n")
        .file("images/bad/rootfs/ok", "ok\n")
        .file(
            "images/good/image.yml",
            &format!("name: {name}\ntags: ['1']\n"),
        );
    let docker = im_testkit::docker();
    let run = project.run_with(
        &[
            "build",
            "--load",
            "docker",
            "--format",
            "json",
            &format!("{name}:1"),
        ],
        &[("DOCKER_HOST", docker.host())],
    );
    assert_eq!(run.status, 0, "{}", run.stderr);
    let report = json(&run.stdout);
    assert_eq!(
        report["loaded"],
        serde_json::json!([{"reference": format!("{name}:1"), "platform": "linux/amd64"}])
    );
    let inspect = docker
        .command()
        .args([
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            &format!("{name}:1"),
        ])
        .output()
        .unwrap();
    let _ = docker
        .command()
        .args(["rmi", &format!("{name}:1")])
        .output();
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
}

/// `history --registry` reads the build key the registry holds under each tag and says
/// whether it is the last build recorded here.
#[test]
fn history_with_the_registry_compares_what_was_pushed_with_the_last_build() {
    let registry = im_testkit::Registry::start();
    let storage = tempfile::tempdir().unwrap();
    let project = Project::new()
        .file(
            ".image-manager.yml",
            &format!(
                "{}platforms: [linux/amd64]\nregistry: {{url: {}/acme}}\n",
                builder_settings("buildah", storage.path()),
                registry.host_port()
            ),
        )
        .file("images/good/image.yml", "tags: ['1']\n")
        .file("images/good/Dockerfile", "FROM scratch\nCOPY rootfs/ /\n")
        .file("images/good/rootfs/hello", "hello\n");
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let pushed = project.run_with(&["build", "--push"], &env);
    assert_eq!(pushed.status, 0, "{}", pushed.stderr);
    let history = json(
        &project
            .ok(&["history", "--registry", "--format", "json"])
            .stdout,
    );
    let good = entry(&history, "good:1");
    assert_eq!(good["registry"]["key"], good["built"]["key"], "{good}");
    assert_eq!(good["registry"]["same_as_built"], true, "{good}");
    assert_eq!(
        good["registry"]["created"], "2023-11-14T22:13:20Z",
        "{good}"
    );

    // Built here since, not pushed: the registry holds another build.
    let project = project.file("images/good/rootfs/hello", "changed\n");
    let built = project.run_with(&["build"], &env);
    assert_eq!(built.status, 0, "{}", built.stderr);
    let text = project.ok(&["history", "--registry"]).stdout;
    assert!(text.contains("(another build)"), "{text}");
}
