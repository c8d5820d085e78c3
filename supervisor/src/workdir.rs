//! `--workdir DIR`: the workload's working directory, made when the image
//! lacks it.
//!
//! The driver asks for `/sandbox` when the pod template names no
//! `workingDir`, and most images have no `/sandbox`. The supervisor makes it
//! while it is still root, before the workload's privileges are dropped:
//! missing parents root-owned 0755, the directory itself owned by the
//! `--run-as` user, 0755 whatever the umask (unlike the root-owned directory
//! a container runtime makes for `workingDir`, the workload can write in it;
//! an `emptyDir` mounted there would hide what the image keeps there).
//! Creation never follows a symlink: the path is walked one component at a
//! time, each opened relative to the last with `O_NOFOLLOW`, and every
//! change is made through a descriptor. A directory that already exists,
//! also through a symlink the image has, is used as it is and never changed.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::copy_self::kind_name;

/// Mode of every directory the supervisor makes.
pub const CREATED_MODE: u32 = 0o755;

/// Who owns a directory the supervisor makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// What [`ensure`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The directory was there already (it was not changed).
    Existing,
    /// The supervisor made it (and possibly some parents).
    Created,
}

/// Why the working directory cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    /// A component of the path is a symlink, where the supervisor would have
    /// to make directories through it.
    #[error(
        "cannot create workdir {}: {} is a {}symbolic link{}, and the supervisor does not create directories through symlinks (create the directory in the image, or give a --workdir without symlinks)",
        .path.display(),
        .component.display(),
        if *.dangling { "dangling " } else { "" },
        .target.as_ref().map(|t| format!(" to {}", t.display())).unwrap_or_default()
    )]
    Symlink {
        /// The workdir.
        path: PathBuf,
        /// The symlink.
        component: PathBuf,
        /// Where it points, when it could be read.
        target: Option<PathBuf>,
        /// Whether what it points to is missing.
        dangling: bool,
    },
    /// A component of the path is not a directory.
    #[error("cannot use workdir {}: {} is a {kind}, not a directory", .path.display(), .component.display())]
    NotADirectory {
        /// The workdir.
        path: PathBuf,
        /// The component at fault.
        component: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file system is read-only.
    #[error(
        "cannot create workdir {}: the file system holding {} is read-only (create the directory in the image, mount a volume there, or give an existing --workdir)",
        .path.display(), .at.display()
    )]
    ReadOnly {
        /// The workdir.
        path: PathBuf,
        /// The directory that could not be made.
        at: PathBuf,
    },
    /// The directory was made but could not be given to its owner.
    #[error(
        "cannot create workdir {}: giving {} to {}:{} was refused (the container lacks CAP_CHOWN: add it to the container's capabilities, or create the directory in the image)",
        .path.display(), .at.display(), .owner.uid, .owner.gid
    )]
    ChownRefused {
        /// The workdir.
        path: PathBuf,
        /// The directory (removed again).
        at: PathBuf,
        /// Who should have owned it.
        owner: Owner,
    },
    /// Another failure while making or inspecting a directory.
    #[error("cannot create workdir {}: {action} {} failed", .path.display(), .at.display())]
    Create {
        /// The workdir.
        path: PathBuf,
        /// The component being worked on.
        at: PathBuf,
        /// What was being done (`mkdir`, `chown`, ...).
        action: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Makes sure `path` is a directory: when it exists (also through
/// symlinks) it is left as it is; otherwise the missing components are made
/// (see the module documentation), parents owned by `parent_owner` (`None`:
/// whoever makes them) and the last by `owner`, all 0755.
pub fn ensure(
    path: &Path,
    parent_owner: Option<Owner>,
    owner: Option<Owner>,
) -> Result<Outcome, WorkdirError> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => return Ok(Outcome::Existing),
        Ok(_) | Err(_) => {}
    }
    let components: Vec<&OsStr> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            Component::ParentDir => Some(OsStr::new("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    let start = if path.is_absolute() { "/" } else { "." };
    let mut walked = PathBuf::from(start);
    let failure = |at: &Path, action: &'static str, err: Errno| WorkdirError::Create {
        path: path.to_path_buf(),
        at: at.to_path_buf(),
        action,
        source: err.into(),
    };
    let path_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(CWD, start, path_flags, Mode::empty())
        .map_err(|err| failure(&walked, "open", err))?;
    let mut outcome = Outcome::Existing;
    for (index, name) in components.iter().enumerate() {
        let last = index + 1 == components.len();
        walked.push(name);
        let created = match rustix::fs::statat(&dir, *name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => false,
                FileType::Symlink => return Err(symlink_error(path, &dir, name, &walked)),
                other => {
                    return Err(WorkdirError::NotADirectory {
                        path: path.to_path_buf(),
                        component: walked,
                        kind: kind_name(other),
                    });
                }
            },
            Err(Errno::NOENT) => {
                match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(CREATED_MODE)) {
                    Ok(()) => true,
                    // Made meanwhile by someone else: theirs, used as it is
                    // once it proves a directory below.
                    Err(Errno::EXIST) => false,
                    Err(Errno::ROFS) => {
                        return Err(WorkdirError::ReadOnly {
                            path: path.to_path_buf(),
                            at: walked,
                        });
                    }
                    Err(err) => return Err(failure(&walked, "mkdir", err)),
                }
            }
            Err(err) => return Err(failure(&walked, "stat", err)),
        };
        let next = match rustix::fs::openat(&dir, *name, path_flags, Mode::empty()) {
            Ok(next) => next,
            // A symlink swapped in after the look above.
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(symlink_error(path, &dir, name, &walked));
            }
            Err(err) => return Err(failure(&walked, "open", err)),
        };
        if created {
            outcome = Outcome::Created;
            let wanted = if last { owner } else { parent_owner };
            if let Err((action, err)) = set_owner_and_mode(&next, wanted) {
                // Leave nothing half made: a root-owned directory left
                // here would be used as it is by the next start (a
                // restarted container keeps its file system), and the
                // workload could not write in it.
                drop(next);
                let _ = rustix::fs::unlinkat(&dir, *name, AtFlags::REMOVEDIR);
                return Err(if err == Errno::PERM && action == "chown" {
                    WorkdirError::ChownRefused {
                        path: path.to_path_buf(),
                        at: walked,
                        owner: wanted.unwrap_or(Owner { uid: 0, gid: 0 }),
                    }
                } else {
                    failure(&walked, action, err)
                });
            }
        }
        dir = next;
    }
    Ok(outcome)
}

/// Gives a directory the supervisor just made its owner and mode 0755,
/// through a descriptor (the umask made the mode at mkdir).
fn set_owner_and_mode(dir: &OwnedFd, owner: Option<Owner>) -> Result<(), (&'static str, Errno)> {
    // An O_PATH descriptor cannot be chowned or chmodded: reopen it.
    let opened = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|err| ("open", err))?;
    // The mode first, while the supervisor still owns it (afterwards it
    // would take CAP_FOWNER); a chown of a directory leaves its mode bits.
    rustix::fs::fchmod(&opened, Mode::from_raw_mode(CREATED_MODE)).map_err(|err| ("chmod", err))?;
    let current = rustix::fs::fstat(&opened).map_err(|err| ("stat", err))?;
    // Only when it is not already theirs: giving a directory away takes
    // CAP_CHOWN, which a root workload's start needs no other way.
    if let Some(owner) =
        owner.filter(|owner| (current.st_uid, current.st_gid) != (owner.uid, owner.gid))
    {
        rustix::fs::fchown(
            &opened,
            Some(rustix::fs::Uid::from_raw(owner.uid)),
            Some(rustix::fs::Gid::from_raw(owner.gid)),
        )
        .map_err(|err| ("chown", err))?;
    }
    Ok(())
}

fn symlink_error(path: &Path, dir: &OwnedFd, name: &OsStr, walked: &Path) -> WorkdirError {
    let target = rustix::fs::readlinkat(dir, name, Vec::new())
        .ok()
        .map(|target| PathBuf::from(OsString::from_vec(target.into_bytes())));
    let dangling = matches!(
        rustix::fs::statat(dir, name, AtFlags::empty()),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP)
    );
    WorkdirError::Symlink {
        path: path.to_path_buf(),
        component: walked.to_path_buf(),
        target,
        dangling,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn missing_directories_are_made_0755_whatever_the_umask() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b/work");
        let old = rustix::process::umask(Mode::from_raw_mode(0o077));
        let outcome = ensure(&path, None, None);
        rustix::process::umask(old);
        assert_eq!(outcome.unwrap(), Outcome::Created);
        for dir in [root.path().join("a"), root.path().join("a/b"), path.clone()] {
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o755, "{}", dir.display());
        }
        // Again: there, untouched.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(ensure(&path, None, None).unwrap(), Outcome::Existing);
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_symlink_on_the_way_is_refused_and_named() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("nowhere", root.path().join("dangling")).unwrap();
        let err = ensure(&root.path().join("dangling/work"), None, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("is a dangling symbolic link to nowhere"),
            "{text}"
        );
        assert!(!root.path().join("nowhere").exists());
        // The last component a dangling symlink: refused, nothing made.
        let err = ensure(&root.path().join("dangling"), None, None).unwrap_err();
        assert!(
            matches!(err, WorkdirError::Symlink { dangling: true, .. }),
            "{err}"
        );
        // A symlink to an existing directory, with a missing component
        // below it: not followed either.
        std::fs::create_dir(root.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", root.path().join("link")).unwrap();
        let err = ensure(&root.path().join("link/work"), None, None).unwrap_err();
        assert!(
            matches!(
                err,
                WorkdirError::Symlink {
                    dangling: false,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!root.path().join("real/work").exists());
        // But an existing directory reached through it is used as it is.
        assert_eq!(
            ensure(&root.path().join("link"), None, None).unwrap(),
            Outcome::Existing
        );
    }

    #[test]
    fn a_file_on_the_way_is_named() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("file"), "").unwrap();
        let err = ensure(&root.path().join("file/work"), None, None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("file is a regular file, not a directory"),
            "{text}"
        );
    }
}
