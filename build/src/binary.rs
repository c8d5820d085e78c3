//! The supervisor binary to package: read, checked, hashed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use openshell_contract::elf::{self, ElfError};
use serde::{Deserialize, Serialize};

/// What a binary is known by once checked; cached between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryFacts {
    /// sha256 of the bytes, lowercase hex without prefix.
    pub sha256: String,
    /// OCI architecture from the ELF header (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Length in bytes.
    pub size: u64,
}

/// Identifies one version of a file without reading it, as git's index does:
/// a rewrite changes the inode or the times, and ctime cannot be set back by
/// a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatKey {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Length in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i128,
}

impl StatKey {
    /// The key of the file at `path` (following symlinks).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self::from_metadata(&meta))
    }

    fn from_metadata(meta: &std::fs::Metadata) -> Self {
        let nanos =
            |seconds: i64, nanos: i64| i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// A binary that cannot be packaged.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The file could not be read.
    #[error("cannot read the supervisor binary {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not an ELF file, or a malformed one.
    #[error("{path} is not a usable ELF executable: {source}")]
    NotElf {
        /// The file.
        path: PathBuf,
        /// What the ELF reader said.
        source: ElfError,
    },
    /// Dynamically linked, truncated, or not an executable.
    #[error("{path} is not a complete static executable: {violations}")]
    NotStatic {
        /// The file.
        path: PathBuf,
        /// Every rule it breaks, joined.
        violations: String,
    },
    /// An ELF machine that no OCI platform names.
    #[error("{path}: ELF machine {machine} ({class_bits}-bit) has no OCI architecture name")]
    UnknownArchitecture {
        /// The file.
        path: PathBuf,
        /// `e_machine`.
        machine: u16,
        /// 32 or 64.
        class_bits: u8,
    },
    /// The ELF machine does not match the platform it was given for.
    #[error(
        "{path} is an ELF for {found} (e_machine {machine}) but was given for platform {platform}: expected an ELF for {expected}"
    )]
    WrongPlatform {
        /// The file.
        path: PathBuf,
        /// `e_machine`.
        machine: u16,
        /// OCI architecture of the ELF.
        found: String,
        /// The platform given, `os/arch`.
        platform: String,
        /// The architecture that platform needs.
        expected: String,
    },
}

/// Zeroed bytes kept in front of a binary read into memory: room for the
/// layer's tar header, so the tar is built around the binary in place
/// instead of copying tens of MiB.
pub const LEADING_ROOM: usize = 512;

/// A supervisor binary read into memory and checked, not hashed yet (the
/// hash can then run alongside compression).
#[derive(Debug, Clone)]
pub struct SupervisorBinary {
    /// Where it was read from.
    pub path: PathBuf,
    /// OCI architecture from the ELF header.
    pub architecture: String,
    /// Its stat key at the time it was read.
    pub stat_key: StatKey,
    /// [`LEADING_ROOM`] zero bytes, then the binary.
    buffer: Vec<u8>,
}

impl SupervisorBinary {
    /// Reads `path` and checks that it is a complete static ELF executable.
    pub fn read(path: &Path) -> Result<Self, BinaryError> {
        let read_error = |source| BinaryError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if !meta.is_file() {
            return Err(read_error(std::io::Error::other(
                "not a regular file (expected the supervisor executable)",
            )));
        }
        let stat_key = StatKey::from_metadata(&meta);
        // Room for the tar header in front, and for its padding and end
        // blocks behind.
        let size = usize::try_from(meta.size()).unwrap_or(0);
        let mut buffer = Vec::with_capacity(LEADING_ROOM + size + 2 * 1024);
        buffer.resize(LEADING_ROOM, 0);
        std::io::Read::read_to_end(&mut &file, &mut buffer).map_err(read_error)?;
        let architecture = check_elf(path, &buffer[LEADING_ROOM..])?;
        Ok(Self {
            path: path.to_path_buf(),
            architecture,
            stat_key,
            buffer,
        })
    }

    /// The binary's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buffer[LEADING_ROOM..]
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.bytes().len() as u64
    }

    /// Its facts, given its sha256.
    pub fn facts(&self, sha256: String) -> BinaryFacts {
        BinaryFacts {
            sha256,
            architecture: self.architecture.clone(),
            size: self.size(),
        }
    }

    /// The buffer: [`LEADING_ROOM`] zero bytes, then the binary.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }
}

/// Checks an executable's bytes and returns its facts.
pub fn check(path: &Path, bytes: &[u8]) -> Result<BinaryFacts, BinaryError> {
    let architecture = check_elf(path, bytes)?;
    Ok(BinaryFacts {
        sha256: openshell_contract::digest::sha256_hex(bytes),
        architecture,
        size: bytes.len() as u64,
    })
}

/// Checks that `bytes` are a complete static ELF executable; returns its
/// OCI architecture.
pub fn check_elf(path: &Path, bytes: &[u8]) -> Result<String, BinaryError> {
    let info = elf::inspect(bytes).map_err(|source| BinaryError::NotElf {
        path: path.to_path_buf(),
        source,
    })?;
    let violations = info.static_violations();
    if !violations.is_empty() {
        return Err(BinaryError::NotStatic {
            path: path.to_path_buf(),
            violations: violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    info.oci_architecture()
        .map(str::to_string)
        .ok_or(BinaryError::UnknownArchitecture {
            path: path.to_path_buf(),
            machine: info.machine,
            class_bits: info.class_bits,
        })
}

/// Fails unless `architecture` (read from the ELF) is that of `platform`.
pub fn check_platform(
    path: &Path,
    architecture: &str,
    platform: &openshell_contract::platform::Platform,
) -> Result<(), BinaryError> {
    if architecture == platform.architecture {
        return Ok(());
    }
    Err(BinaryError::WrongPlatform {
        path: path.to_path_buf(),
        machine: elf::machine_for_oci_architecture(architecture).unwrap_or(0),
        found: architecture.to_string(),
        platform: platform.to_string(),
        expected: platform.architecture.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_script() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
        let err = SupervisorBinary::read(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("not an ELF file"), "{err}");
    }

    #[test]
    fn refuses_a_dynamic_executable() {
        // The test runner itself is linked against glibc.
        let exe = std::env::current_exe().unwrap();
        if cfg!(target_env = "gnu") {
            let err = SupervisorBinary::read(&exe).unwrap_err().to_string();
            assert!(err.contains("not a complete static executable"), "{err}");
            assert!(err.contains("PT_INTERP"), "{err}");
        }
    }

    #[test]
    fn stat_key_changes_when_the_file_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, "one").unwrap();
        let first = StatKey::of(&path).unwrap();
        assert_eq!(first, StatKey::of(&path).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&path, "two").unwrap();
        assert_ne!(first, StatKey::of(&path).unwrap());
    }
}
