use std::collections::BTreeMap;

use super::*;
use crate::settings::DockerFlavor;
use crate::step::{Parent, PullPolicy};
use im_oci::Platform;

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn step() -> BuildStep {
    BuildStep {
        node: "app:1".to_owned(),
        platform: Platform::linux("arm64"),
        context_dir: "/p/dist/app/1".into(),
        dockerfile: "/p/dist/app/1/Dockerfile".into(),
        image: "app:1".to_owned(),
        build_args: BTreeMap::from([("VERSION".to_owned(), "1.2.3".to_owned())]),
        labels: BTreeMap::from([
            (
                "org.opencontainers.image.title".to_owned(),
                "My app".to_owned(),
            ),
            (
                "org.opencontainers.image.version".to_owned(),
                "1".to_owned(),
            ),
        ]),
        parents: vec![Parent {
            reference: "base:1".to_owned(),
            archive: "/p/dist/base/1/linux-arm64/image.tar".into(),
        }],
        output: "/p/dist/app/1/linux-arm64/image.tar".into(),
        log: "/p/dist/app/1/linux-arm64/build.log".into(),
        source_date_epoch: Some(1_700_000_000),
        no_cache: false,
        cache: None,
        pull: PullPolicy::Never,
    }
}

fn plan(builder: &dyn Builder, step: &BuildStep) -> String {
    let digests = vec![DIGEST.to_owned(); step.parents.len()];
    builder.plan(step, &digests).unwrap().to_string()
}

/// The defaults, with the Docker client where detection would find Debian's.
fn settings() -> BuilderSettings {
    let mut settings = BuilderSettings::default();
    settings.docker.program = "/usr/bin/docker".into();
    settings
}

#[test]
fn buildah_plan() {
    let b = Buildah::new(settings().buildah);
    insta::assert_snapshot!(plan(&b, &step()));
}

#[test]
fn buildah_plan_with_configured_storage_and_no_cache() {
    let mut s = settings().buildah;
    s.storage_driver = Some("overlay".to_owned());
    s.root = Some("/var/lib/im/storage".into());
    s.runroot = Some("/run/im/storage".into());
    s.program = "/opt/buildah".into();
    let mut step = step();
    step.no_cache = true;
    step.source_date_epoch = None;
    step.parents.clear();
    insta::assert_snapshot!(plan(&Buildah::new(s), &step));
}

#[test]
fn podman_plan() {
    insta::assert_snapshot!(plan(&Podman::new(settings().podman), &step()));
}

#[test]
fn docker_plans_for_each_flavor() {
    let mut docker = settings().docker;
    docker.host = Some("unix:///run/im-docker.sock".to_owned());
    for flavor in [
        DockerFlavor::Buildx,
        DockerFlavor::BuildKit,
        DockerFlavor::Classic,
    ] {
        let name = format!("docker_plan_{flavor:?}").to_lowercase();
        insta::assert_snapshot!(name, plan(&Docker::new(docker.clone(), flavor), &step()));
    }
}

#[test]
fn buildkit_plan() {
    let mut s = settings().buildkit;
    s.addr = Some("tcp://127.0.0.1:8372".to_owned());
    let mut step = step();
    step.parents.push(Parent {
        reference: "tools:2".to_owned(),
        archive: "/p/dist/tools/2/linux-arm64/image.tar".into(),
    });
    step.no_cache = true;
    insta::assert_snapshot!(plan(&Buildkit::new(s), &step));
}

#[test]
fn plans_are_pure_functions_of_their_inputs() {
    let builders: Vec<Box<dyn Builder>> = vec![
        Box::new(Buildah::new(settings().buildah)),
        Box::new(Podman::new(settings().podman)),
        Box::new(Docker::new(settings().docker, DockerFlavor::BuildKit)),
        Box::new(Buildkit::new(settings().buildkit)),
    ];
    for b in &builders {
        assert_eq!(
            plan(b.as_ref(), &step()),
            plan(b.as_ref(), &step()),
            "{}",
            b.kind()
        );
        // Nothing of the build args or labels is split or joined: each is one argv element.
        let p = b.plan(&step(), &[DIGEST.to_owned()]).unwrap();
        let build = p
            .commands
            .iter()
            .find(|c| {
                c.args
                    .iter()
                    .any(|a| a.to_string_lossy().contains("My app"))
            })
            .unwrap();
        assert!(build.args.iter().any(|a| {
            a.to_string_lossy()
                .ends_with("org.opencontainers.image.title=My app")
        }));
    }
}

#[test]
fn the_docker_step_names_differ_between_platforms_and_steps() {
    let docker = Docker::new(settings().docker, DockerFlavor::BuildKit);
    let arm = docker.plan(&step(), &[DIGEST.to_owned()]).unwrap();
    let mut amd_step = step();
    amd_step.platform = Platform::linux("amd64");
    amd_step.output = "/p/dist/app/1/linux-amd64/image.tar".into();
    let amd = docker.plan(&amd_step, &[DIGEST.to_owned()]).unwrap();
    let tags = |p: &StepPlan| p.cleanup[0].args[1..].to_vec();
    let (arm_tags, amd_tags) = (tags(&arm), tags(&amd));
    assert_eq!(arm_tags.len(), 2);
    for t in &arm_tags {
        assert!(!amd_tags.contains(t), "{t:?} is shared by two steps");
    }
}

#[test]
fn relative_paths_and_unusable_archive_paths_are_refused() {
    let b = Buildah::new(settings().buildah);
    let mut s = step();
    s.context_dir = "dist/app/1".into();
    assert!(matches!(
        b.plan(&s, &[DIGEST.to_owned()]),
        Err(PlanError::RelativePath {
            field: "context",
            ..
        })
    ));
    let mut s = step();
    s.output = "/p/dist/app/1:x/linux-arm64/image.tar".into();
    let err = b.plan(&s, &[DIGEST.to_owned()]).unwrap_err();
    insta::assert_snapshot!(err.to_string(), @"app:1: the path /p/dist/app/1:x/linux-arm64/.im-build/image.tar cannot be used with buildah: it contains `:`, which separates an oci-archive path from its image name");
    assert!(matches!(
        b.plan(&step(), &[]),
        Err(PlanError::ParentDigests {
            expected: 1,
            given: 0,
            ..
        })
    ));
}

#[test]
fn builder_kind_round_trips_through_its_name() {
    for kind in BuilderKind::ALL {
        assert_eq!(kind.as_str().parse::<BuilderKind>(), Ok(kind));
    }
    assert_eq!(
        "kaniko".parse::<BuilderKind>().unwrap_err().to_string(),
        "unknown builder `kaniko` (expected buildah, docker, buildkit or podman)"
    );
}

#[test]
fn a_step_serialises_to_json_for_plan_output() {
    insta::assert_snapshot!(serde_json::to_string_pretty(&step()).unwrap());
}

#[test]
fn only_the_parents_loads_and_the_cleanup_touch_the_store() {
    let digests = [DIGEST.to_owned()];
    let subcommand = |c: &CommandSpec| {
        c.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .find(|a| {
                ["pull", "load", "bud", "build", "buildx", "save", "rmi"].contains(&a.as_str())
            })
            .unwrap_or_default()
    };
    let buildah = Buildah::new(settings().buildah)
        .plan(&step(), &digests)
        .unwrap();
    assert_eq!(
        buildah.loads.iter().map(subcommand).collect::<Vec<_>>(),
        ["pull"]
    );
    assert_eq!(
        buildah.commands.iter().map(subcommand).collect::<Vec<_>>(),
        ["bud"]
    );
    let docker = Docker::new(settings().docker, DockerFlavor::Classic)
        .plan(&step(), &digests)
        .unwrap();
    assert_eq!(
        docker.loads.iter().map(subcommand).collect::<Vec<_>>(),
        ["load"]
    );
    assert_eq!(
        docker.commands.iter().map(subcommand).collect::<Vec<_>>(),
        ["build", "save"]
    );
    let buildkit = Buildkit::new(settings().buildkit)
        .plan(&step(), &digests)
        .unwrap();
    assert!(
        buildkit.loads.is_empty(),
        "buildctl reads parents as OCI layouts"
    );
}

/// The secret of every cache test: it must never appear in a plan, a display or a debug dump.
const CANARY: &str = "canary-secret-7d3f9a";

fn s3_cache() -> crate::cache::StepCache {
    crate::cache::StepCache::S3 {
        endpoint: Some("http://127.0.0.1:3900".into()),
        bucket: "buildkit-cache".into(),
        region: "garage".into(),
        use_path_style: true,
        name: "app-linux-arm64".into(),
        credentials: Some(crate::cache::S3Credentials {
            access_key: "GK0123456789abcdef".into(),
            secret_key: CANARY.into(),
        }),
    }
}

fn registry_cache() -> crate::cache::StepCache {
    crate::cache::StepCache::Registry {
        repository: "127.0.0.1:5050/cache/app".into(),
        tag: "app-linux-arm64".into(),
        insecure: true,
    }
}

fn with_cache(cache: crate::cache::StepCache) -> BuildStep {
    BuildStep {
        cache: Some(cache),
        ..step()
    }
}

#[test]
fn buildkit_plan_with_an_s3_cache() {
    let b = Buildkit::new(settings().buildkit);
    insta::assert_snapshot!(plan(&b, &with_cache(s3_cache())));
}

#[test]
fn buildkit_plan_with_the_github_actions_cache() {
    let b = Buildkit::new(settings().buildkit);
    let step = with_cache(crate::cache::StepCache::Gha {
        scope: "app-linux-arm64".into(),
    });
    insta::assert_snapshot!(plan(&b, &step));
}

#[test]
fn buildkit_plan_with_a_registry_and_a_local_cache() {
    let b = Buildkit::new(settings().buildkit);
    let local = with_cache(crate::cache::StepCache::Local {
        dir: "/p/.image-manager/cache/app-linux-arm64".into(),
    });
    insta::assert_snapshot!(format!(
        "{}\n{}",
        plan(&b, &with_cache(registry_cache())),
        plan(&b, &local)
    ));
}

#[test]
fn buildah_and_docker_plans_with_a_registry_cache() {
    let buildah = Buildah::new(settings().buildah);
    let engine = Docker::new(settings().docker, DockerFlavor::BuildKit);
    let buildx = Docker::new(settings().docker, DockerFlavor::Buildx);
    let step = with_cache(registry_cache());
    insta::assert_snapshot!(format!(
        "{}\n{}\n{}",
        plan(&buildah, &step),
        plan(&engine, &step),
        plan(&buildx, &step)
    ));
}

#[test]
fn the_s3_secret_reaches_the_environment_only() {
    let step = with_cache(s3_cache());
    let digests = vec![DIGEST.to_owned(); step.parents.len()];
    let planned = Buildkit::new(settings().buildkit)
        .plan(&step, &digests)
        .unwrap();
    let shown = format!("{planned}\n{planned:?}\n{step:?}");
    assert!(!shown.contains(CANARY), "{shown}");
    let build = &planned.commands[0];
    assert!(
        build
            .args
            .iter()
            .all(|a| !a.to_string_lossy().contains(CANARY))
    );
    assert_eq!(
        build
            .secret_env
            .get(std::ffi::OsStr::new("AWS_SECRET_ACCESS_KEY")),
        Some(&im_diag::Secret::new(CANARY))
    );
    let json = serde_json::to_string(&step).unwrap();
    assert!(!json.contains(CANARY), "{json}");
}

#[test]
fn a_builder_that_cannot_use_the_cache_fails_to_plan() {
    let step = with_cache(s3_cache());
    let digests = vec![DIGEST.to_owned(); step.parents.len()];
    let error = Buildah::new(settings().buildah)
        .plan(&step, &digests)
        .unwrap_err();
    assert!(matches!(error, PlanError::Cache { .. }), "{error}");
}
