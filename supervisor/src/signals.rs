//! Signal masks, waits and dispositions, through the kernel's own calls.
//!
//! Why raw system calls rather than libc's `sigset_t` wrappers or nix's
//! `SigSet`: those leave out the signals the C library reserves for itself
//! (32 and 33 with glibc, 32 to 34 with musl), so `sigfillset` does not block
//! them and `sigaction` refuses to touch them. Anyone may still send them with
//! `kill`, their default action terminates, and a starter may have left them
//! ignored. The supervisor blocks, takes and forwards them like any other
//! signal, and the workload starts with them at their default action. The
//! kernel's signal set is one bit per signal, 64 signals on Linux.
//!
//! Every function here makes one system call and allocates nothing, so the
//! ones the child uses between fork and exec are async-signal-safe.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use nix::libc;

/// A signal number.
pub type SignalNumber = i32;

/// The highest signal number on Linux (`_NSIG - 1`).
pub const MAX_SIGNAL: SignalNumber = 64;

/// Size in bytes of the kernel's signal set, as its system calls take it.
const KERNEL_SIGSET_SIZE: usize = std::mem::size_of::<u64>();

/// Signals raised by a fault of the process itself (a bad memory access, an
/// illegal instruction, ...). Sent with `kill` they are accepted and dropped:
/// passing on a fault that did not happen in the workload would only crash it.
pub const SYNCHRONOUS_FAULTS: [SignalNumber; 6] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// The job-control stop signals a terminal or a background read or write
/// raises.
pub const TERMINAL_STOP_SIGNALS: [SignalNumber; 3] = [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

/// Whether a process can catch, block or ignore `signal` (all but SIGKILL
/// and SIGSTOP).
pub fn is_catchable(signal: SignalNumber) -> bool {
    (1..=MAX_SIGNAL).contains(&signal) && signal != libc::SIGKILL && signal != libc::SIGSTOP
}

/// Whether the supervisor passes `signal`, sent to it, on to the workload:
/// every catchable signal but SIGCHLD (which reports on the supervisor's own
/// children) and the synchronous faults.
pub fn is_forwarded(signal: SignalNumber) -> bool {
    is_catchable(signal) && signal != libc::SIGCHLD && !SYNCHRONOUS_FAULTS.contains(&signal)
}

/// A kernel signal set: bit N-1 stands for signal N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalSet(u64);

impl SignalSet {
    /// No signal.
    pub const EMPTY: SignalSet = SignalSet(0);
    /// Every signal (the kernel ignores SIGKILL and SIGSTOP in masks).
    pub const FULL: SignalSet = SignalSet(u64::MAX);

    /// Whether `signal` is in the set.
    pub fn contains(self, signal: SignalNumber) -> bool {
        (1..=MAX_SIGNAL).contains(&signal) && self.0 & (1 << (signal - 1)) != 0
    }

    /// The raw bits.
    pub fn bits(self) -> u64 {
        self.0
    }

    /// The set whose raw bits are `bits`.
    pub fn from_bits(bits: u64) -> SignalSet {
        SignalSet(bits)
    }
}

fn check(result: libc::c_long) -> io::Result<libc::c_long> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Replaces the calling thread's signal mask with `set`; returns the old one.
/// Async-signal-safe.
pub fn set_mask(set: SignalSet) -> io::Result<SignalSet> {
    let mut old = 0u64;
    // SAFETY: rt_sigprocmask reads one kernel sigset from `set` and writes
    // one into `old`, both valid for KERNEL_SIGSET_SIZE bytes.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &set.0 as *const u64,
            &mut old as *mut u64,
            KERNEL_SIGSET_SIZE,
        )
    })?;
    Ok(SignalSet(old))
}

/// Blocks every signal; returns the mask in force before. Blocked signals
/// stay pending until [`wait`] takes them, so none is lost, none runs a
/// handler, and none can kill the process by its default action: also for
/// PID 1, where the kernel would drop a signal left at its default action,
/// but keeps a blocked one.
pub fn block_all() -> io::Result<SignalSet> {
    set_mask(SignalSet::FULL)
}

/// A signal taken by [`wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The signal.
    pub signal: SignalNumber,
    /// `si_code`: how it was sent (`SI_USER` for kill, `SI_KERNEL`, ...).
    pub code: i32,
    /// `si_pid`: the sender for a signal sent with kill or sigqueue (0 when
    /// the sender is outside the supervisor's PID namespace).
    pub sender: i32,
}

impl Received {
    /// Whether the supervisor raised this signal against itself: a SIGPIPE
    /// from writing to a closed stderr, say. It says nothing about the
    /// workload and is not passed on.
    pub fn is_self_inflicted(&self) -> bool {
        (self.code == libc::SI_USER || self.code == libc::SI_TKILL)
            && u32::try_from(self.sender) == Ok(std::process::id())
    }
}

/// Takes one pending signal of `set` (which must be blocked), waiting up to
/// `timeout` (forever with `None`). `Ok(None)` when the time ran out.
pub fn wait(set: SignalSet, timeout: Option<Duration>) -> io::Result<Option<Received>> {
    let timespec = timeout.map(|timeout| libc::timespec {
        // Capped at 68 years, which fits time_t of any width.
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
        tv_nsec: timeout.subsec_nanos().into(),
    });
    let timespec_ptr = timespec
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    loop {
        // SAFETY: rt_sigtimedwait reads a kernel sigset from `set`, an
        // optional timespec, and fills `info`, all valid for their sizes.
        let result = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &set.0 as *const u64,
                info.as_mut_ptr(),
                timespec_ptr,
                KERNEL_SIGSET_SIZE,
            )
        };
        match check(result) {
            Ok(signal) => {
                // SAFETY: the kernel filled `info` for the signal it returned.
                let info = unsafe { info.assume_init() };
                return Ok(Some(Received {
                    signal: signal as SignalNumber,
                    code: info.si_code,
                    // SAFETY: si_pid is read from the union as the kernel
                    // lays it out for kill, sigqueue and SIGCHLD; for other
                    // codes it is whatever the kernel put there (often 0),
                    // and only compared.
                    sender: unsafe { info.si_pid() },
                }));
            }
            Err(err) if err.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
            // A stop and continue of the supervisor itself (SIGSTOP, then
            // SIGCONT) interrupts the wait; wait on. The timeout restarts,
            // which only lengthens a grace period that was interrupted.
            Err(err) if err.raw_os_error() == Some(libc::EINTR) => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Sets the disposition of `signal` to its default action.
/// Async-signal-safe.
pub fn reset_disposition(signal: SignalNumber) -> io::Result<()> {
    // The kernel's struct sigaction, all zero: handler SIG_DFL (0), no flags,
    // no restorer, an empty mask. Four words cover its layout on every
    // architecture (with or without sa_restorer), and zero is right for
    // every field whichever way the kernel reads them.
    let default_action = [0u64; 4];
    // SAFETY: rt_sigaction reads a kernel struct sigaction from a valid,
    // large enough, all-zero buffer, and writes nothing (null old action).
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            default_action.as_ptr(),
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_SIZE,
        )
    })?;
    Ok(())
}

/// Sets every catchable signal to its default action: an ignored signal stays
/// ignored across exec, so whatever the supervisor's starter ignored (SIGHUP
/// under nohup, SIGINT and SIGQUIT in a shell's background job, SIGPIPE
/// that the Rust runtime ignores) would otherwise be ignored by the workload
/// too, which a shell then may not even trap. Returns the signal that could
/// not be reset, with the error. Async-signal-safe.
pub fn reset_all_dispositions() -> Result<(), (SignalNumber, io::Error)> {
    for signal in (1..=MAX_SIGNAL).filter(|&signal| is_catchable(signal)) {
        reset_disposition(signal).map_err(|err| (signal, err))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_signals_are_every_catchable_one_but_sigchld_and_faults() {
        let forwarded: Vec<_> = (1..=MAX_SIGNAL).filter(|&s| is_forwarded(s)).collect();
        // 64 signals, less SIGKILL, SIGSTOP, SIGCHLD and six faults.
        assert_eq!(forwarded.len(), 64 - 2 - 1 - 6);
        for signal in [
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGPWR,
            libc::SIGALRM,
            libc::SIGRTMIN() + 3,
            32,
            33,
            34,
            libc::SIGTSTP,
            libc::SIGCONT,
        ] {
            assert!(forwarded.contains(&signal), "{signal}");
        }
        for signal in [libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD, libc::SIGSEGV] {
            assert!(!forwarded.contains(&signal), "{signal}");
        }
    }

    #[test]
    fn the_full_set_holds_the_reserved_real_time_signals() {
        assert!(SignalSet::FULL.contains(32));
        assert!(SignalSet::FULL.contains(64));
        assert!(!SignalSet::EMPTY.contains(1));
        assert!(!SignalSet::FULL.contains(65));
        assert!(!SignalSet::FULL.contains(0));
    }
}
