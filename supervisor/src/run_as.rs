//! `--run-as USER[:GROUP]`: the identity the workload runs as.
//!
//! USER and GROUP are numeric ids (as in a pod's `runAsUser`/`runAsGroup`)
//! or names, which are looked up in the agent image's `/etc/passwd` and
//! `/etc/group`. The passwd entry of the user, when the image has one, also
//! gives the workload its HOME, USER and LOGNAME, and its group when GROUP is
//! not given.
//!
//! The files are parsed here rather than through `getpwnam(3)` (nix's `User`,
//! the `uzers` or `passwd` crates): the C library's lookup goes through NSS,
//! which in a static glibc build loads `libnss_*.so` from the agent image
//! into the root PID 1, and it cannot be pointed at another root, which the
//! tests need. The crates that do read the files (pgs-files, parsswd,
//! users_native) are unmaintained since 2015-2017 and panic on a short line.
//! The format is seven (passwd) or four (group) colon-separated fields a
//! line, so a parser is a few lines.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where the user database lives, relative to the root.
pub const PASSWD_FILE: &str = "etc/passwd";
/// Where the group database lives, relative to the root.
pub const GROUP_FILE: &str = "etc/group";

/// A user or group as given on the command line: an id or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdOrName {
    /// A numeric id.
    Id(u32),
    /// A name to look up.
    Name(String),
}

impl fmt::Display for IdOrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// The value of `--run-as`: a user, and optionally a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user.
    pub user: IdOrName,
    /// The group; when absent, the user's group in /etc/passwd, else the
    /// numeric user id.
    pub group: Option<IdOrName>,
}

impl RunAs {
    /// A numeric `UID:GID`.
    pub fn ids(uid: u32, gid: u32) -> Self {
        RunAs {
            user: IdOrName::Id(uid),
            group: Some(IdOrName::Id(gid)),
        }
    }
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{group}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

/// Why a `--run-as` value was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected USER or USER:GROUP, numeric ids from 0 to {max} or names (e.g. 1000, 1000:1000 or app:app); {problem}",
    max = u32::MAX - 1
)]
pub struct RunAsParseError {
    problem: String,
}

impl FromStr for RunAs {
    type Err = RunAsParseError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (user, group) = match value.split_once(':') {
            Some((user, group)) => (user, Some(group)),
            None => (value, None),
        };
        Ok(RunAs {
            user: parse_id_or_name("USER", user)?,
            group: group
                .map(|group| parse_id_or_name("GROUP", group))
                .transpose()?,
        })
    }
}

fn parse_id_or_name(what: &str, text: &str) -> Result<IdOrName, RunAsParseError> {
    let problem = |problem: String| RunAsParseError { problem };
    if text.is_empty() {
        return Err(problem(format!("the {what} is empty")));
    }
    if text.bytes().all(|byte| byte.is_ascii_digit()) {
        return match text.parse::<u32>() {
            // (uid_t)-1 means "leave unchanged" to setuid(2) and setgid(2).
            Ok(u32::MAX) | Err(_) => Err(problem(format!("the {what} {text} is out of range"))),
            Ok(id) => Ok(IdOrName::Id(id)),
        };
    }
    // The portable name set of POSIX (plus a trailing `$` for Samba machine
    // accounts), not starting with `-`, as useradd accepts.
    let valid = text.bytes().enumerate().all(|(index, byte)| {
        byte.is_ascii_alphanumeric()
            || byte == b'_'
            || byte == b'.'
            || (byte == b'-' && index > 0)
            || (byte == b'$' && index == text.len() - 1)
    });
    if !valid {
        return Err(problem(format!(
            "the {what} {text:?} is neither a number nor a valid name"
        )));
    }
    Ok(IdOrName::Name(text.to_owned()))
}

/// The identity the workload takes, resolved against the image's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups (see [`merged_groups`]).
    pub groups: Vec<u32>,
    /// The user's passwd entry, when the image has one.
    pub account: Option<Account>,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// What the workload's environment takes from a passwd entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name (USER, LOGNAME).
    pub name: OsString,
    /// Home directory (HOME).
    pub home: OsString,
}

/// Why `--run-as` could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The named user is not in the passwd file.
    #[error("--run-as {run_as}: no user {name:?} in {} (expected a user it names, or a numeric UID)", .file.display())]
    UnknownUser {
        /// The whole value.
        run_as: RunAs,
        /// The name.
        name: String,
        /// The passwd file.
        file: PathBuf,
    },
    /// The named group is not in the group file.
    #[error("--run-as {run_as}: no group {name:?} in {} (expected a group it names, or a numeric GID)", .file.display())]
    UnknownGroup {
        /// The whole value.
        run_as: RunAs,
        /// The name.
        name: String,
        /// The group file.
        file: PathBuf,
    },
    /// A database file is not a regular file of a sensible size.
    #[error("--run-as {run_as}: cannot use {}: {problem} (expected a regular file of at most {max} bytes)", .file.display(), max = MAX_DATABASE_BYTES)]
    NotARegularFile {
        /// The whole value.
        run_as: RunAs,
        /// The file.
        file: PathBuf,
        /// What it is instead.
        problem: String,
    },
    /// A database file exists but could not be read.
    #[error("--run-as {run_as}: cannot read {}", .file.display())]
    Read {
        /// The whole value.
        run_as: RunAs,
        /// The file.
        file: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// One line of a passwd file, as far as the supervisor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: Vec<u8>,
    uid: u32,
    gid: u32,
    home: Vec<u8>,
}

/// The passwd entries of `text`; comments, NIS lines (`+`, `-`) and
/// malformed lines are skipped, as the C libraries do.
fn passwd_entries(text: &[u8]) -> impl Iterator<Item = PasswdEntry> + '_ {
    text.split(|&byte| byte == b'\n').filter_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&byte| byte == b':').collect();
        let [name, _password, uid, gid, _gecos, home, _shell] = fields[..] else {
            return None;
        };
        if name.is_empty() || name[0] == b'#' || name[0] == b'+' || name[0] == b'-' {
            return None;
        }
        Some(PasswdEntry {
            name: name.to_vec(),
            uid: parse_number(uid)?,
            gid: parse_number(gid)?,
            home: home.to_vec(),
        })
    })
}

/// The gid of group `wanted` in group file `text`.
fn group_id(text: &[u8], wanted: &str) -> Option<u32> {
    text.split(|&byte| byte == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&byte| byte == b':').collect();
        let [name, _password, gid, _members] = fields[..] else {
            return None;
        };
        (name == wanted.as_bytes())
            .then(|| parse_number(gid))
            .flatten()
    })
}

fn parse_number(field: &[u8]) -> Option<u32> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The largest /etc/passwd or /etc/group the supervisor reads: far above
/// any real image's (a few KiB), small enough that a hostile file (a huge
/// sparse file, a device) cannot make PID 1 use much memory.
pub const MAX_DATABASE_BYTES: u64 = 4 * 1024 * 1024;

/// Reads `root/relative`; `None` when the image has no such file.
///
/// The file is opened without blocking (a FIFO would otherwise hang PID 1,
/// with every signal blocked) and may be reached through a symlink, as
/// images often have them in /etc; what was opened must be a regular file
/// of at most [`MAX_DATABASE_BYTES`], checked on the descriptor (`fstat`),
/// and no more than that is ever read.
fn read_database(
    root: &Path,
    relative: &str,
    run_as: &RunAs,
) -> Result<Option<Vec<u8>>, ResolveError> {
    use openshell_contract::files::{RegularFileError, read_regular};

    let file = root.join(relative);
    match read_regular(&file, MAX_DATABASE_BYTES) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(RegularFileError::Io(err)) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(RegularFileError::Io(source)) => Err(ResolveError::Read {
            run_as: run_as.clone(),
            file,
            source,
        }),
        Err(refused) => Err(ResolveError::NotARegularFile {
            run_as: run_as.clone(),
            file,
            problem: refused.to_string(),
        }),
    }
}

/// The groups of group file `text` that list `user` among their members,
/// as containerd finds them (`WithAdditionalGIDs` in
/// containerd/containerd pkg/oci/spec_opts.go, through moby/sys/user's
/// `ParseGroupFilter`): the member list is split on `,` and compared
/// exactly, and a group named like the user is skipped ("we only want
/// supplemental groups"); lines are not trimmed and comments are not
/// skipped there, nor here. Unlike moby/sys/user, which reads a malformed gid
/// as 0, a line whose gid is not a number is skipped: it must not make the
/// workload a member of root's group.
pub fn member_groups(text: &[u8], user: &[u8]) -> Vec<u32> {
    text.split(|&byte| byte == b'\n')
        .filter_map(|line| {
            // Go's line scanner drops a trailing CR, so containerd reads
            // CRLF files as if they were LF.
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut fields = line.split(|&byte| byte == b':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let gid = fields.next()?;
            let members = fields.next()?;
            if name == user || members.is_empty() {
                return None;
            }
            members
                .split(|&byte| byte == b',')
                .any(|member| member == user)
                .then(|| parse_number(gid))
                .flatten()
        })
        .collect()
}

/// The supplementary groups the workload gets under `--run-as`, as
/// containerd's CRI plugin sets them with supplementalGroupsPolicy Merge
/// (the default): `WithAdditionalGIDs(user)` takes the image's /etc/group
/// memberships of the user's name, then `ensureAdditionalGids` adds the
/// primary gid (both in containerd/containerd pkg/oci/spec_opts.go), then
/// `WithSupplementalGroups` merges the pod's `supplementalGroups` (with
/// `fsGroup`, which the kubelet passes among them), deduplicated. The
/// kernel sorts the list itself. `user_name` is the user's name: as given,
/// or the first /etc/passwd entry of a numeric uid; a numeric uid without
/// one gets no /etc/group memberships (containerd returns early there).
pub fn merged_groups(
    primary: u32,
    group_file: Option<&[u8]>,
    user_name: Option<&[u8]>,
    extra: &[u32],
) -> Vec<u32> {
    let mut groups = vec![primary];
    if let (Some(text), Some(name)) = (group_file, user_name) {
        groups.extend(member_groups(text, name));
    }
    groups.extend_from_slice(extra);
    groups.sort_unstable();
    groups.dedup();
    groups
}

/// Resolves `run_as` against the passwd and group files under `root` (`/`
/// in a container: the agent image's own files), with `extra_groups` (from
/// `--groups`) joining the supplementary groups.
///
/// A numeric user needs no entry; without one, its group defaults to its
/// uid and it gets no account (HOME=/). A name must be found.
pub fn resolve(
    run_as: &RunAs,
    root: &Path,
    extra_groups: &[u32],
) -> Result<Identity, ResolveError> {
    let passwd = read_database(root, PASSWD_FILE, run_as)?;
    let entries = || passwd.as_deref().into_iter().flat_map(passwd_entries);
    let (uid, entry) = match &run_as.user {
        IdOrName::Id(uid) => (*uid, entries().find(|entry| entry.uid == *uid)),
        IdOrName::Name(name) => {
            let entry = entries()
                .find(|entry| entry.name == name.as_bytes())
                .ok_or_else(|| ResolveError::UnknownUser {
                    run_as: run_as.clone(),
                    name: name.clone(),
                    file: root.join(PASSWD_FILE),
                })?;
            (entry.uid, Some(entry))
        }
    };
    let group_file = read_database(root, GROUP_FILE, run_as)?;
    let gid = match &run_as.group {
        Some(IdOrName::Id(gid)) => *gid,
        Some(IdOrName::Name(name)) => group_file
            .as_deref()
            .and_then(|text| group_id(text, name))
            .ok_or_else(|| ResolveError::UnknownGroup {
                run_as: run_as.clone(),
                name: name.clone(),
                file: root.join(GROUP_FILE),
            })?,
        None => entry.as_ref().map_or(uid, |entry| entry.gid),
    };
    let groups = merged_groups(
        gid,
        group_file.as_deref(),
        entry.as_ref().map(|entry| entry.name.as_slice()),
        extra_groups,
    );
    Ok(Identity {
        uid,
        gid,
        groups,
        account: entry.map(|entry| Account {
            name: OsString::from_vec(entry.name),
            home: OsString::from_vec(entry.home),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join(PASSWD_FILE), passwd).unwrap();
        std::fs::write(root.path().join(GROUP_FILE), group).unwrap();
        root
    }

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          # a comment\n\
                          broken line\n\
                          +nis::::::\n\
                          app:x:1000:1001:App,,,:/home/app:/bin/sh\n\
                          nohome:x:1500:1500::/:/usr/sbin/nologin";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n";

    #[test]
    fn numeric_ids_parse() {
        assert_eq!(
            "1000".parse(),
            Ok(RunAs {
                user: IdOrName::Id(1000),
                group: None
            })
        );
        assert_eq!("1000:2000".parse(), Ok(RunAs::ids(1000, 2000)));
        assert_eq!("0".parse::<RunAs>().unwrap().to_string(), "0");
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            "app:staff".parse(),
            Ok(RunAs {
                user: IdOrName::Name("app".into()),
                group: Some(IdOrName::Name("staff".into()))
            })
        );
        assert_eq!(
            "1000:staff".parse::<RunAs>().unwrap().to_string(),
            "1000:staff"
        );
    }

    #[test]
    fn empty_parts_are_refused() {
        let err = "1000:".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the GROUP is empty"), "{err}");
        let err = ":1000".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the USER is empty"), "{err}");
    }

    #[test]
    fn a_third_part_and_odd_characters_are_refused() {
        let err = "1:2:3".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the GROUP \"2:3\" is neither"), "{err}");
        let err = "-1".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("the USER \"-1\" is neither"), "{err}");
        let err = "a b".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("neither a number nor a valid name"), "{err}");
    }

    #[test]
    fn the_unchanged_id_and_overflows_are_refused() {
        let err = "4294967295".parse::<RunAs>().unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        let err = "1:99999999999".parse::<RunAs>().unwrap_err().to_string();
        assert!(
            err.contains("the GROUP 99999999999 is out of range"),
            "{err}"
        );
    }

    #[test]
    fn a_name_resolves_to_its_ids_home_and_primary_group() {
        let root = root_with(PASSWD, GROUP);
        let identity = resolve(&"app".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!((identity.uid, identity.gid), (1000, 1001));
        let account = identity.account.unwrap();
        assert_eq!(account.name, "app");
        assert_eq!(account.home, "/home/app");
    }

    #[test]
    fn a_group_name_resolves_through_etc_group() {
        let root = root_with(PASSWD, GROUP);
        let identity = resolve(&"app:staff".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!((identity.uid, identity.gid), (1000, 50));
        let identity = resolve(&"4242:staff".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!((identity.uid, identity.gid), (4242, 50));
        assert_eq!(identity.account, None);
    }

    #[test]
    fn a_numeric_user_takes_its_entry_when_there_is_one() {
        let root = root_with(PASSWD, GROUP);
        let identity = resolve(&"1000".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!((identity.uid, identity.gid), (1000, 1001));
        assert_eq!(identity.account.unwrap().name, "app");
        let identity = resolve(&"1000:7".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!((identity.uid, identity.gid), (1000, 7));
    }

    #[test]
    fn a_numeric_user_without_an_entry_keeps_its_uid_as_gid() {
        let root = root_with(PASSWD, GROUP);
        let identity = resolve(&"4321".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!(
            (identity.uid, identity.gid, identity.account),
            (4321, 4321, None)
        );
        // No passwd file at all (distroless, scratch): the same.
        let empty = tempfile::tempdir().unwrap();
        let identity = resolve(&"4321:5".parse().unwrap(), empty.path(), &[]).unwrap();
        assert_eq!(
            (identity.uid, identity.gid, identity.account),
            (4321, 5, None)
        );
    }

    #[test]
    fn unknown_names_name_the_file_at_fault() {
        let root = root_with(PASSWD, GROUP);
        let err = resolve(&"nobody".parse().unwrap(), root.path(), &[]).unwrap_err();
        assert!(matches!(err, ResolveError::UnknownUser { .. }));
        let text = err.to_string();
        assert!(text.contains("no user \"nobody\""), "{text}");
        assert!(text.contains("etc/passwd"), "{text}");
        let err = resolve(&"app:wheel".parse().unwrap(), root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("no group \"wheel\""), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = resolve(&"app".parse().unwrap(), empty.path(), &[]).unwrap_err();
        assert!(matches!(err, ResolveError::UnknownUser { .. }), "{err}");
    }

    #[test]
    fn malformed_lines_and_comments_are_skipped() {
        let entries: Vec<_> = passwd_entries(PASSWD.as_bytes()).collect();
        let names: Vec<_> = entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.name))
            .collect();
        assert_eq!(names, ["root", "app", "nohome"]);
        assert_eq!(
            group_id(b"bad\nstaff:x:x50:\nstaff:x:50:\n", "staff"),
            Some(50)
        );
    }

    #[test]
    fn supplementary_groups_merge_as_containerd_does() {
        let group = b"root:x:0:\nstaff:x:50:app\napp:x:1001:app\n\
                      docker:x:999:bob,app\nbad:x:x7:app\nsub:x:60:apple,pp\n\
                      wide:x:70:app:extra\nnomembers:x:80:\ncrlf:x:90:app\r\n\
                      spaced:x:95: app\n";
        // The user's own group (named like it) is skipped, a malformed gid
        // too; a group listing it among others counts; a prefix does not.
        // A CRLF line counts; a member with a blank before it does not.
        assert_eq!(member_groups(group, b"app"), [50, 999, 70, 90]);
        assert_eq!(
            merged_groups(1001, Some(group), Some(b"app"), &[2000, 50]),
            [50, 70, 90, 999, 1001, 2000]
        );
        // No name (a numeric uid without an entry): primary and extras only.
        assert_eq!(merged_groups(7, Some(group), None, &[7, 3]), [3, 7]);
        assert_eq!(merged_groups(7, None, Some(b"app"), &[]), [7]);
    }

    #[test]
    fn resolve_takes_the_images_memberships_and_the_extra_groups() {
        let root = root_with(PASSWD, GROUP);
        let identity = resolve(&"app".parse().unwrap(), root.path(), &[3000]).unwrap();
        assert_eq!(identity.groups, [50, 1001, 3000]);
        let identity = resolve(&"1000:7".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!(identity.groups, [7, 50]);
        let identity = resolve(&"4321".parse().unwrap(), root.path(), &[9]).unwrap();
        assert_eq!(identity.groups, [9, 4321]);
    }

    #[test]
    fn database_files_must_be_small_regular_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        let passwd = root.path().join(PASSWD_FILE);
        // A FIFO: refused at once, never waited on.
        nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = resolve(&"1000".parse().unwrap(), root.path(), &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("it is a FIFO"), "{text}");
        assert!(text.contains(&passwd.display().to_string()), "{text}");
        std::fs::remove_file(&passwd).unwrap();
        // A directory.
        std::fs::create_dir(&passwd).unwrap();
        let err = resolve(&"1000".parse().unwrap(), root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("it is a folder"), "{err}");
        std::fs::remove_dir(&passwd).unwrap();
        // /dev/zero (through a symlink): refused, nothing read.
        std::os::unix::fs::symlink("/dev/zero", &passwd).unwrap();
        let err = resolve(&"1000".parse().unwrap(), root.path(), &[]).unwrap_err();
        assert!(
            err.to_string().contains("it is a character device"),
            "{err}"
        );
        std::fs::remove_file(&passwd).unwrap();
        // A sparse file far over the limit: refused by its size, unread.
        let file = std::fs::File::create(&passwd).unwrap();
        file.set_len(8 << 30).unwrap();
        let err = resolve(&"1000".parse().unwrap(), root.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("8589934592 bytes"), "{err}");
        // Exactly at the limit is fine.
        file.set_len(MAX_DATABASE_BYTES).unwrap();
        resolve(&"1000".parse().unwrap(), root.path(), &[]).unwrap();
        // A symlink to a regular file is followed, as images have them.
        std::fs::remove_file(&passwd).unwrap();
        std::fs::write(root.path().join("etc/passwd.real"), PASSWD).unwrap();
        std::os::unix::fs::symlink("passwd.real", &passwd).unwrap();
        let identity = resolve(&"app".parse().unwrap(), root.path(), &[]).unwrap();
        assert_eq!(identity.uid, 1000);
    }
}
