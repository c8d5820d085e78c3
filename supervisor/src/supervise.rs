//! Supervise mode: the container's PID 1.
//!
//! The kernel treats PID 1 of a PID namespace specially, and the agent images
//! we run in carry no init of their own, so the supervisor does an init's
//! duties: it starts the workload, passes signals on, reaps every zombie, and
//! leaves with the workload's exit status. Each duty is explained where it
//! happens.

use std::ffi::{CStr, CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{self, SigSet, Signal};
use nix::unistd::{Gid, Pid, Uid};

use crate::run_as::RunAs;

/// Signals passed on to the workload.
///
/// A container runtime stops a container by signalling its PID 1 only
/// (`SIGTERM`, then `SIGKILL`), and terminal-related signals also reach
/// PID 1 alone; without forwarding, the workload would never hear of them and
/// would be killed hard after the grace period.
pub const FORWARDED_SIGNALS: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Signals that end idle mode (no workload).
pub const IDLE_STOP_SIGNALS: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];

/// Exit code when COMMAND cannot be found, as shells use it.
pub const EXIT_NOT_FOUND: i32 = 127;

/// Exit code when COMMAND was found but could not be executed, as shells use
/// it.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;

/// Exit code when the supervisor itself fails (missing workdir, refused
/// privilege drop, a failing system call).
pub const EXIT_FAILURE: i32 = 1;

/// Exit codes for a workload killed by signal N are this plus N, as shells
/// report them: the status of a process cannot itself say "killed by a
/// signal" once it passes through an exit code.
pub const SIGNAL_EXIT_BASE: i32 = 128;

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SuperviseOptions {
    /// COMMAND and its arguments; empty for idle mode.
    pub command: Vec<OsString>,
    /// Working directory of the workload.
    pub workdir: Option<PathBuf>,
    /// Identity of the workload; the supervisor keeps its own.
    pub run_as: Option<RunAs>,
}

/// Why supervision failed.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// COMMAND was not found (on `PATH`, or at the path given).
    #[error("{}: command not found", .0.to_string_lossy())]
    CommandNotFound(OsString),
    /// COMMAND was found but could not be executed.
    #[error("{}: cannot execute", .command.to_string_lossy())]
    CannotExecute {
        /// The command.
        command: OsString,
        /// The error from exec.
        #[source]
        source: io::Error,
    },
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
    #[error("cannot drop privileges to --run-as {run_as}: {call} was refused")]
    PrivilegeDrop {
        /// The identity asked for.
        run_as: RunAs,
        /// The system call that failed.
        call: &'static str,
        /// Its error.
        #[source]
        source: io::Error,
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
            Self::CommandNotFound(_) => EXIT_NOT_FOUND,
            Self::CannotExecute { .. } => EXIT_CANNOT_EXECUTE,
            Self::WorkdirMissing(_)
            | Self::WorkdirUnusable { .. }
            | Self::PrivilegeDrop { .. }
            | Self::System { .. } => EXIT_FAILURE,
        }
    }

    fn system(call: &'static str) -> impl FnOnce(Errno) -> Self {
        move |errno| Self::System {
            call,
            source: errno.into(),
        }
    }
}

/// The signals the supervisor waits for: those it forwards, and `SIGCHLD`.
fn supervised_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in FORWARDED_SIGNALS {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Runs the workload described by `options` to its end and returns the exit
/// code to leave with: the workload's own, or 128+N when signal N killed it.
/// With no command, stays up reaping until `SIGTERM` or `SIGINT`, then
/// returns 0.
pub fn run(options: &SuperviseOptions) -> Result<i32, SuperviseError> {
    let signals = supervised_signals();
    // Block the signals instead of installing handlers, and take them one at
    // a time with sigwait: no code runs in signal context, and none is lost
    // between spawning the child and waiting. This also makes them reach us
    // as PID 1: the kernel drops signals that PID 1 leaves at their default
    // action, but never blocked ones.
    signals
        .thread_block()
        .map_err(SuperviseError::system("sigprocmask"))?;

    // Orphans (daemonising grandchildren) are reparented to the nearest
    // subreaper; making the supervisor one means it reaps them also when it
    // is not PID 1 (PID 1 reaps them anyway). Should the kernel refuse,
    // supervision still works: only orphans go to the real init instead.
    if let Err(errno) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!(
            "{}: warning: cannot become a child subreaper ({errno}); orphans will be reaped by init",
            openshell_contract::BINARY_NAME
        );
    }

    let Some((program, args)) = options.command.split_first() else {
        return idle(&signals);
    };
    let child = spawn(program, args, options)?;
    wait_for(child, &signals)
}

/// Idle mode: a pod's PID 1 with nothing to run, reaping until told to stop.
fn idle(signals: &SigSet) -> Result<i32, SuperviseError> {
    loop {
        let signal = signals.wait().map_err(SuperviseError::system("sigwait"))?;
        if signal == Signal::SIGCHLD {
            reap(None)?;
        } else if IDLE_STOP_SIGNALS.contains(&signal) {
            return Ok(0);
        }
        // Other forwarded signals have no one to go to: ignore them.
    }
}

/// Forwards signals to `child` and reaps zombies until `child` ends.
fn wait_for(child: Pid, signals: &SigSet) -> Result<i32, SuperviseError> {
    loop {
        let signal = signals.wait().map_err(SuperviseError::system("sigwait"))?;
        if signal == Signal::SIGCHLD {
            // Orphans still running when the workload ends are not waited
            // for: the container's life is the workload's, and as PID 1 our
            // exit makes the kernel kill the rest of the namespace.
            if let Some(code) = reap(Some(child))? {
                return Ok(code);
            }
        } else {
            match signal::kill(child, signal) {
                // ESRCH: the child has just exited; its SIGCHLD is pending.
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(errno) => eprintln!(
                    "{}: warning: cannot forward {signal} to the workload (pid {child}): {errno}",
                    openshell_contract::BINARY_NAME
                ),
            }
        }
    }
}

/// Reaps every child that has ended, so none stays a zombie. Several exits
/// may share one `SIGCHLD`, hence the loop until none is left. Returns the
/// exit code of `main` when it was among them.
///
/// rustix rather than nix here: nix fails to decode the status of a child
/// killed by a real-time signal, after the kernel has already reaped it,
/// which would lose the workload's status.
fn reap(main: Option<Pid>) -> Result<Option<i32>, SuperviseError> {
    use rustix::io::Errno as RawErrno;
    use rustix::process::WaitOptions;

    let mut main_code = None;
    loop {
        // wait(), i.e. waitpid(-1): any child, whatever its process group
        // (waitpid with no pid would wait for our own group only).
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if Some(pid.as_raw_nonzero().get()) == main.map(Pid::as_raw) {
                    main_code = status
                        .exit_status()
                        .or_else(|| status.terminating_signal().map(|n| SIGNAL_EXIT_BASE + n));
                }
            }
            // Ok(None): children remain, none has ended.
            Ok(None) | Err(RawErrno::CHILD) => return Ok(main_code),
            Err(RawErrno::INTR) => {}
            Err(errno) => {
                return Err(SuperviseError::System {
                    call: "waitpid",
                    source: errno.into(),
                });
            }
        }
    }
}

/// Which preparation step in the child failed; sent to the parent over a
/// pipe, because the error that `spawn` returns carries only an errno, and
/// EPERM from setuid must not read as "cannot execute".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum ChildStep {
    SetGroups = 1,
    SetGid = 2,
    SetUid = 3,
    ChangeDirectory = 4,
    SignalMask = 5,
    ProcessGroup = 6,
    ParentDeathSignal = 7,
}

impl ChildStep {
    fn from_byte(byte: u8) -> Option<Self> {
        [
            Self::SetGroups,
            Self::SetGid,
            Self::SetUid,
            Self::ChangeDirectory,
            Self::SignalMask,
            Self::ProcessGroup,
            Self::ParentDeathSignal,
        ]
        .into_iter()
        .find(|step| *step as u8 == byte)
    }
}

/// Starts the workload with inherited stdin, stdout and stderr, so its output
/// passes straight through to the container log.
fn spawn(
    program: &OsString,
    args: &[OsString],
    options: &SuperviseOptions,
) -> Result<Pid, SuperviseError> {
    let workdir = match &options.workdir {
        Some(dir) => Some(CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
            SuperviseError::WorkdirUnusable {
                path: dir.clone(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"),
            }
        })?),
        None => None,
    };
    let (step_reader, step_writer) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(SuperviseError::system("pipe2"))?;
    let step_fd = step_writer.as_raw_fd();
    let run_as = options.run_as;

    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: the closure runs in the forked child before exec. It only makes
    // async-signal-safe system calls (setpgid, tcsetpgrp, setgroups, setgid,
    // setuid, chdir, prctl, sigprocmask, write), and allocates nothing: the workdir is
    // converted to a C string above, in the parent.
    unsafe {
        command.pre_exec(move || prepare_child(step_fd, run_as, workdir.as_deref()));
    }
    let spawned = command.spawn();
    // Close our write end, so reading below ends at the child's last byte.
    drop(step_writer);

    match spawned {
        Ok(child) => {
            // A pid always fits in pid_t; std keeps it as u32.
            let pid = Pid::from_raw(child.id() as nix::libc::pid_t);
            Ok(pid)
        }
        Err(err) => {
            let mut step = [0u8; 1];
            let failed = match std::fs::File::from(step_reader).read(&mut step) {
                Ok(1) => ChildStep::from_byte(step[0]),
                _ => None,
            };
            Err(start_failure(program, options, failed, err))
        }
    }
}

/// Maps a failed spawn to the error users expect, by the step that failed.
fn start_failure(
    program: &OsString,
    options: &SuperviseOptions,
    failed: Option<ChildStep>,
    err: io::Error,
) -> SuperviseError {
    let privilege_drop = |call, source| SuperviseError::PrivilegeDrop {
        // Present whenever these steps ran.
        run_as: options.run_as.unwrap_or(RunAs { uid: 0, gid: 0 }),
        call,
        source,
    };
    match failed {
        Some(ChildStep::SetGroups) => privilege_drop("setgroups", err),
        Some(ChildStep::SetGid) => privilege_drop("setgid", err),
        Some(ChildStep::SetUid) => privilege_drop("setuid", err),
        Some(ChildStep::ChangeDirectory) => {
            let path = options.workdir.clone().unwrap_or_default();
            if err.kind() == io::ErrorKind::NotFound {
                SuperviseError::WorkdirMissing(path)
            } else {
                SuperviseError::WorkdirUnusable { path, source: err }
            }
        }
        Some(ChildStep::SignalMask) => SuperviseError::System {
            call: "sigprocmask",
            source: err,
        },
        Some(ChildStep::ProcessGroup) => SuperviseError::System {
            call: "setpgid",
            source: err,
        },
        Some(ChildStep::ParentDeathSignal) => SuperviseError::System {
            call: "prctl(PR_SET_PDEATHSIG)",
            source: err,
        },
        // No step failed, so exec did: ENOENT and ENOTDIR mean nothing was
        // found; anything else means something was found and refused.
        None => match Errno::from_raw(err.raw_os_error().unwrap_or(0)) {
            Errno::ENOENT | Errno::ENOTDIR => SuperviseError::CommandNotFound(program.clone()),
            _ => SuperviseError::CannotExecute {
                command: program.clone(),
                source: err,
            },
        },
    }
}

/// Puts the workload in a process group of its own and, when stdin is a
/// terminal, makes that group the terminal's foreground group (as tini does).
/// Otherwise a Ctrl-C on a terminal (`podman run -it`, `kubectl attach -it`)
/// would reach the workload twice: from the terminal, which signals the whole
/// foreground group, and again forwarded by the supervisor.
fn isolate_process_group() -> nix::Result<()> {
    let own = Pid::from_raw(0);
    nix::unistd::setpgid(own, own)?;
    // A process outside the foreground group that changes it gets SIGTTOU,
    // which would stop it, unless the signal is blocked; the mask is reset
    // before exec.
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    ttou.thread_block()?;
    // SAFETY: tcsetpgrp takes a plain descriptor number; when stdin is closed
    // or not a terminal it fails (EBADF, ENOTTY) and nothing changes, which
    // is the intended outcome without a terminal.
    let _ =
        unsafe { nix::libc::tcsetpgrp(nix::libc::STDIN_FILENO, nix::unistd::getpgrp().as_raw()) };
    Ok(())
}

/// Runs in the child between fork and exec. Isolates its process group, then
/// drops privileges, so the workdir is entered as the workload's user and one
/// it may not enter is reported now rather than as a confusing failure later;
/// asks for SIGKILL should the supervisor die; then restores the signal mask,
/// last, so a forwarded signal cannot arrive before exec with the
/// supervisor's mask still in force.
fn prepare_child(step_fd: RawFd, run_as: Option<RunAs>, workdir: Option<&CStr>) -> io::Result<()> {
    let report = |step: ChildStep| {
        move |errno: Errno| {
            // SAFETY: step_fd is the write end of the pipe created in spawn,
            // open in this child until exec closes it (O_CLOEXEC).
            let fd = unsafe { BorrowedFd::borrow_raw(step_fd) };
            // If this write fails the parent reports the errno without the
            // step, which is all it can do.
            let _ = nix::unistd::write(fd, &[step as u8]);
            io::Error::from(errno)
        }
    };
    isolate_process_group().map_err(report(ChildStep::ProcessGroup))?;
    if let Some(ids) = run_as {
        // Supplementary groups first: after setuid we may no longer drop them.
        nix::unistd::setgroups(&[]).map_err(report(ChildStep::SetGroups))?;
        nix::unistd::setgid(Gid::from_raw(ids.gid)).map_err(report(ChildStep::SetGid))?;
        nix::unistd::setuid(Uid::from_raw(ids.uid)).map_err(report(ChildStep::SetUid))?;
    }
    if let Some(dir) = workdir {
        nix::unistd::chdir(dir).map_err(report(ChildStep::ChangeDirectory))?;
    }
    // Bind the workload's life to the supervisor's: it runs in a process
    // group of its own, so a SIGKILL sent to the supervisor's group would
    // otherwise leave it running unsupervised. Set after the privilege drop,
    // which clears it.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(report(ChildStep::ParentDeathSignal))?;
    // The blocked mask is inherited across fork and exec; the workload must
    // start with every signal deliverable.
    SigSet::empty()
        .thread_set_mask()
        .map_err(report(ChildStep::SignalMask))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_steps_round_trip_through_their_byte() {
        for step in [
            ChildStep::SetGroups,
            ChildStep::SetGid,
            ChildStep::SetUid,
            ChildStep::ChangeDirectory,
            ChildStep::SignalMask,
            ChildStep::ProcessGroup,
            ChildStep::ParentDeathSignal,
        ] {
            assert_eq!(ChildStep::from_byte(step as u8), Some(step));
        }
        assert_eq!(ChildStep::from_byte(0), None);
    }

    #[test]
    fn exec_errors_map_to_shell_exit_codes() {
        let options = SuperviseOptions::default();
        let program = OsString::from("tool");
        let not_found = start_failure(&program, &options, None, Errno::ENOENT.into());
        assert_eq!(not_found.exit_code(), EXIT_NOT_FOUND);
        assert_eq!(not_found.to_string(), "tool: command not found");
        let denied = start_failure(&program, &options, None, Errno::EACCES.into());
        assert_eq!(denied.exit_code(), EXIT_CANNOT_EXECUTE);
        let bad_format = start_failure(&program, &options, None, Errno::ENOEXEC.into());
        assert_eq!(bad_format.exit_code(), EXIT_CANNOT_EXECUTE);
    }

    #[test]
    fn a_refused_setuid_is_not_a_refused_exec() {
        let options = SuperviseOptions {
            run_as: Some(RunAs {
                uid: 1000,
                gid: 1000,
            }),
            ..SuperviseOptions::default()
        };
        let program = OsString::from("tool");
        let err = start_failure(
            &program,
            &options,
            Some(ChildStep::SetUid),
            Errno::EPERM.into(),
        );
        assert_eq!(err.exit_code(), EXIT_FAILURE);
        assert_eq!(
            err.to_string(),
            "cannot drop privileges to --run-as 1000:1000: setuid was refused"
        );
    }
}
