//! Starting COMMAND: PATH search and `execve(2)`, done here, with no shell
//! fallback; and the reason, in words, when the kernel refuses.
//!
//! The C library's `execvp` is not used because glibc's runs a file the
//! kernel refuses with ENOEXEC through `/bin/sh`: a binary for another
//! architecture then "runs" as a shell script (exit 2 and garbage), or, in an
//! image without a shell, reads as "command not found". Here ENOEXEC is
//! reported as what it is.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::libc;
use object::Endianness;
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use openshell_contract::elf::oci_architecture;
use openshell_contract::platform::host_architecture;

unsafe extern "C" {
    /// The C library's environment array (glibc and musl alike; the libc
    /// crate does not declare it for musl).
    static environ: *const *const libc::c_char;
}

/// PATH when the environment has none: the usual one of a container image
/// (what runc and containerd set).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit code when COMMAND cannot be found, as shells use it (also for a
/// missing interpreter, as bash 5.2 reports it).
pub const EXIT_NOT_FOUND: i32 = 127;

/// Exit code when COMMAND was found but could not be executed, as shells use
/// it.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;

/// Everything `execve` needs, made before fork so the child allocates
/// nothing: the paths to try in order, argv and envp as C strings with their
/// null-terminated pointer arrays.
#[derive(Debug)]
pub struct Prepared {
    /// COMMAND as given.
    pub command: OsString,
    /// Whether COMMAND was looked up on PATH (it has no `/`).
    pub searched: bool,
    candidates: Vec<CString>,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    /// `None`: the supervisor's own environment, passed as it is (no copy).
    envp: Option<(Vec<CString>, Vec<*const libc::c_char>)>,
}

/// Why COMMAND could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// An argument or environment entry holds a NUL byte, which exec cannot
    /// pass.
    #[error("{what} {value:?} contains a NUL byte, which exec cannot pass")]
    NulByte {
        /// "argument" or "environment entry".
        what: &'static str,
        /// The value, lossily.
        value: String,
    },
}

fn c_string(what: &'static str, bytes: Vec<u8>) -> Result<CString, PrepareError> {
    CString::new(bytes).map_err(|err| PrepareError::NulByte {
        what,
        value: String::from_utf8_lossy(&err.into_vec()).into_owned(),
    })
}

fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|string| string.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The files to try for `command`: itself when it holds a `/`, else
/// `DIR/command` for each entry of `path` (an empty entry is the current
/// directory, as POSIX says).
pub fn candidates(command: &OsStr, path: Option<&OsStr>) -> Vec<PathBuf> {
    if command.as_bytes().contains(&b'/') {
        return vec![PathBuf::from(command)];
    }
    let path = path.unwrap_or(OsStr::new(DEFAULT_PATH));
    path.as_bytes()
        .split(|&byte| byte == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            Path::new(OsStr::from_bytes(dir)).join(command)
        })
        .collect()
}

impl Prepared {
    /// Prepares `command` with `args` and the environment `env` (`None`:
    /// the supervisor's own), searching `path` (the supervisor's own PATH)
    /// when `command` has no `/`.
    pub fn new(
        command: &OsStr,
        args: &[OsString],
        env: Option<Vec<(OsString, OsString)>>,
        path: Option<&OsStr>,
    ) -> Result<Prepared, PrepareError> {
        let searched = !command.as_bytes().contains(&b'/');
        let candidates = if command.is_empty() {
            Vec::new()
        } else {
            candidates(command, path)
                .into_iter()
                .map(|candidate| c_string("command", candidate.into_os_string().into_vec()))
                .collect::<Result<_, _>>()?
        };
        let argv: Vec<CString> = std::iter::once(command)
            .chain(args.iter().map(OsString::as_os_str))
            .map(|arg| c_string("argument", arg.as_bytes().to_vec()))
            .collect::<Result<_, _>>()?;
        let envp = match env {
            Some(env) => {
                let envp: Vec<CString> = env
                    .into_iter()
                    .map(|(key, value)| {
                        let mut entry = key.into_vec();
                        entry.push(b'=');
                        entry.extend(value.into_vec());
                        c_string("environment entry", entry)
                    })
                    .collect::<Result<_, _>>()?;
                let pointers = pointers(&envp);
                Some((envp, pointers))
            }
            None => None,
        };
        Ok(Prepared {
            command: command.to_owned(),
            searched,
            argv_ptrs: pointers(&argv),
            candidates,
            _argv: argv,
            envp,
        })
    }

    /// The path of candidate `index`.
    pub fn candidate(&self, index: usize) -> Option<&Path> {
        self.candidates
            .get(index)
            .map(|candidate| Path::new(OsStr::from_bytes(candidate.as_bytes())))
    }

    /// Replaces the process image with the first candidate the kernel runs,
    /// searching as `execvp` does: a missing file goes on to the next
    /// directory, a refused one is remembered and the search goes on, any
    /// other error ends it. Returns only on failure: the error to report and
    /// the candidate it belongs to. Async-signal-safe (execve only).
    pub fn exec(&self) -> (usize, i32) {
        let envp = match &self.envp {
            Some((_, pointers)) => pointers.as_ptr(),
            // SAFETY: environ is the C library's environment array; the
            // supervisor never changes its environment, so it is valid.
            None => unsafe { environ },
        };
        let mut failure = (0, libc::ENOENT);
        let mut refused = None;
        for (index, candidate) in self.candidates.iter().enumerate() {
            // SAFETY: candidate, argv and envp are NUL-terminated C strings
            // and null-terminated pointer arrays owned by self, alive here.
            unsafe {
                libc::execve(candidate.as_ptr(), self.argv_ptrs.as_ptr(), envp);
            }
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL);
            match errno {
                // The file exists, yet ENOENT: its #! or ELF interpreter is
                // missing. Report this file, as bash does, rather than search
                // on and end with "not found".
                // SAFETY: access takes a valid C string; async-signal-safe.
                libc::ENOENT if unsafe { libc::access(candidate.as_ptr(), libc::F_OK) } == 0 => {
                    return (index, errno);
                }
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {
                    failure = (index, errno);
                }
                libc::EACCES => {
                    refused.get_or_insert((index, errno));
                }
                _ => return (index, errno),
            }
            if !self.searched {
                break;
            }
        }
        refused.unwrap_or(failure)
    }
}

/// Why the kernel would not start COMMAND, in words.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// No file was found.
    #[error("{}: command not found{}", command.to_string_lossy(), if *searched { " (searched PATH)" } else { "" })]
    NotFound {
        /// COMMAND.
        command: OsString,
        /// Whether PATH was searched.
        searched: bool,
    },
    /// The file exists, but the interpreter its `#!` line names does not.
    #[error(
        "{}: bad interpreter {}: not found (named by the #! line of {})",
        command.to_string_lossy(), interpreter.to_string_lossy(), file.display()
    )]
    ScriptInterpreterMissing {
        /// COMMAND.
        command: OsString,
        /// The file found.
        file: PathBuf,
        /// The interpreter named.
        interpreter: OsString,
    },
    /// The file is a dynamically linked ELF whose loader the image lacks.
    #[error(
        "{}: ELF interpreter {} not found ({} is dynamically linked, for a C library this image does not have)",
        command.to_string_lossy(), interpreter.to_string_lossy(), file.display()
    )]
    ElfInterpreterMissing {
        /// COMMAND.
        command: OsString,
        /// The file found.
        file: PathBuf,
        /// `PT_INTERP`.
        interpreter: OsString,
    },
    /// ENOEXEC: the kernel does not recognise the file as something it runs.
    #[error("{}: cannot execute {}: exec format error ({detail})", command.to_string_lossy(), file.display())]
    ExecFormat {
        /// COMMAND.
        command: OsString,
        /// The file found.
        file: PathBuf,
        /// What the file is instead.
        detail: String,
    },
    /// Any other refusal (permission, a directory, ...).
    #[error("{}: cannot execute {}", command.to_string_lossy(), file.display())]
    CannotExecute {
        /// COMMAND.
        command: OsString,
        /// The file found.
        file: PathBuf,
        /// The error from exec.
        #[source]
        source: io::Error,
    },
}

impl ExecError {
    /// The exit code a shell (bash 5.2) gives for the same failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::NotFound { .. }
            | Self::ScriptInterpreterMissing { .. }
            | Self::ElfInterpreterMissing { .. } => EXIT_NOT_FOUND,
            Self::ExecFormat { .. } | Self::CannotExecute { .. } => EXIT_CANNOT_EXECUTE,
        }
    }
}

/// How many bytes of the file are read to explain a failure: enough for a
/// `#!` line and for the ELF header and program headers of any ordinary
/// executable.
const HEAD_BYTES: u64 = 64 * 1024;

fn read_head(file: &Path) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    File::open(file)
        .ok()?
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}

/// The interpreter of a `#!` line, as the kernel reads it: after `#!` and
/// blanks, up to the next blank or the end of the line.
pub fn shebang_interpreter(head: &[u8]) -> Option<OsString> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
    let rest = &line[start..];
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(rest.len());
    Some(OsString::from_vec(rest[..end].to_vec()))
}

/// What an ELF header says: its machine, as an OCI architecture name where
/// there is one, and its `PT_INTERP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFacts {
    /// `e_machine`.
    pub machine: u16,
    /// 32 or 64.
    pub class_bits: u8,
    /// The OCI architecture name (`amd64`, `arm64`, ...), if any.
    pub architecture: Option<&'static str>,
    /// The program interpreter, if the headers within the bytes read name
    /// one.
    pub interpreter: Option<OsString>,
}

/// Reads the facts of an ELF header from the first bytes of a file; `None`
/// when they are not ELF. Parsing is the `object` crate's.
pub fn elf_facts(head: &[u8]) -> Option<ElfFacts> {
    if head.len() <= 4 || head[..4] != elf::ELFMAG {
        return None;
    }
    match elf::FileClass(head[4]) {
        elf::ELFCLASS64 => facts_of::<elf::FileHeader64<Endianness>>(head, 64),
        elf::ELFCLASS32 => facts_of::<elf::FileHeader32<Endianness>>(head, 32),
        _ => None,
    }
}

fn facts_of<Elf: FileHeader<Endian = Endianness>>(head: &[u8], class_bits: u8) -> Option<ElfFacts> {
    let header = Elf::parse(head).ok()?;
    let endian = header.endian().ok()?;
    let machine = header.e_machine(endian).0;
    // Program headers past the bytes read leave the interpreter unknown.
    let interpreter = header
        .program_headers(endian, head)
        .ok()
        .and_then(|segments| {
            segments.iter().find_map(|segment| {
                let path = segment.interpreter(endian, head).ok()??;
                Some(OsString::from_vec(path.to_vec()))
            })
        });
    Some(ElfFacts {
        machine,
        class_bits,
        architecture: oci_architecture(machine, class_bits, endian == Endianness::Little),
        interpreter,
    })
}

/// Explains a failed exec of `file` (candidate of `command`) with `errno`.
pub fn explain(command: &OsStr, searched: bool, file: Option<&Path>, errno: i32) -> ExecError {
    let command = command.to_owned();
    let Some(file) = file.map(Path::to_path_buf) else {
        return ExecError::NotFound { command, searched };
    };
    match errno {
        libc::ENOENT | libc::ENOTDIR => {
            // execve says ENOENT also when the file exists but its
            // interpreter (#! or PT_INTERP) does not; tell them apart.
            if std::fs::metadata(&file).is_err() {
                return ExecError::NotFound { command, searched };
            }
            let head = read_head(&file).unwrap_or_default();
            if let Some(interpreter) = shebang_interpreter(&head) {
                return ExecError::ScriptInterpreterMissing {
                    command,
                    file,
                    interpreter,
                };
            }
            if let Some(interpreter) = elf_facts(&head).and_then(|facts| facts.interpreter) {
                return ExecError::ElfInterpreterMissing {
                    command,
                    file,
                    interpreter,
                };
            }
            ExecError::CannotExecute {
                command,
                file,
                source: io::Error::from_raw_os_error(errno),
            }
        }
        libc::ENOEXEC => {
            let head = read_head(&file).unwrap_or_default();
            let detail = match elf_facts(&head) {
                Some(facts) => {
                    let theirs = facts
                        .architecture
                        .map_or_else(|| format!("ELF machine {}", facts.machine), str::to_owned);
                    format!(
                        "an ELF {}-bit executable for {theirs} (e_machine {}), and this machine runs {}",
                        facts.class_bits,
                        facts.machine,
                        host_architecture()
                    )
                }
                None => "neither an ELF executable nor a script with a #! line; no shell is tried"
                    .to_owned(),
            };
            ExecError::ExecFormat {
                command,
                file,
                detail,
            }
        }
        _ => ExecError::CannotExecute {
            command,
            file,
            source: io::Error::from_raw_os_error(errno),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_with_a_slash_is_not_searched() {
        assert_eq!(
            candidates(OsStr::new("./tool"), Some(OsStr::new("/bin"))),
            [PathBuf::from("./tool")]
        );
    }

    #[test]
    fn path_entries_are_tried_in_order_and_empty_ones_mean_here() {
        assert_eq!(
            candidates(OsStr::new("tool"), Some(OsStr::new("/a::/b"))),
            [
                PathBuf::from("/a/tool"),
                PathBuf::from("./tool"),
                PathBuf::from("/b/tool")
            ]
        );
        assert_eq!(candidates(OsStr::new("tool"), None).len(), 6);
    }

    #[test]
    fn the_shebang_interpreter_is_read_like_the_kernel_does() {
        assert_eq!(
            shebang_interpreter(b"#!/nonexistent/sh -e\necho"),
            Some("/nonexistent/sh".into())
        );
        assert_eq!(
            shebang_interpreter(b"#! \t/usr/bin/env python3\n"),
            Some("/usr/bin/env".into())
        );
        assert_eq!(shebang_interpreter(b"echo hi\n"), None);
        assert_eq!(shebang_interpreter(b"#!\n"), None);
    }

    #[test]
    fn elf_facts_name_the_machine_of_the_running_test() {
        let head = read_head(&std::env::current_exe().unwrap()).unwrap();
        let facts = elf_facts(&head).unwrap();
        assert_eq!(facts.architecture, Some(host_architecture()));
        assert_eq!(facts.class_bits, 64);
        assert!(elf_facts(b"#!/bin/sh\n").is_none());
    }

    #[test]
    fn an_arm64_header_is_named_as_such() {
        let mut head = read_head(&std::env::current_exe().unwrap()).unwrap();
        // e_machine sits at offset 18 of the ELF header.
        head[18..20].copy_from_slice(&elf::EM_AARCH64.0.to_le_bytes());
        let facts = elf_facts(&head).unwrap();
        assert_eq!(facts.architecture, Some("arm64"));
    }

    #[test]
    fn exit_codes_follow_bash() {
        let dir = tempfile::tempdir().unwrap();
        let missing = explain(OsStr::new("x"), true, None, libc::ENOENT);
        assert_eq!(missing.exit_code(), EXIT_NOT_FOUND);
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/nonexistent/sh\n").unwrap();
        let bad = explain(OsStr::new("script"), false, Some(&script), libc::ENOENT);
        assert_eq!(bad.exit_code(), EXIT_NOT_FOUND);
        assert!(
            bad.to_string().contains("bad interpreter /nonexistent/sh"),
            "{bad}"
        );
        let text = dir.path().join("text");
        std::fs::write(&text, "echo hi\n").unwrap();
        let format = explain(OsStr::new("text"), false, Some(&text), libc::ENOEXEC);
        assert_eq!(format.exit_code(), EXIT_CANNOT_EXECUTE);
        assert!(format.to_string().contains("exec format error"), "{format}");
        let denied = explain(OsStr::new("text"), false, Some(&text), libc::EACCES);
        assert_eq!(denied.exit_code(), EXIT_CANNOT_EXECUTE);
    }
}
