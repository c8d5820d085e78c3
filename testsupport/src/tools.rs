//! Outside tools: present, or fail in CI, or skip with a hint elsewhere.

use std::path::PathBuf;

/// Whether the tests run in CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true" || value == "1")
}

/// The folder whose `bin/` holds the tools `scripts/setup-test-env`
/// installs outside Debian's packages (helm, kubectl):
/// `$OPENSHELL_TEST_TOOLS`, else `/opt/openshell-test-tools`.
pub fn test_tools_dir() -> PathBuf {
    std::env::var_os("OPENSHELL_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/openshell-test-tools"))
}

/// The full path of `tool` on `PATH`, if it is there.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

/// Whether every tool in `tools` is on `PATH`.
///
/// In CI a missing tool panics, so the test fails. Elsewhere it prints which
/// tool is missing and the command that installs it (`hint`), and returns
/// `false`: the caller then returns early, and the skip shows in the output.
pub fn require(test: &str, tools: &[&str], hint: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| which(tool).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "{test}: needs {} on PATH (install with: {hint}; `scripts/setup-test-env` installs everything the tests use)",
        missing.join(", ")
    );
    if in_ci() {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {message}");
    false
}

/// Whether the tests run as root, which some need (mounting a tmpfs).
pub fn is_root() -> bool {
    // /proc/self/status holds "Uid:\treal\teffective\t...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Like [`require`], for running as root.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    let message = format!("{test}: needs root (run the tests as root, as CI does)");
    if in_ci() {
        panic!("{message}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("SKIPPED {message}");
    false
}
