//! Helpers shared by the supervisor's integration tests.

// Each test binary uses some of these helpers; they panic on failure, as
// the tests that call them do.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};
use nix::unistd::Pid;

/// The debug build of the binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_openshell-sandbox"))
}

/// A command running the binary under test with `args`.
pub fn sandbox(args: &[&str]) -> Command {
    let mut command = Command::new(bin());
    command.args(args);
    command
}

/// A temporary directory that other users may enter (tests that drop to
/// another uid need that; `tempfile` makes them 0700).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// stdout and stderr of `output` as text.
pub fn texts(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that `stderr` is exactly one line and returns it.
pub fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line on stderr, got: {stderr:?}"
    );
    lines[0]
}

/// Names in `dir`, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test
/// fails).
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "2m") at `path`, mode 0755.
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let options = format!("size={size},mode=0755");
        nix::mount::mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .unwrap_or_else(|err| panic!("mounting a tmpfs at {}: {err}", path.display()));
        Tmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Makes the mount read-only.
    pub fn remount_read_only(&self) {
        nix::mount::mount(
            None::<&str>,
            &self.path,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            None::<&str>,
        )
        .unwrap_or_else(|err| panic!("remounting {} read-only: {err}", self.path.display()));
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Detach: a process a failed test left behind may still use it.
        if let Err(err) = nix::mount::umount2(&self.path, MntFlags::MNT_DETACH) {
            eprintln!("unmounting {}: {err}", self.path.display());
        }
    }
}

/// One process as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    /// Its pid.
    pub pid: i32,
    /// Its state letter (`Z` for a zombie).
    pub state: char,
    /// Its command name.
    pub comm: String,
}

/// The processes whose parent is `parent`, read from /proc/*/stat.
pub fn children_of(parent: Pid) -> Vec<ProcEntry> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // The process may be gone between listing and reading.
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_owned();
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(parent.as_raw()) {
            children.push(ProcEntry { pid, state, comm });
        }
    }
    children
}

/// Whether `pid` sits in `sigwait` (the `rt_sigtimedwait` system call, read
/// from /proc/PID/syscall): the supervisor's signals are then blocked and it
/// takes them one by one. /proc/PID/status cannot tell, as the kernel
/// unblocks the awaited signals for the duration of the call.
pub fn waiting_for_signals(pid: Pid) -> bool {
    fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|line| line.split_whitespace().next()?.parse::<i64>().ok())
        .is_some_and(|number| number == nix::libc::SYS_rt_sigtimedwait)
}

/// A child process that is killed and reaped when dropped, so a failing test
/// leaves nothing running.
pub struct Running(pub std::process::Child);

impl Running {
    /// Its pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.0.id()).unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits until `condition` holds, or panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` to exit, killing it and panicking after `timeout`.
pub fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
