//! A signed build's inputs: a cosign key pair in a folder, and the
//! build-image command over the supervisor for one or two platforms.

use std::path::{Path, PathBuf};
use std::process::Command;

use openshell_signing::{PrivateKey, generate_cosign_key_pair};

use super::{aarch64_copy, build_image, supervisor_copy};

/// A cosign key pair written into a folder.
pub struct KeyPair {
    /// `cosign.key`, encrypted with the passphrase.
    pub key_file: PathBuf,
    /// `cosign.pub`.
    pub public: PathBuf,
    /// The private key.
    pub key: PrivateKey,
}

/// Writes a new pair, encrypted with `passphrase`, into `dir`.
pub fn key_pair(dir: &Path, passphrase: &str) -> KeyPair {
    let pair = generate_cosign_key_pair(passphrase.as_bytes()).unwrap();
    let (key_file, public) = (dir.join("cosign.key"), dir.join("cosign.pub"));
    std::fs::write(&key_file, &pair.private_pem).unwrap();
    std::fs::write(&public, &pair.public_pem).unwrap();
    let (key, _) =
        PrivateKey::from_pem(pair.private_pem.as_bytes(), passphrase.as_bytes(), "k").unwrap();
    KeyPair {
        key_file,
        public,
        key,
    }
}

/// `build-image --binary linux/amd64=… [--binary linux/arm64=…] --output
/// LAYOUT --json --quiet` at a fixed SOURCE_DATE_EPOCH, with the binaries
/// copied into `dir` and `passphrase` in COSIGN_PASSWORD.
pub fn build_command(dir: &Path, layout: &Path, two_platforms: bool, passphrase: &str) -> Command {
    let mut command = build_image();
    command.args([
        "--binary",
        &format!("linux/amd64={}", supervisor_copy(dir).display()),
    ]);
    if two_platforms {
        command.args([
            "--binary",
            &format!("linux/arm64={}", aarch64_copy(dir).display()),
        ]);
    }
    command
        .arg("--output")
        .arg(layout)
        .args(["--json", "--quiet"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("COSIGN_PASSWORD", passphrase);
    command
}
