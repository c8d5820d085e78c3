//! `build-image keygen PREFIX`: a key pair as `cosign generate-key-pair`
//! writes it, `PREFIX.key` (cosign's encrypted format, mode 0600) and
//! `PREFIX.pub` (PEM SubjectPublicKeyInfo).
//!
//! Each file is written to a temporary name and linked into place only if
//! no file of that name exists (unless forced), so a key is never
//! overwritten by accident, even by a concurrent run, and a failure leaves
//! neither a partial file nor half a pair.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use openshell_contract::signing::{PRIVATE_KEY_SUFFIX, PUBLIC_KEY_SUFFIX};
use openshell_signing::{KeyError, generate_cosign_key_pair};
use openshell_transport::atomic::{TEMP_PREFIX, parent, sync_dir};

/// What keygen wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeygenOutcome {
    /// The encrypted private key.
    pub private_key: PathBuf,
    /// The public key.
    pub public_key: PathBuf,
    /// `sha256:` of the public key's DER, which verify reports.
    pub key_id: String,
}

/// Why keygen wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// A file of the pair exists already.
    #[error("{} exists already; not overwriting a key (pass --force to replace the pair)", .0.display())]
    Exists(PathBuf),
    /// PREFIX names no file.
    #[error("keygen PREFIX {0:?} must name a file, e.g. cosign or keys/release")]
    BadPrefix(String),
    /// Key generation or encryption failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Writing failed.
    #[error("could not write {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32, force: bool) -> Result<(), KeygenError> {
    let wrap = |source| KeygenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = parent(path);
    // tempfile creates the file 0600, so the encrypted key is never
    // readable by others, even for a moment.
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(wrap)?;
    temp.as_file_mut().write_all(bytes).map_err(wrap)?;
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(wrap)?;
    temp.as_file().sync_all().map_err(wrap)?;
    if force {
        temp.persist(path).map_err(|e| wrap(e.error))?;
    } else {
        temp.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                KeygenError::Exists(path.to_path_buf())
            } else {
                wrap(e.error)
            }
        })?;
    }
    sync_dir(dir).map_err(wrap)
}

/// Generates a pair under `passphrase` and writes `PREFIX.key` and
/// `PREFIX.pub`.
pub fn keygen(prefix: &Path, passphrase: &[u8], force: bool) -> Result<KeygenOutcome, KeygenError> {
    if prefix.file_name().is_none() || prefix.as_os_str().to_string_lossy().ends_with('/') {
        return Err(KeygenError::BadPrefix(prefix.display().to_string()));
    }
    let private_key = with_suffix(prefix, PRIVATE_KEY_SUFFIX);
    let public_key = with_suffix(prefix, PUBLIC_KEY_SUFFIX);
    if !force {
        for path in [&private_key, &public_key] {
            if path.symlink_metadata().is_ok() {
                return Err(KeygenError::Exists(path.clone()));
            }
        }
    }
    let pair = generate_cosign_key_pair(passphrase)?;
    let key_id =
        openshell_signing::PublicKey::from_pem(pair.public_pem.as_bytes(), "new key")?.key_id();
    write_new(&private_key, pair.private_pem.as_bytes(), 0o600, force)?;
    if let Err(err) = write_new(&public_key, pair.public_pem.as_bytes(), 0o644, force) {
        // Never leave half a pair: the .key just written goes too.
        let _ = std::fs::remove_file(&private_key);
        return Err(err);
    }
    Ok(KeygenOutcome {
        private_key,
        public_key,
        key_id,
    })
}
