//! Where the test environment lives: the settings `scripts/setup` wrote.
//!
//! `scripts/setup` installs and starts the real components, then writes their locations as
//! `export NAME='VALUE'` lines into an env file (default `/run/image-manager-test/env.sh`)
//! that `scripts/test` sources. A setting is read from the process environment first, then
//! from that file, so `cargo nextest run -p some-crate` works after one `scripts/setup` even
//! without sourcing it. A missing setting panics with a message naming the setup script:
//! tests never skip because a component is absent.
//!
//! This crate is dev-only, so unlike the product crates it reads the environment itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where `scripts/setup` writes its env file unless `IM_TEST_ENV_FILE` says otherwise.
pub const DEFAULT_ENV_FILE: &str = "/run/image-manager-test/env.sh";

/// The setting `name`, or a panic saying which setup step should have provided `what`.
pub(crate) fn required(name: &str, what: &str) -> String {
    if let Some(value) = std::env::var_os(name)
        .and_then(|v| v.into_string().ok())
        .filter(|v| !v.is_empty())
    {
        return value;
    }
    if let Some(value) = env_file().1.get(name) {
        return value.clone();
    }
    panic!(
        "{name} is not set: scripts/setup should have installed/started {what} \
         (run scripts/test, or run scripts/setup and source {})",
        env_file().0.display()
    );
}

/// The setting `name` as a path to an executable file that exists.
pub(crate) fn required_executable(name: &str, what: &str) -> PathBuf {
    let path = PathBuf::from(required(name, what));
    assert_executable(&path, what);
    path
}

/// Panics unless `path` is an executable regular file (following symlinks).
pub(crate) fn assert_executable(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    match fs_err::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {}
        Ok(_) => panic!(
            "{} is not an executable file: scripts/setup should have installed {what}",
            path.display()
        ),
        Err(err) => panic!("{err}: scripts/setup should have installed {what}"),
    }
}

/// The env file's path and its `export NAME='VALUE'` settings (empty when it is absent).
fn env_file() -> &'static (PathBuf, BTreeMap<String, String>) {
    static FILE: OnceLock<(PathBuf, BTreeMap<String, String>)> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os("IM_TEST_ENV_FILE")
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_ENV_FILE), PathBuf::from);
        let settings = fs_err::read_to_string(&path)
            .map(|text| parse_env_file(&text))
            .unwrap_or_default();
        (path, settings)
    })
}

/// Reads the `export NAME='VALUE'` lines the setup script writes; other lines are ignored.
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.trim().strip_prefix("export ")?.split_once('=')?;
            let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
            let valid_name =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (valid_name && !value.contains('\'')).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines_are_read_and_other_lines_ignored() {
        let text = "# comment\n\
                    export DOCKER_HOST='unix:///run/x/docker.sock'\n\
                    export IM_TEST_CACHE_DIR='/var/cache/x'\n\
                    case \":$PATH:\" in *) export PATH=\"/x:$PATH\" ;; esac\n\
                    export BROKEN=unquoted\n";
        let parsed = parse_env_file(text);
        assert_eq!(
            parsed.into_iter().collect::<Vec<_>>(),
            [
                (
                    "DOCKER_HOST".to_owned(),
                    "unix:///run/x/docker.sock".to_owned()
                ),
                ("IM_TEST_CACHE_DIR".to_owned(), "/var/cache/x".to_owned()),
            ]
        );
    }

    #[test]
    #[should_panic(expected = "scripts/setup should have installed/started a thing")]
    fn a_missing_setting_panics_naming_the_setup_script() {
        required("IM_TEST_THIS_IS_NEVER_SET_ANYWHERE", "a thing");
    }
}
