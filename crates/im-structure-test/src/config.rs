//! container-structure-test configuration files, read strictly.
//!
//! [`load_config`] reads a `schemaVersion: 2.0.0` file (the current format) or a `1.0.0` file
//! (where command tests give the whole argv in `command` and there is no metadata test) into
//! one model, [`TestConfig`]. The accepted keys are exactly those container-structure-test
//! 1.19 accepts; an unknown key is an error at its `file:line:col` with a suggestion, and every
//! problem in the file is reported at once. Defaults are container-structure-test's:
//! `shouldExist` is true, `exitCode` is 0, unset `uid`/`gid` are not checked.

use std::path::Path;

use im_diag::{Diagnostic, Diagnostics, Location};
use im_yaml::{Node, Reader, Source, Span};

/// A `key`/`value` pair (`envVars`, `labels`), optionally a regex for metadata checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub key: String,
    pub value: String,
    pub is_regex: bool,
}

/// `containerRunOptions`: how command tests' containers are started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRunOptions {
    pub user: Option<String>,
    pub privileged: bool,
    pub env_vars: Vec<EnvVar>,
    /// container-structure-test's form of `envVars`: names of variables of the environment
    /// the tests run in, passed into the container with their values there (empty when
    /// unset), as `docker run -e NAME=$NAME` would. [`TestConfig::with_host_env`] turns
    /// them into [`EnvVar`]s.
    pub host_env_vars: Vec<String>,
    /// `host_env_vars` with their values, once resolved.
    pub host_env: Vec<(String, String)>,
    /// `host_env_vars` that are not set where the tests run: container-structure-test
    /// passes them as an empty string that Docker refuses, failing every command test, so
    /// every command test fails here too, naming them.
    pub host_env_unset: Vec<String>,
    pub env_file: Option<String>,
    pub capabilities: Vec<String>,
    pub bind_mounts: Vec<String>,
}

/// One entry of `commandTests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTest {
    pub name: String,
    pub setup: Vec<Vec<String>>,
    pub teardown: Vec<Vec<String>>,
    pub env_vars: Vec<EnvVar>,
    pub exit_code: i64,
    /// The program (v2), or the first element of the v1 `command` list.
    pub command: String,
    pub args: Vec<String>,
    pub expected_output: Vec<String>,
    pub excluded_output: Vec<String>,
    pub expected_error: Vec<String>,
    pub excluded_error: Vec<String>,
    pub location: Location,
}

/// One entry of `fileExistenceTests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileExistenceTest {
    pub name: String,
    pub path: String,
    pub should_exist: bool,
    pub permissions: Option<String>,
    pub uid: Option<i64>,
    pub gid: Option<i64>,
    pub is_executable_by: Option<String>,
    pub location: Location,
}

/// One entry of `fileContentTests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContentTest {
    pub name: String,
    pub path: String,
    pub expected_contents: Vec<String>,
    pub excluded_contents: Vec<String>,
    pub location: Location,
}

/// The `metadataTest` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTest {
    pub env_vars: Vec<EnvVar>,
    pub unbound_env_vars: Vec<EnvVar>,
    pub exposed_ports: Vec<String>,
    pub unexposed_ports: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub volumes: Vec<String>,
    pub unmounted_volumes: Vec<String>,
    pub labels: Vec<EnvVar>,
    pub user: Option<String>,
    pub location: Location,
}

/// One entry of `licenseTests`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseTest {
    pub debian: bool,
    pub files: Vec<String>,
    pub location: Location,
}

/// A whole test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestConfig {
    pub schema_version: String,
    pub global_env_vars: Vec<EnvVar>,
    pub run_options: ContainerRunOptions,
    pub command_tests: Vec<CommandTest>,
    pub file_existence_tests: Vec<FileExistenceTest>,
    pub file_content_tests: Vec<FileContentTest>,
    pub metadata_test: Option<MetadataTest>,
    pub license_tests: Vec<LicenseTest>,
}

impl TestConfig {
    /// Resolves `containerRunOptions.envVars` given as names (container-structure-test's
    /// form) with `lookup`, the environment the tests run in.
    #[must_use]
    pub fn with_host_env(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let options = &mut self.run_options;
        options.host_env.clear();
        options.host_env_unset.clear();
        for name in &options.host_env_vars {
            match lookup(name) {
                Some(value) => options.host_env.push((name.clone(), value)),
                None => options.host_env_unset.push(name.clone()),
            }
        }
        self
    }

    /// How many results running this config produces.
    pub fn test_count(&self) -> usize {
        self.command_tests.len()
            + self.file_existence_tests.len()
            + self.file_content_tests.len()
            + usize::from(self.metadata_test.is_some())
            + self.license_tests.len()
    }
}

const TOP_V2: &[&str] = &[
    "schemaVersion",
    "globalEnvVars",
    "containerRunOptions",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "metadataTest",
    "licenseTests",
];
const TOP_V1: &[&str] = &[
    "schemaVersion",
    "globalEnvVars",
    "commandTests",
    "fileExistenceTests",
    "fileContentTests",
    "licenseTests",
];
const RUN_OPTIONS: &[&str] = &[
    "user",
    "privileged",
    "envVars",
    "envFile",
    "capabilities",
    "bindMounts",
];
const COMMAND_V2: &[&str] = &[
    "name",
    "setup",
    "teardown",
    "envVars",
    "exitCode",
    "command",
    "args",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
];
const COMMAND_V1: &[&str] = &[
    "name",
    "setup",
    "teardown",
    "envVars",
    "exitCode",
    "command",
    "expectedOutput",
    "excludedOutput",
    "expectedError",
    "excludedError",
];
const EXISTENCE_V2: &[&str] = &[
    "name",
    "path",
    "shouldExist",
    "permissions",
    "uid",
    "gid",
    "isExecutableBy",
];
const EXISTENCE_V1: &[&str] = &["name", "path", "shouldExist", "permissions"];
const CONTENT: &[&str] = &["name", "path", "expectedContents", "excludedContents"];
const METADATA: &[&str] = &[
    "envVars",
    "unboundEnvVars",
    "exposedPorts",
    "unexposedPorts",
    "entrypoint",
    "cmd",
    "workdir",
    "volumes",
    "unmountedVolumes",
    "labels",
    "user",
];
const LICENSE: &[&str] = &["debian", "files"];
const ENV_VAR: &[&str] = &["key", "value", "isRegex"];
const EXECUTABLE_BY: &[&str] = &["any", "owner", "group", "other"];

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read test config {}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{diagnostics}")]
    Invalid { diagnostics: Diagnostics },
}

/// Reads and checks the config file at `path`.
pub fn load_config(path: &Path) -> Result<TestConfig, ConfigError> {
    // A FIFO or device is refused instead of blocking the run (im-input checks the opened
    // file); every failure is a diagnostic naming the path (and the line, for the size
    // limit and invalid UTF-8).
    let text = im_input::read_text(path).map_err(|error| ConfigError::Invalid {
        diagnostics: error.diagnostic(path).into(),
    })?;
    parse_config(path, text)
}

/// Parses a config's text; `path` names the file in diagnostics.
pub fn parse_config(path: &Path, text: String) -> Result<TestConfig, ConfigError> {
    let document = im_yaml::parse(path, text, &im_yaml::Limits::default()).map_err(|d| {
        let mut diagnostics = Diagnostics::new();
        diagnostics.push(d);
        ConfigError::Invalid { diagnostics }
    })?;
    let mut parser = Parser {
        reader: Reader::new(&document.source),
        source: &document.source,
    };
    let config = parser.config(&document.root);
    let diagnostics = parser.reader.diagnostics;
    match config {
        Some(config) if !diagnostics.has_errors() => Ok(config),
        _ => Err(ConfigError::Invalid { diagnostics }),
    }
}

struct Parser<'d> {
    reader: Reader<'d>,
    source: &'d Source,
}

impl Parser<'_> {
    fn location(&self, span: Span) -> Location {
        self.source.location(span)
    }

    fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        self.reader.error(span, message, help);
    }

    fn config(&mut self, root: &Node) -> Option<TestConfig> {
        let version = match root.get("schemaVersion").and_then(Node::as_scalar) {
            Some(v @ ("2.0.0" | "1.0.0")) => v.to_owned(),
            Some(other) => {
                let span = root
                    .get("schemaVersion")
                    .map(|n| n.span)
                    .unwrap_or_default();
                self.error(
                    span,
                    format!("unsupported schemaVersion `{other}`"),
                    Some("use 2.0.0 (or the older 1.0.0)".into()),
                );
                return None;
            }
            None => {
                self.reader.report(
                    Diagnostic::error("the test config has no `schemaVersion`")
                        .at(Location::file(&self.source.path))
                        .with_help("add `schemaVersion: 2.0.0` at the top"),
                );
                return None;
            }
        };
        let v1 = version == "1.0.0";
        let map = self
            .reader
            .map(root, "a test config", if v1 { TOP_V1 } else { TOP_V2 })?;
        let mut config = TestConfig {
            schema_version: version,
            global_env_vars: map
                .get("globalEnvVars")
                .map(|n| self.env_vars(n, "globalEnvVars", false))
                .unwrap_or_default(),
            run_options: map
                .get("containerRunOptions")
                .map(|n| self.run_options(n))
                .unwrap_or_default(),
            command_tests: Vec::new(),
            file_existence_tests: Vec::new(),
            file_content_tests: Vec::new(),
            metadata_test: None,
            license_tests: Vec::new(),
        };
        for item in self.items(map.get("commandTests"), "commandTests") {
            if let Some(test) = self.command_test(item, v1) {
                config.command_tests.push(test);
            }
        }
        for item in self.items(map.get("fileExistenceTests"), "fileExistenceTests") {
            if let Some(test) = self.existence_test(item, v1) {
                config.file_existence_tests.push(test);
            }
        }
        for item in self.items(map.get("fileContentTests"), "fileContentTests") {
            if let Some(test) = self.content_test(item) {
                config.file_content_tests.push(test);
            }
        }
        if let Some(node) = map.get("metadataTest") {
            config.metadata_test = self.metadata_test(node);
        }
        for item in self.items(map.get("licenseTests"), "licenseTests") {
            if let Some(map) = self.reader.map(item, "a license test", LICENSE) {
                config.license_tests.push(LicenseTest {
                    debian: map
                        .get("debian")
                        .and_then(|n| self.reader.bool(n, "`debian`"))
                        .unwrap_or(false),
                    files: self.strings(map.get("files"), "`files`"),
                    location: self.location(item.span),
                });
            }
        }
        Some(config)
    }

    fn items<'n>(&mut self, node: Option<&'n Node>, what: &str) -> &'n [Node] {
        node.and_then(|n| self.reader.list(n, &format!("`{what}`")))
            .unwrap_or(&[])
    }

    fn strings(&mut self, node: Option<&Node>, what: &str) -> Vec<String> {
        node.and_then(|n| self.reader.string_list(n, what))
            .map(|v| v.into_iter().map(|s| s.value).collect())
            .unwrap_or_default()
    }

    fn text(&mut self, node: Option<&Node>, what: &str) -> Option<String> {
        node.and_then(|n| self.reader.string(n, what))
    }

    fn int(&mut self, node: Option<&Node>, what: &str) -> Option<i64> {
        let node = node?;
        let text = self.reader.string(node, what)?;
        match text.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                self.error(
                    node.span,
                    format!("{what} must be a whole number, not `{text}`"),
                    None,
                );
                None
            }
        }
    }

    fn required(&mut self, node: &Node, value: Option<String>, what: &str, test: &str) -> String {
        match value {
            Some(v) if !v.is_empty() => v,
            _ => {
                self.error(
                    node.span,
                    format!("{test} has no `{what}`"),
                    Some(format!("every {test} needs a non-empty `{what}`")),
                );
                String::new()
            }
        }
    }

    fn env_vars(&mut self, node: &Node, what: &str, require_value: bool) -> Vec<EnvVar> {
        let mut out = Vec::new();
        for item in self.items(Some(node), what) {
            let Some(map) = self
                .reader
                .map(item, &format!("an entry of `{what}`"), ENV_VAR)
            else {
                continue;
            };
            let key = self.text(map.get("key"), "`key`").unwrap_or_default();
            let value = self.text(map.get("value"), "`value`").unwrap_or_default();
            if key.is_empty() || (require_value && value.is_empty()) {
                self.error(
                    item.span,
                    format!("an entry of `{what}` needs a non-empty `key` and `value`"),
                    None,
                );
            }
            let is_regex = map
                .get("isRegex")
                .and_then(|n| self.reader.bool(n, "`isRegex`"))
                .unwrap_or(false);
            out.push(EnvVar {
                key,
                value,
                is_regex,
            });
        }
        out
    }

    /// `containerRunOptions.envVars`: container-structure-test's list of variable names
    /// (the second list), or, as image-manager also accepts, `key`/`value` entries (the first).
    fn run_env_vars(&mut self, node: &Node) -> (Vec<EnvVar>, Vec<String>) {
        let names = match &node.value {
            im_yaml::Value::Seq(items) => {
                !items.is_empty() && items.iter().all(|item| item.as_scalar().is_some())
            }
            _ => false,
        };
        if names {
            let what = "`containerRunOptions.envVars`";
            (Vec::new(), self.strings(Some(node), what))
        } else {
            (self.env_vars(node, "envVars", false), Vec::new())
        }
    }

    fn run_options(&mut self, node: &Node) -> ContainerRunOptions {
        let Some(map) = self.reader.map(node, "`containerRunOptions`", RUN_OPTIONS) else {
            return ContainerRunOptions::default();
        };
        let (env_vars, host_env_vars) = map
            .get("envVars")
            .map(|n| self.run_env_vars(n))
            .unwrap_or_default();
        ContainerRunOptions {
            user: self.text(map.get("user"), "`user`"),
            privileged: map
                .get("privileged")
                .and_then(|n| self.reader.bool(n, "`privileged`"))
                .unwrap_or(false),
            env_vars,
            host_env_vars,
            host_env: Vec::new(),
            host_env_unset: Vec::new(),
            env_file: self.text(map.get("envFile"), "`envFile`"),
            capabilities: self.strings(map.get("capabilities"), "`capabilities`"),
            bind_mounts: self.strings(map.get("bindMounts"), "`bindMounts`"),
        }
    }

    fn commands(&mut self, node: Option<&Node>, what: &str) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for item in self.items(node, what) {
            let argv = self.strings(Some(item), &format!("each command of `{what}`"));
            if argv.is_empty() {
                self.error(
                    item.span,
                    format!("an empty command in `{what}`"),
                    Some("remove it, or give the command and its arguments".into()),
                );
            }
            out.push(argv);
        }
        out
    }

    fn command_test(&mut self, node: &Node, v1: bool) -> Option<CommandTest> {
        let map = self.reader.map(
            node,
            "a command test",
            if v1 { COMMAND_V1 } else { COMMAND_V2 },
        )?;
        let name = self.text(map.get("name"), "`name`");
        let name = self.required(node, name, "name", "command test");
        let (command, args) = if v1 {
            let mut argv = self.strings(map.get("command"), "`command`");
            if argv.is_empty() {
                (None, Vec::new())
            } else {
                let command = argv.remove(0);
                (Some(command), argv)
            }
        } else {
            (
                self.text(map.get("command"), "`command`"),
                self.strings(map.get("args"), "`args`"),
            )
        };
        let command = self.required(node, command, "command", "command test");
        Some(CommandTest {
            name,
            setup: self.commands(map.get("setup"), "setup"),
            teardown: self.commands(map.get("teardown"), "teardown"),
            env_vars: map
                .get("envVars")
                .map(|n| self.env_vars(n, "envVars", true))
                .unwrap_or_default(),
            exit_code: self.int(map.get("exitCode"), "`exitCode`").unwrap_or(0),
            command,
            args,
            expected_output: self.strings(map.get("expectedOutput"), "`expectedOutput`"),
            excluded_output: self.strings(map.get("excludedOutput"), "`excludedOutput`"),
            expected_error: self.strings(map.get("expectedError"), "`expectedError`"),
            excluded_error: self.strings(map.get("excludedError"), "`excludedError`"),
            location: self.location(node.span),
        })
    }

    fn existence_test(&mut self, node: &Node, v1: bool) -> Option<FileExistenceTest> {
        let map = self.reader.map(
            node,
            "a file existence test",
            if v1 { EXISTENCE_V1 } else { EXISTENCE_V2 },
        )?;
        let name = self.text(map.get("name"), "`name`");
        let name = self.required(node, name, "name", "file existence test");
        let path = self.text(map.get("path"), "`path`");
        let path = self.required(node, path, "path", "file existence test");
        let is_executable_by = self.text(map.get("isExecutableBy"), "`isExecutableBy`");
        if let (Some(value), Some(n)) = (&is_executable_by, map.get("isExecutableBy"))
            && !EXECUTABLE_BY.contains(&value.as_str())
        {
            let help = format!("use one of: {}", EXECUTABLE_BY.join(", "));
            self.error(
                n.span,
                format!("`isExecutableBy: {value}` is not recognised"),
                Some(help),
            );
        }
        Some(FileExistenceTest {
            name,
            path,
            should_exist: map
                .get("shouldExist")
                .and_then(|n| self.reader.bool(n, "`shouldExist`"))
                .unwrap_or(true),
            permissions: self
                .text(map.get("permissions"), "`permissions`")
                .filter(|p| !p.is_empty()),
            uid: self.int(map.get("uid"), "`uid`").filter(|&u| u != -1),
            gid: self.int(map.get("gid"), "`gid`").filter(|&g| g != -1),
            is_executable_by: is_executable_by.filter(|v| !v.is_empty()),
            location: self.location(node.span),
        })
    }

    fn content_test(&mut self, node: &Node) -> Option<FileContentTest> {
        let map = self.reader.map(node, "a file content test", CONTENT)?;
        let name = self.text(map.get("name"), "`name`");
        let name = self.required(node, name, "name", "file content test");
        let path = self.text(map.get("path"), "`path`");
        let path = self.required(node, path, "path", "file content test");
        Some(FileContentTest {
            name,
            path,
            expected_contents: self.strings(map.get("expectedContents"), "`expectedContents`"),
            excluded_contents: self.strings(map.get("excludedContents"), "`excludedContents`"),
            location: self.location(node.span),
        })
    }

    fn metadata_test(&mut self, node: &Node) -> Option<MetadataTest> {
        let map = self.reader.map(node, "`metadataTest`", METADATA)?;
        let optional_list = |parser: &mut Self, key: &str| {
            map.get(key)
                .map(|n| parser.strings(Some(n), &format!("`{key}`")))
        };
        let entrypoint = optional_list(self, "entrypoint");
        let cmd = optional_list(self, "cmd");
        Some(MetadataTest {
            env_vars: map
                .get("envVars")
                .map(|n| self.env_vars(n, "envVars", false))
                .unwrap_or_default(),
            unbound_env_vars: map
                .get("unboundEnvVars")
                .map(|n| self.env_vars(n, "unboundEnvVars", false))
                .unwrap_or_default(),
            exposed_ports: self.strings(map.get("exposedPorts"), "`exposedPorts`"),
            unexposed_ports: self.strings(map.get("unexposedPorts"), "`unexposedPorts`"),
            entrypoint,
            cmd,
            workdir: self
                .text(map.get("workdir"), "`workdir`")
                .filter(|w| !w.is_empty()),
            volumes: self.strings(map.get("volumes"), "`volumes`"),
            unmounted_volumes: self.strings(map.get("unmountedVolumes"), "`unmountedVolumes`"),
            labels: map
                .get("labels")
                .map(|n| self.env_vars(n, "labels", false))
                .unwrap_or_default(),
            user: self
                .text(map.get("user"), "`user`")
                .filter(|u| !u.is_empty()),
            location: self.location(node.span),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TestConfig, String> {
        parse_config(Path::new("dist/app/1.0/test.yml"), text.to_owned()).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_test_type_with_defaults() {
        let config = parse(
            "schemaVersion: 2.0.0\n\
             globalEnvVars: [{key: A, value: b}]\n\
             commandTests:\n  - name: echo\n    command: echo\n    args: [hi]\n    expectedOutput: ['^hi']\n\
             fileExistenceTests:\n  - name: sh\n    path: /bin/sh\n    uid: 0\n\
             fileContentTests:\n  - name: os\n    path: /etc/os-release\n    expectedContents: [debian]\n\
             metadataTest:\n  envVars: [{key: PATH, value: '/bin.*', isRegex: true}]\n  cmd: []\n\
             licenseTests:\n  - debian: true\n",
        )
        .unwrap();
        assert_eq!(config.test_count(), 5);
        assert_eq!(config.command_tests[0].exit_code, 0);
        assert!(config.file_existence_tests[0].should_exist);
        assert_eq!(config.file_existence_tests[0].uid, Some(0));
        assert_eq!(config.file_existence_tests[0].gid, None);
        assert_eq!(config.file_existence_tests[0].location.line, 9);
        let metadata = config.metadata_test.unwrap();
        assert_eq!(metadata.cmd, Some(vec![]));
        assert_eq!(metadata.entrypoint, None);
        assert!(metadata.env_vars[0].is_regex);
    }

    #[test]
    fn v1_commands_are_whole_argv() {
        let config =
            parse("schemaVersion: 1.0.0\ncommandTests:\n  - name: ls\n    command: [ls, -l, /]\n")
                .unwrap();
        assert_eq!(config.command_tests[0].command, "ls");
        assert_eq!(config.command_tests[0].args, ["-l", "/"]);
        let err = parse("schemaVersion: 1.0.0\nmetadataTest: {}\n").unwrap_err();
        assert!(err.contains("unknown key `metadataTest`"), "{err}");
    }

    #[test]
    fn unknown_fields_are_errors_with_file_and_line() {
        let err = parse(
            "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: sh\n    path: /bin/sh\n    shuldExist: true\nmetadataTest:\n  env: []\n",
        )
        .unwrap_err();
        insta::assert_snapshot!(err, @r"
        error: unknown key `shuldExist` in a file existence test
         --> dist/app/1.0/test.yml:5:5
          |
        5 |     shuldExist: true
          |     ^^^^^^^^^^
          = help: did you mean `shouldExist`?

        error: unknown key `env` in `metadataTest`
         --> dist/app/1.0/test.yml:7:3
          |
        7 |   env: []
          |   ^^^
          = help: did you mean `envVars`?
        ");
    }

    #[test]
    fn missing_names_paths_and_bad_values_are_all_reported() {
        let err = parse(
            "schemaVersion: 2.0.0\ncommandTests:\n  - command: ls\n    exitCode: one\nfileExistenceTests:\n  - name: x\n    isExecutableBy: everyone\n",
        )
        .unwrap_err();
        assert!(err.contains("command test has no `name`"), "{err}");
        assert!(err.contains("`exitCode` must be a whole number"), "{err}");
        assert!(err.contains("file existence test has no `path`"), "{err}");
        assert!(
            err.contains("`isExecutableBy: everyone` is not recognised"),
            "{err}"
        );
        assert!(
            parse("commandTests: []\n")
                .unwrap_err()
                .contains("no `schemaVersion`")
        );
    }
}
