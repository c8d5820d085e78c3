//! Files the tools read from places they do not control (an image's
//! `/etc/passwd`, a layout's blobs, a config or template path): opened
//! without blocking, refused unless a regular file, and read up to a limit.
//!
//! A FIFO would block `open` until a writer came and `/dev/zero` would never
//! end, so the file is opened with `O_NONBLOCK` (which returns at once for a
//! FIFO and changes nothing for a regular file) and `fstat` on what was
//! opened decides. One home for this, since the supervisor, the driver and
//! the transports all read such files.

use std::fs::{File, FileType, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum RegularFileError {
    /// Opening, inspecting or reading failed (also: no such file).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Not a regular file (after symlinks).
    #[error("it is {found}, not a regular file")]
    NotRegular {
        /// What it is, like `a FIFO (named pipe)` (see [`file_type_name`]).
        found: &'static str,
    },
    /// Larger than the limit, by its size or by what was read of it.
    #[error("it is {size} bytes, over the limit of {limit} bytes for this file")]
    TooLarge {
        /// The file's size, or what was read of it when it grew.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// Names what a file is, for a refusal: `a FIFO (named pipe)`, `a folder`,
/// `a character device`, ...
pub fn file_type_name(file_type: FileType) -> &'static str {
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

/// Opens `path` (following symlinks) for reading without blocking and
/// returns it with its metadata, or refuses it unless it is a regular file.
/// An `open` that fails with ENXIO (a socket) is refused the same way.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), RegularFileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|err| {
            if err.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) {
                RegularFileError::NotRegular {
                    found: "a socket or a device that is not there",
                }
            } else {
                RegularFileError::Io(err)
            }
        })?;
    let metadata = file.metadata()?;
    if !metadata.file_type().is_file() {
        return Err(RegularFileError::NotRegular {
            found: file_type_name(metadata.file_type()),
        });
    }
    Ok((file, metadata))
}

/// Reads the regular file at `path` whole, at most `limit` bytes: its size
/// is checked before reading, and a file that grows past the limit while
/// read is refused too.
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, RegularFileError> {
    let (file, metadata) = open_regular(path)?;
    if metadata.len() > limit {
        return Err(RegularFileError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(RegularFileError::TooLarge { size, limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_and_named() {
        let dir = std::env::temp_dir().join(format!("contract-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let _ = std::fs::remove_file(&fifo);
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = read_regular(&fifo, 10).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            "it is a FIFO (named pipe), not a regular file"
        );
        let err = read_regular(&dir, 10).unwrap_err();
        assert_eq!(err.to_string(), "it is a folder, not a regular file");
        let file = dir.join("file");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular(&file, 5).unwrap(), b"12345");
        assert_eq!(
            read_regular(&file, 4).unwrap_err().to_string(),
            "it is 5 bytes, over the limit of 4 bytes for this file"
        );
        let err = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "it is a character device, not a regular file"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
