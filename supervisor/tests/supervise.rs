//! Supervise mode: `openshell-sandbox [--workdir DIR] [--run-as UID[:GID]]
//! [-- COMMAND [ARG...]]`, run as a real process with real children.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{
    OutputWithDeadline, Running, bin, children_of, one_line, open_tempdir, sandbox, texts,
    wait_until, wait_with_timeout, waiting_for_signals,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openshell_contract::{BINARY_NAME, TERMINATION_LOG_ENV};
use openshell_testsupport::tools::{require, require_root};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the supervisor with `args` and the termination log pointed at `log`.
fn supervise_with_log(args: &[&str], log: &Path) -> Output {
    sandbox(args)
        .env(TERMINATION_LOG_ENV, log)
        .output_with_deadline()
        .unwrap()
}

/// A temporary directory holding an empty termination log, as the kubelet
/// provides one.
fn termination_log() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = open_tempdir();
    let log = dir.path().join("termination-log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    (dir, log)
}

/// Starts the supervisor with piped stdout, for tests that talk to the
/// workload while it runs.
fn start(args: &[&str]) -> (Running, common::Lines) {
    let mut child = sandbox(args).stdout(Stdio::piped()).spawn().unwrap();
    let lines = common::Lines::spawn(child.stdout.take().unwrap());
    (Running(child), lines)
}

/// The workload's next line of output, within [`TIMEOUT`].
fn next_line(lines: &common::Lines) -> String {
    lines.next("the workload's next line", TIMEOUT)
}

/// Asserts that a start failure exited with `code`, said why in one line on
/// stderr, and wrote that same line to the termination log.
fn assert_start_failure(output: &Output, code: i32, log: &Path, needles: &[&str]) {
    let (stdout, stderr) = texts(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {stdout} stderr: {stderr}"
    );
    let line = one_line(&stderr);
    for needle in needles {
        assert!(
            line.contains(needle),
            "{line:?} does not mention {needle:?}"
        );
    }
    assert_eq!(fs::read_to_string(log).unwrap(), format!("{line}\n"));
}

#[test]
fn exit_code_0_when_the_workload_succeeds() {
    let (_dir, log) = termination_log();
    let output = supervise_with_log(&["--", "true"], &log);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(fs::read_to_string(&log).unwrap(), "", "nothing to report");
}

#[test]
fn the_workload_exit_code_and_output_pass_through() {
    let output = sandbox(&["--", "sh", "-c", "echo out; echo err >&2; exit 3"])
        .output_with_deadline()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(texts(&output), ("out\n".to_owned(), "err\n".to_owned()));
}

#[test]
fn exit_code_128_plus_n_when_the_workload_dies_of_signal_n() {
    let output = sandbox(&["--", "sh", "-c", "kill -TERM $$"])
        .output_with_deadline()
        .unwrap();
    assert_eq!(output.status.code(), Some(128 + 15));
    assert_eq!(output.status.signal(), None, "the supervisor itself exits");
}

#[test]
fn exit_code_128_plus_n_for_a_real_time_signal_too() {
    let rtmin = nix::libc::SIGRTMIN();
    let script = format!("kill -{} $$", rtmin + 2);
    let output = sandbox(&["--", "sh", "-c", &script])
        .output_with_deadline()
        .unwrap();
    assert_eq!(output.status.code(), Some(128 + rtmin + 2));
}

#[test]
fn exit_code_127_when_the_command_is_not_found() {
    let (_dir, log) = termination_log();
    let output = supervise_with_log(&["--", "openshell-no-such-command"], &log);
    assert_start_failure(
        &output,
        127,
        &log,
        &["openshell-no-such-command: command not found"],
    );
}

#[test]
fn exit_code_127_when_a_command_path_does_not_exist() {
    let (dir, log) = termination_log();
    let missing = dir.path().join("missing-tool");
    let output = supervise_with_log(&["--", missing.to_str().unwrap()], &log);
    assert_start_failure(
        &output,
        127,
        &log,
        &[&missing.display().to_string(), "not found"],
    );
}

#[test]
fn exit_code_126_when_the_command_is_not_executable() {
    let (dir, log) = termination_log();
    let script = dir.path().join("not-executable.sh");
    fs::write(&script, "#!/bin/sh\necho should not run\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o644)).unwrap();
    let output = supervise_with_log(&["--", script.to_str().unwrap()], &log);
    assert_start_failure(
        &output,
        126,
        &log,
        &[
            &script.display().to_string(),
            "cannot execute",
            "Permission denied",
        ],
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn exit_code_1_and_the_path_when_the_workdir_cannot_be_made() {
    let (dir, log) = termination_log();
    let file = dir.path().join("a-file");
    fs::write(&file, "").unwrap();
    let unreachable = file.join("workdir");
    let output = supervise_with_log(
        &["--workdir", unreachable.to_str().unwrap(), "--", "true"],
        &log,
    );
    assert_start_failure(
        &output,
        1,
        &log,
        &[&format!(
            "cannot use workdir {}: {} is a regular file, not a directory",
            unreachable.display(),
            file.display()
        )],
    );
}

#[test]
fn the_termination_log_flag_overrides_the_default() {
    let (_dir, log) = termination_log();
    let output = sandbox(&[
        "--termination-log",
        log.to_str().unwrap(),
        "--",
        "openshell-no-such-command",
    ])
    .env_remove(TERMINATION_LOG_ENV)
    .output_with_deadline()
    .unwrap();
    assert_start_failure(&output, 127, &log, &["command not found"]);
}

#[test]
fn a_missing_termination_log_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("termination-log");
    let output = supervise_with_log(&["--", "openshell-no-such-command"], &log);
    assert_eq!(output.status.code(), Some(127));
    assert!(!log.exists(), "the supervisor created {}", log.display());
}

#[test]
fn a_refused_privilege_drop_exits_1_with_the_reason() {
    if !require_root("a_refused_privilege_drop_exits_1_with_the_reason") {
        return;
    }
    let (_dir, log) = termination_log();
    // An unprivileged supervisor cannot take another identity.
    let output = sandbox(&["--run-as", "1000:1000", "--", "true"])
        .env(TERMINATION_LOG_ENV, &log)
        .uid(65534)
        .gid(65534)
        .output_with_deadline()
        .unwrap();
    assert_start_failure(
        &output,
        1,
        &log,
        &[
            "cannot drop privileges to --run-as 1000:1000",
            "Operation not permitted",
        ],
    );
}

#[test]
fn the_workdir_takes_effect_and_relative_commands_resolve_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("where.sh");
    fs::write(&script, "#!/bin/sh\npwd\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let workdir = dir.path().to_str().unwrap();
    let output = sandbox(&["--workdir", workdir, "--", "./where.sh"])
        .current_dir("/")
        .output_with_deadline()
        .unwrap();
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(texts(&output).0, format!("{workdir}\n"));
}

#[test]
fn run_as_sets_uid_gid_and_replaces_supplementary_groups_for_the_workload_only() {
    if !require_root("run_as_sets_uid_gid_and_replaces_supplementary_groups_for_the_workload_only")
    {
        return;
    }
    let workdir = open_tempdir();
    let report = "pwd; id -u; id -g; grep '^Groups:' /proc/self/status; \
                  grep '^Uid:' /proc/$PPID/status";
    let output = sandbox(&[
        "--workdir",
        workdir.path().to_str().unwrap(),
        "--run-as",
        "1234:2345",
        "--",
        "sh",
        "-c",
        report,
    ])
    .output_with_deadline()
    .unwrap();
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], workdir.path().to_str().unwrap());
    assert_eq!(lines[1], "1234");
    assert_eq!(lines[2], "2345");
    // The primary group only, as containerd gives it (the host's
    // /etc/group lists no user 1234).
    assert_eq!(lines[3].trim_end(), "Groups:\t2345");
    // $PPID of the workload is the supervisor, which stays root.
    assert!(lines[4].starts_with("Uid:\t0\t0"), "{}", lines[4]);
}

#[test]
fn run_as_without_a_gid_uses_the_uid() {
    if !require_root("run_as_without_a_gid_uses_the_uid") {
        return;
    }
    let output = sandbox(&["--run-as", "4321", "--", "sh", "-c", "id -u; id -g"])
        .current_dir("/")
        .output_with_deadline()
        .unwrap();
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(texts(&output).0, "4321\n4321\n");
}

#[test]
fn a_malformed_run_as_is_a_usage_error_naming_the_value() {
    let output = sandbox(&["--run-as", "no body", "--", "true"])
        .output_with_deadline()
        .unwrap();
    let stderr = texts(&output).1;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("invalid value 'no body' for '--run-as <USER[:GROUP]>'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("neither a number nor a valid name"),
        "{stderr}"
    );
}

#[test]
fn the_workload_starts_with_no_blocked_signals() {
    // The supervisor blocks the signals it forwards; the workload must not
    // inherit that mask, or it would never see SIGTERM.
    let output = sandbox(&["--", "sh", "-c", "grep '^SigBlk:' /proc/self/status"])
        .output_with_deadline()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(texts(&output).0, "SigBlk:\t0000000000000000\n");
}

#[test]
fn sigterm_sent_to_the_supervisor_reaches_the_workload() {
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let (mut child, lines) = start(&["--", "sh", "-c", script]);
    assert_eq!(next_line(&lines), "ready");
    kill(child.pid(), Signal::SIGTERM).unwrap();
    assert_eq!(next_line(&lines), "got TERM");
    let status = wait_with_timeout(&mut child.0, TIMEOUT);
    assert_eq!(
        status.code(),
        Some(7),
        "the workload's exit code comes back"
    );
}

#[test]
fn every_forwarded_signal_reaches_the_workload() {
    let forwarded = ["INT", "HUP", "QUIT", "USR1", "USR2", "WINCH"];
    let mut script = String::new();
    for name in forwarded {
        script.push_str(&format!("trap 'echo got {name}' {name}; "));
    }
    script.push_str("trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done");
    let (mut child, lines) = start(&["--", "sh", "-c", &script]);
    assert_eq!(next_line(&lines), "ready");
    let signals = [
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGTERM,
    ];
    for signal in signals {
        kill(child.pid(), signal).unwrap();
        let name = signal.as_str().trim_start_matches("SIG");
        assert_eq!(next_line(&lines), format!("got {name}"));
    }
    assert_eq!(wait_with_timeout(&mut child.0, TIMEOUT).code(), Some(0));
}

#[test]
fn orphans_are_adopted_and_reaped_leaving_no_zombies() {
    let name = "orphans_are_adopted_and_reaped_leaving_no_zombies";
    if !require(name, &["setsid"], "apt-get install util-linux") {
        return;
    }
    // Eight grandchildren are orphaned at once (their parent subshell exits),
    // live two seconds, and die while the workload still runs. Half of them
    // leave for a session (and process group) of their own, as daemons do.
    let script = "for i in 1 2 3 4; do (sleep 2 &); (setsid sleep 2 &); done; \
                  echo spawned; sleep 5";
    let (mut child, lines) = start(&["--", "sh", "-c", script]);
    let supervisor = child.pid();
    assert_eq!(next_line(&lines), "spawned");

    // The supervisor is their subreaper: they become its children (as soon
    // as each subshell has exited and each setsid has become sleep).
    wait_until(
        "the eight orphans to be adopted by the supervisor",
        Duration::from_millis(1500),
        || {
            children_of(supervisor)
                .iter()
                .filter(|entry| entry.comm == "sleep" && entry.state != 'Z')
                .count()
                == 8
        },
    );

    // Once they have died, none stays a zombie (state Z in /proc).
    wait_until(
        "the orphans to end and be reaped",
        Duration::from_secs(5),
        || {
            children_of(supervisor)
                .iter()
                .all(|entry| entry.comm != "sleep")
        },
    );
    let zombies: Vec<_> = children_of(supervisor)
        .into_iter()
        .filter(|entry| entry.state == 'Z')
        .collect();
    assert!(zombies.is_empty(), "zombies left: {zombies:?}");
    assert_eq!(wait_with_timeout(&mut child.0, TIMEOUT).code(), Some(0));
}

#[test]
fn idle_mode_exits_0_on_sigterm() {
    idle_mode_exits_0_on(Signal::SIGTERM);
}

#[test]
fn idle_mode_exits_0_on_sigint() {
    idle_mode_exits_0_on(Signal::SIGINT);
}

fn idle_mode_exits_0_on(stop: Signal) {
    let mut child = Running(Command::new(bin()).spawn().unwrap());
    let pid = child.pid();
    wait_until("the supervisor to wait for signals", TIMEOUT, || {
        waiting_for_signals(pid)
    });
    // Other signals do not end idle mode.
    kill(pid, Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "SIGHUP ended idle mode"
    );
    kill(pid, stop).unwrap();
    assert_eq!(wait_with_timeout(&mut child.0, TIMEOUT).code(), Some(0));
}

/// Runs `args` under `unshare --pid --fork`, where the supervisor is PID 1
/// of a new PID namespace, as in a container.
fn as_pid_1(args: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--pid", "--fork", "--kill-child", "--"])
        .arg(bin())
        .args(args);
    command
}

#[test]
fn as_pid_1_the_workload_runs_and_its_exit_code_comes_back() {
    if !require_root("as_pid_1_the_workload_runs_and_its_exit_code_comes_back")
        || !require(
            "as_pid_1_the_workload_runs_and_its_exit_code_comes_back",
            &["unshare"],
            "apt-get install util-linux",
        )
    {
        return;
    }
    let output = as_pid_1(&["--", "sh", "-c", "echo pid=$$ ppid=$PPID; exit 5"])
        .output_with_deadline()
        .unwrap();
    assert_eq!(texts(&output).0, "pid=2 ppid=1\n");
    assert_eq!(output.status.code(), Some(5));
}

#[test]
fn as_pid_1_idle_mode_exits_0_on_sigterm_from_outside_the_namespace() {
    let name = "as_pid_1_idle_mode_exits_0_on_sigterm_from_outside_the_namespace";
    if !require_root(name) || !require(name, &["unshare"], "apt-get install util-linux") {
        return;
    }
    // The kernel drops signals sent to a namespace's PID 1 that it leaves at
    // the default action; the supervisor must still hear SIGTERM.
    let mut unshare = Running(as_pid_1(&[]).spawn().unwrap());
    let mut supervisor = None;
    wait_until("the supervisor to start as PID 1", TIMEOUT, || {
        supervisor = children_of(unshare.pid())
            .into_iter()
            // comm holds at most 15 bytes of the name.
            .find(|entry| BINARY_NAME.starts_with(&entry.comm))
            .map(|entry| Pid::from_raw(entry.pid));
        supervisor.is_some_and(waiting_for_signals)
    });
    let supervisor = supervisor.unwrap();
    let ns_pid = fs::read_to_string(format!("/proc/{supervisor}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:").map(str::to_owned))
        .unwrap();
    assert_eq!(
        ns_pid.split_whitespace().last(),
        Some("1"),
        "NSpid: {ns_pid}"
    );

    kill(supervisor, Signal::SIGTERM).unwrap();
    assert_eq!(wait_with_timeout(&mut unshare.0, TIMEOUT).code(), Some(0));
}

#[test]
fn help_explains_every_option_and_subcommand() {
    let output = sandbox(&["--help"]).output_with_deadline().unwrap();
    assert!(output.status.success());
    let help = texts(&output).0;
    for needle in [
        "--workdir <DIR>",
        "--run-as <USER[:GROUP]>",
        "--groups <GID[,GID...]>",
        "--no-new-privs",
        "--signal-target <TARGET>",
        "--kill-grace <SECONDS>",
        "OPENSHELL_SIGNAL_TARGET",
        "OPENSHELL_KILL_GRACE",
        "--termination-log <FILE>",
        TERMINATION_LOG_ENV,
        "[COMMAND]...",
        "copy-self",
        "version",
        "--version",
        "127",
        "126",
        "128+N",
    ] {
        assert!(
            help.contains(needle),
            "--help does not mention {needle}:\n{help}"
        );
    }
}

#[test]
fn workdir_without_a_command_is_a_usage_error() {
    let output = sandbox(&["--workdir", "/"]).output_with_deadline().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = texts(&output).1;
    assert!(
        stderr.contains("required arguments were not provided"),
        "{stderr}"
    );
    assert!(stderr.contains("<COMMAND>..."), "{stderr}");
}

/// The pid of the workload, and the process group and terminal foreground
/// group it reports from /proc/self/stat (fields 5 and 8).
const REPORT_GROUPS: &str = "echo $$; cut -d' ' -f5,8 /proc/$$/stat";

fn parse_groups(stdout: &str) -> (String, String, String) {
    let lines: Vec<&str> = stdout
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .collect();
    let (group, foreground) = lines[1].split_once(' ').unwrap();
    (lines[0].to_owned(), group.to_owned(), foreground.to_owned())
}

#[test]
fn the_workload_runs_in_a_process_group_of_its_own() {
    let output = sandbox(&["--", "sh", "-c", REPORT_GROUPS])
        .output_with_deadline()
        .unwrap();
    assert!(output.status.success(), "{}", texts(&output).1);
    let (pid, group, _) = parse_groups(&texts(&output).0);
    assert_eq!(group, pid);
}

#[test]
fn on_a_terminal_the_workload_is_the_foreground_process_group() {
    let name = "on_a_terminal_the_workload_is_the_foreground_process_group";
    if !require(name, &["script"], "apt-get install bsdutils") {
        return;
    }
    // script(1) runs the supervisor on a new pseudo-terminal, as `podman run
    // -it` does; Ctrl-C there must reach the workload once, from the
    // terminal, not a second time forwarded by the supervisor.
    // A script file: script(1) hands its command to a shell, which would
    // expand a `$$` written inline.
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("report-groups.sh");
    fs::write(&workload, format!("{REPORT_GROUPS}\nexit 4\n")).unwrap();
    let command = format!("{} -- sh {}", bin().display(), workload.display());
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output_with_deadline()
        .unwrap();
    let (stdout, stderr) = texts(&output);
    assert_eq!(
        output.status.code(),
        Some(4),
        "stdout: {stdout} stderr: {stderr}"
    );
    let (pid, group, foreground) = parse_groups(&stdout);
    assert_eq!(group, pid, "own process group");
    assert_eq!(foreground, pid, "foreground process group of the terminal");
}

#[test]
fn the_workload_does_not_outlive_a_killed_supervisor() {
    let (child, lines) = start(&["--", "sh", "-c", "echo $$; exec sleep 60"]);
    let workload = Pid::from_raw(next_line(&lines).parse().unwrap());
    let supervisor = child.pid();
    kill(supervisor, Signal::SIGKILL).unwrap();
    drop(child);
    // Gone, or a zombie waiting for init to reap it.
    wait_until("the workload to be killed", TIMEOUT, || {
        fs::read_to_string(format!("/proc/{workload}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    });
}
