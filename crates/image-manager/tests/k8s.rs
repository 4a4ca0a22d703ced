//! `generate-k8s`: the manifests it writes are valid Kubernetes objects (checked offline
//! against the API's schemas by kubernetes-validate --strict), one Job per image tag or per
//! graph level, and no credential reaches them.

mod common;

use std::path::Path;
use std::process::Command;

use common::Project;

fn project() -> Project {
    Project::new()
        .file(
            ".image-manager.yml",
            "registry: {url: registry.example.com/acme, username: ci, password: \"${REGISTRY_PASSWORD}\"}\n",
        )
        .file("images/base/image.yml", "is_base_image: true\ntags: [1.0.0]\n")
        .file("images/base/Dockerfile", "FROM scratch\n")
        .file("images/app/image.yml", "tags: [2.0.0, 2.1.0]\n")
        .file("images/app/Dockerfile", "FROM base:1\n")
}

const ARGS: &[&str] = &[
    "generate-k8s",
    "--image",
    "registry.example.com/tools/image-manager-builder:1",
    "--repository",
    "https://git.example.com/platform/images.git",
    "--output",
];

fn generate(project: &Project, extra: &[&str]) -> common::Run {
    let output = project.path("k8s").display().to_string();
    let mut args: Vec<&str> = ARGS.to_vec();
    args.push(&output);
    args.extend(extra);
    let run = project.run_with(&args, &[("REGISTRY_PASSWORD", "s3cret-value")]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    run
}

fn validate(files: &[&Path]) {
    let output = Command::new(im_testkit::kubernetes_validate_bin())
        .arg("--strict")
        .args(files)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubernetes-validate --strict failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn jobs_and_the_cron_job_are_valid_kubernetes_objects_without_credentials() {
    let project = project();
    let run = generate(&project, &[]);
    let root = project.path("k8s");
    let jobs = [
        "jobs/build-base-1-0-0.yaml",
        "jobs/build-app-2-0-0.yaml",
        "jobs/build-app-2-1-0.yaml",
    ];
    for job in jobs {
        assert!(run.stdout.contains(job), "{}", run.stdout);
    }
    let files: Vec<std::path::PathBuf> = jobs
        .iter()
        .chain(&["refresh-bases-cronjob.yaml"])
        .map(|name| root.join(name))
        .collect();
    validate(
        &files
            .iter()
            .map(std::path::PathBuf::as_path)
            .collect::<Vec<_>>(),
    );
    let job = project.read("k8s/jobs/build-app-2-1-0.yaml");
    assert!(job.contains("- \"app:2.1.0\""), "{job}");
    let cron = project.read("k8s/refresh-bases-cronjob.yaml");
    assert!(cron.contains("- \"--refresh-bases\""), "{cron}");
    let template = project.read("k8s/kargo-analysis-template.yaml");
    assert!(
        template.contains("\"{{args.image}}:{{args.tag}}\""),
        "{template}"
    );
    for name in jobs
        .iter()
        .chain(&["refresh-bases-cronjob.yaml", "kargo-analysis-template.yaml"])
    {
        let text = fs_err::read_to_string(root.join(name)).unwrap();
        assert!(!text.contains("s3cret"), "{name}: {text}");
        assert!(text.contains("runAsUser: 1000"), "{name}");
        assert!(text.contains("allowPrivilegeEscalation: false"), "{name}");
        assert!(
            text.contains("secretName: \"registry-credentials\""),
            "{name}"
        );
    }
}

#[test]
fn per_level_gives_one_job_per_level_of_the_graph() {
    let project = project();
    generate(&project, &["--per-level", "app"]);
    let level0 = project.read("k8s/jobs/build-level-0.yaml");
    assert!(level0.contains("- \"base:1.0.0\""), "{level0}");
    let level1 = project.read("k8s/jobs/build-level-1.yaml");
    assert!(
        level1.contains("- \"app:2.0.0\"\n") && level1.contains("- \"app:2.1.0\"\n"),
        "{level1}"
    );
    validate(&[
        project.path("k8s/jobs/build-level-0.yaml").as_path(),
        project.path("k8s/jobs/build-level-1.yaml").as_path(),
    ]);
}

#[test]
fn the_builder_image_of_the_examples_renders_rootless_with_its_tools() {
    let project = Project::new();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/builder");
    for file in [
        ".image-manager.yml",
        "images/builder/image.yml",
        "images/builder/Dockerfile.jinja2",
        "images/builder/test.yml.jinja2",
        "images/builder/rootfs/etc/containers/storage.conf",
    ] {
        common::write(
            &project.path(file),
            &fs_err::read_to_string(source.join(file)).unwrap(),
        );
    }
    project.ok(&["check"]);
    project.ok(&["generate"]);
    let dockerfile = project.read("dist/image-manager-builder/1.0.0/Dockerfile");
    for wanted in [
        "buildah skopeo git",
        "USER 1000",
        "RUN image-manager --version",
        "COPY --chown=0:0 rootfs/ /",
    ] {
        assert!(
            dockerfile.contains(wanted),
            "no `{wanted}` in:\n{dockerfile}"
        );
    }
}
