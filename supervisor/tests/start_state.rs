//! Issue 17: the workload starts on any image, and the supervisor copes with
//! whatever start state and image files it is given: a workdir the image
//! lacks, the pod's groups, hostile /etc/passwd and /etc/group, SIGCHLD
//! ignored, an overflowing --kill-grace, capabilities that survive the
//! privilege drop, closed stdio without /dev/null, duplicated HOME, USER and
//! LOGNAME. Start states are set up by real starters: coreutils' `env
//! --ignore-signal`, util-linux's `setpriv`, a shell's redirections, and an
//! `execve` with a hand-made environment. Each test runs with the supervisor
//! as PID 1 of a new PID namespace and not, where that matters.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Mode, bin, one_line, open_tempdir, output_within, texts};
use openshell_contract::TERMINATION_LOG_ENV;
use openshell_contract::supervise::{ENV_KILL_GRACE, MAX_KILL_GRACE_SECONDS};
use openshell_testsupport::tools::{require, require_root};

const TIMEOUT: Duration = Duration::from_secs(20);

/// A temporary directory holding an empty termination log.
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
    assert!(stdout.is_empty(), "the workload ran: {stdout}");
    let line = one_line(&stderr);
    for needle in needles {
        assert!(
            line.contains(needle),
            "{line:?} does not mention {needle:?}"
        );
    }
    assert_eq!(fs::read_to_string(log).unwrap(), format!("{line}\n"));
}

fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the tools a test needs are here (root, and `tools`).
fn available(test: &str, tools: &[&str]) -> bool {
    require_root(test) && require(test, tools, "apt-get install util-linux coreutils")
}

/// Bind-mounts files over /etc/passwd and /etc/group for the supervisor only
/// (a private mount namespace): the agent image's files.
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

// --- Item 1: the workdir -----------------------------------------------------

/// Makes `command` start with umask 077, so modes below cannot come from it.
fn with_umask_077(command: &mut Command) {
    // SAFETY: umask is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::libc::umask(0o077);
            Ok(())
        });
    }
}

fn owner_and_mode(path: &Path) -> (u32, u32, u32) {
    let metadata = fs::symlink_metadata(path).unwrap();
    (metadata.uid(), metadata.gid(), metadata.mode() & 0o7777)
}

fn a_missing_workdir_is_made_for_the_run_as_user(mode: Mode) {
    if !available(
        "a_missing_workdir_is_made_for_the_run_as_user",
        &["unshare"],
    ) {
        return;
    }
    let base = open_tempdir();
    let workdir = base.path().join("srv/agent/sandbox");
    let workdir_text = workdir.to_str().unwrap();
    let mut command = mode.command(
        bin(),
        &[
            "--workdir",
            workdir_text,
            "--run-as",
            "1234:2345",
            "--",
            "sh",
            "-c",
            "pwd; echo written > file",
        ],
        None,
    );
    with_umask_077(&mut command);
    let output = output_within(command, TIMEOUT);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, format!("{workdir_text}\n"));
    // The workload could write there: the directory is its user's.
    assert_eq!(
        fs::read_to_string(workdir.join("file")).unwrap(),
        "written\n"
    );
    assert_eq!(owner_and_mode(&workdir), (1234, 2345, 0o755));
    for parent in ["srv", "srv/agent"] {
        assert_eq!(
            owner_and_mode(&base.path().join(parent)),
            (0, 0, 0o755),
            "{parent}"
        );
    }

    // Without --run-as: root's.
    let workdir = base.path().join("root-sandbox");
    let mut command = mode.command(
        bin(),
        &["--workdir", workdir.to_str().unwrap(), "--", "true"],
        None,
    );
    with_umask_077(&mut command);
    let output = output_within(command, TIMEOUT);
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(owner_and_mode(&workdir), (0, 0, 0o755));
}

fn an_existing_workdir_is_used_as_it_is(mode: Mode) {
    if !available("an_existing_workdir_is_used_as_it_is", &["unshare"]) {
        return;
    }
    let base = open_tempdir();
    let real = base.path().join("app");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o711)).unwrap();
    // Also through a symlink the image has.
    let link = base.path().join("workdir-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for workdir in [&real, &link] {
        let output = output_within(
            mode.command(
                bin(),
                &[
                    "--workdir",
                    workdir.to_str().unwrap(),
                    "--run-as",
                    "1234:2345",
                    "--",
                    "true",
                ],
                None,
            ),
            TIMEOUT,
        );
        assert!(output.status.success(), "{}", texts(&output).1);
        assert_eq!(owner_and_mode(&real), (0, 0, 0o711), "never chowned");
    }
}

fn a_dangling_symlink_on_the_workdir_path_is_refused(mode: Mode) {
    if !available(
        "a_dangling_symlink_on_the_workdir_path_is_refused",
        &["unshare"],
    ) {
        return;
    }
    let base = open_tempdir();
    let target = base.path().join("elsewhere");
    let link = base.path().join("sandbox");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (_log_dir, log) = termination_log();
    for workdir in [link.clone(), link.join("deeper")] {
        let mut command = mode.command(
            bin(),
            &["--workdir", workdir.to_str().unwrap(), "--", "echo", "ran"],
            None,
        );
        command.env(TERMINATION_LOG_ENV, &log);
        let output = output_within(command, TIMEOUT);
        assert_start_failure(
            &output,
            1,
            &log,
            &[
                &format!("cannot create workdir {}", workdir.display()),
                &format!(
                    "{} is a dangling symbolic link to {}",
                    link.display(),
                    target.display()
                ),
            ],
        );
        assert!(!target.exists(), "created through the symlink");
    }
}

fn a_read_only_file_system_names_the_workdir(mode: Mode) {
    if !available("a_read_only_file_system_names_the_workdir", &["unshare"]) {
        return;
    }
    let base = open_tempdir();
    let tmpfs = common::Tmpfs::mount(&base.path().join("ro"), "1m");
    tmpfs.remount_read_only();
    let workdir = tmpfs.path().join("sandbox");
    let (_log_dir, log) = termination_log();
    let mut command = mode.command(
        bin(),
        &["--workdir", workdir.to_str().unwrap(), "--", "echo", "ran"],
        None,
    );
    command.env(TERMINATION_LOG_ENV, &log);
    let output = output_within(command, TIMEOUT);
    assert_start_failure(
        &output,
        1,
        &log,
        &[
            &format!("cannot create workdir {}", workdir.display()),
            "is read-only",
        ],
    );
}

// --- Item 2: groups ----------------------------------------------------------

fn groups_merge_as_containerd_merges_them(mode: Mode) {
    if !available(
        "groups_merge_as_containerd_merges_them",
        &["unshare", "mount"],
    ) {
        return;
    }
    let dir = open_tempdir();
    // agent is listed in tools and in shared (among others); the group
    // named like the user is skipped even though it lists it; `agents`
    // does not list it (a prefix is no match).
    let prelude = with_image_accounts(
        dir.path(),
        "root:x:0:0:root:/root:/bin/sh\nagent:x:1500:1600:Agent:/home/agent:/bin/sh\n",
        "root:x:0:\nprimary:x:1600:\ntools:x:1700:agent\nshared:x:1800:bob,agent,carol\n\
         agent:x:1650:agent\nagents:x:1900:agentx\n",
    );
    let report = ["--", "grep", "^Groups:", "/proc/self/status"];
    for (args, expected) in [
        (vec!["--run-as", "agent"], "1600 1700 1800"),
        (
            vec![
                "--run-as",
                "agent",
                "--groups",
                "3000,3001",
                "--groups",
                "1700",
            ],
            "1600 1700 1800 3000 3001",
        ),
        // A numeric uid with an entry: the entry's name counts.
        (vec!["--run-as", "1500:42"], "42 1700 1800"),
        // Without an entry: the primary group and --groups only.
        (vec!["--run-as", "4321", "--groups", "5"], "5 4321"),
    ] {
        let args: Vec<&str> = args.iter().chain(report.iter()).copied().collect();
        let mut command = mode.command(bin(), &args, Some(&prelude));
        command.current_dir("/");
        let output = output_within(command, TIMEOUT);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{args:?}: {stderr}");
        assert_eq!(status_field(&stdout, "Groups"), expected, "{args:?}");
    }
}

fn groups_without_run_as_add_to_the_supervisors_own(mode: Mode) {
    if !available(
        "groups_without_run_as_add_to_the_supervisors_own",
        &["unshare"],
    ) {
        return;
    }
    let own = fs::read_to_string("/proc/self/status").unwrap();
    let mut expected: Vec<u32> = status_field(&own, "Groups")
        .split_whitespace()
        .map(|gid| gid.parse().unwrap())
        .chain([3000, 4000])
        .collect();
    expected.sort_unstable();
    expected.dedup();
    let expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
    let output = output_within(
        mode.command(
            bin(),
            &[
                "--groups",
                "4000",
                "--groups=3000",
                "--",
                "cat",
                "/proc/self/status",
            ],
            None,
        ),
        TIMEOUT,
    );
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(status_field(&stdout, "Groups"), expected.join(" "));
    assert_eq!(status_field(&stdout, "Uid"), "0 0 0 0");
}

#[test]
fn bad_groups_values_are_usage_errors_naming_the_value() {
    for (value, problem) in [
        ("abc", "\"abc\" is not a number"),
        ("=-1", "\"-1\" is not a number"),
        ("4294967295", "4294967295 is out of range"),
        ("99999999999", "99999999999 is out of range"),
        ("1,,2", "a GID is empty"),
        ("", "a GID is empty"),
        ("staff", "\"staff\" is not a number"),
    ] {
        // `=VALUE` for values clap would take for a flag.
        let args = match value.strip_prefix('=') {
            Some(value) => vec![format!("--groups={value}")],
            None => vec!["--groups".to_owned(), value.to_owned()],
        };
        let mut command = common::sandbox(&[]);
        command.args(&args).args(["--", "true"]);
        let output = output_within(command, TIMEOUT);
        let stderr = texts(&output).1;
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("for '--groups <GID[,GID...]>'"),
            "{value}: {stderr}"
        );
        assert!(stderr.contains(problem), "{value}: {stderr}");
    }
    // --groups, like --run-as, needs a command.
    let output = output_within(common::sandbox(&["--groups", "5"]), TIMEOUT);
    assert_eq!(output.status.code(), Some(2), "{:?}", texts(&output));
    // The largest id is taken.
    if require_root("bad_groups_values_are_usage_errors_naming_the_value") {
        let output = output_within(
            common::sandbox(&[
                "--groups",
                "4294967294",
                "--",
                "grep",
                "^Groups:",
                "/proc/self/status",
            ]),
            TIMEOUT,
        );
        assert!(output.status.success(), "{:?}", texts(&output));
        assert!(
            texts(&output).0.contains("4294967294"),
            "{:?}",
            texts(&output)
        );
    }
}

// --- Item 7: the image's /etc/passwd and /etc/group --------------------------

/// Runs `--run-as 1000 -- echo ran` with `prelude` putting something over
/// an image file; returns the output, within a deadline that a hang would
/// miss by far.
fn run_as_over(mode: Mode, prelude: &str, log: &Path) -> (Output, Duration) {
    let mut command = mode.command(
        bin(),
        &["--run-as", "1000", "--", "echo", "ran"],
        Some(prelude),
    );
    command.env(TERMINATION_LOG_ENV, log).current_dir("/");
    let started = Instant::now();
    let output = output_within(command, TIMEOUT);
    (output, started.elapsed())
}

fn a_fifo_as_etc_passwd_does_not_hang_the_supervisor(mode: Mode) {
    if !available(
        "a_fifo_as_etc_passwd_does_not_hang_the_supervisor",
        &["unshare", "mount", "mkfifo"],
    ) {
        return;
    }
    let dir = open_tempdir();
    let fifo = dir.path().join("fifo");
    let prelude = format!(
        "mkfifo '{}' && mount --bind '{}' /etc/passwd",
        fifo.display(),
        fifo.display()
    );
    let (_log_dir, log) = termination_log();
    let (output, took) = run_as_over(mode, &prelude, &log);
    assert_start_failure(
        &output,
        1,
        &log,
        &[
            "cannot use /etc/passwd: it is a FIFO",
            "expected a regular file",
        ],
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

fn dev_zero_as_etc_group_is_refused(mode: Mode) {
    if !available("dev_zero_as_etc_group_is_refused", &["unshare", "mount"]) {
        return;
    }
    let (_log_dir, log) = termination_log();
    let (output, _) = run_as_over(mode, "mount --bind /dev/zero /etc/group", &log);
    assert_start_failure(
        &output,
        1,
        &log,
        &["cannot use /etc/group: it is a character device"],
    );
}

fn a_huge_sparse_etc_passwd_is_refused_unread(mode: Mode) {
    if !available(
        "a_huge_sparse_etc_passwd_is_refused_unread",
        &["unshare", "mount"],
    ) {
        return;
    }
    let dir = open_tempdir();
    let sparse = dir.path().join("passwd");
    fs::File::create(&sparse)
        .unwrap()
        .set_len(16 << 30)
        .unwrap();
    let prelude = format!("mount --bind '{}' /etc/passwd", sparse.display());
    let (_log_dir, log) = termination_log();
    let (output, took) = run_as_over(mode, &prelude, &log);
    assert_start_failure(
        &output,
        1,
        &log,
        &[
            "cannot use /etc/passwd: it is 17179869184 bytes, over the limit of",
            "at most 4194304 bytes",
        ],
    );
    // Reading 16 GiB of zeros would take far longer.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

// --- Item 9: SIGCHLD ignored by the starter ----------------------------------

fn sigchld_ignored_by_the_starter_still_gives_the_workloads_status(mode: Mode) {
    if !require(
        "sigchld_ignored_by_the_starter_still_gives_the_workloads_status",
        &["env"],
        "apt-get install coreutils",
    ) || !mode.available("sigchld_ignored_by_the_starter_still_gives_the_workloads_status")
    {
        return;
    }
    let env = openshell_testsupport::tools::which("env").unwrap();
    let bin = bin().to_str().unwrap();
    for script in ["exit 7", "sleep 0.1 & wait; exit 7"] {
        // The starter that ignores SIGCHLD execs the supervisor, which
        // inherits the disposition (as PID 1 too: env is PID 1 and execs).
        let output = output_within(
            mode.command(
                &env,
                &["--ignore-signal=CHLD", bin, "--", "sh", "-c", script],
                None,
            ),
            TIMEOUT,
        );
        assert_eq!(
            output.status.code(),
            Some(7),
            "{script}: {:?}",
            texts(&output)
        );
    }
}

// --- Item 10: --kill-grace overflow ------------------------------------------

#[test]
fn an_overflowing_kill_grace_is_a_usage_error_by_flag_and_environment() {
    // u64::MAX seconds (which overflowed the clock), past u64, and just
    // past the limit.
    for (value, problem) in [
        (
            "18446744073709551615",
            "expected at most 4294967295 seconds",
        ),
        ("18446744073709551616", "expected seconds such as 5"),
        ("4294967296", "expected at most 4294967295 seconds"),
        ("4294967295.5", "expected at most 4294967295 seconds"),
    ] {
        let output = output_within(
            common::sandbox(&["--kill-grace", value, "--", "true"]),
            TIMEOUT,
        );
        let stderr = texts(&output).1;
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value '{value}' for '--kill-grace")),
            "{stderr}"
        );
        assert!(stderr.contains(problem), "{stderr}");
        let mut command = common::sandbox(&["--", "true"]);
        command.env(ENV_KILL_GRACE, value);
        let output = output_within(command, TIMEOUT);
        let stderr = texts(&output).1;
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert!(stderr.contains(problem), "{stderr}");
    }
    // The largest accepted grace runs: with a group member left behind it
    // would wait that long, so only the plain exit is shown here.
    let output = output_within(
        common::sandbox(&[
            "--kill-grace",
            &MAX_KILL_GRACE_SECONDS.to_string(),
            "--",
            "sh",
            "-c",
            "exit 3",
        ]),
        TIMEOUT,
    );
    assert_eq!(output.status.code(), Some(3), "{:?}", texts(&output));
}

// --- Item 11: capabilities that survive the privilege drop -------------------

fn setpriv_then_supervise(mode: Mode, setpriv: &[&str], args: &[&str]) -> Command {
    let mut all: Vec<&str> = setpriv.to_vec();
    all.push(bin().to_str().unwrap());
    all.extend_from_slice(args);
    mode.command(Path::new("setpriv"), &all, None)
}

fn capabilities_kept_across_the_drop_refuse_the_start(mode: Mode) {
    if !available(
        "capabilities_kept_across_the_drop_refuse_the_start",
        &["unshare", "setpriv"],
    ) {
        return;
    }
    let args = ["--run-as", "1000:1000", "--", "echo", "ran"];
    for (setpriv, needles) in [
        // The case: CAP_SYS_ADMIN ambient, and no_setuid_fixup so
        // setuid clears nothing.
        (
            vec![
                "--inh-caps",
                "+sys_admin",
                "--ambient-caps",
                "+sys_admin",
                "--securebits",
                "+no_setuid_fixup",
            ],
            vec!["CAP_CHOWN in its effective capability set"],
        ),
        // no_setuid_fixup alone: root's capabilities survive setuid.
        (
            vec!["--securebits", "+no_setuid_fixup"],
            vec!["CAP_CHOWN in its effective capability set"],
        ),
    ] {
        let (_log_dir, log) = termination_log();
        let mut command = setpriv_then_supervise(mode, &setpriv, &args);
        command.env(TERMINATION_LOG_ENV, &log);
        let output = output_within(command, TIMEOUT);
        let mut all =
            vec!["refusing to start the workload: after dropping privileges to --run-as 1000:1000"];
        all.extend(needles);
        assert_start_failure(&output, 1, &log, &all);
    }
}

fn a_clean_drop_starts_the_workload_without_capabilities(mode: Mode) {
    if !available(
        "a_clean_drop_starts_the_workload_without_capabilities",
        &["unshare", "setpriv"],
    ) {
        return;
    }
    // Ambient capabilities without a securebit: the kernel clears them when
    // uid 0 is left, so the check passes and the workload has none.
    for setpriv in [vec![
        "--inh-caps",
        "+sys_admin",
        "--ambient-caps",
        "+sys_admin",
    ]] {
        let output = output_within(
            setpriv_then_supervise(
                mode,
                &setpriv,
                &["--run-as", "1000:1000", "--", "cat", "/proc/self/status"],
            ),
            TIMEOUT,
        );
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{setpriv:?}: {stderr}");
        for set in ["CapEff", "CapPrm", "CapAmb"] {
            assert_eq!(status_field(&stdout, set), "0000000000000000", "{set}");
        }
    }
}

// --- Item 12: closed stdio without /dev/null ---------------------------------

/// A prelude that hides /dev (an empty tmpfs over it: no /dev/null) and
/// closes the given descriptors before the supervisor starts.
fn without_dev_and_with_closed(fds: &str) -> String {
    let closes: String = fds.split(',').map(|fd| format!(" {fd}>&-")).collect();
    format!("mount -t tmpfs -o size=1m none /dev && exec{closes}")
}

fn closed_stdio_without_dev_null_still_runs_the_workload(mode: Mode) {
    if !available(
        "closed_stdio_without_dev_null_still_runs_the_workload",
        &["unshare", "mount", "sleep"],
    ) {
        return;
    }
    for fds in ["0,1,2", "1", "2", "0"] {
        let prelude = without_dev_and_with_closed(fds);
        // The status passes through.
        let command = mode.command(bin(), &["--", "sh", "-c", "exit 5"], Some(&prelude));
        let output = output_within(command, TIMEOUT);
        assert_eq!(
            output.status.code(),
            Some(5),
            "{fds} closed: {:?} {:?}",
            output.status,
            texts(&output)
        );
        // What was closed reaches the workload closed, as with tini: its
        // descriptors are read from /proc while it sleeps.
        let command = mode.command(bin(), &["--", "sleep", "30"], Some(&prelude));
        let started = common::Started::spawn(mode, command);
        let mut workload = None;
        common::wait_until("the workload to run", TIMEOUT, || {
            workload = common::children_of(started.supervisor())
                .into_iter()
                .find(|entry| entry.comm == "sleep");
            workload.is_some()
        });
        let open = common::entries(Path::new(&format!("/proc/{}/fd", workload.unwrap().pid)));
        for fd in fds.split(',') {
            assert!(
                !open.contains(&fd.to_owned()),
                "{fds} closed: fd {fd} open in the workload: {open:?}"
            );
        }
    }
}

#[test]
fn closed_stdio_without_dev_null_still_runs_copy_self() {
    if !available(
        "closed_stdio_without_dev_null_still_runs_copy_self",
        &["unshare", "mount"],
    ) {
        return;
    }
    let dir = open_tempdir();
    let dest = dir.path().join("bin/openshell-sandbox");
    for fds in ["0,1,2", "1"] {
        let _ = fs::remove_file(&dest);
        let prelude = without_dev_and_with_closed(fds);
        let command = Mode::NotPid1.command(
            bin(),
            &["copy-self", dest.to_str().unwrap()],
            Some(&prelude),
        );
        let output = output_within(command, TIMEOUT);
        assert_eq!(output.status.code(), Some(0), "{fds}: {:?}", texts(&output));
        assert_eq!(fs::read(&dest).unwrap(), fs::read(bin()).unwrap());
    }
}

// --- Item 13: HOME, USER and LOGNAME once ------------------------------------

/// Makes `command` exec `program` with `args` and exactly `env` (duplicates
/// kept), as a starter that builds its own environment array would: a
/// Command would merge the duplicates.
fn exec_with_raw_environment(command: &mut Command, program: &Path, args: &[&str], env: &[&str]) {
    let c = |text: &[u8]| CString::new(text).unwrap();
    let program = c(program.as_os_str().as_bytes());
    let argv: Vec<CString> = std::iter::once(program.clone())
        .chain(args.iter().map(|arg| c(arg.as_bytes())))
        .collect();
    let envp: Vec<CString> = env.iter().map(|entry| c(entry.as_bytes())).collect();
    // The pointer arrays are made here, not after fork (no allocation
    // there), as addresses: the strings' bytes do not move when the vectors
    // holding them move into the closure.
    let addresses = |strings: &[CString]| -> Vec<usize> {
        strings
            .iter()
            .map(|string| string.as_ptr() as usize)
            .chain(std::iter::once(0))
            .collect()
    };
    let argv_ptrs = addresses(&argv);
    let envp_ptrs = addresses(&envp);
    // SAFETY: the closure only calls execve with pointers into strings it
    // owns (moved in with it), made before fork; on failure it returns the
    // error.
    unsafe {
        command.pre_exec(move || {
            let _keep = (&argv, &envp);
            nix::libc::execve(
                program.as_ptr(),
                argv_ptrs.as_ptr().cast(),
                envp_ptrs.as_ptr().cast(),
            );
            Err(std::io::Error::last_os_error())
        });
    }
}

fn home_user_and_logname_appear_once_under_run_as(mode: Mode) {
    if !available(
        "home_user_and_logname_appear_once_under_run_as",
        &["unshare", "env"],
    ) {
        return;
    }
    // No prelude here: a shell in between would merge the duplicates. The
    // host's /etc/passwd names the users: nobody, and an unlisted uid.
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let nobody_home = passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() == 7 && fields[0] == "nobody").then(|| fields[5].to_owned())
        })
        .expect("the host's /etc/passwd has no user nobody");
    let unlisted = (4321..)
        .find(|uid: &u32| {
            !passwd
                .lines()
                .any(|line| line.split(':').nth(2) == Some(&uid.to_string()))
        })
        .unwrap()
        .to_string();
    let environment = [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=/root",
        "USER=root",
        "LOGNAME=root",
        "HOME=/root-again",
        "USER=root-again",
        "LOGNAME=root-again",
        "KEEP=1",
        "KEEP=2",
    ];
    let nobody_expected = [
        format!("HOME={nobody_home}"),
        "USER=nobody".to_owned(),
        "LOGNAME=nobody".to_owned(),
    ];
    for (run_as, expected) in [
        ("nobody", nobody_expected.to_vec()),
        // No entry: HOME=/, and no USER or LOGNAME at all.
        (unlisted.as_str(), vec!["HOME=/".to_owned()]),
    ] {
        // The command Mode would run, started through execve with the
        // duplicated environment.
        let template = mode.command(bin(), &["--run-as", run_as, "--", "env"], None);
        let program = PathBuf::from(template.get_program());
        let program =
            openshell_testsupport::tools::which(program.to_str().unwrap()).unwrap_or(program);
        let args: Vec<String> = template
            .get_args()
            .map(|arg| arg.to_str().unwrap().to_owned())
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = Command::new(&program);
        command.current_dir("/");
        exec_with_raw_environment(&mut command, &program, &args, &environment);
        let output = output_within(command, TIMEOUT);
        let (stdout, stderr) = texts(&output);
        assert!(output.status.success(), "{run_as}: {stderr}");
        let identity: Vec<&str> = stdout
            .lines()
            .filter(|line| {
                ["HOME=", "USER=", "LOGNAME="]
                    .iter()
                    .any(|key| line.starts_with(key))
            })
            .collect();
        assert_eq!(identity, expected, "{run_as}: {stdout}");
        // Other duplicates pass through as they came.
        let keep: Vec<&str> = stdout.lines().filter(|l| l.starts_with("KEEP=")).collect();
        assert_eq!(keep, ["KEEP=1", "KEEP=2"], "{run_as}");
    }
}

both_modes!(
    a_missing_workdir_is_made_for_the_run_as_user,
    an_existing_workdir_is_used_as_it_is,
    a_dangling_symlink_on_the_workdir_path_is_refused,
    a_read_only_file_system_names_the_workdir,
    groups_merge_as_containerd_merges_them,
    groups_without_run_as_add_to_the_supervisors_own,
    a_fifo_as_etc_passwd_does_not_hang_the_supervisor,
    dev_zero_as_etc_group_is_refused,
    a_huge_sparse_etc_passwd_is_refused_unread,
    sigchld_ignored_by_the_starter_still_gives_the_workloads_status,
    capabilities_kept_across_the_drop_refuse_the_start,
    a_clean_drop_starts_the_workload_without_capabilities,
    closed_stdio_without_dev_null_still_runs_the_workload,
    home_user_and_logname_appear_once_under_run_as,
);

#[test]
fn groups_an_unprivileged_supervisor_cannot_set_are_a_start_failure() {
    if !require_root("groups_an_unprivileged_supervisor_cannot_set_are_a_start_failure") {
        return;
    }
    let (_log_dir, log) = termination_log();
    // Writable by the unprivileged supervisor, as the kubelet's is.
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let mut command = common::sandbox(&["--groups", "5,6", "--", "echo", "ran"]);
    command
        .env(TERMINATION_LOG_ENV, &log)
        .current_dir("/")
        .uid(65534)
        .gid(65534);
    let output = output_within(command, TIMEOUT);
    assert_start_failure(
        &output,
        1,
        &log,
        &[
            "cannot give the workload the supplementary groups 5,6",
            "setgroups was refused",
        ],
    );
}

fn a_workdir_made_without_cap_chown_is_refused_and_removed(mode: Mode) {
    if !available(
        "a_workdir_made_without_cap_chown_is_refused_and_removed",
        &["unshare", "setpriv"],
    ) {
        return;
    }
    let base = open_tempdir();
    let workdir = base.path().join("sandbox");
    let args = [
        "--workdir",
        workdir.to_str().unwrap(),
        "--run-as",
        "1234:2345",
        "--",
        "sh",
        "-c",
        "touch file",
    ];
    // What the driver's hardened agent container keeps for --run-as, with
    // and without CHOWN: root's capabilities after exec are the bounding
    // set's.
    let (_log_dir, log) = termination_log();
    let mut command = setpriv_then_supervise(
        mode,
        &["--bounding-set", "-all,+setuid,+setgid,+kill"],
        &args,
    );
    command.env(TERMINATION_LOG_ENV, &log);
    let output = output_within(command, TIMEOUT);
    assert_start_failure(
        &output,
        1,
        &log,
        &[
            &format!("cannot create workdir {}", workdir.display()),
            "to 1234:2345 was refused (the container lacks CAP_CHOWN",
        ],
    );
    assert!(!workdir.exists(), "a half-made workdir was left behind");

    let output = output_within(
        setpriv_then_supervise(
            mode,
            &["--bounding-set", "-all,+setuid,+setgid,+kill,+chown"],
            &args,
        ),
        TIMEOUT,
    );
    assert!(output.status.success(), "{:?}", texts(&output));
    assert_eq!(owner_and_mode(&workdir), (1234, 2345, 0o755));
    assert!(workdir.join("file").exists());

    // Without --run-as nothing is given away: no CAP_CHOWN needed.
    let root_workdir = base.path().join("root-sandbox");
    let output = output_within(
        setpriv_then_supervise(
            mode,
            &["--bounding-set", "-all"],
            &["--workdir", root_workdir.to_str().unwrap(), "--", "true"],
        ),
        TIMEOUT,
    );
    assert!(output.status.success(), "{:?}", texts(&output));
    assert_eq!(owner_and_mode(&root_workdir), (0, 0, 0o755));
}

both_modes!(a_workdir_made_without_cap_chown_is_refused_and_removed);
