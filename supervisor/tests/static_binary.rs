//! The release binary CI ships (musl target, release profile) is fully
//! static, and says so itself.

// Helpers here panic on failure, as the tests that call them do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::process::Command;

use openshell_contract::elf::{self, ElfKind};
use openshell_contract::version::{Libc, VersionReport};
use openshell_contract::{BINARY_NAME, DEFAULT_STATIC_TARGET};
use openshell_testsupport::static_supervisor_binary;
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
        .output()
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
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{BINARY_NAME} {}\n", env!("CARGO_PKG_VERSION"))
    );
}
