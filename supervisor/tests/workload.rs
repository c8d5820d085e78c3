//! The workload's process group, terminal, identity and start, and what the
//! supervisor says when it cannot start it. Each test runs with the
//! supervisor as PID 1 of a new PID namespace and not.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Mode, Started, bin, children_of, one_line, open_tempdir, output_within, texts};
use nix::libc;
use openshell_contract::TERMINATION_LOG_ENV;
use openshell_testsupport::tools::{require, require_root};

const TIMEOUT: Duration = Duration::from_secs(20);

fn supervisor(mode: Mode, args: &[&str]) -> Command {
    mode.command(bin(), args, None)
}

/// A temporary directory holding an empty termination log, as the kubelet
/// provides one.
fn termination_log() -> (tempfile::TempDir, PathBuf) {
    let dir = open_tempdir();
    let log = dir.path().join("termination-log");
    fs::write(&log, "").unwrap();
    (dir, log)
}

/// Asserts a start failure: exit `code`, one line on stderr with every
/// needle, and the same line in the termination log.
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

// --- Process group ---------------------------------------------------------

/// The main process and a background child both trap USR1 and report it.
const MAIN_AND_CHILD: &str = "sh -c 'trap \"echo child got USR1\" USR1; echo child ready; \
                              while :; do sleep 0.05; done' & \
                              trap 'echo main got USR1' USR1; trap 'exit 0' TERM; \
                              echo main ready; while :; do sleep 0.05; done";

fn signals_reach_the_whole_process_group_by_default(mode: Mode) {
    let mut started = Started::spawn(mode, supervisor(mode, &["--", "sh", "-c", MAIN_AND_CHILD]));
    let mut ready: Vec<String> = (0..2)
        .map(|_| started.stdout.next("both processes to start", TIMEOUT))
        .collect();
    ready.sort();
    assert_eq!(ready, ["child ready", "main ready"]);
    started.signal(libc::SIGUSR1);
    let mut got: Vec<String> = (0..2)
        .map(|_| started.stdout.next("USR1 to reach both", TIMEOUT))
        .collect();
    got.sort();
    assert_eq!(got, ["child got USR1", "main got USR1"]);
    started.signal(libc::SIGTERM);
    // The main process exits 0; the child, left over, gets SIGTERM too.
    assert_eq!(started.wait(TIMEOUT).code(), Some(0));
}

fn signal_target_child_reaches_the_main_process_only(mode: Mode) {
    for mut command in [
        supervisor(
            mode,
            &["--signal-target", "child", "--", "sh", "-c", MAIN_AND_CHILD],
        ),
        {
            let mut command = supervisor(mode, &["--", "sh", "-c", MAIN_AND_CHILD]);
            command.env(openshell_contract::supervise::ENV_SIGNAL_TARGET, "child");
            command
        },
    ] {
        command.stdin(Stdio::null());
        let mut started = Started::spawn(mode, command);
        for _ in 0..2 {
            started.stdout.next("both processes to start", TIMEOUT);
        }
        started.signal(libc::SIGUSR1);
        assert_eq!(
            started
                .stdout
                .next("USR1 to reach the main process", TIMEOUT),
            "main got USR1"
        );
        assert_eq!(
            started.stdout.try_next(Duration::from_millis(500)),
            None,
            "the child was signalled too"
        );
        started.signal(libc::SIGTERM);
        assert_eq!(started.wait(TIMEOUT).code(), Some(0));
    }
}

/// A shell line that waits (at most 20 s) for the file `$READY`, which the
/// background child creates once its traps are set, so that a busy machine
/// cannot make the main process exit first.
const WAIT_FOR_READY: &str =
    "i=0; while [ ! -e \"$READY\" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done";

fn when_the_main_process_exits_the_rest_of_its_group_gets_sigterm(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "sh -c 'trap \"echo child got TERM; exit 0\" TERM; echo child $$; : > \"$READY\"; \
         while :; do sleep 0.05; done' & {WAIT_FOR_READY}; exit 3"
    );
    let mut command = supervisor(mode, &["--", "sh", "-c", &script]);
    command.env("READY", dir.path().join("ready"));
    let mut started = Started::spawn(mode, command);
    let child = started.stdout.next("the child to start", TIMEOUT);
    assert!(child.starts_with("child "), "{child}");
    assert_eq!(
        started.stdout.next("the child's SIGTERM", TIMEOUT),
        "child got TERM"
    );
    assert_eq!(
        started.wait(TIMEOUT).code(),
        Some(3),
        "the main process's status"
    );
}

fn what_ignores_sigterm_is_killed_after_the_grace_period(mode: Mode) {
    // The child ignores SIGTERM; with a 1 s grace it is SIGKILLed, and the
    // supervisor leaves with the main process's status 1 s after the main
    // process has ended.
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "sh -c 'trap \"\" TERM; echo child $$; : > \"$READY\"; exec sleep 60' & \
         {WAIT_FOR_READY}; exit 4"
    );
    let mut command = supervisor(mode, &["--kill-grace", "1", "--", "sh", "-c", &script]);
    command.env("READY", dir.path().join("ready"));
    let mut started = Started::spawn(mode, command);
    let line = started.stdout.next("the child to start", TIMEOUT);
    let ready = Instant::now();
    let child_pid: i32 = line.strip_prefix("child ").unwrap().parse().unwrap();
    assert_eq!(started.wait(TIMEOUT).code(), Some(4));
    let elapsed = ready.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(15),
        "{elapsed:?}"
    );
    if mode == Mode::NotPid1 {
        // Not PID 1, nothing else would have ended it: it is gone.
        common::wait_until("the child to be gone", TIMEOUT, || {
            fs::read_to_string(format!("/proc/{child_pid}/stat")).map_or(true, |stat| {
                stat.contains(") Z ") || !stat.contains("sleep")
            })
        });
    }
}

// --- Terminal ----------------------------------------------------------------

/// Runs `command` (a shell command line) on a new pseudo-terminal with
/// script(1), and returns its output.
fn on_a_terminal(command: &str) -> Output {
    let mut script = Command::new("script");
    script.args(["--quiet", "--return", "--command", command, "/dev/null"]);
    output_within(script, TIMEOUT)
}

fn shell_words(mode: Mode, args: &[&str]) -> String {
    let command = supervisor(mode, args);
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn a_workload_writing_settings_to_its_terminal_is_not_stopped(mode: Mode) {
    if !require(
        "terminal test",
        &["script", "stty"],
        "apt-get install bsdutils coreutils",
    ) {
        return;
    }
    // stdin is not a terminal, stdout is: changing the terminal's settings
    // from a background process group raises SIGTTOU, which stops the
    // workload for good (tini behaves so). The supervisor makes the
    // workload's group the terminal's foreground through stdout.
    // stdin a pipe (as when a log shipper feeds the container), stdout the
    // terminal.
    let line = format!(
        "printf '' | {}",
        shell_words(
            mode,
            &[
                "--",
                "sh",
                "-c",
                "stty -echo <&1 && stty echo <&1 && echo settings changed"
            ]
        )
    );
    let output = on_a_terminal(&line);
    let (stdout, stderr) = texts(&output);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {stdout} stderr: {stderr}"
    );
    assert!(stdout.contains("settings changed"), "{stdout}");
}

fn a_workload_stopped_by_a_terminal_stop_signal_is_continued(mode: Mode) {
    // Ctrl-Z, or a stop signal sent to the supervisor and forwarded: no
    // shell would ever continue the workload in a container.
    let script = "kill -TSTP $$; echo continued after TSTP; \
                  trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done";
    let mut started = Started::spawn(mode, supervisor(mode, &["--", "sh", "-c", script]));
    assert_eq!(
        started.stdout.next("the workload to continue", TIMEOUT),
        "continued after TSTP"
    );
    assert_eq!(
        started.stdout.next("the workload to be ready", TIMEOUT),
        "ready"
    );
    // Many, quickly: a stop may catch sh's child between vfork and exec,
    // where sh waits for it rather than stopping, and only a SIGCONT to the
    // whole group gets them going again.
    for _ in 0..10 {
        for signal in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
            started.signal(signal);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // A stopped sh would not run its trap.
    started.signal(libc::SIGTERM);
    assert_eq!(
        started.stdout.next("SIGTERM to be trapped", TIMEOUT),
        "got TERM"
    );
    assert_eq!(started.wait(TIMEOUT).code(), Some(0));
}

// --- The child's start -----------------------------------------------------

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_as_drops_groups_gid_uid_and_sets_no_new_privs(mode: Mode) {
    if !require_root("run_as_drops_groups_gid_uid_and_sets_no_new_privs") {
        return;
    }
    let output = output_within(
        supervisor(
            mode,
            &["--run-as", "1234:2345", "--", "cat", "/proc/self/status"],
        ),
        TIMEOUT,
    );
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(status_field(&stdout, "Uid"), "1234 1234 1234 1234");
    assert_eq!(status_field(&stdout, "Gid"), "2345 2345 2345 2345");
    // The primary group only, as containerd gives it.
    assert_eq!(status_field(&stdout, "Groups"), "2345");
    assert_eq!(status_field(&stdout, "NoNewPrivs"), "1");
}

fn no_new_privs_without_run_as(mode: Mode) {
    for (args, expected) in [
        (
            vec!["--no-new-privs", "--", "cat", "/proc/self/status"],
            "1",
        ),
        (vec!["--", "cat", "/proc/self/status"], "0"),
    ] {
        let output = output_within(supervisor(mode, &args), TIMEOUT);
        assert!(output.status.success(), "{}", texts(&output).1);
        assert_eq!(
            status_field(&texts(&output).0, "NoNewPrivs"),
            expected,
            "{args:?}"
        );
    }
    let mut command = supervisor(mode, &["--", "cat", "/proc/self/status"]);
    command.env(openshell_contract::supervise::ENV_NO_NEW_PRIVS, "true");
    let output = output_within(command, TIMEOUT);
    assert_eq!(status_field(&texts(&output).0, "NoNewPrivs"), "1");
}

/// A directory on a file system that honours setuid bits (target/, not a
/// nosuid /tmp), that other users may enter.
fn suid_capable_dir() -> tempfile::TempDir {
    let base = openshell_testsupport::supervisor::target_dir().join("tmp");
    fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(base).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn a_setuid_root_helper_stays_unprivileged_under_run_as(mode: Mode) {
    let name = "a_setuid_root_helper_stays_unprivileged_under_run_as";
    if !require_root(name) || !require(name, &["sleep"], "apt-get install coreutils") {
        return;
    }
    // A setuid-root copy of sleep, as an agent image may hold (su, sudo,
    // ping, ...).
    let dir = suid_capable_dir();
    let helper = dir.path().join("suid-sleep");
    fs::copy(
        openshell_testsupport::tools::which("sleep").unwrap(),
        &helper,
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o4755)).unwrap();
    assert_eq!(fs::metadata(&helper).unwrap().uid(), 0);

    // Control: started by uid 1000 without no_new_privs, it does get euid 0
    // (so the file system honours the bit, and the check below can fail).
    let mut control = common::Running(
        Command::new(&helper)
            .arg("30")
            .uid(1000)
            .gid(1000)
            .spawn()
            .unwrap(),
    );
    let control_pid = control.pid();
    common::wait_until("the control to run", TIMEOUT, || {
        fs::read_to_string(format!("/proc/{control_pid}/status"))
            .is_ok_and(|status| status_field(&status, "Name") == "suid-sleep")
    });
    let status = fs::read_to_string(format!("/proc/{control_pid}/status")).unwrap();
    assert_eq!(
        status_field(&status, "Uid"),
        "1000 0 0 0",
        "control: {status}"
    );
    let _ = control.0.kill();

    let helper_path = helper.to_str().unwrap();
    let started = Started::spawn(
        mode,
        supervisor(mode, &["--run-as", "1000:1000", "--", helper_path, "30"]),
    );
    let mut workload = None;
    common::wait_until("the helper to run", TIMEOUT, || {
        workload = children_of(started.supervisor())
            .into_iter()
            .find(|entry| entry.comm == "suid-sleep");
        workload.is_some()
    });
    let status = fs::read_to_string(format!("/proc/{}/status", workload.unwrap().pid)).unwrap();
    assert_eq!(
        status_field(&status, "Uid"),
        "1000 1000 1000 1000",
        "{status}"
    );
    assert_eq!(status_field(&status, "NoNewPrivs"), "1");
    assert_eq!(status_field(&status, "CapEff"), "0000000000000000");
}

/// Bind-mounts `passwd` and `group` over /etc/passwd and /etc/group for the
/// supervisor only (a private mount namespace): the agent image's files.
fn with_image_accounts(dir: &Path, passwd: &str, group: &str) -> String {
    let passwd_file = dir.join("passwd");
    let group_file = dir.join("group");
    fs::write(&passwd_file, passwd).unwrap();
    fs::write(&group_file, group).unwrap();
    format!(
        "mount --bind '{}' /etc/passwd && mount --bind '{}' /etc/group",
        passwd_file.display(),
        group_file.display()
    )
}

fn run_as_names_and_home_come_from_the_images_etc_passwd(mode: Mode) {
    let name = "run_as_names_and_home_come_from_the_images_etc_passwd";
    if !require_root(name) || !require(name, &["unshare", "mount"], "apt-get install util-linux") {
        return;
    }
    let dir = open_tempdir();
    let prelude = with_image_accounts(
        dir.path(),
        "root:x:0:0:root:/root:/bin/sh\nagent:x:1500:1600:Agent:/home/agent:/bin/sh\n",
        "root:x:0:\nagent:x:1600:\ntools:x:1700:agent\n",
    );
    let report =
        "echo \"$(id -u) $(id -g) HOME=$HOME USER=${USER-unset} LOGNAME=${LOGNAME-unset}\"";
    for (run_as, expected) in [
        (
            "agent",
            "1500 1600 HOME=/home/agent USER=agent LOGNAME=agent",
        ),
        (
            "agent:tools",
            "1500 1700 HOME=/home/agent USER=agent LOGNAME=agent",
        ),
        (
            "1500",
            "1500 1600 HOME=/home/agent USER=agent LOGNAME=agent",
        ),
        ("4321", "4321 4321 HOME=/ USER=unset LOGNAME=unset"),
        ("4321:tools", "4321 1700 HOME=/ USER=unset LOGNAME=unset"),
    ] {
        let mut command = mode.command(
            bin(),
            &["--run-as", run_as, "--", "sh", "-c", report],
            Some(&prelude),
        );
        command
            .env("HOME", "/root")
            .env("USER", "root")
            .env("LOGNAME", "root");
        command.current_dir("/");
        let output = output_within(command, TIMEOUT);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "--run-as {run_as}: {stderr}");
        assert_eq!(stdout.trim_end(), expected, "--run-as {run_as}");
    }
    // An unknown name is a start failure naming the file.
    let (_log_dir, log) = termination_log();
    let mut command = mode.command(
        bin(),
        &["--run-as", "nobody-here", "--", "true"],
        Some(&prelude),
    );
    command.env(TERMINATION_LOG_ENV, &log);
    let output = output_within(command, TIMEOUT);
    assert_start_failure(
        &output,
        1,
        &log,
        &["no user \"nobody-here\"", "/etc/passwd"],
    );
}

// --- Exec --------------------------------------------------------------------

fn write_executable(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn run_with_log(mode: Mode, args: &[&str], log: &Path) -> Output {
    let mut command = supervisor(mode, args);
    command.env(TERMINATION_LOG_ENV, log);
    output_within(command, TIMEOUT)
}

fn a_binary_for_another_architecture_is_an_exec_format_error(mode: Mode) {
    let (dir, log) = termination_log();
    // The supervisor itself, relabelled as an arm64 ELF (e_machine at 18).
    let mut bytes = fs::read(bin()).unwrap();
    bytes[18..20].copy_from_slice(&183u16.to_le_bytes());
    let foreign = write_executable(dir.path(), "foreign-tool", &bytes);
    let output = run_with_log(mode, &["--", foreign.to_str().unwrap(), "--version"], &log);
    assert_start_failure(
        &output,
        126,
        &log,
        &["exec format error", "arm64", "foreign-tool"],
    );
    assert!(output.stdout.is_empty());
}

fn a_file_without_a_format_is_not_run_by_a_shell(mode: Mode) {
    // glibc's execvp would run it with /bin/sh.
    let (dir, log) = termination_log();
    let script = write_executable(dir.path(), "no-shebang", b"echo ran by a shell\n");
    let output = run_with_log(mode, &["--", script.to_str().unwrap()], &log);
    assert_start_failure(
        &output,
        126,
        &log,
        &["exec format error", "no shell is tried"],
    );
    assert!(output.stdout.is_empty());
}

fn a_missing_script_interpreter_is_named(mode: Mode) {
    let (dir, log) = termination_log();
    let script = write_executable(dir.path(), "script", b"#!/nonexistent/sh\necho hi\n");
    let output = run_with_log(mode, &["--", script.to_str().unwrap()], &log);
    // bash 5.2 exits 127 for it ("cannot execute: required file not found").
    assert_start_failure(&output, 127, &log, &["bad interpreter /nonexistent/sh"]);
    let bash = output_within(
        {
            let mut command = Command::new("bash");
            command.args(["-c", script.to_str().unwrap()]);
            command
        },
        TIMEOUT,
    );
    assert_eq!(bash.status.code(), Some(127), "bash's own exit code for it");

    // Found on PATH, the same: the search stops at the file, it does not go
    // on to end with "not found".
    let mut command = supervisor(mode, &["--", "script"]);
    command
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .env(TERMINATION_LOG_ENV, &log);
    let output = output_within(command, TIMEOUT);
    assert_start_failure(
        &output,
        127,
        &log,
        &["script: bad interpreter /nonexistent/sh"],
    );
}

fn commands_are_searched_on_path_and_missing_ones_exit_127(mode: Mode) {
    let (dir, log) = termination_log();
    write_executable(dir.path(), "my-tool", b"#!/bin/sh\necho found on PATH\n");
    let path = format!("/nonexistent:{}:/usr/bin:/bin", dir.path().display());
    let mut command = supervisor(mode, &["--", "my-tool"]);
    command.env("PATH", &path);
    let output = output_within(command, TIMEOUT);
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(texts(&output).0, "found on PATH\n");

    let output = run_with_log(mode, &["--", "openshell-no-such-command"], &log);
    assert_start_failure(
        &output,
        127,
        &log,
        &["openshell-no-such-command: command not found"],
    );
}

fn an_empty_command_after_the_separator_is_a_usage_error(mode: Mode) {
    let output = output_within(supervisor(mode, &["--"]), TIMEOUT);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        texts(&output).1.contains("no COMMAND after `--`"),
        "{}",
        texts(&output).1
    );
    let output = output_within(supervisor(mode, &["--workdir", "/", "--"]), TIMEOUT);
    assert_eq!(output.status.code(), Some(2));
}

// --- Outputs -----------------------------------------------------------------

fn a_fifo_termination_log_neither_blocks_nor_is_written(mode: Mode) {
    let dir = open_tempdir();
    let fifo = dir.path().join("termination-log");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let start = Instant::now();
    let output = run_with_log(mode, &["--", "openshell-no-such-command"], &fifo);
    assert_eq!(output.status.code(), Some(127));
    assert!(start.elapsed() < Duration::from_secs(10));
    let stderr = texts(&output).1;
    assert!(stderr.contains("command not found"), "{stderr}");
    assert!(
        stderr.contains("it is a FIFO (expected a regular file)"),
        "{stderr}"
    );
}

fn a_symlinked_termination_log_is_refused(mode: Mode) {
    let dir = open_tempdir();
    let target = dir.path().join("precious");
    fs::write(&target, "keep\n").unwrap();
    let link = dir.path().join("termination-log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let output = run_with_log(mode, &["--", "openshell-no-such-command"], &link);
    assert_eq!(output.status.code(), Some(127));
    assert!(
        texts(&output).1.contains("symbolic link"),
        "{}",
        texts(&output).1
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
}

/// `command` with stderr (or stdout) a pipe whose reader has gone.
fn with_broken_pipe(mut command: Command, stdout: bool) -> Output {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    if stdout {
        command.stdout(Stdio::from(writer)).stderr(Stdio::piped());
    } else {
        command.stderr(Stdio::from(writer)).stdout(Stdio::piped());
    }
    command.stdin(Stdio::null());
    let mut child = command.spawn().unwrap();
    let status = common::wait_with_timeout(&mut child, TIMEOUT);
    Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }
}

fn a_broken_stderr_does_not_turn_a_start_failure_into_a_panic(mode: Mode) {
    let (_dir, log) = termination_log();
    let mut command = supervisor(mode, &["--", "openshell-no-such-command"]);
    command.env(TERMINATION_LOG_ENV, &log);
    let output = with_broken_pipe(command, false);
    assert_eq!(output.status.code(), Some(127));
    let logged = fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("openshell-no-such-command: command not found"),
        "{logged}"
    );
}

fn a_closed_stdout_exits_141_for_copy_self_and_version(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("installed");
    for args in [
        vec!["version"],
        vec!["version", "--json"],
        vec!["copy-self", dest.to_str().unwrap()],
    ] {
        let output = with_broken_pipe(supervisor(mode, &args), true);
        assert_eq!(output.status.code(), Some(141), "{args:?}");
    }
}

both_modes!(
    signals_reach_the_whole_process_group_by_default,
    signal_target_child_reaches_the_main_process_only,
    when_the_main_process_exits_the_rest_of_its_group_gets_sigterm,
    what_ignores_sigterm_is_killed_after_the_grace_period,
    a_workload_writing_settings_to_its_terminal_is_not_stopped,
    a_workload_stopped_by_a_terminal_stop_signal_is_continued,
    run_as_drops_groups_gid_uid_and_sets_no_new_privs,
    no_new_privs_without_run_as,
    a_setuid_root_helper_stays_unprivileged_under_run_as,
    run_as_names_and_home_come_from_the_images_etc_passwd,
    a_binary_for_another_architecture_is_an_exec_format_error,
    a_file_without_a_format_is_not_run_by_a_shell,
    a_missing_script_interpreter_is_named,
    commands_are_searched_on_path_and_missing_ones_exit_127,
    an_empty_command_after_the_separator_is_a_usage_error,
    a_fifo_termination_log_neither_blocks_nor_is_written,
    a_symlinked_termination_log_is_refused,
    a_broken_stderr_does_not_turn_a_start_failure_into_a_panic,
    a_closed_stdout_exits_141_for_copy_self_and_version,
);
