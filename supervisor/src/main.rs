//! `openshell-sandbox`: parses the command line and reports errors; the work
//! is done in the library.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use openshell_contract::cli::{BROKEN_PIPE_EXIT, is_broken_pipe, write_stdout};
use openshell_contract::supervise::{
    DEFAULT_KILL_GRACE_SECONDS, ENV_KILL_GRACE, ENV_NO_NEW_PRIVS, ENV_SIGNAL_TARGET, FLAG_GROUPS,
    FLAG_KILL_GRACE, FLAG_NO_NEW_PRIVS, FLAG_RUN_AS, FLAG_SIGNAL_TARGET, FLAG_WORKDIR,
    MAX_KILL_GRACE_SECONDS, SIGNAL_TARGET_CHILD, SIGNAL_TARGET_GROUP,
};
use openshell_contract::{BINARY_NAME, TERMINATION_LOG_ENV, TERMINATION_LOG_PATH};
use openshell_sandbox::run_as::RunAs;
use openshell_sandbox::supervise::{self, EXIT_FAILURE, SignalTarget, SuperviseOptions};
use openshell_sandbox::{copy_self, signals, termination_log, version};

/// The OpenShell sandbox supervisor.
///
/// Without a subcommand it is the container's PID 1: it starts COMMAND in a
/// process group of its own (the terminal's foreground group on a terminal),
/// forwards every signal it receives to that group (all but SIGKILL and
/// SIGSTOP, which cannot be caught, SIGCHLD, and the fault signals SEGV, BUS,
/// FPE, ILL, TRAP and SYS), reaps every zombie (also orphans, as a child
/// subreaper), and exits with COMMAND's exit code (128+N when signal N killed
/// it). When COMMAND exits, whatever is left of its process group gets
/// SIGTERM, and SIGKILL after --kill-grace. A workload stopped by SIGTSTP,
/// SIGTTIN or SIGTTOU is continued (SIGCONT follows a forwarded one after
/// 50 ms): no shell does job control in a container.
/// COMMAND is killed should the supervisor die. Without `--` it stays up,
/// reaping, until SIGTERM or SIGINT, then exits 0.
///
/// When COMMAND cannot be started it exits 127 (not found, or its #! or ELF
/// interpreter is missing), 126 (found but not executable, exec format
/// error) or 1 (workdir not creatable, unknown user, privilege drop refused), and
/// writes the reason to the termination log when that file exists.
#[derive(Debug, Parser)]
#[command(
    name = BINARY_NAME,
    version,
    args_conflicts_with_subcommands = true,
    subcommand_value_name = "SUBCOMMAND",
    subcommand_help_heading = "Subcommands",
    after_help = "Examples:\n  openshell-sandbox --workdir /sandbox --run-as 1000 -- python agent.py\n  openshell-sandbox --run-as app:app --signal-target child -- node server.js\n  openshell-sandbox copy-self /opt/openshell/bin/openshell-sandbox\n  openshell-sandbox version --json"
)]
struct Cli {
    #[command(subcommand)]
    subcommand: Option<Command>,

    /// Working directory of COMMAND, entered after the privilege drop. A
    /// missing one is created first, as root: missing parents root-owned
    /// 0755, DIR itself owned by the --run-as user, 0755; never through a
    /// symlink. An existing one is used as it is.
    #[arg(long = FLAG_WORKDIR, value_name = "DIR", requires = "command")]
    workdir: Option<PathBuf>,

    /// Run COMMAND as this user and group: numeric ids or names from the
    /// image's /etc/passwd and /etc/group. Without GROUP, the user's group in
    /// /etc/passwd, else the UID. Supplementary groups are what containerd
    /// gives a container: GROUP, the groups of /etc/group that list the
    /// user's name, and --groups. no_new_privs is set, the workload starts
    /// only when no capability survived the drop, and HOME, USER and LOGNAME
    /// come from the user's /etc/passwd entry (HOME=/ without one). The
    /// supervisor keeps its own identity.
    #[arg(long = FLAG_RUN_AS, value_name = "USER[:GROUP]", requires = "command")]
    run_as: Option<RunAs>,

    /// Supplementary groups for COMMAND (numeric, comma-separated or
    /// repeated): the pod's fsGroup and supplementalGroups. Without
    /// --run-as they are added to the supervisor's own groups.
    #[arg(
        long = FLAG_GROUPS,
        value_name = "GID[,GID...]",
        value_delimiter = ',',
        value_parser = parse_gid,
        requires = "command"
    )]
    groups: Vec<u32>,

    /// Set no_new_privs for COMMAND also without --run-as: exec then grants
    /// no privileges (setuid binaries, file capabilities).
    #[arg(long = FLAG_NO_NEW_PRIVS, env = ENV_NO_NEW_PRIVS)]
    no_new_privs: bool,

    /// Who receives the signals the supervisor passes on: COMMAND's whole
    /// process group (what `sh -c` or a wrapper started too), or COMMAND's
    /// main process only (as tini does by default).
    #[arg(
        long = FLAG_SIGNAL_TARGET,
        env = ENV_SIGNAL_TARGET,
        value_name = "TARGET",
        default_value = SIGNAL_TARGET_GROUP,
        value_parser = [SIGNAL_TARGET_GROUP, SIGNAL_TARGET_CHILD]
    )]
    signal_target: String,

    /// How long what is left of COMMAND's process group has, after SIGTERM,
    /// once COMMAND has exited, before SIGKILL: seconds, or with a unit (s,
    /// ms).
    #[arg(
        long = FLAG_KILL_GRACE,
        env = ENV_KILL_GRACE,
        value_name = "SECONDS",
        default_value_t = Grace(Duration::from_secs(DEFAULT_KILL_GRACE_SECONDS))
    )]
    kill_grace: Grace,

    /// Where to write the reason when COMMAND cannot be started. The file is
    /// written only if it already exists (Kubernetes provides it), and only
    /// if it is a regular file.
    #[arg(
        long,
        value_name = "FILE",
        env = TERMINATION_LOG_ENV,
        default_value = TERMINATION_LOG_PATH
    )]
    termination_log: PathBuf,

    /// The workload and its arguments, after `--`. Looked up on PATH when it
    /// has no `/`; a relative path is relative to --workdir. No shell is
    /// involved.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

/// One `--groups` value: a numeric gid, 0 to 4294967294 ((gid_t)-1 means
/// "unchanged" to the kernel).
fn parse_gid(value: &str) -> Result<u32, String> {
    let problem = |what: &str| {
        format!(
            "expected numeric group ids from 0 to {} separated by commas (e.g. 1000,2000); {what}",
            u32::MAX - 1
        )
    };
    if value.is_empty() {
        return Err(problem("a GID is empty"));
    }
    if !value.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(problem(&format!("{value:?} is not a number")));
    }
    match value.parse::<u32>() {
        Ok(gid) if gid != u32::MAX => Ok(gid),
        _ => Err(problem(&format!("{value} is out of range"))),
    }
}

/// `--kill-grace`: a duration that prints the way it parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Grace(Duration);

impl FromStr for Grace {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let grace = supervise::parse_duration(value)?;
        // Refused here, with exit 2, rather than overflowing the clock later
        // and losing the workload's status.
        if grace > Duration::from_secs(MAX_KILL_GRACE_SECONDS) {
            return Err(format!(
                "expected at most {MAX_KILL_GRACE_SECONDS} seconds, not {value:?}"
            ));
        }
        Ok(Grace(grace))
    }
}

impl fmt::Display for Grace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&supervise::format_duration(self.0))
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install this executable at DEST, atomically (for init containers).
    ///
    /// DEST is a file path, or an existing directory (then
    /// DEST/openshell-sandbox); missing parents are created. No component of
    /// DEST may be a symlink. Temporary files left by killed runs are removed
    /// first. The copy is written to a locked temporary file beside DEST,
    /// set to mode 0755, flushed, checked against this executable, closed,
    /// and renamed over DEST. When DEST already holds the same bytes it is
    /// not rewritten (only its mode is fixed). A DEST that is a symlink or
    /// another non-regular file is refused. Any failure leaves DEST as it
    /// was. Prints one line: destination, size, sha256.
    CopySelf {
        /// Destination file, or existing directory.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
    },
    /// Print the version, git revision, target, libc, static linkage and the
    /// sha256 of this executable.
    Version {
        /// Print the report as one JSON object (the fields of
        /// openshell_contract::version::VersionReport).
        #[arg(long)]
        json: bool,
    },
}

/// Which of stdin, stdout and stderr (bit 0, 1, 2) were closed when the
/// process started, as [`stand_in_for_closed_stdio`] found them.
static CLOSED_STDIO_AT_LOAD: AtomicU8 = AtomicU8::new(0);

/// Gives stdin, stdout and stderr a descriptor where the starter left them
/// closed. The Rust runtime, which starts after this, opens /dev/null on a
/// closed one and aborts (SIGABRT) when it cannot: in a chroot or image
/// without /dev. tini just runs; so does the supervisor. /dev/null when
/// there is one (the workload inherits it, as before); otherwise the root
/// directory, close-on-exec, as a stand-in only the supervisor holds
/// (reads and writes on it fail, which it tolerates): the workload then
/// starts with the descriptor closed, as it was given. Only system calls,
/// before anything else runs.
fn stand_in_for_closed_stdio() {
    let mut closed = 0u8;
    for fd in 0..3 {
        // SAFETY: fcntl(F_GETFD) on a descriptor number has no memory
        // effects; it fails with EBADF for a closed one.
        if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } != -1 {
            continue;
        }
        closed |= 1 << fd;
        // SAFETY: open with constant C strings; the lowest free descriptor,
        // which is `fd` (the ones below it are open by now).
        let opened = unsafe {
            let null = nix::libc::open(c"/dev/null".as_ptr(), nix::libc::O_RDWR);
            if null >= 0 {
                null
            } else {
                nix::libc::open(
                    c"/".as_ptr(),
                    nix::libc::O_RDONLY | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC,
                )
            }
        };
        if opened >= 0 && opened != fd {
            // Not the lowest free one after all: leave it as it was.
            // SAFETY: closing the descriptor just opened.
            unsafe { nix::libc::close(opened) };
        }
    }
    CLOSED_STDIO_AT_LOAD.store(closed, Ordering::SeqCst);
}

/// Whether stdout was closed when the process started: there is then no
/// one to print to, and not printing is no failure.
fn stdout_was_closed() -> bool {
    CLOSED_STDIO_AT_LOAD.load(Ordering::SeqCst) & 0b10 != 0
}

/// The signal mask the process was started with, as saved by
/// [`block_signals_at_load`], and whether it was.
static MASK_AT_LOAD: AtomicU64 = AtomicU64::new(0);
static MASK_AT_LOAD_SAVED: AtomicBool = AtomicBool::new(false);

/// Blocks every signal when the C library starts the program, before the
/// Rust runtime's own start-up and `main`: the earliest a program can, which
/// shortens the time in which a signal sent right after the container
/// started (a pod deleted at once) is lost (PID 1) or kills the supervisor
/// (not PID 1). `main` blocks them again first thing, as the runtime's
/// start-up may unblock some (musl's first `sigaction` unblocks its own
/// 33 and 34).
extern "C" fn block_signals_at_load() {
    if let Ok(mask) = signals::block_all() {
        MASK_AT_LOAD.store(mask.bits(), Ordering::SeqCst);
        MASK_AT_LOAD_SAVED.store(true, Ordering::SeqCst);
    }
    // Also before the runtime: it would abort on a closed one.
    stand_in_for_closed_stdio();
}

// Run by the C library's start-up code (musl and glibc alike) from the
// `.init_array` section, as constructors are.
#[used]
#[unsafe(link_section = ".init_array")]
static BLOCK_SIGNALS_AT_LOAD: extern "C" fn() = block_signals_at_load;

fn main() -> ExitCode {
    // First of all, before parsing: block every signal, so that none sent
    // while the supervisor starts (a pod deleted right after it was
    // created) is lost or kills it. They stay pending until the supervision
    // loop takes them. A failure here is reported by supervise::run, which
    // blocks them again.
    let mask_at_main = signals::block_all().ok();
    let inherited_mask = if MASK_AT_LOAD_SAVED.load(Ordering::SeqCst) {
        Some(signals::SignalSet::from_bits(
            MASK_AT_LOAD.load(Ordering::SeqCst),
        ))
    } else {
        mask_at_main
    };
    let (cli, leftovers) = match parse() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    match cli.subcommand {
        Some(command) => {
            drop(leftovers);
            // The subcommands are ordinary tools: signals act on them as on
            // any process again (a SIGTERM ends a copy-self; its next run
            // removes what it left).
            if let Some(mask) = inherited_mask {
                let _ = signals::set_mask(mask);
            }
            match command {
                Command::CopySelf { dest } => copy_self_command(&dest),
                Command::Version { json } => version_command(json),
            }
        }
        None => {
            let options = SuperviseOptions {
                command: cli.command,
                workdir: cli.workdir,
                run_as: cli.run_as,
                groups: cli.groups,
                no_new_privs: cli.no_new_privs,
                signal_target: if cli.signal_target == SIGNAL_TARGET_CHILD {
                    SignalTarget::Child
                } else {
                    SignalTarget::Group
                },
                kill_grace: cli.kill_grace.0,
                ..SuperviseOptions::default()
            };
            exit_code(supervise_command(&options, &cli.termination_log, leftovers))
        }
    }
}

/// Parses the command line. Help and version go to stdout (141 when it is
/// closed), errors to stderr (exit 2); neither can panic.
/// What parsing leaves behind: clap's command and matches. Freeing them
/// costs about a tenth of the supervisor's start-up, so supervise mode frees
/// them once the workload runs.
type ParseLeftovers = Box<(clap::Command, Option<clap::ArgMatches>)>;

fn parse() -> Result<(Cli, ParseLeftovers), ExitCode> {
    let mut command = Cli::command();
    let mut leftover_matches = None;
    let result = command
        .try_get_matches_from_mut(std::env::args_os())
        .and_then(|mut matches| {
            let cli = Cli::from_arg_matches_mut(&mut matches);
            leftover_matches = Some(matches);
            cli
        });
    let cli = match result {
        Ok(cli) => cli,
        Err(err) => return Err(report_clap_error(err)),
    };
    // `--` with nothing after it is a mistake (a template's command list
    // that came out empty), not a request to idle: say so.
    if cli.subcommand.is_none()
        && cli.command.is_empty()
        && std::env::args_os().skip(1).any(|arg| arg == "--")
    {
        let err = command.error(
            ErrorKind::MissingRequiredArgument,
            "no COMMAND after `--` (give the workload to run after `--`, or leave `--` out to stay idle)",
        );
        return Err(report_clap_error(err));
    }
    Ok((cli, Box::new((command, leftover_matches))))
}

fn report_clap_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print_stdout(&err.render().to_string())
        }
        _ => {
            // clap's own printing ignores a broken stderr.
            let _ = err.print();
            exit_code(err.exit_code())
        }
    }
}

/// Writes `text` to stdout: 0, or 141 when the reader has gone (the
/// contract's rule), or 1 for another write error.
fn print_stdout(text: &str) -> ExitCode {
    if stdout_was_closed() {
        return ExitCode::SUCCESS;
    }
    match write_stdout(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(err) => {
            print_error(format_args!("cannot write to stdout: {err}"));
            exit_code(EXIT_FAILURE)
        }
    }
}

/// Writes one line to stderr; a broken stderr is ignored (there is nowhere
/// else to say it).
fn print_error(message: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{BINARY_NAME}: {message}");
}

fn copy_self_command(dest: &std::path::Path) -> ExitCode {
    match copy_self::copy_self(dest) {
        Ok(report) => print_stdout(&format!("{report}\n")),
        Err(err) => {
            print_error(format_args!("copy-self: {:#}", anyhow::Error::new(err)));
            exit_code(EXIT_FAILURE)
        }
    }
}

fn version_command(json: bool) -> ExitCode {
    let report = match version::report() {
        Ok(report) => report,
        Err(err) => {
            print_error(format_args!("{:#}", anyhow::Error::new(err)));
            return exit_code(EXIT_FAILURE);
        }
    };
    let text = if json {
        match serde_json::to_string(&report) {
            Ok(text) => text,
            Err(err) => {
                print_error(format_args!("cannot encode the version report: {err}"));
                return exit_code(EXIT_FAILURE);
            }
        }
    } else {
        version::describe(&report)
    };
    print_stdout(&format!("{text}\n"))
}

/// Runs the supervisor; on failure records the reason in the termination
/// log, prints it, and returns the exit code to leave with.
fn supervise_command(
    options: &SuperviseOptions,
    termination_log: &std::path::Path,
    leftovers: ParseLeftovers,
) -> i32 {
    match supervise::run_with(options, move || drop(leftovers)) {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            let reason = format!("{BINARY_NAME}: {:#}", anyhow::Error::new(err));
            // The log first: it is what Kubernetes shows, and stderr may be
            // broken.
            let logged = termination_log::record(termination_log, &reason);
            let _ = writeln!(std::io::stderr().lock(), "{reason}");
            if let Err(log_err) = logged {
                print_error(format_args!(
                    "warning: the termination log was not written: {log_err}"
                ));
            }
            code
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    // Exit statuses are one byte; the workload's code already is.
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
