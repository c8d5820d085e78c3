//! Where a key's passphrase comes from: never a flag value (it would show
//! in `ps` and shell history), but cosign's `COSIGN_PASSWORD`, a file, or
//! standard input.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use openshell_contract::signing::{ENV_COSIGN_PASSWORD, FLAG_SIGN_KEY_PASSPHRASE_FILE};
use zeroize::Zeroizing;

/// Longest passphrase read from a file or standard input: a larger input is
/// not a passphrase, and is not read to its end.
pub const MAX_PASSPHRASE_LEN: u64 = 4096;

/// Where to look for the passphrase, in this order.
#[derive(Debug, Clone, Default)]
pub struct PassphraseSources {
    /// `--sign-key-passphrase-file FILE`: its first line.
    pub file: Option<PathBuf>,
}

/// The passphrase could not be read. Never holds the passphrase.
#[derive(Debug, thiserror::Error)]
pub enum PassphraseError {
    /// The passphrase file could not be read.
    #[error("could not read the passphrase from {FLAG_SIGN_KEY_PASSPHRASE_FILE} {}: {source}", .file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard input could not be read.
    #[error("could not read the passphrase from standard input: {0}")]
    Stdin(std::io::Error),
    /// A line longer than [`MAX_PASSPHRASE_LEN`].
    #[error("the passphrase from {0} is longer than {MAX_PASSPHRASE_LEN} bytes: not a passphrase")]
    TooLong(String),
    /// Nothing to read it from.
    #[error(
        "no passphrase: standard input was empty; set {ENV_COSIGN_PASSWORD}, pass {FLAG_SIGN_KEY_PASSPHRASE_FILE} FILE, or write it on standard input"
    )]
    Missing,
}

fn first_line(
    reader: impl BufRead,
    from: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, std::io::Error> {
    let mut line = Zeroizing::new(Vec::new());
    let read = reader
        .take(MAX_PASSPHRASE_LEN + 2)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() as u64 > MAX_PASSPHRASE_LEN {
        return Err(std::io::Error::other(PassphraseError::TooLong(from.into())));
    }
    Ok(Some(line))
}

fn read_file(file: &Path) -> Result<Zeroizing<Vec<u8>>, PassphraseError> {
    let wrap = |source| PassphraseError::File {
        file: file.to_path_buf(),
        source,
    };
    let opened = std::fs::File::open(file).map_err(wrap)?;
    // An empty file is an empty passphrase, as cosign allows one.
    Ok(
        first_line(std::io::BufReader::new(opened), &file.display().to_string())
            .map_err(wrap)?
            .unwrap_or_default(),
    )
}

/// Reads the passphrase: `COSIGN_PASSWORD` if set (even empty, as cosign),
/// else the file if given, else the first line of standard input. On a
/// terminal, `prompt` is shown on stderr and the typing is not echoed.
pub fn read(
    sources: &PassphraseSources,
    prompt: &str,
) -> Result<Zeroizing<Vec<u8>>, PassphraseError> {
    if let Some(value) = std::env::var_os(ENV_COSIGN_PASSWORD) {
        use std::os::unix::ffi::OsStringExt;
        return Ok(Zeroizing::new(value.into_vec()));
    }
    if let Some(file) = &sources.file {
        return read_file(file);
    }
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let _echo = if terminal {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        EchoOff::new(&stdin)
    } else {
        None
    };
    let line = first_line(stdin.lock(), "standard input").map_err(|err| {
        match err.downcast::<PassphraseError>() {
            Ok(inner) => inner,
            Err(err) => PassphraseError::Stdin(err),
        }
    });
    if terminal {
        eprintln!();
    }
    line?.ok_or(PassphraseError::Missing)
}

/// Turns the terminal's echo off while it lives.
struct EchoOff {
    saved: rustix::termios::Termios,
}

impl EchoOff {
    fn new(stdin: &std::io::Stdin) -> Option<Self> {
        let saved = rustix::termios::tcgetattr(stdin).ok()?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &quiet).ok()?;
        Some(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
