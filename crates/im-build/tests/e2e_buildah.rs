//! End-to-end builds with real buildah (and podman): a base → app → variant chain for
//! linux/amd64 and linux/arm64 (under qemu) built in parallel without any registry,
//! the multi-platform layout, parallelism of independent images, a failing Dockerfile,
//! and cancellation.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use im_build::{
    BuildError, CancelToken, NodeOutcome, RunError, execute_step, write_multi_platform_layout,
};
use im_testkit::Platform::{LinuxAmd64, LinuxArm64};

fn check_binfmt() {
    assert!(
        std::path::Path::new("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists(),
        "the qemu-aarch64 binfmt handler is not registered: scripts/setup should have installed qemu-user-static"
    );
}

#[test]
fn buildah_builds_a_chain_for_two_platforms_in_parallel_from_just_built_parents() {
    check_binfmt();
    let project = Project::new();
    let storage = tempfile::tempdir().unwrap();
    let builder = buildah(storage.path());
    let platforms = [LinuxAmd64, LinuxArm64];
    let (steps, deps) = chain_steps(&project, &platforms);
    let (outcomes, timeline) = build_all(&builder, &steps, deps, 2, &CancelToken::new());
    for (outcome, step) in outcomes.iter().zip(&steps) {
        let built = expect_built(outcome, step);
        assert_eq!(built.archive, step.output);
        assert_eq!(built.platform.architecture, step.platform.architecture);
    }
    check_chain(&project, &platforms);
    // The two platforms' chains ran side by side.
    assert!(
        timeline.overlap(1, 4) || timeline.overlap(0, 3) || timeline.overlap(2, 5),
        "{timeline:?}"
    );
    // buildah's step lines reached the progress callback.
    assert!(
        timeline.progress[&1]
            .iter()
            .any(|l| l.starts_with("2/5 RUN cat /base.txt")),
        "{:?}",
        timeline.progress
    );
    // Progress names parents as the Dockerfile does, not as rewritten for the builder.
    assert!(
        timeline.progress[&1].iter().any(|l| l == "1/5 FROM base:1"),
        "{:?}",
        timeline.progress
    );
    // The multi-platform layout lists both platforms, and skopeo reads each one from it.
    let dist = project.dist("variant", "1").join("image.tar");
    let archives: Vec<_> = platforms
        .iter()
        .map(|&p| project.output("variant", "1", &platform(p)))
        .collect();
    let layout = write_multi_platform_layout(&archives, &dist, "variant:1").unwrap();
    let listed: Vec<String> = layout
        .manifests
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert_eq!(listed, ["linux/amd64", "linux/arm64/v8"]);
    let raw = im_testkit::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci-archive:{}", dist.display())),
    );
    let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["manifests"][1]["platform"]["architecture"], "arm64");
    assert_eq!(
        index["manifests"][0]["digest"],
        layout.manifests[0].1.as_str()
    );
    assert_eq!(
        index["manifests"][1]["digest"],
        layout.manifests[1].1.as_str()
    );
    for (arch, archive) in [("amd64", &archives[0]), ("arm64", &archives[1])] {
        let out = im_testkit::run(
            Command::new("skopeo")
                .args(["--override-arch", arch, "inspect", "--config"])
                .arg(format!("oci-archive:{}", dist.display())),
        );
        let config_from_layout: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(config_from_layout, config(archive), "{arch}");
    }
}

#[test]
fn podman_builds_the_chain_from_just_built_parents() {
    check_binfmt();
    let project = Project::new();
    let storage = tempfile::tempdir().unwrap();
    let builder = podman(storage.path());
    let platforms = [LinuxAmd64, LinuxArm64];
    let (steps, deps) = chain_steps(&project, &platforms);
    let (outcomes, _) = build_all(&builder, &steps, deps, 2, &CancelToken::new());
    for (outcome, step) in outcomes.iter().zip(&steps) {
        expect_built(outcome, step);
    }
    check_chain(&project, &platforms);
}

#[test]
fn buildah_builds_two_independent_images_at_the_same_time() {
    let project = Project::new();
    let storage = tempfile::tempdir().unwrap();
    let builder = buildah(storage.path());
    let amd64 = platform(LinuxAmd64);
    let mut steps = Vec::new();
    for name in ["left", "right"] {
        project.image(
            name,
            "1",
            "FROM im-test/busybox:stable\nRUN sleep 2 && echo done > /done.txt\n",
        );
        steps.push(project.step(name, "1", &amd64, vec![busybox_parent(LinuxAmd64)]));
    }
    let (outcomes, timeline) = build_all(
        &builder,
        &steps,
        vec![vec![], vec![]],
        2,
        &CancelToken::new(),
    );
    for (outcome, step) in outcomes.iter().zip(&steps) {
        expect_built(outcome, step);
    }
    assert!(timeline.overlap(0, 1), "{timeline:?}");
}

#[test]
fn a_failing_dockerfile_fails_its_node_with_the_log_and_skips_only_its_dependents() {
    let project = Project::new();
    let storage = tempfile::tempdir().unwrap();
    let builder = buildah(storage.path());
    let amd64 = platform(LinuxAmd64);
    project.image(
        "broken",
        "1",
        "FROM im-test/busybox:stable\nRUN echo about to fail >&2 && exit 7\n",
    );
    project.image("child", "1", "FROM broken:1\n");
    project.image(
        "fine",
        "1",
        "FROM im-test/busybox:stable\nRUN echo ok > /ok.txt\n",
    );
    let steps = vec![
        project.step("broken", "1", &amd64, vec![busybox_parent(LinuxAmd64)]),
        project.step(
            "child",
            "1",
            &amd64,
            vec![parent("broken:1", project.output("broken", "1", &amd64))],
        ),
        project.step("fine", "1", &amd64, vec![busybox_parent(LinuxAmd64)]),
    ];
    let (outcomes, timeline) = build_all(
        &builder,
        &steps,
        vec![vec![], vec![0], vec![]],
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
    assert_eq!(program, "buildah");
    assert_eq!(log.as_ref(), Some(&steps[0].log));
    assert_eq!(status, "exit status: 7");
    assert!(
        stderr_tail.iter().any(|l| l.contains("exit status 7")),
        "{stderr_tail:?}"
    );
    let message = chain(error);
    assert!(
        message.contains(&format!("full log: {}", steps[0].log.display())),
        "{message}"
    );
    assert!(
        message.contains("bud --isolation chroot --platform linux/amd64"),
        "{message}"
    );
    assert!(
        fs_err::read_to_string(log.as_ref().unwrap())
            .unwrap()
            .contains("about to fail")
    );
    assert!(!steps[0].output.exists());
    assert!(matches!(outcomes[1], NodeOutcome::Skipped { because: 0 }));
    assert_eq!(timeline.skipped.get(&1), Some(&0));
    expect_built(&outcomes[2], &steps[2]);
}

#[test]
fn cancelling_a_build_stops_it_quickly_and_leaves_no_archive() {
    let project = Project::new();
    let storage = tempfile::tempdir().unwrap();
    let builder = buildah(storage.path());
    let amd64 = platform(LinuxAmd64);
    project.image(
        "slow",
        "1",
        "FROM im-test/busybox:stable\nRUN echo begin && sleep 60\n",
    );
    let step = project.step("slow", "1", &amd64, vec![busybox_parent(LinuxAmd64)]);
    // A complete-looking archive from an earlier build must not survive either.
    fs_err::create_dir_all(step.output.parent().unwrap()).unwrap();
    fs_err::write(&step.output, b"stale").unwrap();
    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    let mut cancelled_at = None;
    let err = execute_step(&builder, &step, &cancel, &mut |line| {
        if line.contains("RUN echo begin") {
            std::thread::sleep(Duration::from_millis(300));
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
    let left = files_under(step.output.parent().unwrap());
    assert_eq!(left, ["build.log"], "only the log may remain");
}
