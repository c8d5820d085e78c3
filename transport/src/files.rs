//! Opening the files of a layout or an archive: without blocking, and
//! regular files only.
//!
//! A blob or `index.json` that is a FIFO would block `open` until a writer
//! came, and one that is `/dev/zero` (or a symlink to it) would never end;
//! a socket cannot be opened at all. The file is opened with `O_NONBLOCK`,
//! which returns at once for a FIFO, and refused unless `fstat` says it is
//! a regular file. On a regular file `O_NONBLOCK` has no effect, so reads
//! of the file opened this way are ordinary blocking reads.

use std::fs::File;

use std::path::Path;

use crate::TransportError;

/// Opens `path` for reading, refusing at once anything but a regular file
/// (after symlinks), with an error that names the file and what it is.
pub fn open_regular(path: &Path) -> Result<File, TransportError> {
    use openshell_contract::files::RegularFileError;
    match openshell_contract::files::open_regular(path) {
        Ok((file, _)) => Ok(file),
        Err(RegularFileError::NotRegular { found }) => Err(not_regular(path, found)),
        Err(RegularFileError::Io(err)) => Err(TransportError::io("read", path)(err)),
        // open_regular reads nothing, so has no size to refuse.
        Err(err @ RegularFileError::TooLarge { .. }) => Err(TransportError::io("read", path)(
            std::io::Error::other(err.to_string()),
        )),
    }
}

fn not_regular(path: &Path, what: &str) -> TransportError {
    TransportError::Io {
        what: "read",
        path: path.to_path_buf(),
        source: std::io::Error::other(format!(
            "it is {what}, not a regular file (expected the files of an image to be regular files)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_folders_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = open_regular(&fifo).unwrap_err().to_string();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(err.contains("fifo") && err.contains("a FIFO"), "{err}");
        let err = open_regular(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/dev/zero: it is a character device"), "{err}");
        let err = open_regular(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a folder"), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let mut read = String::new();
        std::io::Read::read_to_string(&mut open_regular(&file).unwrap(), &mut read).unwrap();
        assert_eq!(read, "x");
    }
}
