//! Binaries of the workspace that tests run as users do: the release,
//! static supervisor, and the debug builds of the other tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use openshell_contract::{ARM64_STATIC_TARGET, BINARY_NAME, DEFAULT_STATIC_TARGET};

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
    openshell_contract::cargo::target_dir(&workspace_root())
}

/// Set by `scripts/test` once it has built everything the tests run: then
/// no test process asks cargo again (under cargo-nextest every test is its
/// own process, and each no-op cargo call costs a fraction of a second).
pub const PREBUILT_ENV: &str = "OPENSHELL_TEST_PREBUILT";

fn prebuilt() -> bool {
    std::env::var_os(PREBUILT_ENV).is_some_and(|value| value == "1")
}

/// Builds (once per test process) and returns the release supervisor for the
/// static musl target: the binary CI ships.
///
/// Cargo's own locking makes concurrent builds from several test binaries
/// wait for each other instead of racing.
pub fn static_supervisor_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_static_supervisor(DEFAULT_STATIC_TARGET))
}

/// The release supervisor for arm64 (`aarch64-unknown-linux-musl`), built
/// once per test process like [`static_supervisor_binary`]; it runs here
/// under qemu-user.
pub fn arm64_static_supervisor_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_static_supervisor(ARM64_STATIC_TARGET))
}

fn build_static_supervisor(target: &str) -> PathBuf {
    let binary = target_dir().join(target).join("release").join(BINARY_NAME);
    if prebuilt() && binary.is_file() {
        return binary;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            "openshell-sandbox",
        ])
        .args(["--bin", BINARY_NAME, "--target", target])
        .output()
        .unwrap_or_else(|err| panic!("could not run cargo to build the supervisor: {err}"));
    assert!(
        output.status.success(),
        "building the static supervisor failed (is the target installed? `rustup target add {target}`):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(binary.is_file(), "cargo built no {}", binary.display());
    binary
}

/// Returns the debug binary `bin` of package `package`, built (once per
/// test process) with every other binary of the workspace: end-to-end tests
/// run the tools through their command lines, exactly as users and CI
/// scripts do.
///
/// The whole workspace is built, tests included, because that is the
/// feature set `cargo test --workspace` has just compiled: the build is then
/// a no-op. Building one package alone would resolve features differently
/// (a dependency of another member enables some) and recompile much of the
/// dependency tree.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if prebuilt() {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--locked", "--workspace", "--bins", "--tests"])
            .output()
            .unwrap_or_else(|err| panic!("could not run cargo to build the workspace: {err}"));
        assert!(
            output.status.success(),
            "building the workspace's binaries failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    let path = target_dir().join("debug").join(bin);
    assert!(
        path.is_file(),
        "cargo built no {} (is {bin} a binary of package {package}?)",
        path.display()
    );
    path
}
