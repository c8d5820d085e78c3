//! Runs a supervisor binary taken out of an image (`verify --run`): on this
//! host when it is built for this host's architecture, else under
//! qemu-user (Debian's qemu-user-static), with a deadline, bounded output,
//! and every process it started killed when it is done.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openshell_contract::paths::BINARY_NAME;
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
    Some(match architecture {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "386" => "i386",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "ppc64le" => "ppc64le",
        "loong64" => "loongarch64",
        _ => return None,
    })
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
    let output = run_bounded(&mut command, timeout).map_err(|err| format!("{shown}: {err}"))?;
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

/// What a bounded run gave.
#[derive(Debug)]
pub struct BoundedOutput {
    /// How it ended.
    pub status: std::process::ExitStatus,
    /// The first [`OUTPUT_LIMIT`] bytes of its standard output.
    pub stdout: Vec<u8>,
    /// The first [`OUTPUT_LIMIT`] bytes of its standard error.
    pub stderr: Vec<u8>,
}

/// Runs `command` in a process group of its own, keeping the first
/// [`OUTPUT_LIMIT`] bytes of each output. At `timeout` the group is killed
/// and the run fails; when the command ends, whatever it left running in
/// its group is killed too, so a process that keeps the output pipes open
/// cannot make the caller wait.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Result<BoundedOutput, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|err| format!("could not start it: {err}"))?;
    let group = rustix::process::Pid::from_child(&child);
    let kill_group = || {
        // The group may be gone already; nothing to report then.
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group();
                let _ = child.wait();
                return Err(format!("did not finish within {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(err) => {
                kill_group();
                return Err(format!("could not wait for it: {err}"));
            }
        }
    };
    kill_group();
    Ok(BoundedOutput {
        status,
        stdout: finish(stdout),
        stderr: finish(stderr),
    })
}

/// A reader thread keeping the first [`OUTPUT_LIMIT`] bytes of `pipe` and
/// reading the rest away, so the writer never blocks on a full pipe.
fn drain(pipe: Option<Box<dyn Read + Send>>) -> (JoinHandle<()>, mpsc::Receiver<Vec<u8>>) {
    let (sender, receiver) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(pipe) = pipe {
            let mut limited = pipe.take(OUTPUT_LIMIT);
            let _ = limited.read_to_end(&mut kept);
            let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
        }
        let _ = sender.send(kept);
    });
    (handle, receiver)
}

/// What a drain thread kept. The group is dead by now, so the pipe closes
/// at once; the short wait covers a writer outside the group (a process
/// that left it with setsid), whose output is then left unread.
fn finish((handle, receiver): (JoinHandle<()>, mpsc::Receiver<Vec<u8>>)) -> Vec<u8> {
    match receiver.recv_timeout(Duration::from_secs(2)) {
        Ok(kept) => {
            let _ = handle.join();
            kept
        }
        Err(_) => Vec::new(),
    }
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
        let unknown = runner_for("mips64le", "amd64", Some(dir.path().as_os_str())).unwrap_err();
        assert!(
            unknown.0.contains("no qemu-user emulator is known"),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_process_left_holding_the_output_does_not_hold_up_the_run() {
        let started = Instant::now();
        let output = run_bounded(
            Command::new("sh").args(["-c", "sleep 600 & echo done"]),
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout, b"done\n");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_run_past_its_deadline_is_killed_with_its_group() {
        let started = Instant::now();
        let err = run_bounded(
            Command::new("sh").args(["-c", "sleep 600 & sleep 600"]),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(err.contains("did not finish within"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn output_beyond_the_limit_is_read_away_not_kept() {
        let output = run_bounded(
            Command::new("sh").args(["-c", "head -c 1048576 /dev/zero; echo end >&2"]),
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(output.status.success());
        assert_eq!(output.stdout.len() as u64, OUTPUT_LIMIT);
        assert_eq!(output.stderr, b"end\n");
    }
}
