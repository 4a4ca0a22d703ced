//! File existence, file content, metadata and license tests, evaluated on an image's
//! flattened filesystem ([`im_oci::FsView`]) and config: no daemon, no container, nothing
//! extracted onto the host.
//!
//! The checks and their messages follow container-structure-test 1.19:
//! - existence and permissions look at the path itself (`lstat`: a symlink is `Lrwxrwxrwx`),
//!   after substituting the image's environment and the `globalEnvVars` into the path
//!   (`$HOME/.profile`); content tests use their path as written;
//! - content is read through symlinks, the way a process in the container reads it;
//! - `uid`/`gid` are checked from the layer headers (container-structure-test's tar driver
//!   cannot check them at all);
//! - licenses: every directory under `/usr/share/doc` (but `libgnutls30`) must have a
//!   `copyright` file, and no checked file may mention AGPL or WTFPL.
//!
//! Every file the tests read is read in one batch, each layer at most once.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use im_oci::{FileKind, FsView, Image, ReadFileError};

use crate::config::{
    EnvVar, FileContentTest, FileExistenceTest, LicenseTest, MetadataTest, TestConfig,
};
use crate::expand::{expand, overlay};
use crate::filemode::mode_string;
use crate::goregex;
use crate::metadata::ImageMetadata;
use crate::report::{Failure, TestKind, TestResult};

const DEBIAN_DOC_ROOT: &str = "/usr/share/doc";
const LICENSE_FILE: &str = "copyright";
const LICENSE_ALLOWED_PACKAGES: &[&str] = &["libgnutls30"];
const LICENSE_FORBIDDEN: &[&str] = &["AGPL", "WTFPL"];

/// Runs every non-command test of `config` on `image` (whose filesystem is `view`).
pub fn run_static_tests(config: &TestConfig, image: &Image, view: &FsView) -> Vec<TestResult> {
    let metadata = ImageMetadata::from_config(image.config());
    let path_env = overlay(&metadata.env, &config.global_env_vars);
    let files = Files::load(config, image, view);
    let mut results = Vec::new();
    for test in &config.file_existence_tests {
        results.push(timed(
            || existence(test, view, &path_env),
            test.location.to_string(),
        ));
    }
    for test in &config.file_content_tests {
        results.push(timed(|| content(test, &files), test.location.to_string()));
    }
    if let Some(test) = &config.metadata_test {
        results.push(timed(
            || metadata_test(test, &metadata),
            test.location.to_string(),
        ));
    }
    for test in &config.license_tests {
        results.push(timed(
            || license(test, view, &files),
            test.location.to_string(),
        ));
    }
    results
}

fn timed(run: impl FnOnce() -> TestResult, location: String) -> TestResult {
    let start = Instant::now();
    let mut result = run();
    result.duration = start.elapsed();
    result.location = Some(location);
    result
}

/// The contents of every file the tests read, loaded in one pass.
struct Files {
    contents: HashMap<String, Result<Vec<u8>, String>>,
}

impl Files {
    fn load(config: &TestConfig, image: &Image, view: &FsView) -> Self {
        let mut paths: Vec<String> = config
            .file_content_tests
            .iter()
            .map(|t| t.path.clone())
            .collect();
        for test in &config.license_tests {
            paths.extend(test.files.iter().cloned());
            if test.debian {
                paths.extend(debian_packages(view).into_iter().map(|p| license_path(&p)));
            }
        }
        paths.sort();
        paths.dedup();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let read = image.read_files(view, &refs);
        let contents = paths
            .into_iter()
            .zip(read)
            .map(|(path, result)| (path, result.map_err(|e| describe(&e))))
            .collect();
        Self { contents }
    }

    fn get(&self, path: &str) -> Result<&[u8], String> {
        match self.contents.get(path) {
            Some(Ok(bytes)) => Ok(bytes),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("{path} was not loaded")),
        }
    }
}

fn describe(error: &ReadFileError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn existence(
    test: &FileExistenceTest,
    view: &FsView,
    env: &BTreeMap<String, String>,
) -> TestResult {
    let mut result = TestResult::new(TestKind::FileExistence, &test.name);
    let path = expand(&test.path, env);
    let info = match view.lstat(&path) {
        Ok(info) => info,
        Err(e) => {
            if test.should_exist {
                result.fail(
                    Failure::new(format!("File {path} should exist but does not"))
                        .expected("exists")
                        .found(e.to_string()),
                );
            }
            return result;
        }
    };
    if !test.should_exist {
        result.fail(
            Failure::new(format!("File {path} should not exist but does"))
                .expected("absent")
                .found(mode_string(&info)),
        );
    }
    let mode = mode_string(&info);
    if let Some(expected) = &test.permissions
        && *expected != mode
    {
        result.fail(
            Failure::new(format!("{path} has incorrect permissions"))
                .expected(expected.clone())
                .found(&mode),
        );
    }
    if let Some(who) = &test.is_executable_by {
        let bits = match who.as_str() {
            "any" => 0o111,
            "owner" => 0o100,
            "group" => 0o010,
            _ => 0o001,
        };
        if info.mode & bits == 0 {
            result.fail(
                Failure::new(format!("{path} has incorrect executable bit"))
                    .expected(format!("executable by {who}"))
                    .found(&mode),
            );
        }
    }
    if let Some(uid) = test.uid
        && u64::try_from(uid).ok() != Some(info.uid)
    {
        result.fail(
            Failure::new(format!("{path} has incorrect user ownership"))
                .expected(uid.to_string())
                .found(info.uid.to_string()),
        );
    }
    if let Some(gid) = test.gid
        && u64::try_from(gid).ok() != Some(info.gid)
    {
        result.fail(
            Failure::new(format!("{path} has incorrect group ownership"))
                .expected(gid.to_string())
                .found(info.gid.to_string()),
        );
    }
    result
}

/// Checks `patterns` against `text`: each must match (`expected`) or must not (`excluded`).
pub(crate) fn check_patterns(
    result: &mut TestResult,
    patterns: &[String],
    text: &str,
    expected: bool,
    what: &str,
) {
    for pattern in patterns {
        if goregex::compile(pattern).is_err() {
            result.fail(
                Failure::new(format!(
                    "invalid regular expression '{pattern}' in {what} checks"
                ))
                .expected(pattern.clone()),
            );
            continue;
        }
        if !goregex::check(pattern, text, expected) {
            let message = if expected {
                format!("Expected string '{pattern}' not found in {what}")
            } else {
                format!("Excluded string '{pattern}' found in {what}")
            };
            let expectation = if expected {
                format!("matches '{pattern}'")
            } else {
                format!("does not match '{pattern}'")
            };
            result.fail(Failure::new(message).expected(expectation).found(text));
        }
    }
}

fn content(test: &FileContentTest, files: &Files) -> TestResult {
    let mut result = TestResult::new(TestKind::FileContent, &test.name);
    match files.get(&test.path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            check_patterns(
                &mut result,
                &test.expected_contents,
                &text,
                true,
                "file content",
            );
            check_patterns(
                &mut result,
                &test.excluded_contents,
                &text,
                false,
                "file content",
            );
        }
        Err(e) => result.fail(
            Failure::new(format!("Failed to open {}", test.path))
                .expected("a readable regular file")
                .found(e),
        ),
    }
    result
}

fn env_matches(pair: &EnvVar, actual: &str) -> bool {
    if pair.is_regex {
        goregex::check(&pair.value, actual, true)
    } else {
        pair.value == actual
    }
}

fn metadata_test(test: &MetadataTest, image: &ImageMetadata) -> TestResult {
    let mut result = TestResult::new(TestKind::Metadata, "");
    for pair in &test.env_vars {
        match image.env.get(&pair.key) {
            Some(value) if env_matches(pair, value) => {}
            Some(value) => result.fail(
                Failure::new(format!(
                    "env var {} value does not match expected value",
                    pair.key
                ))
                .expected(pair.value.clone())
                .found(value),
            ),
            None => result.fail(
                Failure::new(format!("variable {} not found in image env", pair.key))
                    .expected(pair.value.clone()),
            ),
        }
    }
    for pair in &test.unbound_env_vars {
        if let Some(value) = image.env.get(&pair.key) {
            result.fail(
                Failure::new(format!(
                    "env variable {} should not be present in image metadata",
                    pair.key
                ))
                .expected("unset")
                .found(value),
            );
        }
    }
    for pair in &test.labels {
        match image.labels.get(&pair.key) {
            Some(value) if env_matches(pair, value) => {}
            Some(value) => result.fail(
                Failure::new(format!(
                    "label {} value does not match expected value",
                    pair.key
                ))
                .expected(pair.value.clone())
                .found(value),
            ),
            None => result.fail(
                Failure::new(format!("label {} not found in image metadata", pair.key))
                    .expected(pair.value.clone()),
            ),
        }
    }
    if let Some(cmd) = &test.cmd
        && *cmd != image.cmd
    {
        result.fail(
            Failure::new("Image Cmd does not match expected Cmd")
                .expected(format!("{cmd:?}"))
                .found(format!("{:?}", image.cmd)),
        );
    }
    if let Some(entrypoint) = &test.entrypoint
        && *entrypoint != image.entrypoint
    {
        result.fail(
            Failure::new("Image entrypoint does not match expected entrypoint")
                .expected(format!("{entrypoint:?}"))
                .found(format!("{:?}", image.entrypoint)),
        );
    }
    if let Some(workdir) = &test.workdir
        && *workdir != image.workdir
    {
        result.fail(
            Failure::new("Image workdir does not match config workdir")
                .expected(workdir.clone())
                .found(&image.workdir),
        );
    }
    if let Some(user) = &test.user
        && *user != image.user
    {
        result.fail(
            Failure::new("Image user does not match config user")
                .expected(user.clone())
                .found(&image.user),
        );
    }
    for port in &test.exposed_ports {
        if !image.exposes(port) {
            result.fail(
                Failure::new(format!("Port {port} not found in config"))
                    .expected(port.clone())
                    .found(format!("{:?}", image.exposed_ports)),
            );
        }
    }
    for port in &test.unexposed_ports {
        if image.exposes(port) {
            result.fail(
                Failure::new(format!("Port {port} should not be exposed"))
                    .found(format!("{:?}", image.exposed_ports)),
            );
        }
    }
    for volume in &test.volumes {
        if !image.volumes.contains(volume) {
            result.fail(
                Failure::new(format!("Volume {volume} not found in config"))
                    .expected(volume.clone())
                    .found(format!("{:?}", image.volumes)),
            );
        }
    }
    for volume in &test.unmounted_volumes {
        if image.volumes.contains(volume) {
            result.fail(
                Failure::new(format!("Volume {volume} should not be mounted"))
                    .found(format!("{:?}", image.volumes)),
            );
        }
    }
    result
}

fn debian_packages(view: &FsView) -> Vec<String> {
    view.read_dir(DEBIAN_DOC_ROOT)
        .map(|entries| {
            entries
                .into_iter()
                .filter(|(name, info)| {
                    info.kind == FileKind::Directory
                        && !LICENSE_ALLOWED_PACKAGES.contains(&name.as_str())
                })
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default()
}

fn license_path(package: &str) -> String {
    format!("{DEBIAN_DOC_ROOT}/{package}/{LICENSE_FILE}")
}

fn check_license_file(result: &mut TestResult, path: &str, files: &Files) {
    match files.get(path) {
        Ok(bytes) => {
            let upper = String::from_utf8_lossy(bytes).to_uppercase();
            for word in LICENSE_FORBIDDEN {
                if upper.contains(word) {
                    result.fail(
                        Failure::new(format!(
                            "Invalid license for {path}, license contains {word}"
                        ))
                        .found(*word),
                    );
                }
            }
        }
        Err(e) => result.fail(Failure::new(format!("Error reading license file {path}")).found(e)),
    }
}

fn license(test: &LicenseTest, view: &FsView, files: &Files) -> TestResult {
    let mut result = TestResult::new(TestKind::License, "");
    if test.debian {
        if let Err(e) = view.read_dir(DEBIAN_DOC_ROOT) {
            result.fail(
                Failure::new("Error reading directory")
                    .expected(DEBIAN_DOC_ROOT)
                    .found(e.to_string()),
            );
            return result;
        }
        for package in debian_packages(view) {
            check_license_file(&mut result, &license_path(&package), files);
        }
    }
    for file in &test.files {
        check_license_file(&mut result, file, files);
    }
    result
}
