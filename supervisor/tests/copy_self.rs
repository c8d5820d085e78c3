//! `openshell-sandbox copy-self DEST`, run as a real process.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use common::{OutputWithDeadline, Tmpfs, bin, entries, one_line, open_tempdir, sandbox, texts};
use nix::sys::resource::{Resource, setrlimit};
use openshell_contract::BINARY_NAME;
use openshell_contract::version::VersionReport;
use openshell_testsupport::tools::require_root;
use sha2::{Digest, Sha256};

/// The bytes copy-self must reproduce: its own executable.
fn source_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| fs::read(bin()).unwrap())
}

fn source_sha256() -> String {
    hex::encode(Sha256::digest(source_bytes()))
}

fn copy_self(dest: &Path) -> Output {
    sandbox(&["copy-self"])
        .arg(dest)
        .output_with_deadline()
        .unwrap()
}

/// Asserts a successful run that printed the one report line for `expected`
/// with `action`.
fn assert_reported(output: &Output, action: &str, expected: &Path) {
    let (stdout, stderr) = texts(output);
    assert!(output.status.success(), "copy-self failed: {stderr}");
    assert_eq!(
        stdout,
        format!(
            "{action} {}: {} bytes, sha256 {}\n",
            expected.display(),
            source_bytes().len(),
            source_sha256()
        )
    );
}

/// Asserts that `path` is a complete copy of the binary with mode 0755.
fn assert_installed(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    assert!(meta.is_file(), "{} is not a regular file", path.display());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert!(
        fs::read(path).unwrap() == source_bytes(),
        "{} differs from the source",
        path.display()
    );
}

/// Asserts a refusal or failure: exit code 1 and one line on stderr holding
/// every string of `needles`.
fn assert_failed(output: &Output, needles: &[&str]) {
    let (stdout, stderr) = texts(output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {stdout} stderr: {stderr}"
    );
    let line = one_line(&stderr);
    for needle in needles {
        assert!(
            line.contains(needle),
            "{line:?} does not mention {needle:?}"
        );
    }
    assert!(
        stdout.is_empty(),
        "nothing is reported on failure: {stdout}"
    );
}

#[test]
fn copies_to_a_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("supervisor");
    let output = copy_self(&dest);
    assert_reported(&output, "copied", &dest);
    assert_installed(&dest);
    assert_eq!(
        entries(dir.path()),
        ["supervisor"],
        "no temporary file is left"
    );
}

#[test]
fn copies_into_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let output = copy_self(dir.path());
    let dest = dir.path().join(BINARY_NAME);
    assert_reported(&output, "copied", &dest);
    assert_installed(&dest);
    assert_eq!(entries(dir.path()), [BINARY_NAME]);
}

#[test]
fn creates_missing_parents() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("opt/openshell/bin").join(BINARY_NAME);
    let output = copy_self(&dest);
    assert_reported(&output, "copied", &dest);
    assert_installed(&dest);
}

#[test]
fn created_parents_are_0755_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    // An existing parent keeps its mode; only the ones made are set.
    let existing = dir.path().join("existing");
    fs::create_dir(&existing).unwrap();
    fs::set_permissions(&existing, fs::Permissions::from_mode(0o750)).unwrap();
    let dest = existing.join("a/b/openshell-sandbox");
    let mut command = sandbox(&["copy-self"]);
    command.arg(&dest);
    // SAFETY: umask is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::libc::umask(0o077);
            Ok(())
        });
    }
    let output = command.output_with_deadline().unwrap();
    assert_reported(&output, "copied", &dest);
    assert_installed(&dest);
    for made in ["a", "a/b"] {
        let mode = fs::metadata(existing.join(made)).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{made}: {mode:o}");
    }
    let mode = fs::metadata(&existing).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o750, "the existing parent is left alone");
}

#[test]
fn a_rerun_onto_an_identical_copy_does_not_rewrite_it_but_fixes_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(BINARY_NAME);
    assert_reported(&copy_self(&dest), "copied", &dest);
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
    let before = fs::metadata(&dest).unwrap();

    let output = copy_self(&dest);
    assert_reported(&output, "unchanged", &dest);
    let after = fs::metadata(&dest).unwrap();
    assert_eq!(after.ino(), before.ino(), "DEST was replaced");
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec()),
        "DEST was rewritten"
    );
    assert_installed(&dest);
    assert_eq!(entries(dir.path()), [BINARY_NAME]);
}

#[test]
fn a_different_file_of_the_same_size_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(BINARY_NAME);
    let mut stale = source_bytes().to_vec();
    let last = stale.len() - 1;
    stale[last] ^= 0xff;
    fs::write(&dest, &stale).unwrap();
    let before = fs::metadata(&dest).unwrap();

    assert_reported(&copy_self(&dest), "copied", &dest);
    assert_ne!(fs::metadata(&dest).unwrap().ino(), before.ino());
    assert_installed(&dest);
}

#[test]
fn sixteen_concurrent_runs_onto_one_dest_all_succeed_and_dest_is_always_complete() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(BINARY_NAME);
    let old = b"an older supervisor\n".to_vec();
    fs::write(&dest, &old).unwrap();

    // Read DEST over and over while the copies race: every read must see the
    // old file or the complete new one, never a partial binary.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        let dest = dest.clone();
        let old = old.clone();
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !done.load(Ordering::SeqCst) {
                let bytes = fs::read(&dest).unwrap();
                assert!(
                    bytes == old || bytes == source_bytes(),
                    "DEST held {} bytes that are neither the old file nor the binary",
                    bytes.len()
                );
                reads += 1;
            }
            reads
        })
    };

    let runs: Vec<_> = (0..16)
        .map(|_| {
            let dest = dest.clone();
            std::thread::spawn(move || {
                sandbox(&["copy-self"])
                    .arg(&dest)
                    .output_with_deadline()
                    .unwrap()
            })
        })
        .collect();
    let outputs: Vec<Output> = runs.into_iter().map(|run| run.join().unwrap()).collect();
    done.store(true, Ordering::SeqCst);
    let reads = watcher.join().unwrap();
    assert!(reads > 0);

    let mut copied = 0;
    for output in &outputs {
        let (stdout, stderr) = texts(output);
        assert!(output.status.success(), "a concurrent run failed: {stderr}");
        let line = stdout.trim_end();
        assert!(line.ends_with(&source_sha256()), "{line}");
        if line.starts_with("copied ") {
            copied += 1;
        } else {
            assert!(line.starts_with("unchanged "), "{line}");
        }
    }
    assert!(copied >= 1, "the old file was replaced by at least one run");
    assert_installed(&dest);
    assert_eq!(
        entries(dir.path()),
        [BINARY_NAME],
        "no temporary file is left"
    );
}

#[test]
fn a_symlink_dest_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious");
    fs::write(&target, "do not overwrite\n").unwrap();
    let link = dir.path().join(BINARY_NAME);
    symlink(&target, &link).unwrap();

    let output = copy_self(&link);
    assert_failed(&output, &[&link.display().to_string(), "symbolic link"]);
    assert_eq!(fs::read_to_string(&target).unwrap(), "do not overwrite\n");
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert_eq!(entries(dir.path()), [BINARY_NAME, "precious"]);
}

#[test]
fn a_dangling_symlink_dest_is_refused_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    let link = dir.path().join("supervisor");
    symlink(&target, &link).unwrap();

    let output = copy_self(&link);
    assert_failed(&output, &[&link.display().to_string(), "symbolic link"]);
    assert!(!target.exists(), "the symlink was followed");
}

#[test]
fn a_symlink_inside_a_directory_dest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious");
    fs::write(&target, "do not overwrite\n").unwrap();
    let bin_dir = dir.path().join("bin");
    fs::create_dir(&bin_dir).unwrap();
    let link = bin_dir.join(BINARY_NAME);
    symlink(&target, &link).unwrap();

    let output = copy_self(&bin_dir);
    assert_failed(&output, &[&link.display().to_string(), "symbolic link"]);
    assert_eq!(fs::read_to_string(&target).unwrap(), "do not overwrite\n");
}

#[test]
fn a_fifo_dest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(BINARY_NAME);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();

    let output = copy_self(&fifo);
    assert_failed(&output, &[&fifo.display().to_string(), "it is a FIFO"]);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_directory_in_place_of_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join(BINARY_NAME);
    fs::create_dir(&inner).unwrap();

    let output = copy_self(dir.path());
    assert_failed(
        &output,
        &[&inner.display().to_string(), "it is a directory"],
    );
    assert!(entries(&inner).is_empty());
}

#[test]
fn a_read_only_file_system_leaves_dest_as_it_was() {
    if !require_root("a_read_only_file_system_leaves_dest_as_it_was") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = Tmpfs::mount(&dir.path().join("ro"), "4m");
    let dest = mount.path().join(BINARY_NAME);
    fs::write(&dest, "old\n").unwrap();
    mount.remount_read_only();

    let output = copy_self(&dest);
    assert_failed(
        &output,
        &[&dest.display().to_string(), "Read-only file system"],
    );
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(entries(mount.path()), [BINARY_NAME]);
}

#[test]
fn a_full_disk_midway_leaves_dest_as_it_was_and_no_temporary_file() {
    if !require_root("a_full_disk_midway_leaves_dest_as_it_was_and_no_temporary_file") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Far smaller than the binary, so the copy fails part of the way in.
    let mount = Tmpfs::mount(&dir.path().join("small"), "512k");
    assert!(source_bytes().len() > 512 * 1024);
    let dest = mount.path().join(BINARY_NAME);
    fs::write(&dest, "old\n").unwrap();

    let output = copy_self(&dest);
    assert_failed(
        &output,
        &[&dest.display().to_string(), "No space left on device"],
    );
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(entries(mount.path()), [BINARY_NAME]);
}

#[test]
fn a_file_size_limit_midway_leaves_dest_as_it_was_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(BINARY_NAME);
    fs::write(&dest, "old\n").unwrap();
    const LIMIT: u64 = 256 * 1024;
    assert!(source_bytes().len() as u64 > LIMIT);

    // SIGXFSZ is left at its default action (kill): copy-self itself must
    // keep it from killing the process, so it can clean up.
    let mut command = sandbox(&["copy-self"]);
    command.arg(&dest);
    // SAFETY: setrlimit is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            setrlimit(Resource::RLIMIT_FSIZE, LIMIT, LIMIT)?;
            Ok(())
        });
    }
    let output = command.output_with_deadline().unwrap();
    assert_failed(&output, &[&dest.display().to_string(), "File too large"]);
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(entries(dir.path()), [BINARY_NAME]);
}

#[test]
fn permission_denied_leaves_dest_as_it_was() {
    if !require_root("permission_denied_leaves_dest_as_it_was") {
        return;
    }
    // A copy of the binary that an unprivileged user may run.
    let tools = open_tempdir();
    let runnable = tools.path().join(BINARY_NAME);
    fs::copy(bin(), &runnable).unwrap();
    fs::set_permissions(&runnable, fs::Permissions::from_mode(0o755)).unwrap();

    let dir = open_tempdir();
    let dest = dir.path().join("supervisor");
    fs::write(&dest, "old\n").unwrap();
    let output = Command::new(&runnable)
        .arg("copy-self")
        .arg(&dest)
        .uid(65534)
        .gid(65534)
        .output_with_deadline()
        .unwrap();
    assert_failed(
        &output,
        &[&dir.path().display().to_string(), "Permission denied"],
    );
    assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(entries(dir.path()), ["supervisor"]);
}

#[test]
fn the_copy_runs_and_reports_the_sha256_of_version_json() {
    let dir = tempfile::tempdir().unwrap();
    let dest: PathBuf = dir.path().join(BINARY_NAME);
    let output = copy_self(&dest);
    assert_reported(&output, "copied", &dest);
    let reported = texts(&output)
        .0
        .trim_end()
        .rsplit_once("sha256 ")
        .map(|(_, sha)| sha.to_owned())
        .unwrap();

    let version = |binary: &Path| -> VersionReport {
        let output = Command::new(binary)
            .args(["version", "--json"])
            .output_with_deadline()
            .unwrap();
        assert!(output.status.success(), "{}", texts(&output).1);
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let original = version(bin());
    let copy = version(&dest);
    assert_eq!(original.sha256, reported);
    assert_eq!(copy.sha256, reported);
    assert_eq!(reported, source_sha256());
}

// --- Races, leftovers and symlinks, as PID 1 and not -------------------------

use common::Mode;
use openshell_sandbox::copy_self::{Resolution, TEMP_PREFIX, install_with};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// `copy-self DEST` by `binary`, in `mode`, with a deadline.
fn copy_self_in(mode: Mode, binary: &Path, dest: &Path) -> Output {
    let dest = dest.to_str().unwrap();
    common::output_within(mode.command(binary, &["copy-self", dest], None), DEADLINE)
}

fn no_etxtbsy_or_enoent_while_dest_is_executed_during_100_alternating_copies(mode: Mode) {
    // Two different binaries take turns installing themselves at DEST while
    // another thread executes DEST over and over, as an agent container
    // starting beside a restarted init container would.
    let binaries = [
        bin().to_path_buf(),
        openshell_testsupport::static_supervisor_binary().to_path_buf(),
    ];
    assert_ne!(
        fs::read(&binaries[0]).unwrap(),
        fs::read(&binaries[1]).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(BINARY_NAME);

    let done = Arc::new(AtomicBool::new(false));
    let executor = {
        let done = Arc::clone(&done);
        let dest = dest.clone();
        std::thread::spawn(move || {
            let (mut runs, mut busy, mut missing) = (0u32, 0u32, 0u32);
            let mut installed = false;
            while !done.load(Ordering::SeqCst) {
                match Command::new(&dest)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    Ok(mut child) => {
                        installed = true;
                        let status = common::wait_with_timeout(&mut child, DEADLINE);
                        assert!(status.success(), "{} --version: {status}", dest.display());
                        runs += 1;
                    }
                    Err(err) if err.raw_os_error() == Some(nix::libc::ETXTBSY) => busy += 1,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        if installed {
                            missing += 1;
                        }
                    }
                    Err(err) => panic!("executing {}: {err}", dest.display()),
                }
            }
            (runs, busy, missing)
        })
    };
    for run in 0..100 {
        let output = copy_self_in(mode, &binaries[run % 2], &dest);
        assert!(output.status.success(), "run {run}: {}", texts(&output).1);
        assert!(
            texts(&output).0.starts_with("copied "),
            "run {run}: {}",
            texts(&output).0
        );
    }
    done.store(true, Ordering::SeqCst);
    let (runs, busy, missing) = executor.join().unwrap();
    assert!(runs > 0, "DEST was never executed");
    assert_eq!(
        (busy, missing),
        (0, 0),
        "ETXTBSY, ENOENT after the first success ({runs} runs)"
    );
    assert_eq!(fs::read(&dest).unwrap(), fs::read(&binaries[1]).unwrap());
    assert_eq!(entries(dir.path()), [BINARY_NAME]);
}

fn runs_killed_at_random_points_leave_one_file_after_a_clean_run(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(BINARY_NAME);
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut leftovers = 0;
    for _ in 0..40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // The debug binary copies in a few milliseconds to tens of them.
        let delay = Duration::from_micros(seed % 30_000);
        let mut command = mode.command(bin(), &["copy-self", dest.to_str().unwrap()], None);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = common::Running(command.spawn().unwrap());
        std::thread::sleep(delay);
        // SIGKILL to the copy itself (under unshare, its PID 1).
        let target = mode.supervisor_pid_if_running(child.pid());
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
        let _ = common::wait_with_timeout(&mut child.0, DEADLINE);
        leftovers += entries(dir.path())
            .iter()
            .filter(|name| name.starts_with(TEMP_PREFIX))
            .count();
    }
    // The kills did hit mid-copy at least once, or this proved nothing.
    assert!(leftovers > 0, "no run was killed while copying");
    let output = copy_self_in(mode, bin(), &dest);
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(entries(dir.path()), [BINARY_NAME]);
    assert_installed(&dest);
}

fn stale_temporaries_are_swept_so_a_small_volume_does_not_fill_up(mode: Mode) {
    if !require_root("stale_temporaries_are_swept_so_a_small_volume_does_not_fill_up") {
        return;
    }
    let size = source_bytes().len();
    let dir = tempfile::tempdir().unwrap();
    // Room for two binaries; five leftovers of 40% each fill it.
    let mount = Tmpfs::mount(
        &dir.path().join("small"),
        &format!("{}k", size * 2 / 1024 + 64),
    );
    for run in 0..5 {
        let stale = mount
            .path()
            .join(format!("{TEMP_PREFIX}{}.{run:016x}", 90_000 + run));
        if fs::write(&stale, vec![0u8; size * 2 / 5]).is_err() {
            break;
        }
    }
    let dest = mount.path().join(BINARY_NAME);
    let output = copy_self_in(mode, bin(), &dest);
    assert!(output.status.success(), "{}", texts(&output).1);
    assert_eq!(entries(mount.path()), [BINARY_NAME]);
    assert_installed(&dest);
}

fn a_symlink_anywhere_on_the_path_is_refused(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    symlink(&real, &link).unwrap();
    let nested = dir.path().join("a");
    fs::create_dir(&nested).unwrap();
    symlink(&real, nested.join("b")).unwrap();
    for dest in [
        link.join(BINARY_NAME),
        PathBuf::from(format!("{}/", link.display())),
        nested.join("b").join("c").join(BINARY_NAME),
    ] {
        let output = copy_self_in(mode, bin(), &dest);
        assert_failed(&output, &["symbolic link"]);
        assert!(entries(&real).is_empty(), "{} was followed", dest.display());
    }
    let output = copy_self_in(mode, bin(), &link.join(BINARY_NAME));
    assert_failed(
        &output,
        &[&link.display().to_string(), "its parent", "symbolic link"],
    );
}

both_modes!(
    no_etxtbsy_or_enoent_while_dest_is_executed_during_100_alternating_copies,
    runs_killed_at_random_points_leave_one_file_after_a_clean_run,
    stale_temporaries_are_swept_so_a_small_volume_does_not_fill_up,
    a_symlink_anywhere_on_the_path_is_refused,
);

#[test]
fn without_openat2_the_component_walk_refuses_symlinks_too() {
    // The fallback for kernels before 5.6, chosen explicitly.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    fs::create_dir(&real).unwrap();
    let link = dir.path().join("link");
    symlink(&real, &link).unwrap();
    for dest in [link.join(BINARY_NAME), link.join("x/y").join(BINARY_NAME)] {
        let err = install_with(bin(), &dest, Resolution::Walk).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("its parent") && text.contains("symbolic link"),
            "{text}"
        );
        assert!(text.contains(&link.display().to_string()), "{text}");
    }
    assert!(entries(&real).is_empty());
    // And it installs, creating what is missing.
    let dest = dir.path().join("new/sub").join(BINARY_NAME);
    let report = install_with(bin(), &dest, Resolution::Walk).unwrap();
    assert_eq!(report.destination, dest);
    assert_installed(&dest);
}

#[test]
fn a_regular_file_in_place_of_a_parent_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, "not a directory").unwrap();
    let output = copy_self(&file.join("sub").join(BINARY_NAME));
    assert_failed(&output, &[&file.display().to_string(), "not a directory"]);
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a directory");
}
