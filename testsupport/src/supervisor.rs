//! The release, static supervisor binary that tests package and run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use openshell_contract::{BINARY_NAME, DEFAULT_STATIC_TARGET};

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    // This crate lives one level below the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The cargo target directory the tests build into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds (once per test process) and returns the release supervisor for the
/// static musl target: the binary CI ships.
///
/// Cargo's own locking makes concurrent builds from several test binaries
/// wait for each other instead of racing.
pub fn static_supervisor_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "--release",
                "--locked",
                "--package",
                "openshell-sandbox",
                "--bin",
                BINARY_NAME,
                "--target",
                DEFAULT_STATIC_TARGET,
            ])
            .output()
            .unwrap_or_else(|err| panic!("could not run cargo to build the supervisor: {err}"));
        assert!(
            output.status.success(),
            "building the static supervisor failed (is the target installed? `rustup target add {DEFAULT_STATIC_TARGET}`):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let binary = target_dir()
            .join(DEFAULT_STATIC_TARGET)
            .join("release")
            .join(BINARY_NAME);
        assert!(binary.is_file(), "cargo built no {}", binary.display());
        binary
    })
}
