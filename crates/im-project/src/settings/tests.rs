//! Unit tests of `.image-manager.yml` parsing.
use super::*;

#[test]
fn registry_urls_are_checked_and_registries_need_a_default() {
    for good in [
        "reg.example",
        "reg.example:5000/team",
        "127.0.0.1:5050/acme/sub",
        "[::1]:5000",
        "localhost",
    ] {
        assert_eq!(check_registry_url(good), Ok(()), "{good}");
    }
    for bad in [
        "reg example",
        "user:pw@reg.example",
        "reg.example:99999",
        "reg.example:port",
        "ftp://reg",
        "reg.example/Team",
        "reg.example//x",
        "-reg.example",
        "[::1",
    ] {
        assert!(check_registry_url(bad).is_err(), "{bad}");
    }
    let errors = parse("registry:\n  url: \"user:hunter2@reg.example\"\n").unwrap_err();
    let text = errors.to_string();
    assert!(
        text.contains("the registry `url` is malformed: it contains `@`"),
        "{text}"
    );
    assert!(text.contains(".image-manager.yml:2:8"), "{text}");
    let errors = parse("registries: []\n").unwrap_err();
    assert!(errors.to_string().contains("`registries` is an empty list"));
    assert!(parse("registries:\n  - url: a.example\n").is_ok());
}

fn env(name: &str) -> Option<String> {
    (name == "REGISTRY_PASSWORD").then(|| "hunter2".to_owned())
}

fn parse(text: &str) -> Result<Settings, Diagnostics> {
    Settings::parse(Path::new(SETTINGS_FILE), text.to_owned(), &env)
}

#[test]
fn defaults_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(dir.path(), &env).unwrap();
    assert_eq!(
        settings.platforms,
        vec![Platform::linux("amd64"), Platform::linux("arm64")]
    );
    assert!(settings.registries.is_empty());
}

#[test]
fn reads_every_section_and_expands_variables() {
    let settings = parse(
        "registry:\n  url: https://reg.example:5000/team/\n  username: bot\n  password: ${REGISTRY_PASSWORD}\n\
         labels:\n  vendor: ACME\n  url: https://example.com/%image%/%tag%\n\
         platforms: [linux/amd64]\nbuilder: buildah\n\
         cache:\n  type: s3\n  endpoint: http://127.0.0.1:3900\n  bucket: ${BUCKET:-cache}\n\
         ci:\n  provider: gitlab\n  platform_split: true\n",
    )
    .unwrap();
    let registry = settings.default_registry().unwrap();
    assert_eq!(registry.url, "reg.example:5000/team");
    assert_eq!(registry.password.as_ref().unwrap().expose(), "hunter2");
    assert_eq!(format!("{registry:?}").matches("hunter2").count(), 0);
    assert_eq!(settings.cache.unwrap().bucket.as_deref(), Some("cache"));
    assert_eq!(
        settings.labels.resolve("python", "3.13"),
        vec![
            ("org.opencontainers.image.vendor", "ACME".to_owned()),
            (
                "org.opencontainers.image.url",
                "https://example.com/python/3.13".to_owned()
            )
        ]
    );
    assert_eq!(settings.ci.platform_split, Some(true));
    assert_eq!(settings.builder.as_deref(), Some("buildah"));
}

#[test]
fn builder_as_a_mapping_sets_the_image_store() {
    let settings =
        parse("builder:\n  kind: podman\n  storage_driver: vfs\n  root: /srv/containers\n")
            .unwrap();
    assert_eq!(settings.builder.as_deref(), Some("podman"));
    assert_eq!(settings.storage.driver.as_deref(), Some("vfs"));
    assert_eq!(
        settings.storage.root.as_deref(),
        Some(Path::new("/srv/containers"))
    );
    assert!(parse("builder:\n  knd: podman\n").is_err());
}

#[test]
fn the_docker_builder_can_be_told_not_to_use_buildkit() {
    let settings = parse("builder: {kind: docker, buildkit: false}\n").unwrap();
    assert_eq!(settings.builder.as_deref(), Some("docker"));
    assert_eq!(settings.buildkit, Some(false));
    assert_eq!(parse("builder: docker\n").unwrap().buildkit, None);
    assert_eq!(
        parse("builder:\n  kind: docker\n  buildkit: true\n")
            .unwrap()
            .buildkit,
        Some(true)
    );
    let errors = parse("builder:\n  kind: buildah\n  buildkit: false\n").unwrap_err();
    insta::assert_snapshot!(errors.to_string(), @r"
    error: `buildkit` is a setting of the docker builder, not of `buildah`
     --> .image-manager.yml:3:13
      |
    3 |   buildkit: false
      |             ^^^^^
      = help: remove it, or use `kind: docker`
    ");
    let errors = parse("builder: {buildkit: maybe, kind: docker}\n").unwrap_err();
    insta::assert_snapshot!(errors.to_string(), @r"
    error: `buildkit` in `builder` must be `true` or `false`, but this is `maybe`
     --> .image-manager.yml:1:21
      |
    1 | builder: {buildkit: maybe, kind: docker}
      |                     ^^^^^
      = help: write true or false without quotes
    ");
}

#[test]
fn undefined_variable_names_it_and_the_line() {
    let errors = parse("registry:\n  url: reg.example\n  password: ${NOT_SET}\n").unwrap_err();
    insta::assert_snapshot!(errors.to_string(), @r"
    error: `password` in a registry uses the environment variable `NOT_SET`, which is not set
     --> .image-manager.yml:3:13
      |
    3 |   password: ${NOT_SET}
      |             ^^^^^^^^^^
      = help: set NOT_SET, or write `${NOT_SET:-default}` to give it a default
    ");
}

#[test]
fn collects_every_problem() {
    let errors = parse("builder: dokcer\nplatforms: [linux]\nregistyr: x\n").unwrap_err();
    assert_eq!(errors.error_count(), 3, "{errors}");
    let text = errors.to_string();
    assert!(text.contains("did you mean `docker`?"), "{text}");
    assert!(text.contains("did you mean `registry`?"), "{text}");
}

#[test]
fn a_mirror_is_never_the_default_registry() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(
        dir.path().join(SETTINGS_FILE),
        "registries:\n  - {url: 127.0.0.1:5001, mirror_of: docker.io}\n  - {url: reg.example/acme}\n",
    )
    .unwrap();
    let settings = Settings::load(dir.path(), &|_| None).unwrap();
    assert_eq!(settings.default_registry().unwrap().url, "reg.example/acme");
    let mirrors: Vec<(&str, &str)> = settings
        .mirrors()
        .map(|(r, of)| (r.url.as_str(), of))
        .collect();
    assert_eq!(mirrors, [("127.0.0.1:5001", "docker.io")]);
}

#[test]
fn ci_names_runners_per_platform_and_how_jobs_get_image_manager() {
    let settings = parse(
        "ci:\n  provider: github\n  runners:\n    linux/arm64: [self-hosted, arm64]\n    linux/amd64: ubuntu-24.04\n  image: registry.example/tools/image-manager:1\n  install: cargo install image-manager\n",
    )
    .unwrap();
    assert_eq!(settings.ci.provider.as_deref(), Some("github"));
    assert_eq!(settings.ci.platform_split, None);
    assert_eq!(settings.ci.runners["linux/arm64"], ["self-hosted", "arm64"]);
    assert_eq!(settings.ci.runners["linux/amd64"], ["ubuntu-24.04"]);
    assert_eq!(settings.ci.install, ["cargo install image-manager"]);
    let error = parse("ci:\n  provider: jenkins\n  runners:\n    arm 64: [x]\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown CI provider `jenkins`"), "{error}");
    assert!(
        error.contains("`arm 64` in `ci.runners` is not a platform"),
        "{error}"
    );
    assert!(error.contains(":4:"), "points at the line: {error}");
}

#[test]
fn ci_install_commands_keep_their_variables_for_the_jobs_shell() {
    // One command or a list alike: `${VAR}` is the job's, even when generate-ci's
    // environment has no such variable (or has one of that name).
    for install in [
        "install: export PATH=\"${TOOLS}:$PATH\" && echo ${REGISTRY_PASSWORD}",
        "install: ['export PATH=\"${TOOLS}:$PATH\" && echo ${REGISTRY_PASSWORD}']",
    ] {
        let settings = parse(&format!("ci:\n  {install}\n")).unwrap();
        assert_eq!(
            settings.ci.install,
            ["export PATH=\"${TOOLS}:$PATH\" && echo ${REGISTRY_PASSWORD}"],
            "{install}"
        );
    }
}

#[test]
fn ci_keeps_the_proof_of_concepts_template_output_and_artifacts_keys() {
    let settings = parse(
        "ci:\n  template: ./ci-templates/\n  output: .circleci/config.yml\n  artifacts: true\n  image: ghcr.io/org/image-manager:latest\n",
    )
    .unwrap();
    assert_eq!(settings.ci.template.as_deref(), Some("./ci-templates/"));
    assert_eq!(settings.ci.output.as_deref(), Some(".circleci/config.yml"));
    assert!(settings.ci.artifacts);
    assert!(!parse("ci: {}\n").unwrap().ci.artifacts);
    let error = parse("ci:\n  templates: ci/\n").unwrap_err().to_string();
    assert!(error.contains("`templates`"), "{error}");
    assert!(error.contains("`template`"), "says what was meant: {error}");
    let error = parse("ci:\n  artifacts: sometimes\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("artifacts"), "{error}");
}
