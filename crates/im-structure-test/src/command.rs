//! Command tests, run through a [`Runtime`] with container-structure-test's semantics.
//!
//! For each test: a fresh session on the image; its `setup` commands (each sees the previous
//! ones' changes); the command (`command` + `args`, with `$VAR`s of the image's environment
//! substituted as container-structure-test does); then its `teardown` commands. The
//! environment is the config's `globalEnvVars`, `containerRunOptions.envVars` and the test's
//! own `envVars`, values expanded against the image's environment. Output is checked with Go
//! regex semantics: `expectedOutput`/`excludedOutput` on stdout, `expectedError`/
//! `excludedError` on stderr, and the exit code.
//!
//! Tests run `jobs` at a time: each has its own container, so they cannot see each other.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::config::{CommandTest, EnvVar, TestConfig};
use crate::expand::expand;
use crate::metadata::ImageMetadata;
use crate::native::check_patterns;
use crate::report::{Failure, TestKind, TestResult};
use crate::runtime::{LoadedImage, RunSpec, Runtime, RuntimeError};

fn env_pairs(vars: &[EnvVar], image: &ImageMetadata) -> Vec<(String, String)> {
    vars.iter()
        .map(|v| (v.key.clone(), expand(&v.value, &image.env)))
        .collect()
}

fn spec_for(
    config: &TestConfig,
    test: &CommandTest,
    argv: Vec<String>,
    image: &ImageMetadata,
) -> RunSpec {
    let options = &config.run_options;
    let mut env = env_pairs(&config.global_env_vars, image);
    env.extend(env_pairs(&options.env_vars, image));
    env.extend(env_pairs(&test.env_vars, image));
    RunSpec {
        argv,
        env,
        user: options.user.clone(),
        privileged: options.privileged,
        capabilities: options.capabilities.clone(),
        bind_mounts: options.bind_mounts.clone(),
        env_file: options.env_file.as_ref().map(Into::into),
    }
}

/// Runs one command test.
pub fn run_command_test(
    config: &TestConfig,
    test: &CommandTest,
    runtime: &dyn Runtime,
    image: &LoadedImage,
    metadata: &ImageMetadata,
) -> TestResult {
    let start = Instant::now();
    let mut result = TestResult::new(TestKind::Command, &test.name);
    result.location = Some(test.location.to_string());
    if let Err(e) = run_in_session(config, test, runtime, image, metadata, &mut result) {
        result.fail(Failure::new("the command could not be run").found(error_chain(&e)));
    }
    result.duration = start.elapsed();
    result
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn run_in_session(
    config: &TestConfig,
    test: &CommandTest,
    runtime: &dyn Runtime,
    image: &LoadedImage,
    metadata: &ImageMetadata,
    result: &mut TestResult,
) -> Result<(), RuntimeError> {
    let mut session = runtime.session(image)?;
    let outcome = (|| {
        for (i, setup) in test.setup.iter().enumerate() {
            let output = session.setup(&spec_for(config, test, setup.clone(), metadata))?;
            if output.exit_code != 0 {
                result.fail(
                    Failure::new(format!(
                        "setup command {} exited with {}",
                        i + 1,
                        output.exit_code
                    ))
                    .expected("exit code 0")
                    .found(format!("{}{}", output.stdout, output.stderr)),
                );
            }
        }
        let mut argv = vec![expand(&test.command, &metadata.env)];
        argv.extend(test.args.iter().map(|a| expand(a, &metadata.env)));
        let output = session.run(&spec_for(config, test, argv, metadata))?;
        check_patterns(result, &test.expected_error, &output.stderr, true, "error");
        check_patterns(result, &test.excluded_error, &output.stderr, false, "error");
        check_patterns(
            result,
            &test.expected_output,
            &output.stdout,
            true,
            "output",
        );
        check_patterns(
            result,
            &test.excluded_output,
            &output.stdout,
            false,
            "output",
        );
        if output.exit_code != test.exit_code {
            result.fail(
                Failure::new(format!(
                    "Test '{}' exited with incorrect error code",
                    test.name
                ))
                .expected(test.exit_code.to_string())
                .found(output.exit_code.to_string()),
            );
        }
        result.stdout = Some(output.stdout);
        result.stderr = Some(output.stderr);
        // Teardown runs for its side effects only; container-structure-test ignores its result.
        for teardown in &test.teardown {
            session.run(&spec_for(config, test, teardown.clone(), metadata))?;
        }
        Ok(())
    })();
    let closed = session.close();
    outcome.and(closed)
}

/// Runs every command test of `config`, `jobs` at a time; results keep the config's order.
pub fn run_command_tests(
    config: &TestConfig,
    runtime: &dyn Runtime,
    image: &LoadedImage,
    metadata: &ImageMetadata,
    jobs: usize,
) -> Vec<TestResult> {
    let tests = &config.command_tests;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<TestResult>>> = Mutex::new(vec![None; tests.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, tests.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(test) = tests.get(i) else { break };
                    let result = run_command_test(config, test, runtime, image, metadata);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
