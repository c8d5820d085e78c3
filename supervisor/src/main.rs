//! `openshell-sandbox`: parses the command line and reports errors; the work
//! is done in the library.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use openshell_contract::{BINARY_NAME, TERMINATION_LOG_ENV, TERMINATION_LOG_PATH};
use openshell_sandbox::run_as::RunAs;
use openshell_sandbox::supervise::{self, EXIT_FAILURE, SuperviseOptions};
use openshell_sandbox::{copy_self, termination_log, version};

/// The OpenShell sandbox supervisor.
///
/// Without a subcommand it is the container's PID 1: it starts COMMAND in a
/// process group of its own (the terminal's foreground group on a terminal),
/// forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to
/// it, reaps every zombie (also orphans, as a child subreaper), and exits with
/// COMMAND's exit code (128+N when signal N killed it). COMMAND is killed
/// should the supervisor die. Without COMMAND it stays up, reaping, until
/// SIGTERM or SIGINT, then exits 0.
///
/// When COMMAND cannot be started it exits 127 (not found), 126 (found but not
/// executable) or 1 (workdir missing, privilege drop refused), and writes the
/// reason to the termination log when that file exists.
#[derive(Debug, Parser)]
#[command(
    name = BINARY_NAME,
    version,
    args_conflicts_with_subcommands = true,
    subcommand_value_name = "SUBCOMMAND",
    subcommand_help_heading = "Subcommands",
    after_help = "Examples:\n  openshell-sandbox --workdir /sandbox --run-as 1000 -- python agent.py\n  openshell-sandbox copy-self /opt/openshell/bin/openshell-sandbox\n  openshell-sandbox version --json"
)]
struct Cli {
    #[command(subcommand)]
    subcommand: Option<Command>,

    /// Working directory of COMMAND, entered after the privilege drop; a
    /// missing one is an error (exit 1).
    #[arg(long, value_name = "DIR", requires = "command")]
    workdir: Option<PathBuf>,

    /// Run COMMAND as this numeric user and group (GID defaults to UID),
    /// with no supplementary groups; the supervisor keeps its own identity.
    #[arg(long, value_name = "UID[:GID]", requires = "command")]
    run_as: Option<RunAs>,

    /// Where to write the reason when COMMAND cannot be started. The file is
    /// written only if it already exists (Kubernetes provides it).
    #[arg(
        long,
        value_name = "FILE",
        env = TERMINATION_LOG_ENV,
        default_value = TERMINATION_LOG_PATH
    )]
    termination_log: PathBuf,

    /// The workload and its arguments, after `--`. Looked up on PATH when it
    /// has no `/`; a relative path is relative to --workdir.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install this executable at DEST, atomically (for init containers).
    ///
    /// DEST is a file path, or an existing directory (then
    /// DEST/openshell-sandbox); missing parents are created. The copy is
    /// written to a temporary file beside DEST, set to mode 0755, flushed,
    /// checked against this executable, and renamed over DEST. When DEST
    /// already holds the same bytes it is not rewritten (only its mode is
    /// fixed). A DEST that is a symlink or another non-regular file is refused.
    /// Any failure leaves DEST as it was. Prints one line: destination, size,
    /// sha256.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.subcommand {
        Some(Command::CopySelf { dest }) => report(copy_self_command(&dest)),
        Some(Command::Version { json }) => report(version_command(json)),
        None => exit_code(supervise_command(
            SuperviseOptions {
                command: cli.command,
                workdir: cli.workdir,
                run_as: cli.run_as,
            },
            &cli.termination_log,
        )),
    }
}

fn copy_self_command(dest: &std::path::Path) -> anyhow::Result<()> {
    let report = copy_self::copy_self(dest).context("copy-self")?;
    println!("{report}");
    Ok(())
}

fn version_command(json: bool) -> anyhow::Result<()> {
    let report = version::report()?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", version::describe(&report));
    }
    Ok(())
}

/// Runs the supervisor; on failure prints the reason and records it in the
/// termination log, and returns the exit code to leave with.
fn supervise_command(options: SuperviseOptions, termination_log: &std::path::Path) -> i32 {
    match supervise::run(&options) {
        Ok(code) => code,
        Err(err) => {
            let code = err.exit_code();
            let reason = format!("{BINARY_NAME}: {:#}", anyhow::Error::new(err));
            eprintln!("{reason}");
            if let Err(log_err) = termination_log::record(termination_log, &reason) {
                eprintln!(
                    "{BINARY_NAME}: warning: cannot write the termination log {}: {log_err}",
                    termination_log.display()
                );
            }
            code
        }
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{BINARY_NAME}: {err:#}");
            exit_code(EXIT_FAILURE)
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    // Exit statuses are one byte; the workload's code already is.
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
