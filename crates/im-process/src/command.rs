//! `CommandSpec`: an external command as data (program, argv built element by element,
//! added environment, secret environment), with shell-quoted rendering for logs and error
//! messages. A credential a tool reads from its environment (`AWS_SECRET_ACCESS_KEY`) goes in
//! [`CommandSpec::secret_env`]: the child gets it, every rendering shows `***`. A tool is
//! described by the spec its commands start from (program, global arguments, environment);
//! each command clones it and appends its own arguments.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::PathBuf;

use im_diag::Secret;

/// One command to run. The child inherits the caller's environment plus `env` and
/// `secret_env`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: BTreeMap<OsString, OsString>,
    /// Credentials passed through the environment: never in argv, shown as `***`.
    pub secret_env: BTreeMap<OsString, Secret>,
}

impl CommandSpec {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        CommandSpec {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
        }
    }

    /// Appends one argument.
    #[must_use]
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends a flag and its value as two arguments.
    #[must_use]
    pub fn flag(self, flag: &str, value: impl Into<OsString>) -> Self {
        self.arg(flag).arg(value)
    }

    /// Adds an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Adds several environment variables.
    #[must_use]
    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// Adds a credential to the environment (rendered as `KEY=***`).
    #[must_use]
    pub fn secret_env(mut self, key: impl Into<OsString>, value: Secret) -> Self {
        self.secret_env.insert(key.into(), value);
        self
    }

    /// The program's file name, for messages: `buildah`.
    pub fn name(&self) -> String {
        self.program
            .file_name()
            .unwrap_or(self.program.as_os_str())
            .to_string_lossy()
            .into_owned()
    }

    /// The full command line, shell-quoted, environment first: `DOCKER_BUILDKIT=1 docker build ...`.
    pub fn display(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.env {
            let _ = write!(out, "{}={} ", quote(k), quote(v));
        }
        for k in self.secret_env.keys() {
            let _ = write!(out, "{}=*** ", quote(k));
        }
        out.push_str(&quote(self.program.as_os_str()));
        for arg in &self.args {
            out.push(' ');
            out.push_str(&quote(arg));
        }
        out
    }
}

/// Shell-quotes one word for display (never parsed back into argv).
pub fn quote(word: &OsStr) -> String {
    let s = word.to_string_lossy();
    shlex::try_quote(&s).map_or_else(|_| format!("{s:?}"), std::borrow::Cow::into_owned)
}

/// Builds an argv from string-like parts.
pub fn argv<I, S>(parts: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    parts.into_iter().map(|p| p.as_ref().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_words_that_need_it() {
        let c = CommandSpec::new("/usr/bin/docker")
            .arg("build")
            .flag("--label", "a=hello world")
            .arg("it's")
            .env("DOCKER_BUILDKIT", "1");
        assert_eq!(
            c.display(),
            r#"DOCKER_BUILDKIT=1 /usr/bin/docker build --label 'a=hello world' "it's""#
        );
        assert_eq!(c.name(), "docker");
    }

    #[test]
    fn a_secret_in_the_environment_never_shows() {
        let c = CommandSpec::new("buildctl")
            .arg("build")
            .secret_env("AWS_SECRET_ACCESS_KEY", Secret::new("canary-4f1e"));
        let shown = format!("{} {c:?}", c.display());
        assert!(!shown.contains("canary-4f1e"), "{shown}");
        assert!(
            shown.starts_with("AWS_SECRET_ACCESS_KEY=*** buildctl build"),
            "{shown}"
        );
    }
}

/// Where `program` is on `path` (a `PATH` value, which the binary reads and passes in): the
/// first executable regular file named so. A program given with a folder is checked as it is.
pub fn which(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |candidate: &std::path::Path| {
        fs_err::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let candidate = PathBuf::from(program);
        return executable(&candidate).then_some(candidate);
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
}

#[cfg(test)]
mod which_tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::which;

    #[test]
    fn finds_executables_on_the_path_only() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        fs_err::write(&tool, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths([dir.path()]).unwrap();
        assert_eq!(which("tool", Some(&path)), None, "not executable yet");
        fs_err::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(which("tool", Some(&path)), Some(tool.clone()));
        assert_eq!(which("missing", Some(&path)), None);
        assert_eq!(which("tool", None), None);
        assert_eq!(which(tool.to_str().unwrap(), None), Some(tool));
    }
}
