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
    use wait_timeout::ChildExt;
    match child.wait_timeout(timeout).unwrap() {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
    }
}

/// How the supervisor is started: directly (not PID 1, as with
/// `shareProcessNamespace`), or as PID 1 of a new PID namespace (as in a
/// container), through `unshare --pid --fork --mount-proc` (a /proc of the
/// new namespace, so the workload's /proc/self is right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A child of the test, not PID 1.
    NotPid1,
    /// PID 1 of a new PID namespace.
    Pid1,
}

impl Mode {
    /// Whether this mode can run here: PID 1 needs root and unshare; in CI
    /// a missing one fails the test (see openshell_testsupport::tools).
    pub fn available(self, test: &str) -> bool {
        use openshell_testsupport::tools::{require, require_root};
        match self {
            Mode::NotPid1 => true,
            Mode::Pid1 => {
                require_root(test) && require(test, &["unshare"], "apt-get install util-linux")
            }
        }
    }

    /// A command that runs `program` with `args` in this mode, after the
    /// shell commands `prelude` (run in a private mount namespace of its
    /// own, e.g. to bind-mount a file over /etc/passwd) when given.
    pub fn command(self, program: &Path, args: &[&str], prelude: Option<&str>) -> Command {
        let mut unshare_args: Vec<&str> = Vec::new();
        if self == Mode::Pid1 {
            unshare_args.extend(["--pid", "--fork", "--kill-child", "--mount-proc"]);
        }
        if prelude.is_some() {
            unshare_args.extend(["--mount", "--propagation", "private"]);
        }
        if unshare_args.is_empty() {
            let mut command = Command::new(program);
            command.args(args);
            return command;
        }
        let mut command = Command::new("unshare");
        command.args(&unshare_args).arg("--");
        match prelude {
            Some(prelude) => {
                let script = format!("{prelude}\nexec \"$0\" \"$@\"");
                command.args(["sh", "-c", &script]).arg(program).args(args);
            }
            None => {
                command.arg(program).args(args);
            }
        }
        command
    }

    /// The supervisor's pid, as the test sees it, given the process the test
    /// started: itself, or the child of unshare (waited for, with a
    /// deadline).
    pub fn supervisor_pid(self, started: Pid) -> Pid {
        match self {
            Mode::NotPid1 => started,
            Mode::Pid1 => {
                let mut found = None;
                wait_until(
                    "unshare to start the supervisor",
                    Duration::from_secs(20),
                    || {
                        found = children_of(started)
                            .into_iter()
                            .find(|entry| entry.comm != "unshare")
                            .map(|entry| Pid::from_raw(entry.pid));
                        found.is_some()
                    },
                );
                found.unwrap()
            }
        }
    }
}

impl Mode {
    /// Like [`Mode::supervisor_pid`], but gives up at once (returning
    /// `started`) when unshare has no child (any more).
    pub fn supervisor_pid_if_running(self, started: Pid) -> Pid {
        match self {
            Mode::NotPid1 => started,
            Mode::Pid1 => children_of(started)
                .into_iter()
                .next()
                .map_or(started, |entry| Pid::from_raw(entry.pid)),
        }
    }
}

/// Generates `NAME::not_pid_1` and `NAME::as_pid_1` tests that run
/// `fn NAME(mode: Mode)` in each mode.
#[macro_export]
macro_rules! both_modes {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn not_pid_1() {
                super::$name($crate::common::Mode::NotPid1);
            }

            #[test]
            fn as_pid_1() {
                let test = concat!(stringify!($name), "::as_pid_1");
                if $crate::common::Mode::Pid1.available(test) {
                    super::$name($crate::common::Mode::Pid1);
                }
            }
        }
    )+};
}

/// Lines of a child's output, read in a thread, so that every read has a
/// deadline.
pub struct Lines {
    receiver: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    /// Reads `reader` line by line in a new thread.
    pub fn spawn(reader: impl std::io::Read + Send + 'static) -> Lines {
        use std::io::BufRead;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if sender.send(line.trim_end_matches('\r').to_owned()).is_err() {
                    break;
                }
            }
        });
        Lines { receiver }
    }

    /// The next line, or a panic naming `what` after `timeout`.
    pub fn next(&self, what: &str, timeout: Duration) -> String {
        match self.receiver.recv_timeout(timeout) {
            Ok(line) => line,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("timed out after {timeout:?} waiting for {what}")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                panic!("the output ended while waiting for {what}")
            }
        }
    }

    /// Whatever line comes within `timeout`, if any.
    pub fn try_next(&self, timeout: Duration) -> Option<String> {
        self.receiver.recv_timeout(timeout).ok()
    }

    /// Every line until the output ends, with a deadline for the end.
    pub fn rest(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return lines,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the output did not end within {timeout:?}; so far: {lines:?}")
                }
            }
        }
    }
}

/// A supervisor started by a test, with its stdout as lines; killed (with
/// what it started) when dropped.
pub struct Started {
    /// The process the test started (the supervisor, or unshare).
    pub process: Running,
    mode: Mode,
    supervisor: std::cell::OnceCell<Pid>,
    /// Its stdout.
    pub stdout: Lines,
    /// Its stderr.
    pub stderr: Lines,
}

impl Started {
    /// Starts `command` with stdout and stderr piped.
    pub fn spawn(mode: Mode, mut command: Command) -> Started {
        use std::process::Stdio;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = Lines::spawn(child.stdout.take().unwrap());
        let stderr = Lines::spawn(child.stderr.take().unwrap());
        Started {
            process: Running(child),
            mode,
            supervisor: std::cell::OnceCell::new(),
            stdout,
            stderr,
        }
    }

    /// The supervisor's pid, found on first use (as PID 1 it is unshare's
    /// child); ask while it runs.
    pub fn supervisor(&self) -> Pid {
        *self
            .supervisor
            .get_or_init(|| self.mode.supervisor_pid(self.process.pid()))
    }

    /// Sends `signal` to the supervisor.
    pub fn signal(&self, signal: i32) {
        let supervisor = self.supervisor();
        // SAFETY: kill has no memory effects.
        let result = unsafe { nix::libc::kill(supervisor.as_raw(), signal) };
        assert_eq!(result, 0, "kill({supervisor}, {signal}) failed");
    }

    /// Waits for the process the test started to exit, with a deadline.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_with_timeout(&mut self.process.0, timeout)
    }
}

/// The deadline of [`OutputWithDeadline::output_with_deadline`].
pub const OUTPUT_DEADLINE: Duration = Duration::from_secs(60);

/// `Command::output` with a deadline: the child is killed and the test
/// fails when it has not exited after [`OUTPUT_DEADLINE`].
pub trait OutputWithDeadline {
    /// Runs the command to its end (stdin empty), reading stdout and stderr.
    fn output_with_deadline(&mut self) -> std::io::Result<Output>;
}

impl OutputWithDeadline for Command {
    fn output_with_deadline(&mut self) -> std::io::Result<Output> {
        Ok(output_of(self, OUTPUT_DEADLINE))
    }
}

/// `command`'s output, waiting at most `timeout` (then it is killed and the
/// test fails).
pub fn output_within(mut command: Command, timeout: Duration) -> Output {
    output_of(&mut command, timeout)
}

/// Like [`output_within`], for a borrowed command.
pub fn output_of(command: &mut Command, timeout: Duration) -> Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read_all = |mut reader: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = reader.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(stdout));
    let stderr = read_all(Box::new(stderr));
    let status = wait_with_timeout(&mut child, timeout);
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Makes `command`'s process start with `signals` ignored, as under nohup
/// or in a non-interactive shell's background job.
pub fn ignore_on_entry(command: &mut Command, signals: &'static [i32]) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for &signal in signals {
                if nix::libc::signal(signal, nix::libc::SIG_IGN) == nix::libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
