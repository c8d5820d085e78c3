//! Supervise mode: the container's PID 1.
//!
//! The kernel treats PID 1 of a PID namespace specially, and the agent images
//! we run in carry no init of their own, so the supervisor does an init's
//! duties: it starts the workload, passes signals on, reaps every zombie, and
//! leaves with the workload's exit status. Each duty is explained where it
//! happens.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::libc;
use nix::unistd::{ForkResult, Pid};

use crate::exec::{self, ExecError, PrepareError, Prepared};
use crate::run_as::{self, Identity, ResolveError, RunAs};
use crate::signals::{self, SignalNumber, SignalSet};
use crate::workdir::{self, Owner, WorkdirError};
use openshell_contract::supervise::{
    DEFAULT_KILL_GRACE_SECONDS, SIGNAL_TARGET_CHILD, SIGNAL_TARGET_GROUP,
};

pub use crate::exec::{EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND};

/// Signals that end idle mode (no workload).
pub const IDLE_STOP_SIGNALS: [SignalNumber; 2] = [libc::SIGTERM, libc::SIGINT];

/// Exit code when the supervisor itself fails (missing workdir, refused
/// privilege drop, a failing system call).
pub const EXIT_FAILURE: i32 = 1;

/// Exit codes for a workload killed by signal N are this plus N, as shells
/// report them: the status of a process cannot itself say "killed by a
/// signal" once it passes through an exit code.
pub const SIGNAL_EXIT_BASE: i32 = 128;

/// Who receives the signals the supervisor passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalTarget {
    /// The workload's whole process group: also what `sh -c`, npm or a
    /// wrapper script started, as a terminal's Ctrl-C would reach them
    /// (tini -g, dumb-init).
    #[default]
    Group,
    /// The workload's main process only (tini's default).
    Child,
}

impl FromStr for SignalTarget {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            SIGNAL_TARGET_GROUP => Ok(Self::Group),
            SIGNAL_TARGET_CHILD => Ok(Self::Child),
            other => Err(format!(
                "expected {SIGNAL_TARGET_GROUP} or {SIGNAL_TARGET_CHILD}, not {other:?}"
            )),
        }
    }
}

/// Parses a duration such as `5`, `2.5`, `5s` or `500ms` (seconds when no
/// unit is given). Integer arithmetic only: float parsing and printing would
/// add tens of KiB to a binary copied into every sandbox.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let problem = || format!("expected seconds such as 5, 2.5, 5s or 500ms, not {value:?}");
    // (number, how many nanoseconds one unit is, how many fraction digits
    // fit in a nanosecond count)
    let (number, unit_nanos, fraction_digits) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 1_000_000u64, 6)
    } else {
        (
            value.strip_suffix('s').unwrap_or(value),
            1_000_000_000u64,
            9,
        )
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > fraction_digits {
        return Err(problem());
    }
    let whole: u64 = whole.parse().map_err(|_| problem())?;
    let mut fraction_nanos = 0u64;
    let mut scale = unit_nanos;
    for digit in fraction.bytes() {
        scale /= 10;
        fraction_nanos += u64::from(digit - b'0') * scale;
    }
    let nanos = u128::from(whole) * u128::from(unit_nanos) + u128::from(fraction_nanos);
    let seconds = u64::try_from(nanos / 1_000_000_000).map_err(|_| problem())?;
    // The remainder is below 10^9, so it fits.
    let subsec = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(seconds, subsec))
}

/// Prints a duration the way [`parse_duration`] reads it back: `5s`,
/// `2.5s`, `0.25s`.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return format!("{}s", duration.as_secs());
    }
    let fraction = format!("{nanos:09}");
    format!("{}.{}s", duration.as_secs(), fraction.trim_end_matches('0'))
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperviseOptions {
    /// COMMAND and its arguments; empty for idle mode.
    pub command: Vec<OsString>,
    /// Working directory of the workload.
    pub workdir: Option<PathBuf>,
    /// Identity of the workload; the supervisor keeps its own.
    pub run_as: Option<RunAs>,
    /// Supplementary groups added for the workload (`--groups`): with
    /// `run_as`, merged as containerd merges them (see
    /// [`run_as::merged_groups`]); without, added to the supervisor's own.
    pub groups: Vec<u32>,
    /// Set no_new_privs for the workload (always set with `run_as`).
    pub no_new_privs: bool,
    /// Who receives forwarded signals.
    pub signal_target: SignalTarget,
    /// How long the rest of the workload's process group has between
    /// SIGTERM and SIGKILL once the main process has exited.
    pub kill_grace: Duration,
    /// The root whose /etc/passwd and /etc/group name the users: `/`, the
    /// agent image's, in a container.
    pub image_root: PathBuf,
}

impl Default for SuperviseOptions {
    fn default() -> Self {
        SuperviseOptions {
            command: Vec::new(),
            workdir: None,
            run_as: None,
            groups: Vec::new(),
            no_new_privs: false,
            signal_target: SignalTarget::default(),
            kill_grace: Duration::from_secs(DEFAULT_KILL_GRACE_SECONDS),
            image_root: PathBuf::from("/"),
        }
    }
}

/// Why supervision failed.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// The kernel would not start COMMAND.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// COMMAND or its environment cannot be passed to exec.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// `--run-as` names a user or group the image does not have.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The working directory could not be made.
    #[error(transparent)]
    Workdir(#[from] WorkdirError),
    /// The working directory does not exist.
    #[error("workdir {} does not exist", .0.display())]
    WorkdirMissing(PathBuf),
    /// The working directory exists but could not be entered.
    #[error("cannot enter workdir {}", .path.display())]
    WorkdirUnusable {
        /// The directory.
        path: PathBuf,
        /// The error from chdir.
        #[source]
        source: io::Error,
    },
    /// The workload's identity could not be taken.
    #[error("cannot drop privileges to --run-as {run_as} ({identity}): {call} was refused")]
    PrivilegeDrop {
        /// The identity asked for.
        run_as: String,
        /// The uid and gid it resolved to.
        identity: String,
        /// The system call that failed.
        call: &'static str,
        /// Its error.
        #[source]
        source: io::Error,
    },
    /// `--groups` could not be given to the workload.
    #[error("cannot give the workload the supplementary groups {groups}: setgroups was refused")]
    Groups {
        /// The groups, comma-separated.
        groups: String,
        /// The error from setgroups.
        #[source]
        source: io::Error,
    },
    /// Privileges remain after the drop to `--run-as`.
    #[error(
        "refusing to start the workload: after dropping privileges to --run-as {run_as} ({identity}) {remains} (the supervisor was started with capabilities that survive a change of uid: ambient capabilities, or the securebits keep_caps or no_setuid_fixup; start it without them)"
    )]
    PrivilegesRemain {
        /// The identity asked for.
        run_as: String,
        /// The uid and gid it resolved to.
        identity: String,
        /// What remains, in words.
        remains: String,
    },
    /// A system call the supervisor needs failed.
    #[error("{call} failed")]
    System {
        /// The system call.
        call: &'static str,
        /// Its error.
        #[source]
        source: io::Error,
    },
}

impl SuperviseError {
    /// The exit code the supervisor leaves with for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Exec(err) => err.exit_code(),
            Self::Prepare(_) => EXIT_CANNOT_EXECUTE,
            Self::Resolve(_)
            | Self::Workdir(_)
            | Self::WorkdirMissing(_)
            | Self::WorkdirUnusable { .. }
            | Self::PrivilegeDrop { .. }
            | Self::Groups { .. }
            | Self::PrivilegesRemain { .. }
            | Self::System { .. } => EXIT_FAILURE,
        }
    }

    fn system(call: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::System { call, source }
    }
}

/// Writes a warning to stderr; a broken stderr is no reason to fail.
pub fn warn(message: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(
        io::stderr().lock(),
        "{}: warning: {message}",
        openshell_contract::BINARY_NAME
    );
}

/// Runs the workload described by `options` to its end and returns the exit
/// code to leave with: the workload's own, or 128+N when signal N killed it.
/// With no command, stays up reaping until `SIGTERM` or `SIGINT`, then
/// returns 0.
///
/// Every signal must already be blocked ([`signals::block_all`], the first
/// thing `main` does, so that none sent during start-up is lost); this
/// blocks them again for callers that did not.
pub fn run(options: &SuperviseOptions) -> Result<i32, SuperviseError> {
    run_with(options, || {})
}

/// [`run`], calling `after_start` once the workload runs (or has failed to
/// start): the place to free what start-up needed, off the path to the
/// workload's first instruction.
pub fn run_with(
    options: &SuperviseOptions,
    after_start: impl FnOnce(),
) -> Result<i32, SuperviseError> {
    // Block every signal instead of installing handlers, and take them one
    // at a time with sigwait: no code runs in signal context, none is lost
    // between spawning the child and waiting, and none can kill the
    // supervisor by its default action (it is not always PID 1: with
    // shareProcessNamespace it is not). Blocked signals also reach PID 1:
    // the kernel drops those PID 1 leaves at their default action.
    signals::block_all().map_err(SuperviseError::system("sigprocmask"))?;
    // Dispositions matter little while every signal is blocked (the kernel
    // never discards a blocked signal as ignored), with one exception: a
    // SIGCHLD left ignored by the starter makes the kernel reap children by
    // itself, so the workload's status would be lost and the supervisor
    // would wait for it forever. Reset it, as the child resets them all.
    signals::reset_disposition(libc::SIGCHLD).map_err(SuperviseError::system("sigaction"))?;

    // Orphans (daemonising grandchildren) are reparented to the nearest
    // subreaper; making the supervisor one means it reaps them also when it
    // is not PID 1 (PID 1 reaps them anyway). Should the kernel refuse,
    // supervision still works: only orphans go to the real init instead.
    if let Err(errno) = nix::sys::prctl::set_child_subreaper(true) {
        warn(format_args!(
            "cannot become a child subreaper ({errno}); orphans will be reaped by init"
        ));
    }

    let Some((program, args)) = options.command.split_first() else {
        after_start();
        return idle();
    };
    let identity = options
        .run_as
        .as_ref()
        .map(|run_as| run_as::resolve(run_as, &options.image_root, &options.groups))
        .transpose()?;
    // Without --run-as, --groups adds to the supervisor's own groups.
    let groups = match &identity {
        Some(identity) => Some(identity.groups.clone()),
        None if options.groups.is_empty() => None,
        None => {
            let mut groups: Vec<u32> = nix::unistd::getgroups()
                .map_err(|errno| SuperviseError::System {
                    call: "getgroups",
                    source: errno.into(),
                })?
                .into_iter()
                .map(|gid| gid.as_raw())
                .chain(options.groups.iter().copied())
                .collect();
            groups.sort_unstable();
            groups.dedup();
            Some(groups)
        }
    };
    if let Some(dir) = &options.workdir {
        make_workdir(dir, identity.as_ref())?;
    }
    // The supervisor's environment goes to the workload as it is, unless
    // --run-as changes HOME, USER and LOGNAME.
    let env = identity
        .as_ref()
        .map(|identity| workload_environment(std::env::vars_os(), Some(identity)));
    let path = std::env::var_os("PATH");
    let prepared = Prepared::new(program, args, env, path.as_deref())?;
    let child = spawn(&prepared, options, identity.as_ref(), groups.as_deref());
    after_start();
    drop(prepared);
    let child = child?;
    Supervision {
        child,
        target: options.signal_target,
        kill_grace: options.kill_grace,
        terminal: None,
    }
    .run()
}

/// Makes the workdir when the image lacks it (see [`workdir`]), while the
/// supervisor is still root: parents root:root (when root), the directory
/// itself owned by the `--run-as` identity (root:root without one).
fn make_workdir(dir: &std::path::Path, identity: Option<&Identity>) -> Result<(), SuperviseError> {
    let root = nix::unistd::geteuid()
        .is_root()
        .then_some(Owner { uid: 0, gid: 0 });
    let owner = identity
        .map(|identity| Owner {
            uid: identity.uid,
            gid: identity.gid,
        })
        .or(root);
    workdir::ensure(dir, root, owner)?;
    Ok(())
}

/// The workload's environment: the supervisor's, and with `--run-as` HOME,
/// USER and LOGNAME of the workload's user (from its passwd entry; HOME=/
/// and no USER or LOGNAME without one), so it does not inherit root's HOME.
/// Each of them appears once, also when the supervisor's environment held
/// it more than once (a C library's getenv takes the first, a shell the
/// last: duplicates would give the workload root's values).
pub fn workload_environment(
    env: impl IntoIterator<Item = (OsString, OsString)>,
    identity: Option<&Identity>,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = env.into_iter().collect();
    let Some(identity) = identity else {
        return env;
    };
    let mut set = |key: &str, value: Option<OsString>| {
        let position = env.iter().position(|(name, _)| name == key);
        // The first one takes the value in place; every other goes.
        let mut seen = false;
        env.retain(|(name, _)| {
            if name != key {
                return true;
            }
            let keep = !seen && value.is_some();
            seen = true;
            keep
        });
        match (position, value) {
            (Some(index), Some(value)) => env[index].1 = value,
            (None, Some(value)) => env.push((key.into(), value)),
            (_, None) => {}
        }
    };
    match &identity.account {
        Some(account) => {
            let home = if account.home.is_empty() {
                OsString::from("/")
            } else {
                account.home.clone()
            };
            set("HOME", Some(home));
            set("USER", Some(account.name.clone()));
            set("LOGNAME", Some(account.name.clone()));
        }
        None => {
            set("HOME", Some("/".into()));
            set("USER", None);
            set("LOGNAME", None);
        }
    }
    env
}

/// Idle mode: a pod's PID 1 with nothing to run, reaping until told to stop.
fn idle() -> Result<i32, SuperviseError> {
    loop {
        let Some(received) =
            signals::wait(SignalSet::FULL, None).map_err(SuperviseError::system("sigtimedwait"))?
        else {
            continue;
        };
        if received.signal == libc::SIGCHLD {
            reap_all(None);
        } else if IDLE_STOP_SIGNALS.contains(&received.signal) {
            return Ok(0);
        }
        // Other signals have no one to go to: drop them.
    }
}

/// How often, while the rest of the group has its grace period, the
/// supervisor looks whether it has gone: its last members need not be the
/// supervisor's children, so no SIGCHLD may say so.
const GROUP_POLL: Duration = Duration::from_millis(50);

/// How long after forwarding SIGTSTP, SIGTTIN or SIGTTOU the supervisor
/// sends SIGCONT: time for a process that catches the signal to handle it
/// (a SIGCONT sent at once would discard it, still pending).
const CONTINUE_AFTER_STOP: Duration = Duration::from_millis(50);

/// The supervision of one running workload.
struct Supervision {
    child: Pid,
    target: SignalTarget,
    kill_grace: Duration,
    /// The terminal the workload's group was made the foreground of, if any.
    terminal: Option<i32>,
}

impl Supervision {
    /// The workload's process group: the main process made its own.
    fn group(&self) -> Pid {
        self.child
    }

    /// Forwards signals and reaps zombies until the workload has ended, then
    /// ends the rest of its group; returns the exit code to leave with.
    fn run(mut self) -> Result<i32, SuperviseError> {
        self.terminal = controlling_terminal_of(self.group());
        let mut exit_code = None;
        // None: the grace period has not begun. Some(None): it never ends.
        let mut grace_deadline: Option<Option<Instant>> = None;
        let mut continue_at: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let timeout = [
                grace_deadline.map(|deadline| {
                    deadline.map_or(GROUP_POLL, |deadline| {
                        deadline.saturating_duration_since(now).min(GROUP_POLL)
                    })
                }),
                continue_at.map(|at| at.saturating_duration_since(now)),
            ]
            .into_iter()
            .flatten()
            .min();
            let received = signals::wait(SignalSet::FULL, timeout)
                .map_err(SuperviseError::system("sigtimedwait"))?;
            match received {
                Some(received) if received.signal == libc::SIGCHLD => {
                    if let Some(code) = self.reap() {
                        exit_code = Some(code);
                    }
                }
                Some(received)
                    if signals::is_forwarded(received.signal) && !received.is_self_inflicted() =>
                {
                    self.forward(received.signal);
                    if signals::TERMINAL_STOP_SIGNALS.contains(&received.signal) {
                        continue_at = Some(Instant::now() + CONTINUE_AFTER_STOP);
                    }
                }
                Some(_) => {}
                None => {}
            }
            // A forwarded SIGTSTP, SIGTTIN or SIGTTOU has reached whoever
            // catches it; whatever it stopped is continued now. The
            // supervisor cannot see every stop: a grandchild stopped between
            // vfork and exec (as dash runs commands) leaves its parent
            // waiting, not stopped, and the workload would hang.
            if continue_at.is_some_and(|at| Instant::now() >= at) {
                continue_at = None;
                self.forward(libc::SIGCONT);
            }
            let Some(code) = exit_code else {
                continue;
            };
            // The main process has ended. Whatever else of its process
            // group still runs (a `sh -c` child, a worker) would be leaked
            // when the supervisor is not PID 1, and SIGKILLed without
            // warning when it is: give it SIGTERM and the grace period.
            if self.group_is_empty() {
                return Ok(code);
            }
            match grace_deadline {
                None => {
                    let _ = signal_group(self.group(), libc::SIGTERM);
                    // Stopped processes act on SIGTERM only once continued.
                    let _ = signal_group(self.group(), libc::SIGCONT);
                    // --kill-grace is bounded when parsed; a sum that still
                    // overflows the clock waits without end rather than
                    // panicking (which would lose the workload's status).
                    grace_deadline = Some(Instant::now().checked_add(self.kill_grace));
                }
                Some(Some(deadline)) if Instant::now() >= deadline => {
                    let _ = signal_group(self.group(), libc::SIGKILL);
                    return Ok(code);
                }
                Some(_) => {}
            }
        }
    }

    /// Whether no process is left in the workload's group.
    fn group_is_empty(&self) -> bool {
        signal_group(self.group(), 0) == Err(Errno::ESRCH)
    }

    /// Passes `signal` on: to the whole group, or to the main process only.
    fn forward(&self, signal: SignalNumber) {
        let result = match self.target {
            SignalTarget::Group => {
                let result = signal_group(self.group(), signal);
                // The main process may have left the group (setsid, setpgid):
                // it is still owed the signal.
                if nix::unistd::getpgid(Some(self.child)).is_ok_and(|pgid| pgid != self.group()) {
                    signal_process(self.child, signal)
                } else {
                    result
                }
            }
            SignalTarget::Child => signal_process(self.child, signal),
        };
        match result {
            // ESRCH: the workload has just exited; its SIGCHLD is pending.
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => warn(format_args!(
                "cannot forward signal {signal} to the workload (pid {}): {errno}",
                self.child
            )),
        }
    }

    /// Reaps every child that has ended, so none stays a zombie; several
    /// exits may share one SIGCHLD. A child stopped by a terminal stop
    /// signal is made to continue. Returns the exit code of the main process
    /// when it was among those reaped.
    fn reap(&self) -> Option<i32> {
        reap_all(Some(self))
    }

    /// A child stopped by SIGTSTP, SIGTTIN or SIGTTOU. In a container no
    /// shell does job control, so nothing would ever continue it: the
    /// workload would hang. Make its group the terminal's foreground group
    /// (a background read or write is what raises SIGTTIN and SIGTTOU) and
    /// continue it. A stop by SIGSTOP, which only a deliberate kill sends,
    /// is left alone.
    fn continue_stopped(&self, pid: Pid) {
        if pid == self.child {
            if let Some(fd) = self.terminal {
                // SAFETY: tcsetpgrp takes a descriptor number and a pgid;
                // failure changes nothing. SIGTTOU is blocked, so the call
                // cannot stop the supervisor.
                unsafe { libc::tcsetpgrp(fd, self.group().as_raw()) };
            }
            let _ = signal_group(self.group(), libc::SIGCONT);
        }
        let _ = signal_process(pid, libc::SIGCONT);
    }
}

fn signal_group(group: Pid, signal: SignalNumber) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects; a negative pid names a group.
    Errno::result(unsafe { libc::kill(-group.as_raw(), signal) }).map(drop)
}

fn signal_process(pid: Pid, signal: SignalNumber) -> Result<(), Errno> {
    // SAFETY: kill has no memory effects.
    Errno::result(unsafe { libc::kill(pid.as_raw(), signal) }).map(drop)
}

/// The descriptor among stdin, stdout and stderr whose terminal has `group`
/// as its foreground group: where a stopped workload is put back in front.
fn controlling_terminal_of(group: Pid) -> Option<i32> {
    (0..3).find(|&fd| {
        // SAFETY: tcgetpgrp takes a descriptor number; it fails for one that
        // is closed or not a terminal.
        unsafe { libc::tcgetpgrp(fd) == group.as_raw() }
    })
}

/// Reaps every child that has ended (see [`Supervision::reap`]); without a
/// supervision (idle mode), only reaps.
fn reap_all(supervision: Option<&Supervision>) -> Option<i32> {
    use rustix::io::Errno as RawErrno;
    use rustix::process::WaitOptions;

    let mut main_code = None;
    let options = if supervision.is_some() {
        WaitOptions::NOHANG | WaitOptions::UNTRACED
    } else {
        WaitOptions::NOHANG
    };
    loop {
        // wait(), i.e. waitpid(-1): any child, whatever its process group
        // (waitpid with no pid would wait for our own group only). rustix
        // rather than nix: nix fails to decode the status of a child killed
        // by a real-time signal, after the kernel has already reaped it.
        match rustix::process::wait(options) {
            Ok(Some((pid, status))) => {
                let pid = Pid::from_raw(pid.as_raw_nonzero().get());
                let Some(supervision) = supervision else {
                    continue;
                };
                if let Some(stop) = status.stopping_signal() {
                    if signals::TERMINAL_STOP_SIGNALS.contains(&stop) {
                        supervision.continue_stopped(pid);
                    }
                    continue;
                }
                if pid == supervision.child {
                    main_code = status
                        .exit_status()
                        .or_else(|| status.terminating_signal().map(|n| SIGNAL_EXIT_BASE + n));
                }
            }
            // Ok(None): children remain, none has ended. ECHILD: none left.
            Ok(None) | Err(RawErrno::CHILD) => return main_code,
            Err(RawErrno::INTR) => {}
            Err(errno) => {
                warn(format_args!("waitpid failed: {errno}"));
                return main_code;
            }
        }
    }
}

/// Which preparation step in the child failed; sent to the parent over a
/// pipe with the errno and, for exec, the candidate path's index, because
/// an errno alone cannot say that EPERM came from setuid, or which file of
/// the PATH search was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum ChildStep {
    ProcessGroup = 1,
    SetGroups = 2,
    SetGid = 3,
    SetUid = 4,
    NoNewPrivs = 5,
    ChangeDirectory = 6,
    ParentDeathSignal = 7,
    SignalDispositions = 8,
    SignalMask = 9,
    Exec = 10,
    CapabilitiesKept = 11,
    SecurebitsKeep = 12,
}

impl ChildStep {
    const ALL: [ChildStep; 12] = [
        Self::ProcessGroup,
        Self::SetGroups,
        Self::SetGid,
        Self::SetUid,
        Self::NoNewPrivs,
        Self::ChangeDirectory,
        Self::ParentDeathSignal,
        Self::SignalDispositions,
        Self::SignalMask,
        Self::Exec,
        Self::CapabilitiesKept,
        Self::SecurebitsKeep,
    ];

    fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|step| *step as u8 == byte)
    }
}

/// Reading what privileges remain after the drop to `--run-as`, with single
/// system calls (the child uses it between fork and exec).
mod capabilities {
    use super::ChildStep;
    use nix::libc;

    /// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
    const VERSION_3: u32 = 0x2008_0522;
    /// `SECBIT_NO_SETUID_FIXUP` and `SECBIT_KEEP_CAPS`: the securebits that
    /// keep capabilities across a change of uid.
    const KEEPING_SECUREBITS: libc::c_int = (1 << 2) | (1 << 4);

    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }

    /// The capability reported when capget itself failed (the report
    /// carries 32 bits).
    const UNKNOWN: usize = u32::MAX as usize;

    /// Which set a capability remains in: the errno field of the report.
    const EFFECTIVE: i32 = 1;
    const PERMITTED: i32 = 2;
    const AMBIENT: i32 = 3;

    /// Checks that no capability is effective, permitted or ambient, and
    /// that the securebits keep none; else the step to report, the set and
    /// the capability (or the securebits). Async-signal-safe.
    pub(super) fn check_dropped() -> Result<(), (ChildStep, i32, usize)> {
        let mut header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let mut data = [Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        // SAFETY: capget reads the header and fills two Data structs, as
        // version 3 defines them; both are valid for their sizes.
        let result = unsafe {
            libc::syscall(
                libc::SYS_capget,
                &mut header as *mut Header,
                data.as_mut_ptr(),
            )
        };
        if result != 0 {
            // Without an answer, nothing can be shown to be dropped.
            return Err((ChildStep::CapabilitiesKept, EFFECTIVE, UNKNOWN));
        }
        let word = |low: u32, high: u32| u64::from(low) | (u64::from(high) << 32);
        let sets = [
            (EFFECTIVE, word(data[0].effective, data[1].effective)),
            (PERMITTED, word(data[0].permitted, data[1].permitted)),
        ];
        for (set, bits) in sets {
            if bits != 0 {
                return Err((
                    ChildStep::CapabilitiesKept,
                    set,
                    bits.trailing_zeros() as usize,
                ));
            }
        }
        for capability in 0..64 {
            // SAFETY: prctl with integer arguments; -1 (EINVAL) past the
            // last capability this kernel knows.
            let set = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_IS_SET,
                    capability as libc::c_ulong,
                    0 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            };
            if set < 0 {
                break;
            }
            if set > 0 {
                return Err((ChildStep::CapabilitiesKept, AMBIENT, capability));
            }
        }
        // SAFETY: prctl without pointers.
        let securebits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
        if securebits > 0 && securebits & KEEPING_SECUREBITS != 0 {
            return Err((ChildStep::SecurebitsKeep, 0, securebits as usize));
        }
        Ok(())
    }

    /// The name of a capability set, by its report code.
    pub(super) fn set_name(code: i32) -> &'static str {
        match code {
            EFFECTIVE => "effective",
            PERMITTED => "permitted",
            AMBIENT => "ambient",
            _ => "unknown",
        }
    }

    /// Capability names, by number (linux/capability.h).
    const NAMES: [&str; 41] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_LINUX_IMMUTABLE",
        "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_IPC_LOCK",
        "CAP_IPC_OWNER",
        "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT",
        "CAP_SYS_PTRACE",
        "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN",
        "CAP_SYS_BOOT",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SYS_TIME",
        "CAP_SYS_TTY_CONFIG",
        "CAP_MKNOD",
        "CAP_LEASE",
        "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL",
        "CAP_SETFCAP",
        "CAP_MAC_OVERRIDE",
        "CAP_MAC_ADMIN",
        "CAP_SYSLOG",
        "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND",
        "CAP_AUDIT_READ",
        "CAP_PERFMON",
        "CAP_BPF",
        "CAP_CHECKPOINT_RESTORE",
    ];

    /// A capability's name (its number when this build does not know it).
    pub(super) fn name(capability: usize) -> String {
        match NAMES.get(capability) {
            Some(name) => (*name).to_owned(),
            None if capability == UNKNOWN => "an unknown capability (capget failed)".to_owned(),
            None => format!("capability {capability}"),
        }
    }
}

/// A child's report of a failed step: step, errno, candidate index.
const REPORT_LEN: usize = 9;

/// What the child needs, made before fork so it allocates nothing.
struct ChildPlan<'a> {
    prepared: &'a Prepared,
    identity: Option<&'a Identity>,
    /// The supplementary groups to set; `None`: leave them.
    groups: Option<&'a [u32]>,
    no_new_privs: bool,
    workdir: Option<std::ffi::CString>,
    supervisor: Pid,
    report: &'a OwnedFd,
}

/// Starts the workload with inherited stdin, stdout and stderr, so its output
/// passes straight through to the container log. Returns once it runs the
/// command (exec succeeded), or with the reason it could not.
fn spawn(
    prepared: &Prepared,
    options: &SuperviseOptions,
    identity: Option<&Identity>,
    groups: Option<&[u32]>,
) -> Result<Pid, SuperviseError> {
    use std::os::unix::ffi::OsStrExt;

    let workdir =
        match &options.workdir {
            Some(dir) => Some(std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(
                |_| SuperviseError::WorkdirUnusable {
                    path: dir.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the path contains a NUL byte",
                    ),
                },
            )?),
            None => None,
        };
    let (report_reader, report_writer) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| {
            SuperviseError::System {
                call: "pipe2",
                source: errno.into(),
            }
        })?;
    let plan = ChildPlan {
        prepared,
        identity,
        groups,
        no_new_privs: options.no_new_privs || identity.is_some(),
        workdir,
        supervisor: nix::unistd::getpid(),
        report: &report_writer,
    };

    // SAFETY: the supervisor is single-threaded, and the child only makes
    // async-signal-safe system calls before exec or _exit (see child_main).
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => child_main(&plan),
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => {
            return Err(SuperviseError::System {
                call: "fork",
                source: errno.into(),
            });
        }
    };
    // Close our write end, so reading below ends at exec (close-on-exec) or
    // at the child's report.
    drop(report_writer);
    let mut report = Vec::with_capacity(REPORT_LEN);
    // A read error leaves the report empty, which reads as a success: the
    // child then ran, or its end shows as an exit status.
    let _ = std::fs::File::from(report_reader).read_to_end(&mut report);
    if report.len() < REPORT_LEN {
        return Ok(child);
    }
    // The child has exited after its report: reap it now, so the failure is
    // not mistaken for the workload's exit later.
    let _ = nix::sys::wait::waitpid(child, None);
    let step = ChildStep::from_byte(report[0]);
    let errno = i32::from_ne_bytes([report[1], report[2], report[3], report[4]]);
    let index = u32::from_ne_bytes([report[5], report[6], report[7], report[8]]) as usize;
    Err(start_failure(
        prepared, options, identity, groups, step, errno, index,
    ))
}

/// Maps a failed start to the error users expect, by the step that failed.
fn start_failure(
    prepared: &Prepared,
    options: &SuperviseOptions,
    identity: Option<&Identity>,
    groups: Option<&[u32]>,
    step: Option<ChildStep>,
    errno: i32,
    index: usize,
) -> SuperviseError {
    let source = io::Error::from_raw_os_error(errno);
    let remains = |remains: String| SuperviseError::PrivilegesRemain {
        run_as: options
            .run_as
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        identity: identity.map_or_else(String::new, ToString::to_string),
        remains,
    };
    let privilege_drop = |call, source| SuperviseError::PrivilegeDrop {
        run_as: options
            .run_as
            .as_ref()
            .map_or_else(String::new, ToString::to_string),
        identity: identity.map_or_else(String::new, ToString::to_string),
        call,
        source,
    };
    let system = |call, source| SuperviseError::System { call, source };
    match step {
        Some(ChildStep::SetGroups) if identity.is_some() => privilege_drop("setgroups", source),
        Some(ChildStep::SetGroups) => SuperviseError::Groups {
            groups: groups
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            source,
        },
        Some(ChildStep::CapabilitiesKept) => remains(format!(
            "it still has {} in its {} capability set",
            capabilities::name(index),
            capabilities::set_name(errno)
        )),
        Some(ChildStep::SecurebitsKeep) => remains(format!(
            "its securebits ({index:#x}) keep capabilities across a change of uid"
        )),
        Some(ChildStep::SetGid) => privilege_drop("setgid", source),
        Some(ChildStep::SetUid) => privilege_drop("setuid", source),
        Some(ChildStep::NoNewPrivs) => system("prctl(PR_SET_NO_NEW_PRIVS)", source),
        Some(ChildStep::ChangeDirectory) => {
            let path = options.workdir.clone().unwrap_or_default();
            if errno == libc::ENOENT {
                SuperviseError::WorkdirMissing(path)
            } else {
                SuperviseError::WorkdirUnusable { path, source }
            }
        }
        Some(ChildStep::SignalMask) => system("sigprocmask", source),
        Some(ChildStep::SignalDispositions) => system("sigaction", source),
        Some(ChildStep::ProcessGroup) => system("setpgid", source),
        Some(ChildStep::ParentDeathSignal) => system("prctl(PR_SET_PDEATHSIG)", source),
        Some(ChildStep::Exec) | None => SuperviseError::Exec(exec::explain(
            &prepared.command,
            prepared.searched,
            prepared.candidate(index),
            errno,
        )),
    }
}

/// The child between fork and exec. It isolates its process group (and
/// takes the terminal's foreground), drops privileges (so the workdir is
/// entered as the workload's user, and one it may not enter is reported now
/// rather than as a confusing failure later), sets no_new_privs, asks for
/// SIGKILL should the supervisor die, resets every signal disposition and,
/// last, the signal mask (so a forwarded signal cannot arrive before exec
/// with the supervisor's dispositions), then execs. On failure it reports
/// the step and errno over the pipe and exits.
///
/// Only async-signal-safe system calls happen here: the plan was made, and
/// every string allocated, before fork.
fn child_main(plan: &ChildPlan<'_>) -> ! {
    let fail = |step: ChildStep, errno: i32, index: usize| -> ! {
        let mut report = [0u8; REPORT_LEN];
        report[0] = step as u8;
        report[1..5].copy_from_slice(&errno.to_ne_bytes());
        report[5..9].copy_from_slice(&(index as u32).to_ne_bytes());
        // SAFETY: write and _exit are async-signal-safe; the buffer is on
        // the stack. If the write fails the parent sees the child exit 127
        // as the workload's status, which is all it can do.
        unsafe {
            libc::write(
                plan.report.as_raw_fd(),
                report.as_ptr().cast(),
                report.len(),
            );
            libc::_exit(EXIT_NOT_FOUND)
        }
    };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    };
    let check = |step: ChildStep, result: libc::c_int| {
        if result != 0 {
            fail(step, errno(), 0);
        }
    };
    // SAFETY (all calls below): plain system calls on integers and on C
    // strings made before fork; none allocates or takes a lock.
    unsafe {
        // A process group of its own: signals for the workload reach all it
        // starts, and a terminal's Ctrl-C reaches it without the supervisor.
        check(ChildStep::ProcessGroup, libc::setpgid(0, 0));
        // On a terminal, become its foreground group: Ctrl-C then reaches
        // the workload once (from the terminal, not again forwarded), and
        // reading it or changing its settings does not stop the workload
        // with SIGTTIN or SIGTTOU. Any of stdin, stdout and stderr may be
        // the terminal (stdin may be a pipe while stdout is a terminal).
        // SIGTTOU, which tcsetpgrp raises from a background group, is
        // blocked. Failure (no terminal) changes nothing.
        let group = libc::getpgrp();
        for fd in 0..3 {
            if libc::tcsetpgrp(fd, group) == 0 {
                break;
            }
        }
        // Supplementary groups first: after setuid we may no longer set
        // them. (The raw system call: the C library's setgroups may
        // broadcast to threads, and there are none.)
        if let Some(groups) = plan.groups {
            check(
                ChildStep::SetGroups,
                libc::setgroups(groups.len(), groups.as_ptr()),
            );
        }
        if let Some(identity) = plan.identity {
            check(ChildStep::SetGid, libc::setgid(identity.gid));
            check(ChildStep::SetUid, libc::setuid(identity.uid));
            // The kernel clears the capabilities of a process that leaves
            // uid 0, unless its starter arranged otherwise (ambient
            // capabilities, securebits no_setuid_fixup or keep_caps): then
            // the workload would run as the user with root's powers. Check
            // rather than trust.
            if let Err((step, code, index)) = capabilities::check_dropped() {
                fail(step, code, index);
            }
        }
        // no_new_privs: exec can no longer grant privileges (setuid-root
        // binaries, file capabilities), so the workload cannot regain what
        // the drop took. Inherited by everything it starts.
        if plan.no_new_privs {
            check(
                ChildStep::NoNewPrivs,
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
            );
        }
        if let Some(dir) = &plan.workdir {
            check(ChildStep::ChangeDirectory, libc::chdir(dir.as_ptr()));
        }
        // Bind the workload's life to the supervisor's: it runs in a process
        // group of its own, so a SIGKILL sent to the supervisor's group would
        // otherwise leave it running unsupervised. Set after the privilege
        // drop, which clears it; if the supervisor died before, give up.
        check(
            ChildStep::ParentDeathSignal,
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0),
        );
        if libc::getppid() != plan.supervisor.as_raw() {
            fail(ChildStep::ParentDeathSignal, libc::ESRCH, 0);
        }
    }
    // Whatever the supervisor's starter ignored would stay ignored across
    // exec; the workload starts with every signal at its default action.
    if let Err((_, err)) = signals::reset_all_dispositions() {
        fail(
            ChildStep::SignalDispositions,
            err.raw_os_error().unwrap_or(libc::EINVAL),
            0,
        );
    }
    // The blocked mask is inherited across fork and exec; the workload must
    // start with every signal deliverable.
    if let Err(err) = signals::set_mask(SignalSet::EMPTY) {
        fail(
            ChildStep::SignalMask,
            err.raw_os_error().unwrap_or(libc::EINVAL),
            0,
        );
    }
    let (index, errno) = plan.prepared.exec();
    fail(ChildStep::Exec, errno, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_steps_round_trip_through_their_byte() {
        for step in ChildStep::ALL {
            assert_eq!(ChildStep::from_byte(step as u8), Some(step));
        }
        assert_eq!(ChildStep::from_byte(0), None);
    }

    #[test]
    fn a_refused_setuid_is_not_a_refused_exec() {
        let options = SuperviseOptions {
            run_as: Some(RunAs::ids(1000, 1000)),
            ..SuperviseOptions::default()
        };
        let identity = Identity {
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            account: None,
        };
        let prepared =
            Prepared::new("tool".as_ref(), &[], None, Some("/nonexistent".as_ref())).unwrap();
        let err = start_failure(
            &prepared,
            &options,
            Some(&identity),
            None,
            Some(ChildStep::SetUid),
            libc::EPERM,
            0,
        );
        assert_eq!(err.exit_code(), EXIT_FAILURE);
        assert_eq!(
            err.to_string(),
            "cannot drop privileges to --run-as 1000:1000 (1000:1000): setuid was refused"
        );
    }

    #[test]
    fn durations_parse_with_or_without_a_unit() {
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        for bad in [
            "",
            "-1",
            "5m",
            "s",
            "1e3",
            "five",
            ".5",
            "1.2.3",
            "1.0000000001",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for text in ["5s", "2.5s", "0.25s", "0s", "0.000000001s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn signal_targets_parse() {
        assert_eq!("group".parse(), Ok(SignalTarget::Group));
        assert_eq!("child".parse(), Ok(SignalTarget::Child));
        assert!("both".parse::<SignalTarget>().is_err());
    }

    #[test]
    fn run_as_sets_home_user_and_logname() {
        let base = vec![
            (OsString::from("HOME"), OsString::from("/root")),
            (OsString::from("USER"), OsString::from("root")),
            (OsString::from("PATH"), OsString::from("/bin")),
        ];
        let app = Identity {
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            account: Some(run_as::Account {
                name: "app".into(),
                home: "/home/app".into(),
            }),
        };
        let env = workload_environment(base.clone(), Some(&app));
        assert_eq!(
            env,
            [
                ("HOME".into(), "/home/app".into()),
                ("USER".into(), "app".into()),
                ("PATH".into(), "/bin".into()),
                ("LOGNAME".into(), "app".into()),
            ]
        );
        let anonymous = Identity {
            uid: 4321,
            gid: 4321,
            groups: vec![4321],
            account: None,
        };
        let env = workload_environment(base.clone(), Some(&anonymous));
        assert_eq!(
            env,
            [("HOME".into(), "/".into()), ("PATH".into(), "/bin".into())]
        );
        assert_eq!(workload_environment(base.clone(), None), base);
    }

    #[test]
    fn run_as_leaves_home_user_and_logname_once_among_duplicates() {
        let pairs = |entries: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
            entries
                .iter()
                .map(|(key, value)| (OsString::from(key), OsString::from(value)))
                .collect()
        };
        let base = pairs(&[
            ("HOME", "/root"),
            ("USER", "root"),
            ("X", "1"),
            ("HOME", "/again"),
            ("LOGNAME", "root"),
            ("USER", "again"),
            ("LOGNAME", "again"),
            ("X", "2"),
        ]);
        let app = Identity {
            uid: 1000,
            gid: 1000,
            groups: vec![1000],
            account: Some(run_as::Account {
                name: "app".into(),
                home: "/home/app".into(),
            }),
        };
        assert_eq!(
            workload_environment(base.clone(), Some(&app)),
            pairs(&[
                ("HOME", "/home/app"),
                ("USER", "app"),
                ("X", "1"),
                ("LOGNAME", "app"),
                ("X", "2"),
            ])
        );
        let anonymous = Identity {
            account: None,
            ..app
        };
        assert_eq!(
            workload_environment(base, Some(&anonymous)),
            pairs(&[("HOME", "/"), ("X", "1"), ("X", "2")])
        );
    }
}
