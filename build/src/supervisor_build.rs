//! Building the static supervisor with cargo, for the no-argument run.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use openshell_contract::{BINARY_NAME, DEFAULT_STATIC_TARGET};

use crate::progress::Progress;

/// The glibc target used when the musl target is not installed.
const GNU_FALLBACK_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Package name of the supervisor.
const SUPERVISOR_PACKAGE: &str = "openshell-sandbox";

/// Why the supervisor could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorBuildError {
    /// No workspace found.
    #[error(
        "could not find the OpenShell workspace (a Cargo.toml with [workspace] and a supervisor/ folder) from {start}: run build-image inside the repository, or pass --binary PATH"
    )]
    NoWorkspace {
        /// Where the search started.
        start: PathBuf,
    },
    /// cargo could not be started.
    #[error("could not run {cargo}: {source}")]
    Spawn {
        /// The cargo program.
        cargo: String,
        /// Why.
        source: std::io::Error,
    },
    /// cargo failed.
    #[error("`{command}` failed with {status}; its errors are above")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// cargo succeeded but the binary is not where expected.
    #[error("cargo finished but {path} does not exist")]
    Missing {
        /// Where it should be.
        path: PathBuf,
    },
}

fn is_workspace_root(dir: &Path) -> bool {
    dir.join("supervisor").join("Cargo.toml").is_file()
        && std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
}

/// The workspace root: the first folder up from `start` that is the
/// OpenShell workspace, else the one this program was compiled in.
pub fn workspace_root(start: &Path) -> Result<PathBuf, SupervisorBuildError> {
    if let Some(found) = start.ancestors().find(|dir| is_workspace_root(dir)) {
        return Ok(found.to_path_buf());
    }
    let compiled_in = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    match compiled_in {
        Some(dir) if is_workspace_root(dir) => Ok(dir.to_path_buf()),
        _ => Err(SupervisorBuildError::NoWorkspace {
            start: start.to_path_buf(),
        }),
    }
}

/// The cargo target folder of `workspace`.
pub fn target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// Whether rustc has the standard library for `target`.
fn target_installed(target: &str) -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| {
            PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
                .join("lib/rustlib")
                .join(target)
                .is_dir()
        })
        .unwrap_or(false)
}

/// Builds the release supervisor, static, and returns its path.
///
/// The musl target links statically by default. Without it, glibc with
/// `+crt-static` gives a static-PIE too; the target is named explicitly so
/// RUSTFLAGS reach only the supervisor, not build scripts.
pub fn build_supervisor(
    workspace: &Path,
    progress: &Progress,
) -> Result<PathBuf, SupervisorBuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command.current_dir(workspace).args([
        "build",
        "--release",
        "--package",
        SUPERVISOR_PACKAGE,
        "--bin",
        BINARY_NAME,
        "--target",
    ]);
    let target = if target_installed(DEFAULT_STATIC_TARGET) {
        DEFAULT_STATIC_TARGET
    } else {
        progress.note(format!(
            "the {DEFAULT_STATIC_TARGET} target is not installed (`rustup target add {DEFAULT_STATIC_TARGET}`); building for {GNU_FALLBACK_TARGET} with RUSTFLAGS=\"-C target-feature=+crt-static\" instead"
        ));
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+crt-static");
        command.env("RUSTFLAGS", flags.trim());
        GNU_FALLBACK_TARGET
    };
    command.arg(target);
    // cargo's own progress goes to our stderr; our stdout stays for results.
    if let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() {
        command.stdout(Stdio::from(stderr));
    }
    command.stdin(Stdio::null());
    let line = format!("{cargo} build --release --package {SUPERVISOR_PACKAGE} --target {target}");
    let step = progress.step(format!("building the supervisor: {line}"));
    let status = command
        .status()
        .map_err(|source| SupervisorBuildError::Spawn {
            cargo: cargo.clone(),
            source,
        })?;
    if !status.success() {
        return Err(SupervisorBuildError::Failed {
            command: line,
            status,
        });
    }
    let binary = target_dir(workspace)
        .join(target)
        .join("release")
        .join(BINARY_NAME);
    if !binary.is_file() {
        return Err(SupervisorBuildError::Missing { path: binary });
    }
    step.done(binary.display().to_string());
    Ok(binary)
}

/// The commit the workspace is at (`git rev-parse HEAD`), if git knows it.
pub fn git_revision(workspace: &Path) -> Option<String> {
    let output = Command::new("git")
        .current_dir(workspace)
        .args(["rev-parse", "HEAD"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let revision = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (output.status.success() && !revision.is_empty()).then_some(revision)
}
