//! Binaries of the workspace that tests run as users do: the release,
//! static supervisor, and the debug builds of the other tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

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

/// Builds (once per test process) the debug binary `bin` of package
/// `package` and returns its path: end-to-end tests run the tools through
/// their command lines, exactly as users and CI scripts do.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(BTreeMap::new()));
    // A poisoned lock only means another test panicked mid-build; the map is
    // still valid (it is written only after a successful build).
    let mut built = built.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--locked", "--package", package, "--bin", bin])
        .output()
        .unwrap_or_else(|err| panic!("could not run cargo to build {bin}: {err}"));
    assert!(
        output.status.success(),
        "building {bin} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = target_dir().join("debug").join(bin);
    assert!(path.is_file(), "cargo built no {}", path.display());
    built.insert(bin.to_string(), path.clone());
    path
}
