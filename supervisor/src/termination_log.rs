//! The termination message Kubernetes shows in `kubectl describe pod`.
//!
//! When the workload cannot even start, the pod otherwise shows only a bare
//! exit code; the kubelet reads this file (`terminationMessagePath`, by
//! default [`TERMINATION_LOG_PATH`]) when the container ends.
//!
//! PID 1 must not hang or be fooled here: the file is opened with
//! `O_NONBLOCK` (a FIFO with no reader would block `open` forever),
//! `O_NOFOLLOW` (a symlink planted by the image could point anywhere) and
//! `O_NOCTTY`, and anything but a regular file is refused before a byte is
//! written. The message is cut to what Kubernetes keeps.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::copy_self::kind_name;
pub use openshell_contract::{TERMINATION_LOG_ENV, TERMINATION_LOG_PATH};

/// Kubernetes keeps at most this many bytes of a termination message.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Why the termination message was not written.
#[derive(Debug, thiserror::Error)]
pub enum TerminationLogError {
    /// The path is a symbolic link.
    #[error("refusing {}: it is a symbolic link (expected a regular file)", .0.display())]
    Symlink(PathBuf),
    /// The path is not a regular file.
    #[error("refusing {}: it is a {kind} (expected a regular file)", .path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Opening or writing failed.
    #[error("cannot write {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Writes `reason` as the termination message at `path`, if that file
/// exists.
///
/// The file is never created: the kubelet provides it, and a supervisor
/// running outside Kubernetes must not litter `/dev`. Returns whether the
/// message was written; `Ok(false)` when the file does not exist.
pub fn record(path: &Path, reason: &str) -> Result<bool, TerminationLogError> {
    let io_error = |source: io::Error| TerminationLogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let fd = match rustix::fs::openat(
        CWD,
        path,
        OFlags::WRONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(false),
        Err(Errno::LOOP) => return Err(TerminationLogError::Symlink(path.to_path_buf())),
        // A FIFO that nobody reads refuses a non-blocking writer.
        Err(Errno::NXIO) => {
            return Err(TerminationLogError::NotRegular {
                path: path.to_path_buf(),
                kind: "FIFO",
            });
        }
        Err(err) => return Err(io_error(err.into())),
    };
    let file_type = rustix::fs::fstat(&fd)
        .map(|stat| FileType::from_raw_mode(stat.st_mode))
        .map_err(|err| io_error(err.into()))?;
    if file_type != FileType::RegularFile {
        return Err(TerminationLogError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_name(file_type),
        });
    }
    rustix::fs::ftruncate(&fd, 0).map_err(|err| io_error(err.into()))?;
    let mut end = reason.len().min(MAX_MESSAGE_BYTES - 1);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut message = Vec::with_capacity(end + 1);
    message.extend_from_slice(&reason.as_bytes()[..end]);
    message.push(b'\n');
    File::from(fd).write_all(&message).map_err(io_error)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_reason_into_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        std::fs::write(&path, "an older, longer message\n").unwrap();
        assert!(record(&path, "cmd: command not found").unwrap());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "cmd: command not found\n"
        );
    }

    #[test]
    fn never_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        assert!(!record(&path, "reason").unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn long_reasons_are_cut_to_what_kubernetes_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        std::fs::write(&path, "").unwrap();
        record(&path, &"é".repeat(5000)).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.len() <= MAX_MESSAGE_BYTES, "{}", written.len());
        assert!(written.ends_with("é\n"));
    }

    #[test]
    fn a_fifo_without_a_reader_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("termination-log");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = record(&path, "reason").unwrap_err();
        assert!(err.to_string().contains("it is a FIFO"), "{err}");
    }

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep\n").unwrap();
        let path = dir.path().join("termination-log");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = record(&path, "reason").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    }

    #[test]
    fn a_character_device_is_refused() {
        let err = record(Path::new("/dev/null"), "reason").unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
    }
}
