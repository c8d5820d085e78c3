//! `copy-self DEST`: install the running executable into a shared volume.
//!
//! It runs in an init container that Kubernetes may restart at any moment,
//! possibly while another copy of it runs, on a volume that may be full or
//! read-only. So DEST only ever changes by one `rename(2)` of a complete,
//! flushed, verified file, and every failure leaves DEST exactly as it was and
//! no temporary file behind.

use std::fmt;
use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, Signal};
use openshell_contract::BINARY_NAME;
use sha2::{Digest, Sha256};

/// The running executable, as the kernel sees it: still the right bytes even
/// when the file it was started from has been replaced or removed.
pub const SELF_EXE: &str = "/proc/self/exe";

/// The file to read the running executable from: [`SELF_EXE`], or, where
/// /proc is not mounted (a bare chroot), the path it was started by when that
/// path names a file (`/openshell-sandbox` in the init container).
pub fn running_executable() -> PathBuf {
    if Path::new(SELF_EXE).exists() {
        return PathBuf::from(SELF_EXE);
    }
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .filter(|argv0| argv0.as_os_str().as_bytes().contains(&b'/') && argv0.is_file())
        .unwrap_or_else(|| PathBuf::from(SELF_EXE))
}

/// Mode of the installed binary: the agent container runs it as any user.
pub const INSTALLED_MODE: u32 = 0o755;

/// Read and write in large blocks: syscall overhead then vanishes next to
/// hashing, and the buffer is freed when the copy ends.
const BUFFER_SIZE: usize = 1 << 20;

/// What `copy-self` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyAction {
    /// DEST was written (created or replaced).
    Copied,
    /// DEST already held the same bytes; only its mode was checked.
    Unchanged,
}

/// The result of a successful copy: what `copy-self` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The file that now holds the binary (DEST, or DEST/openshell-sandbox).
    pub destination: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// sha256 of the bytes, lowercase hex.
    pub sha256: String,
    /// Whether DEST was written.
    pub action: CopyAction,
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            CopyAction::Copied => "copied",
            CopyAction::Unchanged => "unchanged",
        };
        write!(
            f,
            "{action} {}: {} bytes, sha256 {}",
            self.destination.display(),
            self.size,
            self.sha256
        )
    }
}

/// Why a copy was refused or failed. Every variant names the path at fault.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// DEST (or DEST/openshell-sandbox) is a symbolic link.
    #[error(
        "refusing {}: it is a symbolic link (expected a regular file, a directory or a new path; copy-self never follows a symlink at the destination)",
        .0.display()
    )]
    DestinationIsSymlink(PathBuf),
    /// DEST (or DEST/openshell-sandbox) exists and is not a regular file.
    #[error(
        "refusing {}: it is a {kind} (expected a regular file, a directory or a new path)",
        .path.display()
    )]
    DestinationNotRegular {
        /// The path at fault.
        path: PathBuf,
        /// What it is instead ("directory", "FIFO", ...).
        kind: &'static str,
    },
    /// DEST could not be inspected.
    #[error("cannot inspect {}", .path.display())]
    InspectDestination {
        /// The path at fault.
        path: PathBuf,
        /// The error from lstat.
        #[source]
        source: io::Error,
    },
    /// A parent directory of DEST could not be created.
    #[error("cannot create the directory {}", .path.display())]
    CreateParent {
        /// The directory.
        path: PathBuf,
        /// The error from mkdir.
        #[source]
        source: io::Error,
    },
    /// The source executable could not be read.
    #[error("cannot read the source executable {}", .path.display())]
    ReadSource {
        /// The source path.
        path: PathBuf,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// The existing DEST could not be read to compare it with the source.
    #[error("cannot read the existing {} to compare it with the source", .path.display())]
    ReadDestination {
        /// DEST.
        path: PathBuf,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// DEST already holds the binary but its mode could not be set to 0755.
    #[error("cannot set mode 0755 on {}", .path.display())]
    FixMode {
        /// DEST.
        path: PathBuf,
        /// The chmod error.
        #[source]
        source: io::Error,
    },
    /// The temporary file next to DEST could not be created.
    #[error(
        "cannot create a temporary file in {} for {dest} ({dest} is unchanged)",
        .dir.display(), dest = .destination.display()
    )]
    CreateTemp {
        /// The directory of DEST.
        dir: PathBuf,
        /// DEST.
        destination: PathBuf,
        /// The error from open.
        #[source]
        source: io::Error,
    },
    /// Writing, flushing or re-reading the temporary file failed.
    #[error(
        "cannot {step} the new copy for {dest} (temporary file {}, removed; {dest} is unchanged)",
        .temp.display(), dest = .destination.display()
    )]
    WriteTemp {
        /// What was being done ("write", "flush", "set the mode of", "re-read").
        step: &'static str,
        /// The temporary file (already removed when this error is seen).
        temp: PathBuf,
        /// DEST.
        destination: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The temporary file read back differs from the source.
    #[error(
        "the new copy {} for {dest} does not match the source: {actual_size} bytes with sha256 {actual}, expected {expected_size} bytes with sha256 {expected} ({dest} is unchanged)",
        .temp.display(), dest = .destination.display()
    )]
    Mismatch {
        /// The temporary file (already removed).
        temp: PathBuf,
        /// DEST.
        destination: PathBuf,
        /// sha256 of the source.
        expected: String,
        /// Size of the source.
        expected_size: u64,
        /// sha256 read back.
        actual: String,
        /// Size read back.
        actual_size: u64,
    },
    /// The finished copy could not be renamed over DEST.
    #[error(
        "cannot rename {} to {dest} ({dest} is unchanged)",
        .temp.display(), dest = .destination.display()
    )]
    Rename {
        /// The temporary file (already removed).
        temp: PathBuf,
        /// DEST.
        destination: PathBuf,
        /// The error from rename.
        #[source]
        source: io::Error,
    },
    /// DEST was replaced but its directory could not be flushed, so the new
    /// name may not survive a crash.
    #[error("{} was replaced, but flushing its directory {} failed", .destination.display(), .dir.display())]
    SyncDirectory {
        /// The directory of DEST.
        dir: PathBuf,
        /// DEST.
        destination: PathBuf,
        /// The error from fsync.
        #[source]
        source: io::Error,
    },
}

/// Installs the running executable at `dest`: [`install`] with
/// [`running_executable`].
///
/// It also blocks `SIGXFSZ` first: under a file-size limit (`RLIMIT_FSIZE`) a
/// write past the limit then fails with `EFBIG`, and the temporary file is
/// removed, instead of the signal killing the process mid-copy and leaving the
/// temporary file behind.
pub fn copy_self(dest: &Path) -> Result<CopyReport, CopyError> {
    let mut file_size_signal = SigSet::empty();
    file_size_signal.add(Signal::SIGXFSZ);
    // Blocking cannot fail for a valid signal; were it to, the copy is still
    // correct, and only the RLIMIT_FSIZE clean-up is lost.
    let _ = file_size_signal.thread_block();
    install(&running_executable(), dest)
}

/// Installs a copy of `source` at `dest`, atomically.
///
/// `dest` is a file path, or an existing directory (then
/// `dest/openshell-sandbox`); a path ending in `/` is a directory too. Missing
/// parents are created. A symlink or a non-regular file at the final path is
/// refused, never followed. When the final path already holds the same bytes,
/// it is left in place (only its mode is set to 0755); otherwise the bytes go
/// to a new temporary file in the same directory, which is set to 0755,
/// flushed, read back and compared by sha256, then renamed over the final
/// path, and the directory is flushed.
pub fn install(source: &Path, dest: &Path) -> Result<CopyReport, CopyError> {
    let (destination, existing) = resolve_destination(dest)?;
    let dir = parent_dir(&destination);
    fs::create_dir_all(&dir).map_err(|source| CopyError::CreateParent {
        path: dir.clone(),
        source,
    })?;

    let read_source = |err| CopyError::ReadSource {
        path: source.to_path_buf(),
        source: err,
    };
    let mut input = File::open(source).map_err(read_source)?;
    let size = input.metadata().map_err(read_source)?.len();
    let mut buffer = vec![0; BUFFER_SIZE];

    if existing.is_some_and(|meta| meta.len() == size) {
        if let Some(sha256) = keep_identical(&mut input, source, size, &destination, &mut buffer)? {
            return Ok(CopyReport {
                destination,
                size,
                sha256,
                action: CopyAction::Unchanged,
            });
        }
        input.rewind().map_err(read_source)?;
    }

    // The name carries the pid for whoever finds one after a crash; the
    // random part and O_EXCL keep concurrent runs from sharing a file. The
    // guard removes the file on every error path.
    let prefix = format!(".{BINARY_NAME}.tmp.{}.", std::process::id());
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(8)
        .tempfile_in(&dir)
        .map_err(|source| CopyError::CreateTemp {
            dir: dir.clone(),
            destination: destination.clone(),
            source,
        })?;
    let temp_path = temp.path().to_path_buf();
    let temp_error = |step, source| CopyError::WriteTemp {
        step,
        temp: temp_path.clone(),
        destination: destination.clone(),
        source,
    };

    let mut hasher = Sha256::new();
    let mut written = 0u64;
    loop {
        let count = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(read_source(err)),
        };
        let chunk = &buffer[..count];
        hasher.update(chunk);
        // Through the File itself: NamedTempFile's own Write would add the
        // temporary path to the error a second time.
        temp.as_file_mut()
            .write_all(chunk)
            .map_err(|err| temp_error("write", err))?;
        written += count as u64;
    }
    let sha256 = hex::encode(hasher.finalize());

    // Set the mode on the descriptor, so the umask plays no part.
    temp.as_file()
        .set_permissions(Permissions::from_mode(INSTALLED_MODE))
        .map_err(|err| temp_error("set the mode of", err))?;
    temp.as_file()
        .sync_all()
        .map_err(|err| temp_error("flush", err))?;

    // Read back what the file system now holds, so a short or corrupted
    // write is caught before DEST is touched.
    temp.as_file_mut()
        .rewind()
        .map_err(|err| temp_error("re-read", err))?;
    let (actual_size, actual) =
        hash_reader(temp.as_file_mut(), &mut buffer).map_err(|err| temp_error("re-read", err))?;
    if actual != sha256 || actual_size != written {
        return Err(CopyError::Mismatch {
            temp: temp_path,
            destination,
            expected: sha256,
            expected_size: written,
            actual,
            actual_size,
        });
    }

    // rename(2) replaces DEST in one step, and replaces a symlink that
    // appeared there meanwhile rather than following it.
    temp.persist(&destination)
        .map_err(|err| CopyError::Rename {
            temp: temp_path.clone(),
            destination: destination.clone(),
            source: err.error,
        })?;
    File::open(&dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| CopyError::SyncDirectory {
            dir: dir.clone(),
            destination: destination.clone(),
            source,
        })?;

    Ok(CopyReport {
        destination,
        size: written,
        sha256,
        action: CopyAction::Copied,
    })
}

/// The final path for `dest`, and its metadata when it is an existing regular
/// file. Uses lstat throughout: a symlink is refused, never followed.
fn resolve_destination(dest: &Path) -> Result<(PathBuf, Option<Metadata>), CopyError> {
    match lstat(dest)? {
        Some(meta) if meta.is_dir() => {
            let inner = dest.join(BINARY_NAME);
            let meta = lstat(&inner)?;
            Ok((inner.clone(), check_regular(&inner, meta)?))
        }
        Some(meta) => Ok((dest.to_path_buf(), check_regular(dest, Some(meta))?)),
        None if dest.as_os_str().as_bytes().ends_with(b"/") => Ok((dest.join(BINARY_NAME), None)),
        None => Ok((dest.to_path_buf(), None)),
    }
}

fn lstat(path: &Path) -> Result<Option<Metadata>, CopyError> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CopyError::InspectDestination {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn check_regular(path: &Path, meta: Option<Metadata>) -> Result<Option<Metadata>, CopyError> {
    let Some(meta) = meta else {
        return Ok(None);
    };
    let file_type = meta.file_type();
    if file_type.is_symlink() {
        return Err(CopyError::DestinationIsSymlink(path.to_path_buf()));
    }
    if file_type.is_file() {
        return Ok(Some(meta));
    }
    let kind = if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_char_device() {
        "character device"
    } else {
        "special file"
    };
    Err(CopyError::DestinationNotRegular {
        path: path.to_path_buf(),
        kind,
    })
}

/// The directory the final path lives in ("." for a bare file name).
fn parent_dir(destination: &Path) -> PathBuf {
    match destination.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// When `destination` already holds exactly the `size` bytes of `input`,
/// makes sure its mode is 0755 and returns their sha256; `None` when it
/// differs. A rerun of an init container then rewrites nothing.
fn keep_identical(
    input: &mut File,
    source: &Path,
    size: u64,
    destination: &Path,
    buffer: &mut [u8],
) -> Result<Option<String>, CopyError> {
    let read_dest = |source| CopyError::ReadDestination {
        path: destination.to_path_buf(),
        source,
    };
    // O_NOFOLLOW: the path was a regular file at lstat time; should it have
    // become a symlink since, opening fails (ELOOP) instead of following it.
    let mut existing = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(destination)
    {
        Ok(file) => file,
        Err(err) if err.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(CopyError::DestinationIsSymlink(destination.to_path_buf()));
        }
        Err(err) => return Err(read_dest(err)),
    };
    let meta = existing.metadata().map_err(read_dest)?;
    if !meta.is_file() || meta.len() != size {
        return Ok(None);
    }

    let (ours, theirs) = buffer.split_at_mut(buffer.len() / 2);
    let mut hasher = Sha256::new();
    let mut remaining = size;
    while remaining > 0 {
        let count = usize::try_from(remaining).map_or(ours.len(), |left| left.min(ours.len()));
        input
            .read_exact(&mut ours[..count])
            .map_err(|err| CopyError::ReadSource {
                path: source.to_path_buf(),
                source: err,
            })?;
        existing
            .read_exact(&mut theirs[..count])
            .map_err(read_dest)?;
        if ours[..count] != theirs[..count] {
            return Ok(None);
        }
        hasher.update(&ours[..count]);
        remaining -= count as u64;
    }

    if meta.permissions().mode() & 0o7777 != INSTALLED_MODE {
        let fix_mode = |source| CopyError::FixMode {
            path: destination.to_path_buf(),
            source,
        };
        existing
            .set_permissions(Permissions::from_mode(INSTALLED_MODE))
            .map_err(fix_mode)?;
        existing.sync_all().map_err(fix_mode)?;
    }
    Ok(Some(hex::encode(hasher.finalize())))
}

/// Size and sha256 (lowercase hex) of everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        match reader.read(buffer) {
            Ok(0) => break,
            Ok(count) => {
                hasher.update(&buffer[..count]);
                size += count as u64;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_file_name_lives_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("openshell-sandbox")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/b")), Path::new("/a"));
    }

    #[test]
    fn a_missing_path_with_a_trailing_slash_is_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dest = format!("{}/new/", dir.path().display());
        let (resolved, existing) = resolve_destination(Path::new(&dest)).unwrap();
        assert_eq!(resolved, dir.path().join("new").join(BINARY_NAME));
        assert!(existing.is_none());
    }

    #[test]
    fn the_report_is_one_line_with_path_size_and_hash() {
        let report = CopyReport {
            destination: PathBuf::from("/opt/openshell/bin/openshell-sandbox"),
            size: 42,
            sha256: "ab".repeat(32),
            action: CopyAction::Copied,
        };
        let line = report.to_string();
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with("copied /opt/openshell/bin/openshell-sandbox: 42 bytes, sha256 abab")
        );
    }
}
