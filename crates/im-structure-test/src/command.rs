//! Command tests, run through a [`Runtime`] with container-structure-test's semantics.
//!
//! For each test: a fresh session on the image; its `setup` commands (each sees the previous
//! ones' changes); the command; then its `teardown` commands. Output is checked with Go regex
//! semantics: `expectedOutput`/`excludedOutput` on stdout, `expectedError`/`excludedError` on
//! stderr, and the exit code.
//!
//! Environments follow container-structure-test 1.19's docker driver, which commits
//! `globalEnvVars` into the image before each command test and the test's `envVars` with each
//! setup command, and expands `command` + `args` against the environment of the image it
//! ends up with ([`TestEnv`]). Each test has a time limit; a test over it fails, saying so.
//!
//! Tests run `jobs` at a time: each has its own container, so they cannot see each other.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use im_process::RunError;

use crate::config::{CommandTest, EnvVar, TestConfig};
use crate::expand::{expand, overlay};
use crate::metadata::ImageMetadata;
use crate::native::check_patterns;
use crate::report::{Failure, TestKind, TestResult};
use crate::runtime::{LoadedImage, RunOutput, RunSpec, Runtime, RuntimeError};

/// The environments of one command test.
///
/// container-structure-test (1.19, docker driver) creates a container with the
/// `globalEnvVars` (values expanded against the image's environment) and commits it; each
/// setup command runs with the test's `envVars` (values expanded against that committed
/// image) and is committed too; then `command` + `args` are expanded (Go's `os.Expand`)
/// against the environment of the last committed image, and the command runs with the test's
/// `envVars` as written. So `$GLOBAL` in `args` is the global's value, and `$TEST_VAR` is the
/// test's value only when the test has `setup` commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestEnv {
    /// What `command` and `args` are expanded against.
    pub expansion: BTreeMap<String, String>,
    /// Set (on top of the image's) for each setup command.
    pub setup: Vec<(String, String)>,
    /// Set (on top of the image's) for the command and the teardown commands.
    pub command: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new(config: &TestConfig, test: &CommandTest, image: &ImageMetadata) -> Self {
        let expanded =
            |vars: &[EnvVar], against: &BTreeMap<String, String>| -> Vec<(String, String)> {
                vars.iter()
                    .map(|v| (v.key.clone(), expand(&v.value, against)))
                    .collect()
            };
        let with_globals = overlay(&image.env, &config.global_env_vars);
        let mut base = expanded(&config.global_env_vars, &image.env);
        base.extend(expanded(&config.run_options.env_vars, &image.env));
        // Values from the environment the tests run in are passed as they are.
        base.extend(config.run_options.host_env.iter().cloned());
        let mut setup = base.clone();
        setup.extend(expanded(&test.env_vars, &with_globals));
        let mut command = base;
        command.extend(
            test.env_vars
                .iter()
                .map(|v| (v.key.clone(), v.value.clone())),
        );
        let expansion = if test.setup.is_empty() {
            with_globals
        } else {
            overlay(&with_globals, &test.env_vars)
        };
        Self {
            expansion,
            setup,
            command,
        }
    }

    /// `command` + `args` as the container gets them.
    pub fn argv(&self, test: &CommandTest) -> Vec<String> {
        std::iter::once(&test.command)
            .chain(&test.args)
            .map(|arg| expand(arg, &self.expansion))
            .collect()
    }
}

fn spec_for(
    config: &TestConfig,
    argv: Vec<String>,
    env: &[(String, String)],
    deadline: Instant,
) -> RunSpec {
    let options = &config.run_options;
    RunSpec {
        argv,
        env: env.to_vec(),
        user: options.user.clone(),
        privileged: options.privileged,
        capabilities: options.capabilities.clone(),
        bind_mounts: options.bind_mounts.clone(),
        env_file: options.env_file.as_ref().map(Into::into),
        deadline: Some(deadline),
    }
}

/// What every command test of one image runs with.
#[derive(Clone, Copy)]
pub struct CommandRun<'a> {
    pub config: &'a TestConfig,
    pub runtime: &'a dyn Runtime,
    pub image: &'a LoadedImage,
    pub metadata: &'a ImageMetadata,
    /// How long one test (its setup, command and teardown) may take.
    pub timeout: Duration,
}

impl CommandRun<'_> {
    /// Runs one command test.
    pub fn run_test(&self, test: &CommandTest) -> TestResult {
        let start = Instant::now();
        let mut result = TestResult::new(TestKind::Command, &test.name);
        result.location = Some(test.location.to_string());
        let unset = &self.config.run_options.host_env_unset;
        if !unset.is_empty() {
            result.fail(Failure::new(format!(
                "containerRunOptions.envVars names {}, not set where the tests run: set {} or \
                 leave {} out of envVars",
                unset.join(", "),
                if unset.len() == 1 { "it" } else { "them" },
                if unset.len() == 1 { "it" } else { "them" },
            )));
            return result;
        }
        match self.run_in_session(test, start + self.timeout, &mut result) {
            Ok(()) => {}
            Err(RuntimeError::Process(RunError::TimedOut { argv, .. })) => result.fail(
                Failure::new(format!(
                    "Test '{}' did not finish within its time limit of {}s",
                    test.name,
                    self.timeout.as_secs_f64()
                ))
                .expected(format!("done within {}s", self.timeout.as_secs_f64()))
                .found(format!("still running `{argv}`: killed")),
            ),
            Err(e) => {
                result.fail(
                    Failure::new("the command could not be run").found(im_diag::error_chain(&e)),
                );
            }
        }
        result.duration = start.elapsed();
        result
    }

    fn run_in_session(
        &self,
        test: &CommandTest,
        deadline: Instant,
        result: &mut TestResult,
    ) -> Result<(), RuntimeError> {
        let config = self.config;
        let env = TestEnv::new(config, test, self.metadata);
        let mut session = self.runtime.session(self.image)?;
        let outcome = (|| {
            for (i, setup) in test.setup.iter().enumerate() {
                let output =
                    session.setup(&spec_for(config, setup.clone(), &env.setup, deadline))?;
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
            let output = session.run(&spec_for(config, env.argv(test), &env.command, deadline))?;
            check_output(test, &output, result);
            result.stdout = Some(output.stdout);
            result.stderr = Some(output.stderr);
            // Teardown runs for its side effects only; container-structure-test ignores its
            // result.
            for teardown in &test.teardown {
                session.run(&spec_for(config, teardown.clone(), &env.command, deadline))?;
            }
            Ok(())
        })();
        let closed = session.close();
        outcome.and(closed)
    }

    /// Runs every command test of the config, `jobs` at a time; results keep the config's
    /// order.
    pub fn run_all(&self, jobs: usize) -> Vec<TestResult> {
        let tests = &self.config.command_tests;
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<TestResult>>> = Mutex::new(vec![None; tests.len()]);
        std::thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, tests.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(test) = tests.get(i) else { break };
                        let result = self.run_test(test);
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
}

fn check_output(test: &CommandTest, output: &RunOutput, result: &mut TestResult) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;

    fn env_of(yaml: &str) -> (TestConfig, ImageMetadata) {
        let config = parse_config(std::path::Path::new("t.yaml"), yaml.to_owned()).unwrap();
        let image = ImageMetadata {
            env: [("HOME", "/root"), ("G", "image")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ImageMetadata::default()
        };
        (config, image)
    }

    #[test]
    fn args_see_globals_and_test_vars_only_with_setup() {
        let (config, image) = env_of(
            "schemaVersion: 2.0.0\nglobalEnvVars: [{key: G, value: 'g-$HOME'}]\n\
             commandTests:\n\
             - {name: plain, command: echo, args: ['$G|$T'], envVars: [{key: T, value: 't-$G'}]}\n\
             - {name: setup, command: echo, args: ['$G|$T'], setup: [['true']], envVars: [{key: T, value: 't-$G'}]}\n",
        );
        let plain = TestEnv::new(&config, &config.command_tests[0], &image);
        assert_eq!(plain.argv(&config.command_tests[0]), ["echo", "g-/root|"]);
        assert_eq!(
            plain.command,
            [("G".into(), "g-/root".into()), ("T".into(), "t-$G".into())],
            "the container gets the test's variables as written"
        );
        let setup = TestEnv::new(&config, &config.command_tests[1], &image);
        assert_eq!(
            setup.argv(&config.command_tests[1]),
            ["echo", "g-/root|t-g-/root"]
        );
        assert_eq!(
            setup.setup,
            [
                ("G".into(), "g-/root".into()),
                ("T".into(), "t-g-/root".into())
            ],
            "setup commands get them expanded"
        );
    }

    #[test]
    fn run_options_name_variables_of_the_test_environment_as_container_structure_test_does() {
        let (config, image) = env_of(
            "schemaVersion: 2.0.0\ncontainerRunOptions: {envVars: [FROM_HOST, UNSET]}\n\
             commandTests:\n- {name: env, command: env}\n",
        );
        assert_eq!(config.run_options.host_env_vars, ["FROM_HOST", "UNSET"]);
        assert!(config.run_options.env_vars.is_empty());
        let config = config.with_host_env(|name| (name == "FROM_HOST").then(|| "a $value".into()));
        let env = TestEnv::new(&config, &config.command_tests[0], &image);
        assert_eq!(
            env.command,
            [("FROM_HOST".into(), "a $value".into())],
            "values pass as they are"
        );
        assert_eq!(config.run_options.host_env_unset, ["UNSET"]);
        // image-manager's own key/value form keeps working.
        let (config, _) =
            env_of("schemaVersion: 2.0.0\ncontainerRunOptions: {envVars: [{key: K, value: v}]}\n");
        assert_eq!(config.run_options.env_vars[0].key, "K");
        assert!(config.run_options.host_env_vars.is_empty());
    }
}
