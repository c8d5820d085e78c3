//! Why an image could not be read or written.

use std::path::PathBuf;

/// Why an image could not be read or written. Every variant names the
/// file, reference or limit at fault and says what was expected.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The text is not a transport reference.
    #[error(
        "invalid image reference {text:?}: {reason} (expected {})",
        crate::reference::EXPECTED_FORMS
    )]
    InvalidReference {
        /// The text given.
        text: String,
        /// What is wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("could not {what} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "lock", ...).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The image is not where, or not what, the reference says.
    #[error("{0}")]
    Missing(String),
    /// A document (index, manifest, config, manifest.json) is malformed.
    #[error("{document}: {detail}")]
    Malformed {
        /// Which document, and where it came from.
        document: String,
        /// What is wrong, with the position when there is one.
        detail: String,
    },
    /// A limit was reached.
    #[error("{what} is {actual}, over the limit of {limit} ({flag} raises it)")]
    Limit {
        /// What is too large or too many.
        what: String,
        /// What was found (at least).
        actual: String,
        /// The limit.
        limit: String,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// A digest whose algorithm cannot be checked here.
    #[error(
        "{what} has digest {digest}, whose algorithm is not supported (expected sha256, sha384 or sha512)"
    )]
    UnsupportedDigest {
        /// What the descriptor names.
        what: String,
        /// The digest.
        digest: String,
    },
    /// Bytes that do not match the digest that names them.
    #[error("{what}: read {actual}, but its descriptor says {expected}")]
    DigestMismatch {
        /// Which blob, where.
        what: String,
        /// The digest expected.
        expected: String,
        /// The digest (or size) found.
        actual: String,
    },
    /// A folder that cannot take a layout.
    #[error(
        "refusing to write the image layout into {path}: {reason} (expected a missing or empty folder, or an existing OCI image layout); it was left untouched"
    )]
    NotALayout {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A destination cannot hold this image.
    #[error("{destination}: {reason}")]
    Unsupported {
        /// The destination.
        destination: String,
        /// Why.
        reason: String,
    },
    /// The registry refused or failed (boxed: the registry's errors carry
    /// enough context to make every result large otherwise).
    #[error(transparent)]
    Registry(Box<openshell_registry::RegistryError>),
}

impl From<openshell_registry::RegistryError> for TransportError {
    fn from(error: openshell_registry::RegistryError) -> Self {
        Self::Registry(Box::new(error))
    }
}

impl TransportError {
    /// An I/O error on `path` while doing `what`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}
