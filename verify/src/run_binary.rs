//! Runs a supervisor binary taken out of an image (`verify --run`): on this
//! host when it is built for this host's architecture, else under
//! qemu-user (Debian's qemu-user-static), bounded as [`openshell_contract::process`]
//! bounds every child.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openshell_contract::paths::BINARY_NAME;
use openshell_contract::platform::Architecture;
use openshell_contract::version::VersionReport;

use crate::filesystem::FileContents;

/// How long the extracted binary's `version --json` may take (under qemu
/// too, where a start takes some hundred milliseconds).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of each output stream is kept: a version report is a few
/// hundred bytes, and a binary that prints more must not fill memory.
const OUTPUT_LIMIT: u64 = 64 * 1024;

/// How the binary can be run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// Directly: it is built for this host.
    Native,
    /// Under this qemu-user emulator.
    Emulator(PathBuf),
}

/// Why the binary cannot be run here (a reason to skip, not a failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannotRun(pub String);

/// The qemu-user name of an OCI architecture (`qemu-NAME-static`).
pub fn qemu_name(architecture: &str) -> Option<&'static str> {
    Architecture::by_oci(architecture).map(|row| row.qemu)
}

/// Chooses how to run a binary for `architecture` on a host of
/// `host_architecture`, looking for qemu-user in `search_path` (`PATH`).
pub fn runner_for(
    architecture: &str,
    host_architecture: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Runner, CannotRun> {
    if architecture == host_architecture {
        return Ok(Runner::Native);
    }
    let Some(name) = qemu_name(architecture) else {
        return Err(CannotRun(format!(
            "the binary is for {architecture} and this host is {host_architecture}, and no \
             qemu-user emulator is known for {architecture}"
        )));
    };
    let candidates = [format!("qemu-{name}-static"), format!("qemu-{name}")];
    let found = search_path
        .into_iter()
        .flat_map(std::env::split_paths)
        .find_map(|dir| {
            candidates
                .iter()
                .map(|candidate| dir.join(candidate))
                .find(|path| is_executable(path))
        });
    found.map(Runner::Emulator).ok_or_else(|| {
        CannotRun(format!(
            "the binary is for {architecture} and this host is {host_architecture}; to run it \
             here under qemu-user, install qemu-{name}-static (apt-get install qemu-user-static)"
        ))
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Writes `contents` to a temporary file and runs its `version --json`
/// through `runner`, within `timeout`.
pub fn version_report(
    contents: &FileContents,
    runner: &Runner,
    timeout: Duration,
) -> Result<VersionReport, String> {
    let dir =
        tempfile::tempdir().map_err(|err| format!("could not make a temporary folder: {err}"))?;
    let path = dir.path().join(BINARY_NAME);
    let mut file = std::fs::File::create(&path)
        .map_err(|err| format!("could not extract the binary: {err}"))?;
    contents
        .write_to(&mut file)
        .and_then(|_| file.flush())
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o555)))
        .map_err(|err| format!("could not extract the binary: {err}"))?;
    // Close before running: Linux refuses to execute a file open for writing.
    drop(file);
    let mut command = match runner {
        Runner::Native => Command::new(&path),
        Runner::Emulator(emulator) => {
            let mut command = Command::new(emulator);
            command.arg(&path);
            command
        }
    };
    command.args(["version", "--json"]);
    let shown = match runner {
        Runner::Native => format!("`{BINARY_NAME} version --json`"),
        Runner::Emulator(emulator) => format!(
            "`{BINARY_NAME} version --json` (under {})",
            emulator.display()
        ),
    };
    let output = openshell_contract::process::run_bounded(&mut command, timeout, OUTPUT_LIMIT)
        .map_err(|err| format!("{shown}: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "{shown} exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|err| {
        format!(
            "{shown} printed something that is not a version report ({err}): {}",
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_architecture_runs_natively() {
        assert_eq!(runner_for("amd64", "amd64", None), Ok(Runner::Native));
    }

    #[test]
    fn another_architecture_needs_qemu_on_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = runner_for("arm64", "amd64", Some(dir.path().as_os_str())).unwrap_err();
        assert!(
            missing
                .0
                .contains("install qemu-aarch64-static (apt-get install qemu-user-static)"),
            "{missing:?}"
        );
        let emulator = dir.path().join("qemu-aarch64-static");
        std::fs::write(&emulator, b"#!/bin/sh\n").unwrap();
        // Not executable yet: not an emulator.
        assert!(runner_for("arm64", "amd64", Some(dir.path().as_os_str())).is_err());
        std::fs::set_permissions(&emulator, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            runner_for("arm64", "amd64", Some(dir.path().as_os_str())),
            Ok(Runner::Emulator(emulator))
        );
        // mips64le is in the architecture table now (qemu-mips64el); wasm,
        // a Go architecture, has no qemu-user.
        let unknown = runner_for("wasm", "amd64", Some(dir.path().as_os_str())).unwrap_err();
        assert!(
            unknown.0.contains("no qemu-user emulator is known"),
            "{unknown:?}"
        );
    }
}
