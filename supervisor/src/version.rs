//! `--version` and `version [--json]`: which build this is.
//!
//! The report is [`VersionReport`] from the contract crate, so `build-image
//! verify` parses exactly what is printed here.

use std::io;

use openshell_contract::BINARY_NAME;
use openshell_contract::digest::sha256_hex;
use openshell_contract::elf::{self, ElfError};
use openshell_contract::version::{Libc, VersionReport};

use std::path::PathBuf;

use crate::copy_self::running_executable;

/// Package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Target triple the binary was built for (set by the build script).
pub const TARGET: &str = env!("OPENSHELL_BUILD_TARGET");

/// Git revision the binary was built from, when the build knew it.
pub const GIT_REVISION: Option<&str> = option_env!("OPENSHELL_BUILD_GIT_REVISION");

/// C library of the target this binary was compiled for.
pub const fn libc() -> Libc {
    if cfg!(target_env = "musl") {
        Libc::Musl
    } else if cfg!(target_env = "gnu") {
        Libc::Gnu
    } else {
        Libc::Other
    }
}

/// Why the running executable could not be described.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The running executable could not be read.
    #[error("cannot read the running executable {}", .path.display())]
    ReadSelf {
        /// Where it was read from.
        path: PathBuf,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not an ELF file the checks understand.
    #[error("cannot parse the executable as ELF")]
    Elf(#[source] ElfError),
}

/// The report for the running executable: static-ness and sha256 are read
/// from its own bytes, so they describe the file actually running, not what
/// the build intended.
pub fn report() -> Result<VersionReport, VersionError> {
    let path = running_executable();
    let bytes = std::fs::read(&path).map_err(|source| VersionError::ReadSelf { path, source })?;
    report_for(&bytes)
}

/// The report for an executable of this build whose bytes are `bytes`.
pub fn report_for(bytes: &[u8]) -> Result<VersionReport, VersionError> {
    let info = elf::inspect(bytes).map_err(VersionError::Elf)?;
    Ok(VersionReport {
        name: BINARY_NAME.to_owned(),
        version: VERSION.to_owned(),
        git_revision: GIT_REVISION.map(str::to_owned),
        target: TARGET.to_owned(),
        libc: libc(),
        is_static: info.is_static(),
        sha256: sha256_hex(bytes),
    })
}

/// The human-readable form of `report`, several lines.
pub fn describe(report: &VersionReport) -> String {
    let libc = match report.libc {
        Libc::Musl => "musl",
        Libc::Gnu => "glibc",
        Libc::Other => "other libc",
    };
    let linkage = if report.is_static {
        "static"
    } else {
        "dynamically linked"
    };
    format!(
        "{} {}\nrevision: {}\ntarget: {} ({libc}, {linkage})\nsha256: {}",
        report.name,
        report.version,
        report.git_revision.as_deref().unwrap_or("unknown"),
        report.target,
        report.sha256
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_report_describes_the_given_bytes() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let report = report_for(&exe).unwrap();
        assert_eq!(report.name, BINARY_NAME);
        assert_eq!(report.target, TARGET);
        assert_eq!(report.sha256, hex::encode(Sha256::digest(&exe)));
        // The unit-test executable of a gnu host build is dynamic.
        if cfg!(all(target_env = "gnu", not(target_feature = "crt-static"))) {
            assert!(!report.is_static);
        }
    }

    #[test]
    fn bytes_that_are_not_elf_are_an_error() {
        let err = report_for(b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(err, VersionError::Elf(ElfError::NotElf)), "{err}");
    }
}
