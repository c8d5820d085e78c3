//! The release binary CI ships (musl target, release profile) is fully
//! static, and says so itself.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

use common::OutputWithDeadline;
use openshell_contract::elf::{self, ElfKind};
use openshell_contract::version::{Libc, VersionReport};
use openshell_contract::{
    BINARY_NAME, DEFAULT_STATIC_TARGET, IMAGE_BINARY_MODE, IMAGE_BINARY_PATH,
    INIT_CONTAINER_COMMAND, INSTALLED_BINARY_PATH,
};
use openshell_testsupport::static_supervisor_binary;
use openshell_testsupport::tools::require_root;
use sha2::{Digest, Sha256};

#[test]
fn the_release_binary_has_no_interpreter_and_needs_no_library() {
    let binary = static_supervisor_binary();
    let bytes = fs::read(binary).unwrap();
    // Parsed by the object crate, through the contract's static-ELF rules.
    let info = elf::inspect(&bytes).unwrap();
    assert_eq!(
        info.interpreter,
        None,
        "{} has a PT_INTERP",
        binary.display()
    );
    assert!(
        info.needed.is_empty(),
        "{} has DT_NEEDED entries: {:?}",
        binary.display(),
        info.needed
    );
    if info.kind == ElfKind::PositionIndependent {
        assert!(info.pie_flag, "ET_DYN without DF_1_PIE: a shared library");
    }
    assert_eq!(info.static_violations(), []);
    assert_eq!(info.oci_architecture(), Some("amd64"));
    eprintln!(
        "{}: {} bytes ({:.2} MiB), static",
        binary.display(),
        bytes.len(),
        bytes.len() as f64 / (1024.0 * 1024.0)
    );
}

#[test]
fn the_release_binary_reports_itself_static_on_musl() {
    let binary = static_supervisor_binary();
    let output = Command::new(binary)
        .args(["version", "--json"])
        .output_with_deadline()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: VersionReport = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.name, BINARY_NAME);
    assert_eq!(report.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(report.target, DEFAULT_STATIC_TARGET);
    assert_eq!(report.libc, Libc::Musl);
    assert!(report.is_static);
    let bytes = fs::read(binary).unwrap();
    assert_eq!(report.sha256, hex::encode(Sha256::digest(&bytes)));
}

#[test]
fn the_release_binary_prints_its_version() {
    let output = Command::new(static_supervisor_binary())
        .arg("--version")
        .output_with_deadline()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{BINARY_NAME} {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn copy_self_installs_from_a_root_holding_nothing_but_the_binary() {
    if !require_root("copy_self_installs_from_a_root_holding_nothing_but_the_binary") {
        return;
    }
    // The init container of the init-container method: a FROM-scratch root
    // with one file, no shell, no cp, here not even /proc.
    let binary = fs::read(static_supervisor_binary()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let in_root = |path: &str| root.path().join(path.trim_start_matches('/'));
    fs::write(in_root(IMAGE_BINARY_PATH), &binary).unwrap();
    fs::set_permissions(
        in_root(IMAGE_BINARY_PATH),
        fs::Permissions::from_mode(IMAGE_BINARY_MODE),
    )
    .unwrap();

    let jail = root.path().to_path_buf();
    let mut command = Command::new(INIT_CONTAINER_COMMAND[0]);
    command.args(&INIT_CONTAINER_COMMAND[1..]);
    // SAFETY: chroot and chdir are async-signal-safe; the path was built
    // before the fork (nix converts it on the stack).
    unsafe {
        command.pre_exec(move || {
            nix::unistd::chroot(&jail)?;
            nix::unistd::chdir("/")?;
            Ok(())
        });
    }
    let output = command.output_with_deadline().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "copied {INSTALLED_BINARY_PATH}: {} bytes, sha256 {}\n",
            binary.len(),
            hex::encode(Sha256::digest(&binary))
        )
    );
    let installed = in_root(INSTALLED_BINARY_PATH);
    assert!(fs::read(&installed).unwrap() == binary);
    assert_eq!(
        fs::metadata(&installed).unwrap().permissions().mode() & 0o7777,
        0o755
    );
}
