//! `copy-self DEST`: install the running executable into a shared volume.
//!
//! It runs in an init container that Kubernetes may restart at any moment
//! (even with SIGKILL), possibly while another copy of it runs, on a volume
//! that may be full or read-only, and the agent container may exec DEST
//! while it runs. So:
//!
//! - DEST only ever changes by one `rename(2)` of a complete, flushed,
//!   verified and *closed* file: an exec racing the copy sees the old file or
//!   the new one, never ETXTBSY (which a file still open for writing gives);
//! - temporary files carry a fixed prefix ([`TEMP_PREFIX`]) and are locked
//!   (`flock`) while they are written; every run first removes the unlocked
//!   ones, which killed runs left behind, so leftovers never fill the volume;
//! - no path component is ever followed through a symlink: the directory is
//!   opened with `openat2(RESOLVE_NO_SYMLINKS)`, or on kernels without it
//!   (before 5.6) walked one component at a time with `O_NOFOLLOW`, and every
//!   later step works relative to that directory's descriptor.
//!
//! Every failure leaves DEST exactly as it was and no temporary file behind.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{File, Permissions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};
use openshell_contract::BINARY_NAME;
use openshell_contract::digest::Digester;
use rustix::fs::{AtFlags, CWD, FileType, FlockOperation, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

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
        "refusing {}: it is a symbolic link (expected a regular file, a directory or a new path; copy-self never follows a symlink)",
        .0.display()
    )]
    DestinationIsSymlink(PathBuf),
    /// A directory on the way to DEST is a symbolic link.
    #[error(
        "refusing {}: its parent {} is a symbolic link (copy-self never follows a symlink in any component; name the real directory)",
        .destination.display(), .component.display()
    )]
    SymlinkComponent {
        /// DEST as given.
        destination: PathBuf,
        /// The path up to and including the symlink.
        component: PathBuf,
    },
    /// A component on the way to DEST is not a directory.
    #[error(
        "refusing {}: {} is a {kind}, not a directory",
        .destination.display(), .component.display()
    )]
    ComponentNotDirectory {
        /// DEST as given.
        destination: PathBuf,
        /// The path up to and including that component.
        component: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
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
    /// DEST or a directory on its way could not be inspected or opened.
    #[error("cannot inspect {}", .path.display())]
    InspectDestination {
        /// The path at fault.
        path: PathBuf,
        /// The error.
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

/// Names of temporary files start with this, followed by the pid of the run
/// that made it and a random part. Whatever carries it in DEST's directory
/// and is not locked is a leftover of a killed run, and is removed.
pub const TEMP_PREFIX: &str = ".openshell-sandbox.tmp.";

/// How directories on the way to DEST are opened without following symlinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// `openat2(RESOLVE_NO_SYMLINKS)` when the kernel has it (5.6 and
    /// later), else [`Resolution::Walk`].
    Auto,
    /// One component at a time, each checked with `fstatat(AT_SYMLINK_NOFOLLOW)`
    /// and opened with `O_NOFOLLOW`.
    Walk,
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

/// Installs a copy of `source` at `dest`, atomically:
/// [`install_with`] with [`Resolution::Auto`].
pub fn install(source: &Path, dest: &Path) -> Result<CopyReport, CopyError> {
    install_with(source, dest, Resolution::Auto)
}

/// Installs a copy of `source` at `dest`, atomically.
///
/// `dest` is a file path, or an existing directory (then
/// `dest/openshell-sandbox`); a path ending in `/` is a directory too. Missing
/// parents are created (mode 0755). A symlink anywhere on the path, or a
/// non-regular file at the final path, is refused, never followed. Stale
/// temporary files in the directory are removed first. When the final path
/// already holds the same bytes, it is left in place (only its mode is set
/// to 0755); otherwise the bytes go to a new, locked temporary file in the
/// same directory, which is set to 0755, flushed, read back and compared by
/// sha256, closed, then renamed over the final path, and the directory is
/// flushed.
pub fn install_with(
    source: &Path,
    dest: &Path,
    resolution: Resolution,
) -> Result<CopyReport, CopyError> {
    let target = resolve_destination(dest, resolution)?;
    let Target {
        dir,
        dir_path,
        name,
        existing,
    } = target;
    let destination = dir_path.join(&name);
    sweep_stale_temporaries(&dir);

    let read_source = |err| CopyError::ReadSource {
        path: source.to_path_buf(),
        source: err,
    };
    let mut input = File::open(source).map_err(read_source)?;
    let size = input.metadata().map_err(read_source)?.len();
    let mut buffer = vec![0; BUFFER_SIZE];

    if existing.is_some_and(|len| len == size) {
        if let Some(sha256) = keep_identical(
            &mut input,
            source,
            size,
            &dir,
            &name,
            &destination,
            &mut buffer,
        )? {
            return Ok(CopyReport {
                destination,
                size,
                sha256,
                action: CopyAction::Unchanged,
            });
        }
        input.rewind().map_err(read_source)?;
    }

    let (temp, writer) =
        LockedTemp::create(&dir, &dir_path).map_err(|source| CopyError::CreateTemp {
            dir: dir_path.clone(),
            destination: destination.clone(),
            source,
        })?;
    let temp_path = dir_path.join(&temp.name);
    let temp_error = |step, source| CopyError::WriteTemp {
        step,
        temp: temp_path.clone(),
        destination: destination.clone(),
        source,
    };
    let mut output = File::from(writer);

    let mut hasher = Digester::sha256();
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
        output
            .write_all(chunk)
            .map_err(|err| temp_error("write", err))?;
        written += count as u64;
    }
    let sha256 = hasher.finish_hex();

    // Set the mode on the descriptor, so the umask plays no part.
    output
        .set_permissions(Permissions::from_mode(INSTALLED_MODE))
        .map_err(|err| temp_error("set the mode of", err))?;
    output.sync_all().map_err(|err| temp_error("flush", err))?;

    // Read back what the file system now holds, so a short or corrupted
    // write is caught before DEST is touched.
    output.rewind().map_err(|err| temp_error("re-read", err))?;
    let (actual_size, actual) =
        hash_reader(&mut output, &mut buffer).map_err(|err| temp_error("re-read", err))?;
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

    // Close every descriptor open for writing before the rename: the kernel
    // refuses to exec a file that one still holds (ETXTBSY), and DEST is
    // exec'd the moment it appears. The lock (on a read-only descriptor)
    // stays until the rename is done, so no other run sweeps the file away.
    drop(output);
    rustix::fs::renameat(&dir, &temp.name, &dir, &name).map_err(|err| CopyError::Rename {
        temp: temp_path.clone(),
        destination: destination.clone(),
        source: err.into(),
    })?;
    temp.renamed();
    rustix::fs::fsync(&dir).map_err(|err| CopyError::SyncDirectory {
        dir: dir_path.clone(),
        destination: destination.clone(),
        source: err.into(),
    })?;

    Ok(CopyReport {
        destination,
        size: written,
        sha256,
        action: CopyAction::Copied,
    })
}

/// Where the binary goes: an open directory, its path for messages, the file
/// name in it, and the size of the regular file already there.
struct Target {
    dir: OwnedFd,
    dir_path: PathBuf,
    name: OsString,
    existing: Option<u64>,
}

/// What an `fstatat(AT_SYMLINK_NOFOLLOW)` of a name found.
enum Found {
    Missing,
    Symlink,
    Directory,
    Regular(u64),
    Other(&'static str),
}

fn look_at(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Found, CopyError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => Found::Symlink,
            FileType::Directory => Found::Directory,
            FileType::RegularFile => Found::Regular(stat.st_size as u64),
            other => Found::Other(kind_name(other)),
        }),
        Err(Errno::NOENT) => Ok(Found::Missing),
        Err(err) => Err(CopyError::InspectDestination {
            path: path.to_path_buf(),
            source: err.into(),
        }),
    }
}

/// What a file type is called in messages.
pub fn kind_name(file_type: FileType) -> &'static str {
    match file_type {
        FileType::Directory => "directory",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::BlockDevice => "block device",
        FileType::CharacterDevice => "character device",
        FileType::Symlink => "symbolic link",
        FileType::RegularFile => "regular file",
        _ => "special file",
    }
}

/// Opens `path` as a directory without following any symlink, creating
/// missing directories when `create`.
fn open_directory(
    path: &Path,
    destination: &Path,
    resolution: Resolution,
) -> Result<OwnedFd, CopyError> {
    if resolution == Resolution::Auto {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        match rustix::fs::openat2(
            CWD,
            path,
            flags,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(fd) => return Ok(fd),
            // ENOSYS: a kernel before 5.6 (or a seccomp filter that does not
            // know openat2): walk instead. ELOOP, ENOENT, ENOTDIR: walk too,
            // to create what is missing or to name the component at fault.
            Err(Errno::NOSYS | Errno::PERM | Errno::LOOP | Errno::NOENT | Errno::NOTDIR) => {}
            Err(err) => {
                return Err(CopyError::InspectDestination {
                    path: path.to_path_buf(),
                    source: err.into(),
                });
            }
        }
    }
    walk_directory(path, destination)
}

/// The fallback of `openat2(RESOLVE_NO_SYMLINKS)`: one component at a time,
/// each inspected without following it and opened with `O_NOFOLLOW` (an
/// `O_PATH` descriptor of a symlink that appeared in between is caught by
/// the `fstat` that follows). Missing directories are created.
fn walk_directory(path: &Path, destination: &Path) -> Result<OwnedFd, CopyError> {
    let open_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let inspect = |at: &Path, err: Errno| CopyError::InspectDestination {
        path: at.to_path_buf(),
        source: err.into(),
    };
    let start = if path.is_absolute() { "/" } else { "." };
    let mut dir = rustix::fs::openat(CWD, start, open_flags, Mode::empty())
        .map_err(|err| inspect(Path::new(start), err))?;
    let mut walked = PathBuf::from(start);
    for component in path.components() {
        let name = match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
            Component::ParentDir => OsStr::new(".."),
            Component::Normal(name) => name,
        };
        walked.push(name);
        let mut created = false;
        match look_at(&dir, name, &walked)? {
            Found::Missing => match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                Ok(()) => created = true,
                // Another run made it meanwhile: fine, it is checked below.
                Err(Errno::EXIST) => {}
                Err(err) => {
                    return Err(CopyError::CreateParent {
                        path: walked,
                        source: err.into(),
                    });
                }
            },
            Found::Directory => {}
            Found::Symlink => {
                return Err(CopyError::SymlinkComponent {
                    destination: destination.to_path_buf(),
                    component: walked,
                });
            }
            Found::Regular(_) => {
                return Err(CopyError::ComponentNotDirectory {
                    destination: destination.to_path_buf(),
                    component: walked,
                    kind: "regular file",
                });
            }
            Found::Other(kind) => {
                return Err(CopyError::ComponentNotDirectory {
                    destination: destination.to_path_buf(),
                    component: walked,
                    kind,
                });
            }
        }
        let next = rustix::fs::openat(&dir, name, open_flags, Mode::empty()).map_err(|err| {
            if err == Errno::LOOP || err == Errno::NOTDIR {
                CopyError::SymlinkComponent {
                    destination: destination.to_path_buf(),
                    component: walked.clone(),
                }
            } else {
                inspect(&walked, err)
            }
        })?;
        let file_type = rustix::fs::fstat(&next)
            .map(|stat| FileType::from_raw_mode(stat.st_mode))
            .map_err(|err| inspect(&walked, err))?;
        if file_type != FileType::Directory {
            return Err(CopyError::SymlinkComponent {
                destination: destination.to_path_buf(),
                component: walked,
            });
        }
        if created {
            // 0755 whatever the umask, as `install -D` makes parents: the
            // agent container, under any user, must reach the binary. Set
            // on a descriptor of the directory just checked (an O_PATH one
            // cannot be chmodded).
            rustix::fs::openat(
                &next,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .and_then(|opened| rustix::fs::fchmod(&opened, Mode::from_raw_mode(0o755)))
            .map_err(|err| CopyError::CreateParent {
                path: walked.clone(),
                source: err.into(),
            })?;
        }
        dir = next;
    }
    // An O_PATH descriptor cannot be fsynced or listed: reopen it for that.
    rustix::fs::openat(
        &dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| inspect(path, err))
}

/// Finds where the binary goes for `dest`, refusing symlinks and
/// non-regular files and creating missing parents.
fn resolve_destination(dest: &Path, resolution: Resolution) -> Result<Target, CopyError> {
    let bytes = dest.as_os_str().as_bytes();
    // "DIR/" or "DIR/." or "..": the binary goes inside.
    let names_directory = bytes.ends_with(b"/")
        || matches!(
            dest.components().next_back(),
            Some(Component::CurDir | Component::ParentDir | Component::RootDir) | None
        );
    let (dir_path, last) = if names_directory {
        (dest.to_path_buf(), None)
    } else {
        let parent = match dest.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (parent, dest.file_name().map(OsStr::to_os_string))
    };
    let mut dir = open_directory(&dir_path, dest, resolution)?;
    let mut dir_path = dir_path;
    let mut name = match last {
        Some(last) => {
            let path = dir_path.join(&last);
            match look_at(&dir, &last, &path)? {
                Found::Symlink => return Err(CopyError::DestinationIsSymlink(path)),
                Found::Directory => {
                    dir = open_directory(&path, dest, resolution)?;
                    dir_path = path;
                    OsString::from(BINARY_NAME)
                }
                Found::Other(kind) => {
                    return Err(CopyError::DestinationNotRegular { path, kind });
                }
                Found::Missing | Found::Regular(_) => last,
            }
        }
        None => OsString::from(BINARY_NAME),
    };
    if dir_path.as_os_str().is_empty() {
        dir_path = PathBuf::from(".");
    }
    let path = dir_path.join(&name);
    let existing = match look_at(&dir, &name, &path)? {
        Found::Missing => None,
        Found::Regular(size) => Some(size),
        Found::Symlink => return Err(CopyError::DestinationIsSymlink(path)),
        Found::Directory => {
            return Err(CopyError::DestinationNotRegular {
                path,
                kind: "directory",
            });
        }
        Found::Other(kind) => return Err(CopyError::DestinationNotRegular { path, kind }),
    };
    name.shrink_to_fit();
    Ok(Target {
        dir,
        dir_path,
        name,
        existing,
    })
}

/// Removes the temporary files of killed runs from `dir`: names with
/// [`TEMP_PREFIX`] that nobody holds locked. A run in progress holds its
/// lock until its file is renamed, so it is never touched. Best effort: a
/// file that cannot be removed is left for the next run, and does not stop
/// this one.
fn sweep_stale_temporaries(dir: &OwnedFd) {
    let Ok(entries) = rustix::fs::Dir::read_from(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_bytes().starts_with(TEMP_PREFIX.as_bytes()) {
            continue;
        }
        let Ok(fd) = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // locked: a run in progress
        }
        // Remove it only if the name still stands for the file we locked.
        let same = match (
            rustix::fs::fstat(&fd),
            rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        ) {
            (Ok(held), Ok(named)) => held.st_dev == named.st_dev && held.st_ino == named.st_ino,
            _ => false,
        };
        if same {
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
        }
    }
}

/// A temporary file being written: created with `O_EXCL`, locked through a
/// second, read-only descriptor, and removed on drop unless renamed.
struct LockedTemp<'dir> {
    dir: &'dir OwnedFd,
    name: OsString,
    /// Held until the rename; read-only, so it does not count as a writer
    /// (which would make an exec of DEST fail with ETXTBSY).
    _lock: OwnedFd,
    renamed: bool,
}

impl<'dir> LockedTemp<'dir> {
    /// Creates and locks a new temporary file in `dir`; returns it with the
    /// descriptor to write it through.
    fn create(dir: &'dir OwnedFd, dir_path: &Path) -> io::Result<(Self, OwnedFd)> {
        // A few tries: a concurrent run's sweep may remove the file between
        // its creation and the lock (it was unlocked then). Once locked and
        // still under its name, it is ours until the rename.
        for attempt in 0..16u32 {
            let name = OsString::from(format!(
                "{TEMP_PREFIX}{}.{:016x}",
                std::process::id(),
                random_u64(attempt)
            ));
            let writer = match rustix::fs::openat(
                dir,
                name.as_os_str(),
                OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => fd,
                Err(Errno::EXIST) => continue,
                Err(err) => return Err(err.into()),
            };
            match lock_by_name(dir, &name, &writer) {
                Ok(Some(lock)) => {
                    let temp = LockedTemp {
                        dir,
                        name,
                        _lock: lock,
                        renamed: false,
                    };
                    return Ok((temp, writer));
                }
                // Swept before we held it: the name is no longer ours.
                Ok(None) => continue,
                Err(err) => {
                    let _ = rustix::fs::unlinkat(dir, name.as_os_str(), AtFlags::empty());
                    return Err(err);
                }
            }
        }
        Err(io::Error::other(format!(
            "temporary files in {} kept disappearing while being created",
            dir_path.display()
        )))
    }

    /// The rename has taken the name: nothing to remove any more.
    fn renamed(mut self) {
        self.renamed = true;
    }
}

/// Locks the file `name` in `dir` through a new read-only descriptor, and
/// checks that the name still stands for `writer`'s file. `None` when it
/// does not (a sweep removed it before the lock).
fn lock_by_name(dir: &OwnedFd, name: &OsStr, writer: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    let lock = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    rustix::fs::flock(&lock, FlockOperation::LockExclusive)?;
    let ours = rustix::fs::fstat(writer)?;
    let held = rustix::fs::fstat(&lock)?;
    let named = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::NOENT) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let same =
        |a: &rustix::fs::Stat, b: &rustix::fs::Stat| a.st_dev == b.st_dev && a.st_ino == b.st_ino;
    Ok((same(&ours, &held) && same(&ours, &named)).then_some(lock))
}

impl Drop for LockedTemp<'_> {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = rustix::fs::unlinkat(self.dir, self.name.as_os_str(), AtFlags::empty());
        }
    }
}

/// 64 random bits for a temporary name: std's hasher keys are random per
/// process; the attempt number and the time vary them within one.
fn random_u64(attempt: u32) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

/// When the regular file `name` in `dir` already holds exactly the `size`
/// bytes of `input`, makes sure its mode is 0755 and returns their sha256;
/// `None` when it differs. A rerun of an init container then rewrites
/// nothing.
fn keep_identical(
    input: &mut File,
    source: &Path,
    size: u64,
    dir: &OwnedFd,
    name: &OsStr,
    destination: &Path,
    buffer: &mut [u8],
) -> Result<Option<String>, CopyError> {
    let read_dest = |source| CopyError::ReadDestination {
        path: destination.to_path_buf(),
        source,
    };
    // O_NOFOLLOW: the name was a regular file a moment ago; should it have
    // become a symlink since, opening fails (ELOOP) instead of following it.
    // O_NONBLOCK: should it have become a FIFO, opening does not wait.
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::LOOP) => {
            return Err(CopyError::DestinationIsSymlink(destination.to_path_buf()));
        }
        Err(err) => return Err(read_dest(err.into())),
    };
    let mut existing = File::from(fd);
    let meta = existing.metadata().map_err(read_dest)?;
    if !meta.is_file() || meta.len() != size {
        return Ok(None);
    }

    let (ours, theirs) = buffer.split_at_mut(buffer.len() / 2);
    let mut hasher = Digester::sha256();
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
    Ok(Some(hasher.finish_hex()))
}

/// Size and sha256 (lowercase hex) of everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<(u64, String)> {
    let mut hasher = Digester::sha256();
    loop {
        match reader.read(buffer) {
            Ok(0) => break,
            Ok(count) => hasher.update(&buffer[..count]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok((hasher.size(), hasher.finish_hex()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_with_a_trailing_slash_is_a_directory() {
        for resolution in [Resolution::Auto, Resolution::Walk] {
            let dir = tempfile::tempdir().unwrap();
            let dest = format!("{}/new/", dir.path().display());
            let target = resolve_destination(Path::new(&dest), resolution).unwrap();
            assert_eq!(
                target.dir_path.join(&target.name),
                dir.path().join("new").join(BINARY_NAME)
            );
            assert!(target.existing.is_none());
            assert!(dir.path().join("new").is_dir());
        }
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

    #[test]
    fn a_locked_temporary_survives_a_sweep_and_an_unlocked_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let fd = rustix::fs::openat(
            CWD,
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let (temp, _writer) = LockedTemp::create(&fd, dir.path()).unwrap();
        let stale = dir.path().join(format!("{TEMP_PREFIX}1.0123456789abcdef"));
        std::fs::write(&stale, "left by a killed run").unwrap();
        let unrelated = dir.path().join(".openshell-sandbox.other");
        std::fs::write(&unrelated, "not ours").unwrap();
        sweep_stale_temporaries(&fd);
        assert!(!stale.exists(), "the stale temporary was kept");
        assert!(unrelated.exists(), "a file without the prefix was removed");
        assert!(
            dir.path().join(&temp.name).exists(),
            "a locked temporary was removed"
        );
        drop(temp);
        assert!(!dir.path().join(".openshell-sandbox.tmp.").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the dropped temporary was not removed");
    }
}
