//! Reproducibility end to end: one project copied to two folders at different paths, built
//! there with `-j 1` and `-j 4`, gives the same digest for every node and platform, with
//! buildah, podman and the Docker engine. Nothing about where or how a build ran (paths,
//! the step-unique names parents are loaded under, the store's own IDs) reaches an image.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{builder_settings, json, run_cli, succeeded, write};
use im_testkit::Platform;

/// Writes the chain base → app (1.0.0, 1.1.0) → app's `dev` variant, plus `solo`, into
/// `root`, built with `builder` for `platforms` (buildah and podman keep their image store
/// in `storage`: podman refuses a runroot path over 50 characters).
fn write_project(root: &Path, storage: &Path, builder: &str, platforms: &[Platform]) {
    let settings = builder_settings(builder, storage);
    let names: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
    write(
        &root.join(".image-manager.yml"),
        &format!("{settings}platforms: [{}]\n", names.join(", ")),
    );
    im_testkit::write_busybox_base_definition(root, platforms);
    write(
        &root.join("images/app/image.yml"),
        "tags: [1.0.0, 1.1.0]\nvariants:\n  - {name: dev, tag_suffix: -dev}\n",
    );
    write(
        &root.join("images/app/Dockerfile.jinja2"),
        "FROM {{ \"base\" | resolve_base_image }}\nRUN echo \"app {{ tag.name }}\" > /app.txt\n",
    );
    write(&root.join("images/app/rootfs/etc/app.conf"), "setting=1\n");
    write(
        &root.join("images/app/dev/Dockerfile.jinja2"),
        "FROM {{ base_image }}\nRUN cat /app.txt > /dev.txt\n",
    );
    write(&root.join("images/solo/image.yml"), "tags: ['1']\n");
    write(
        &root.join("images/solo/Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\n",
    );
    write(&root.join("images/solo/rootfs/hello"), "hello\n");
}

/// Builds the project at `root` and returns every node's digest (and each multi-platform
/// layout's index digest) by name.
fn build(root: &Path, builder: &str, jobs: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("NO_COLOR".to_owned(), "1".to_owned()),
        ("SOURCE_DATE_EPOCH".to_owned(), "1700000000".to_owned()),
    ]);
    if builder == "docker" {
        env.insert(
            "DOCKER_HOST".to_owned(),
            im_testkit::docker().host().to_owned(),
        );
    }
    let args = ["build", "-j", jobs, "--format", "json"];
    let report = json(&succeeded(run_cli(root, &args, &env), &args).stdout);
    let mut digests: BTreeMap<String, String> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                format!(
                    "{} {}",
                    n["node"].as_str().unwrap(),
                    n["platform"].as_str().unwrap()
                ),
                n["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for layout in report["layouts"].as_array().unwrap() {
        let layout = Path::new(layout.as_str().unwrap());
        let index = json(&String::from_utf8(oci_entry(layout, "index.json")).unwrap());
        let relative = layout.strip_prefix(root.join("dist")).unwrap();
        digests.insert(
            relative.display().to_string(),
            index["manifests"][0]["digest"].as_str().unwrap().to_owned(),
        );
    }
    digests
}

/// One entry of a tar.
fn oci_entry(archive: &Path, name: &str) -> Vec<u8> {
    let mut tar = tar::Archive::new(fs_err::File::open(archive).unwrap());
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(name) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("{name} not in {}", archive.display())
}

fn two_checkouts_give_the_same_digests(builder: &str, platforms: &[Platform]) {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let a = first.path().join("images-repo");
    let b = second.path().join("a/much/deeper/checkout");
    let stores = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_project(&a, stores.0.path(), builder, platforms);
    write_project(&b, stores.1.path(), builder, platforms);
    let one = build(&a, builder, "1");
    let other = build(&b, builder, "4");
    // base, 4 tags of app, solo, for each platform; one index per tag when there are two.
    let expected = 6 * platforms.len() + if platforms.len() > 1 { 6 } else { 0 };
    assert_eq!(one.len(), expected, "{one:#?}");
    assert_eq!(one, other, "the two checkouts' digests differ");
}

#[test]
fn buildah_builds_are_the_same_in_any_folder_and_with_any_parallelism() {
    two_checkouts_give_the_same_digests("buildah", &Platform::ALL);
}

#[test]
fn podman_builds_are_the_same_in_any_folder_and_with_any_parallelism() {
    two_checkouts_give_the_same_digests("podman", &Platform::ALL);
}

#[test]
fn docker_builds_are_the_same_in_any_folder_and_with_any_parallelism() {
    two_checkouts_give_the_same_digests("docker", &Platform::ALL);
}

#[test]
fn verify_reproducible_confirms_a_reproducible_build_and_names_what_differs_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    write_project(&root, store.path(), "buildah", &[Platform::LinuxAmd64]);
    // `clock` writes the time of its build: never the same twice.
    write(&root.join("images/clock/image.yml"), "tags: ['1']\n");
    write(
        &root.join("images/clock/Dockerfile"),
        "FROM base:1\nRUN date +%s%N > /built-at\n",
    );
    build(&root, "buildah", "2");
    let env = BTreeMap::from([
        ("NO_COLOR".to_owned(), "1".to_owned()),
        ("SOURCE_DATE_EPOCH".to_owned(), "1700000000".to_owned()),
    ]);
    let args = ["verify-reproducible", "app", "--format", "json"];
    let same = json(&succeeded(run_cli(&root, &args, &env), &args).stdout);
    assert_eq!(same["identical"], same["total"], "{same:#}");
    assert_eq!(same["total"], 5, "{same:#}");
    assert!(same["scratch"].is_null(), "{same:#}");

    let run = run_cli(
        &root,
        &["verify-reproducible", "clock", "--format", "json"],
        &env,
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    let report = json(&run.stdout);
    let clock = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "clock:1")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(clock["identical"], false);
    assert_eq!(clock["difference"]["in"], "layer", "{clock:#}");
    assert_eq!(clock["difference"]["entry"], "built-at", "{clock:#}");
    assert_eq!(clock["difference"]["what"], "content", "{clock:#}");
    let base = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "base:1")
        .unwrap();
    assert_eq!(base["identical"], true);
    let kept = Path::new(report["scratch"].as_str().unwrap());
    assert!(kept.is_dir());
    fs_err::remove_dir_all(kept).unwrap();
}
