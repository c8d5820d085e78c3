//! Running a command and reading its peak memory use (resident set size),
//! for tests that bound what hostile input may cost.

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// What a measured run gave.
#[derive(Debug)]
pub struct MeasuredRun {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Peak resident set size of the process, in bytes.
    pub peak_rss: u64,
    /// Wall time from start to exit.
    pub elapsed: Duration,
}

/// Runs `command` (stdin closed) to its end, within `deadline`, and
/// reports its peak RSS as the kernel accounted it (`wait4`'s rusage of
/// that one child, not of every child this process ever had).
///
/// The child starts in this process's address space (std spawns with
/// vfork semantics), and exec keeps that space's high-water mark: the peak
/// reported is at least this process's own peak so far. Measure from a test
/// that has not itself held much memory.
///
/// Panics, after killing it, when the command runs past `deadline`.
// The child is reaped by wait4 below, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_measured(command: Command, deadline: Duration) -> MeasuredRun {
    let description = format!("{command:?}");
    let start = Instant::now();
    let (mut child, stdout, stderr) = crate::podman::spawn_drained(command, &description);
    let pid = libc::pid_t::try_from(child.id())
        .unwrap_or_else(|err| panic!("pid of {description} does not fit pid_t: {err}"));
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is plain old data that wait4 fills in; zeroed is
        // a valid value for it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child with valid pointers to locals;
        // WNOHANG so the deadline below is kept.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            use std::os::unix::process::ExitStatusExt;
            let elapsed = start.elapsed();
            return MeasuredRun {
                status: ExitStatus::from_raw(status),
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
                // Linux reports ru_maxrss in KiB.
                peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
                elapsed,
            };
        }
        assert!(
            reaped == 0,
            "wait4 on {description} failed: {}",
            std::io::Error::last_os_error()
        );
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{description} did not finish within {deadline:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// This process's own peak resident set size so far (`VmHWM`), in bytes:
/// for a test that bounds what its own calls cost. nextest runs each test
/// in a process of its own, so the peak is that test's (with its fixtures).
pub fn own_peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|err| panic!("could not read /proc/self/status: {err}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or_else(|| panic!("no VmHWM in /proc/self/status"))
}
