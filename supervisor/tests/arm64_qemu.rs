//! The arm64 release supervisor (aarch64-unknown-linux-musl, cross-compiled
//! and linked by rust-lld), run on this x86_64 machine under qemu-user
//! (`qemu-aarch64-static`, from Debian's qemu-user-static): it is static,
//! reports itself, installs itself with copy-self, passes exit codes on and
//! forwards signals, as the amd64 one does natively.
//!
//! qemu-user emulates the supervisor's own instructions only: the workloads
//! it starts (`sh`) are this machine's programs and run natively.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openshell_contract::elf;
use openshell_contract::version::{Libc, VersionReport};
use openshell_contract::{ARM64_STATIC_TARGET, BINARY_NAME, COPY_SELF_SUBCOMMAND};
use openshell_testsupport::tools::require;
use sha2::{Digest, Sha256};

/// qemu-user for aarch64, statically linked (needs no arm64 libraries).
const QEMU: &str = "qemu-aarch64-static";

/// Longest any one run may take: qemu starts in milliseconds, but CI
/// machines are shared.
const DEADLINE: Duration = Duration::from_secs(60);

/// Whether qemu is here; outside CI a missing qemu skips with a message.
fn have_qemu(test: &str) -> bool {
    require(test, &[QEMU], "apt-get install qemu-user-static")
}

/// The release supervisor for arm64, built once per test process (cargo's
/// lock makes concurrent builds wait for each other).
fn arm64_binary() -> &'static Path {
    openshell_testsupport::arm64_static_supervisor_binary()
}

/// `qemu-aarch64-static BINARY ARGS...`.
fn under_qemu(binary: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(QEMU);
    command.arg(binary).args(args).stdin(Stdio::null());
    command
}

/// A child that is killed and reaped when dropped, so a failing test leaves
/// nothing running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits for `child` to exit, or panics (the guard kills it) after the
/// deadline.
fn wait(child: &mut Running) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "process {} did not exit within {DEADLINE:?}",
            child.0.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `command` to its end, within the deadline (then it is killed).
fn run(mut command: Command) -> Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {command:?}: {err}"));
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let start = Instant::now();
    while !waiter.is_finished() {
        if start.elapsed() > DEADLINE {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("{command:?} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waiter.join().unwrap().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[test]
fn the_arm64_binary_is_a_static_aarch64_executable() {
    let bytes = fs::read(arm64_binary()).unwrap();
    let info = elf::inspect(&bytes).unwrap();
    assert_eq!(
        Some(info.machine),
        elf::machine_for_oci_architecture("arm64")
    );
    assert_eq!(info.oci_architecture(), Some("arm64"));
    assert_eq!(info.interpreter, None);
    assert!(info.needed.is_empty(), "{:?}", info.needed);
    assert_eq!(info.static_violations(), []);
}

#[test]
fn under_qemu_version_json_reports_a_static_musl_arm64_binary() {
    if !have_qemu("under_qemu_version_json_reports_a_static_musl_arm64_binary") {
        return;
    }
    let binary = arm64_binary();
    let output = run(under_qemu(binary, &["version", "--json"]));
    assert!(output.status.success(), "{}", text(&output));
    let report: VersionReport = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not a version report ({err}): {}", text(&output)));
    assert_eq!(report.name, BINARY_NAME);
    assert_eq!(report.target, ARM64_STATIC_TARGET);
    assert_eq!(report.libc, Libc::Musl);
    assert!(report.is_static);
    // It hashed itself: qemu shows the guest its own executable.
    assert_eq!(report.sha256, sha256_hex(&fs::read(binary).unwrap()));
}

#[test]
fn under_qemu_copy_self_installs_a_complete_copy_that_runs() {
    if !have_qemu("under_qemu_copy_self_installs_a_complete_copy_that_runs") {
        return;
    }
    let binary = arm64_binary();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("bin").join(BINARY_NAME);
    let dest_arg = dest.to_str().unwrap();
    let output = run(under_qemu(binary, &[COPY_SELF_SUBCOMMAND, dest_arg]));
    assert!(output.status.success(), "{}", text(&output));
    let source = fs::read(binary).unwrap();
    let copied = fs::read(&dest).unwrap();
    assert!(copied == source, "the copy differs from the arm64 binary");
    let mode = fs::metadata(&dest).unwrap().permissions().mode();
    assert_eq!(mode & 0o111, 0o111, "the copy is not executable: {mode:o}");
    assert_eq!(
        fs::read_dir(dest.parent().unwrap()).unwrap().count(),
        1,
        "no temporary file is left beside the copy"
    );
    // The installed copy is the same program: it runs and reports its hash.
    let output = run(under_qemu(&dest, &["version", "--json"]));
    assert!(output.status.success(), "{}", text(&output));
    let report: VersionReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.sha256, sha256_hex(&source));
    // A second run onto the identical copy succeeds and leaves it whole.
    let output = run(under_qemu(binary, &[COPY_SELF_SUBCOMMAND, dest_arg]));
    assert!(output.status.success(), "{}", text(&output));
    assert!(fs::read(&dest).unwrap() == source);
}

#[test]
fn under_qemu_exit_codes_pass_through() {
    if !have_qemu("under_qemu_exit_codes_pass_through") {
        return;
    }
    let binary = arm64_binary();
    let cases: [(&[&str], i32, &str); 4] = [
        (&["--", "sh", "-c", "exit 0"], 0, "a workload that succeeds"),
        (&["--", "sh", "-c", "exit 7"], 7, "the workload's own code"),
        (
            &["--", "sh", "-c", "kill -TERM $$"],
            128 + Signal::SIGTERM as i32,
            "128+N for a death by signal N",
        ),
        (
            &["--", "/nonexistent/openshell-test-command"],
            127,
            "127 for a command that does not exist",
        ),
    ];
    for (args, code, what) in cases {
        let output = run(under_qemu(binary, args));
        assert_eq!(
            output.status.code(),
            Some(code),
            "{what}: {}",
            text(&output)
        );
        assert_eq!(
            output.status.signal(),
            None,
            "{what}: the supervisor itself exits"
        );
    }
}

#[test]
fn under_qemu_signals_to_the_supervisor_reach_the_workload() {
    if !have_qemu("under_qemu_signals_to_the_supervisor_reach_the_workload") {
        return;
    }
    let binary = arm64_binary();
    let forwarded = [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];
    let mut script = String::new();
    for signal in forwarded {
        let name = signal.as_str().trim_start_matches("SIG");
        script.push_str(&format!("trap 'echo got {name}' {name}; "));
    }
    script.push_str("trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done");
    let mut command = under_qemu(binary, &["--", "sh", "-c", &script]);
    let child = command
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {QEMU}: {err}"));
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    // Lines are read on a thread so that a silent workload fails the test
    // at the deadline instead of blocking it.
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if sender.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let next = || {
        lines
            .recv_timeout(DEADLINE)
            .expect("the workload printed nothing within the deadline")
    };
    assert_eq!(next(), "ready");
    // qemu-user runs the guest in its own process: this pid is the
    // supervisor's.
    let pid = Pid::from_raw(i32::try_from(running.0.id()).unwrap());
    for signal in forwarded.into_iter().chain([Signal::SIGTERM]) {
        kill(pid, signal).unwrap();
        let name = signal.as_str().trim_start_matches("SIG");
        assert_eq!(next(), format!("got {name}"));
    }
    let status = wait(&mut running);
    assert_eq!(
        status.code(),
        Some(7),
        "the workload's exit code comes back"
    );
}
