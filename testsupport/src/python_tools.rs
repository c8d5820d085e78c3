//! Python checkers the tests run (kubernetes-validate, checkov, and
//! spdx-tools' pyspdxtools), installed by `scripts/setup-test-env` into a
//! virtual environment of their own so they never touch the system's Python.

use std::path::PathBuf;

use crate::tools::{in_ci, which};

/// Environment variable naming the virtual environment, when it is not at
/// [`DEFAULT_VENV`].
pub const VENV_ENV: &str = "OPENSHELL_TEST_VENV";

/// Where `scripts/setup-test-env` creates the virtual environment.
pub const DEFAULT_VENV: &str = "/opt/openshell-test-venv";

/// The virtual environment's folder.
pub fn venv() -> PathBuf {
    std::env::var_os(VENV_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_VENV))
}

/// The full path of the Python tool `tool` (`kubernetes-validate`,
/// `checkov`): from the virtual environment, else from `PATH`.
///
/// In CI a missing tool panics, so the test fails. Elsewhere it prints
/// what is missing and how to install it, and returns `None`: the caller
/// returns early, and the skip shows in the output.
pub fn python_tool(test: &str, tool: &str) -> Option<PathBuf> {
    let in_venv = venv().join("bin").join(tool);
    if in_venv.is_file() {
        return Some(in_venv);
    }
    if let Some(found) = which(tool) {
        return Some(found);
    }
    let message = format!(
        "{test}: needs {tool} (not in {} nor on PATH; `scripts/setup-test-env` installs it from PyPI into that virtual environment, or set {VENV_ENV} to another one)",
        venv().display()
    );
    if in_ci() {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {message}");
    None
}
