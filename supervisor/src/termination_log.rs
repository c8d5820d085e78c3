//! The termination message Kubernetes shows in `kubectl describe pod`.
//!
//! When the workload cannot even start, the pod otherwise shows only a bare
//! exit code; the kubelet reads this file (`terminationMessagePath`, by
//! default [`TERMINATION_LOG_PATH`]) when the container ends.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

pub use openshell_contract::{TERMINATION_LOG_ENV, TERMINATION_LOG_PATH};

/// Kubernetes keeps at most this many bytes of a termination message.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Writes `reason` as the termination message at `path`, if that file
/// exists and is writable.
///
/// The file is never created: the kubelet provides it, and a supervisor
/// running outside Kubernetes must not litter `/dev`. Returns whether the
/// message was written; `Ok(false)` when the file does not exist.
pub fn record(path: &Path, reason: &str) -> io::Result<bool> {
    let mut file = match OpenOptions::new().write(true).truncate(true).open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    let mut end = reason.len().min(MAX_MESSAGE_BYTES - 1);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    file.write_all(format!("{}\n", &reason[..end]).as_bytes())?;
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
}
