//! End-to-end builds with the real Docker Engine (the private dockerd of `scripts/setup`,
//! Debian's 20.10 client): the base → app → variant chain for linux/amd64 and
//! linux/arm64 (under qemu) built in parallel with the engine's BuildKit and with the
//! classic builder, parents loaded from the archives just built and never pulled; a
//! failing Dockerfile; cancellation.

mod common;

use std::time::{Duration, Instant};

use common::*;
use im_build::{
    BuildError, Builder, CancelToken, DockerFlavor, NodeOutcome, RunError, execute_step,
};
use im_testkit::Platform::{LinuxAmd64, LinuxArm64};

fn check_binfmt() {
    assert!(
        std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(),
        "the qemu-aarch64 binfmt handler is not registered: scripts/setup should have installed qemu-user-static"
    );
}

fn chain_with(flavor: DockerFlavor) {
    check_binfmt();
    let project = Project::new();
    let builder = docker(flavor);
    let platforms = [LinuxAmd64, LinuxArm64];
    let (steps, deps) = chain_steps(&project, &platforms);
    let (outcomes, timeline) = build_all(&builder, &steps, deps, 2, &CancelToken::new());
    for (outcome, step) in outcomes.iter().zip(&steps) {
        expect_built(outcome, step);
    }
    check_chain(&project, &platforms);
    assert!(
        timeline.overlap(1, 4) || timeline.overlap(0, 3) || timeline.overlap(2, 5),
        "{timeline:?}"
    );
    assert!(
        timeline.progress[&1]
            .iter()
            .any(|l| l.contains("RUN cat /base.txt")),
        "{:?}",
        timeline.progress
    );
    // The step-unique tags are gone from the daemon.
    let env = im_testkit::docker();
    let digest =
        "sha256:0000000000000000000000000000000000000000000000000000000000000000".to_owned();
    for step in &steps {
        let plan = builder
            .plan(step, &vec![digest.clone(); step.parents.len()])
            .unwrap();
        for tag in &plan.cleanup[0].args[1..] {
            let out = env
                .command()
                .args(["image", "inspect"])
                .arg(tag)
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "{} was left in the daemon",
                tag.display()
            );
        }
    }
}

#[test]
fn docker_engine_buildkit_builds_a_chain_for_two_platforms_in_parallel() {
    chain_with(DockerFlavor::BuildKit);
}

#[test]
fn docker_classic_builder_builds_a_chain_for_two_platforms_in_parallel() {
    chain_with(DockerFlavor::Classic);
}

#[test]
fn docker_a_failing_dockerfile_names_the_command_status_stderr_and_log() {
    let project = Project::new();
    let builder = docker(DockerFlavor::BuildKit);
    let amd64 = platform(LinuxAmd64);
    project.image(
        "broken",
        "1",
        "FROM im-test/busybox:stable\nRUN echo about to fail && exit 7\n",
    );
    project.image("child", "1", "FROM broken:1\n");
    let steps = vec![
        project.step("broken", "1", &amd64, vec![busybox_parent(LinuxAmd64)]),
        project.step(
            "child",
            "1",
            &amd64,
            vec![parent("broken:1", project.output("broken", "1", &amd64))],
        ),
    ];
    let (outcomes, _) = build_all(
        &builder,
        &steps,
        vec![vec![], vec![0]],
        2,
        &CancelToken::new(),
    );
    let NodeOutcome::Failed { error, .. } = &outcomes[0] else {
        panic!("{:?}", outcomes[0])
    };
    let BuildError::Command {
        source:
            RunError::Failed {
                program,
                stderr_tail,
                log,
                status,
                ..
            },
        ..
    } = error
    else {
        panic!("{}", chain(error))
    };
    assert_eq!(program, "docker");
    assert_eq!(status, "exit status: 1");
    assert!(
        stderr_tail.iter().any(|l| l.contains("exit code: 7")),
        "{stderr_tail:?}"
    );
    assert_eq!(log.as_ref(), Some(&steps[0].log));
    let message = chain(error);
    assert!(
        message.contains("DOCKER_BUILDKIT=1 DOCKER_HOST="),
        "{message}"
    );
    assert!(
        message.contains(&format!("full log: {}", steps[0].log.display())),
        "{message}"
    );
    assert!(
        fs_err::read_to_string(log.as_ref().unwrap())
            .unwrap()
            .contains("about to fail")
    );
    assert!(!steps[0].output.exists());
    assert!(matches!(outcomes[1], NodeOutcome::Skipped { because: 0 }));
}

#[test]
fn docker_cancelling_a_build_stops_it_quickly_and_leaves_no_archive() {
    let project = Project::new();
    let builder = docker(DockerFlavor::BuildKit);
    let amd64 = platform(LinuxAmd64);
    project.image(
        "slow",
        "1",
        "FROM im-test/busybox:stable\nRUN echo begin && sleep 60\n",
    );
    let step = project.step("slow", "1", &amd64, vec![busybox_parent(LinuxAmd64)]);
    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    let mut cancelled_at = None;
    let err = execute_step(&builder, &step, &cancel, &mut |line| {
        if line.contains("RUN echo begin") && cancelled_at.is_none() {
            std::thread::sleep(Duration::from_millis(500));
            canceller.cancel();
            cancelled_at = Some(Instant::now());
        }
    })
    .unwrap_err();
    let took = cancelled_at.expect("the RUN step was reported").elapsed();
    assert!(
        matches!(err, BuildError::Cancelled { .. }),
        "{}",
        chain(&err)
    );
    assert!(took < Duration::from_secs(3), "stopping took {took:?}");
    assert_eq!(files_under(step.output.parent().unwrap()), ["build.log"]);
}

#[test]
fn detection_finds_buildah_first_and_the_engine_buildkit_for_debians_docker_client() {
    use im_build::{BuilderKind, BuilderSettings, SystemLookup, detect};
    let lookup = SystemLookup::new(std::env::var_os("PATH"));
    let choice = detect(&BuilderSettings::default(), &lookup).unwrap();
    assert_eq!(choice.kind, BuilderKind::Buildah, "{}", choice.reason);

    let env = im_testkit::docker();
    let mut settings = BuilderSettings {
        kind: Some(BuilderKind::Docker),
        ..BuilderSettings::default()
    };
    settings.docker.program = env.bin().to_owned();
    settings.docker.host = Some(env.host().to_owned());
    let choice = detect(&settings, &lookup).unwrap();
    assert_eq!(
        choice.docker_flavor,
        Some(DockerFlavor::BuildKit),
        "{}",
        choice.reason
    );
    assert!(choice.reason.contains(env.host()), "{}", choice.reason);

    settings.docker.host = Some("unix:///nonexistent/docker.sock".to_owned());
    let err = detect(&settings, &lookup).unwrap_err();
    assert!(err.to_string().contains("does not answer"), "{err}");
}
