//! The runtimes against each other: podman and buildah must give the command tests of the
//! busybox config the same verdicts as Docker (which the differential tests hold to
//! container-structure-test), and a foreign platform runs under qemu.

mod common;

use std::ffi::OsString;
use std::sync::Arc;

use im_structure_test::{
    CliRuntime, Driver, ImageSource, Runtime, RuntimeKind, SuiteOptions, Target, TestKind,
    load_config, parse_config, run_suite,
};

/// A runtime that uses the program and global arguments of a prepared `Command`.
fn runtime_from(kind: RuntimeKind, command: &std::process::Command, log: &str) -> CliRuntime {
    let env: Vec<(OsString, OsString)> = command
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let args: Vec<OsString> = command.get_args().map(ToOwned::to_owned).collect();
    CliRuntime::new(
        kind,
        command.get_program().into(),
        args,
        env,
        Some(common::log(log)),
    )
}

fn command_verdicts(runtime: Arc<dyn Runtime>) -> Vec<(String, bool, Vec<String>)> {
    let images = common::images();
    let config_path = common::data("busybox.yaml");
    let mut config = load_config(&config_path).unwrap();
    config.file_existence_tests.clear();
    config.file_content_tests.clear();
    config.metadata_test = None;
    config.license_tests.clear();
    let target = Target {
        label: "busybox".into(),
        source: ImageSource::Archive {
            path: images.busybox.clone(),
            tag: None,
        },
        platform: None,
    };
    let report = run_suite(
        &config,
        &config_path,
        &target,
        &Driver::Native {
            runtime: Some(runtime),
        },
        &SuiteOptions::default(),
    );
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(report.results.len(), config.command_tests.len());
    report
        .results
        .iter()
        .map(|r| {
            (
                r.name.clone(),
                r.pass,
                r.failures
                    .iter()
                    .map(|f| format!("{} / {:?}", f.message, f.found))
                    .collect(),
            )
        })
        .collect()
}

fn same_verdicts(kind: RuntimeKind, runtime: Arc<dyn Runtime>) {
    let docker: Vec<(String, bool)> = command_verdicts(common::docker_runtime())
        .into_iter()
        .map(|(n, p, _)| (n, p))
        .collect();
    let other = command_verdicts(runtime);
    for ((name, docker_pass), (other_name, other_pass, failures)) in docker.iter().zip(&other) {
        assert_eq!(name, other_name);
        assert_eq!(
            docker_pass,
            other_pass,
            "{}: `{name}`: docker {docker_pass}, {} {other_pass}: {failures:?}",
            kind.name(),
            kind.name()
        );
    }
}

#[test]
fn podman_gives_dockers_verdicts() {
    let storage = tempfile::tempdir().unwrap();
    let command = im_testkit::podman_cmd(storage.path());
    let podman = runtime_from(RuntimeKind::Podman, &command, "podman")
        .with_run_args(vec!["--network=host".into()]);
    same_verdicts(RuntimeKind::Podman, Arc::new(podman));
}

#[test]
fn buildah_gives_dockers_verdicts() {
    let storage = tempfile::tempdir().unwrap();
    let command = im_testkit::buildah_cmd(storage.path());
    let buildah = runtime_from(RuntimeKind::Buildah, &command, "buildah");
    same_verdicts(RuntimeKind::Buildah, Arc::new(buildah));
}

#[test]
fn a_foreign_platform_runs_under_qemu_and_a_mismatch_names_both() {
    let image = im_testkit::busybox_base_image(im_testkit::Platform::LinuxArm64);
    let storage = tempfile::tempdir().unwrap();
    let buildah: Arc<dyn Runtime> = Arc::new(runtime_from(
        RuntimeKind::Buildah,
        &im_testkit::buildah_cmd(storage.path()),
        "buildah-arm64",
    ));
    let config = parse_config(
        std::path::Path::new("arm64.yaml"),
        "schemaVersion: 2.0.0\n\
         commandTests:\n  - name: machine\n    command: uname\n    args: [-m]\n    expectedOutput: ['^aarch64']\n\
         fileExistenceTests:\n  - name: busybox\n    path: /bin/busybox\n    permissions: '-rwxr-xr-x'\n"
            .to_owned(),
    )
    .unwrap();
    let arm64 = Target {
        label: "busybox arm64".into(),
        source: ImageSource::Archive {
            path: image.oci_archive().to_owned(),
            tag: None,
        },
        platform: Some("linux/arm64".parse().unwrap()),
    };
    let driver = Driver::Native {
        runtime: Some(buildah),
    };
    let report = run_suite(
        &config,
        "arm64.yaml".as_ref(),
        &arm64,
        &driver,
        &SuiteOptions::default(),
    );
    assert!(report.ok(), "{report:#?}");
    assert_eq!(
        report
            .results
            .iter()
            .filter(|r| r.kind == TestKind::Command)
            .count(),
        1
    );

    let amd64 = Target {
        platform: Some("linux/amd64".parse().unwrap()),
        ..arm64
    };
    let report = run_suite(
        &config,
        "arm64.yaml".as_ref(),
        &amd64,
        &driver,
        &SuiteOptions::default(),
    );
    let error = report.error.expect("a platform mismatch is an error");
    assert!(
        error.contains("linux/amd64") && error.contains("linux/arm64"),
        "{error}"
    );
}

#[test]
fn docker_runs_command_tests_of_an_oci_archive() {
    let image = im_testkit::busybox_base_image(im_testkit::Platform::LinuxAmd64);
    let config = parse_config(
        std::path::Path::new("oci.yaml"),
        "schemaVersion: 2.0.0\n\
         commandTests:\n  - name: shell\n    command: sh\n    args: [-c, 'echo from $(uname -m)']\n    expectedOutput: ['^from x86_64']\n"
            .to_owned(),
    )
    .unwrap();
    let target = Target {
        label: "busybox oci".into(),
        source: ImageSource::Archive {
            path: image.oci_archive().to_owned(),
            tag: None,
        },
        platform: Some("linux/amd64".parse().unwrap()),
    };
    let driver = Driver::Native {
        runtime: Some(common::docker_runtime()),
    };
    let report = run_suite(
        &config,
        "oci.yaml".as_ref(),
        &target,
        &driver,
        &SuiteOptions::default(),
    );
    assert!(report.ok(), "{report:#?}");
}
