//! The errors of key handling, signing and verification.
//!
//! No variant holds key material, a passphrase or decrypted bytes: only
//! names, labels, lengths and what was expected, so an error can be printed
//! or logged as it is.

use thiserror::Error;

/// Why a key could not be read or written.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The text is not PEM, or its PEM armour is cut short.
    #[error(
        "{what}: not a complete PEM block ({reason}); expected `-----BEGIN <LABEL>-----`, base64 lines and the matching `-----END <LABEL>-----` line"
    )]
    Pem {
        /// Which key (a file name or "private key").
        what: String,
        /// What the PEM reader found wrong.
        reason: String,
    },
    /// A public key where a private key was expected.
    #[error(
        "{what}: this is a public key (PEM label {label:?}); expected the private key (\"ENCRYPTED SIGSTORE PRIVATE KEY\", \"ENCRYPTED COSIGN PRIVATE KEY\" or \"PRIVATE KEY\"), usually the .key file beside the .pub"
    )]
    PublicGivenAsPrivate {
        /// Which key.
        what: String,
        /// The PEM label found.
        label: String,
    },
    /// A private key where a public key was expected.
    #[error(
        "{what}: this is a private key (PEM label {label:?}); expected the public key (\"PUBLIC KEY\"), usually the .pub file beside the .key"
    )]
    PrivateGivenAsPublic {
        /// Which key.
        what: String,
        /// The PEM label found.
        label: String,
    },
    /// A PEM label this reader does not take.
    #[error("{what}: unsupported PEM label {label:?}; expected {expected}")]
    UnsupportedLabel {
        /// Which key.
        what: String,
        /// The PEM label found.
        label: String,
        /// The labels accepted here.
        expected: &'static str,
    },
    /// The encrypted key's JSON envelope is malformed.
    #[error(
        "{what}: the encrypted key's envelope is malformed ({reason}); expected go-securesystemslib's {{\"kdf\":{{\"name\":\"scrypt\",...}},\"cipher\":{{\"name\":\"nacl/secretbox\",...}},\"ciphertext\":...}}"
    )]
    Envelope {
        /// Which key.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// scrypt parameters outside the three sets cosign writes (a tampered
    /// file could otherwise ask for unbounded memory and time).
    #[error(
        "{what}: unsupported scrypt parameters N={n}, r={r}, p={p}; expected N=32768, 65536 or 131072 with r=8, p=1 (the sets cosign and go-securesystemslib use)"
    )]
    ScryptParams {
        /// Which key.
        what: String,
        /// scrypt's cost N.
        n: u64,
        /// scrypt's block size r.
        r: u64,
        /// scrypt's parallelism p.
        p: u64,
    },
    /// The secretbox did not open: the passphrase is wrong (or the
    /// ciphertext was altered).
    #[error(
        "{what}: wrong passphrase (or altered ciphertext): the key did not decrypt; the passphrase comes from COSIGN_PASSWORD, a passphrase file or standard input"
    )]
    WrongPassphrase {
        /// Which key.
        what: String,
    },
    /// The key is not an elliptic-curve key.
    #[error(
        "{what}: unsupported key algorithm {algorithm}; expected an ECDSA P-256 key (id-ecPublicKey, prime256v1)"
    )]
    UnsupportedAlgorithm {
        /// Which key.
        what: String,
        /// The algorithm's name or OID.
        algorithm: String,
    },
    /// An elliptic-curve key on another curve.
    #[error(
        "{what}: the key is on curve {curve}; expected P-256 (prime256v1, OID 1.2.840.10045.3.1.7)"
    )]
    UnsupportedCurve {
        /// Which key.
        what: String,
        /// The curve's name or OID.
        curve: String,
    },
    /// The DER inside the PEM (or decrypted from it) is not a valid key.
    #[error("{what}: not a valid {format} key ({reason})")]
    Der {
        /// Which key.
        what: String,
        /// PKCS#8 or SubjectPublicKeyInfo.
        format: &'static str,
        /// The DER reader's complaint.
        reason: String,
    },
    /// The system's random source failed.
    #[error("no randomness for a new key, salt or nonce: {0}")]
    Random(String),
}

/// Why a signature, payload or envelope did not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The base64 of a signature or payload does not decode.
    #[error("{what}: not valid base64")]
    Base64 {
        /// Which field.
        what: String,
    },
    /// The signature bytes are not an ECDSA signature (DER or r||s).
    #[error("{what}: not an ECDSA P-256 signature (neither ASN.1 DER nor 64-byte r||s)")]
    SignatureEncoding {
        /// Which signature.
        what: String,
    },
    /// The signature does not match the payload under this key: another key
    /// made it, or the payload was altered.
    #[error(
        "{what}: the signature does not verify with the given public key (made with another key, or the payload was altered)"
    )]
    BadSignature {
        /// Which signature.
        what: String,
    },
    /// The payload is not the JSON it should be.
    #[error("{what}: malformed payload ({reason})")]
    Payload {
        /// Which payload.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload signs another digest.
    #[error("{what}: the signature is over {found}, not over the expected {expected}")]
    DigestMismatch {
        /// Which payload.
        what: String,
        /// The digest the payload names.
        found: String,
        /// The digest being verified.
        expected: String,
    },
    /// The payload names another repository.
    #[error("{what}: the signature was made for repository {found:?}, not for {expected:?}")]
    RepositoryMismatch {
        /// Which payload.
        what: String,
        /// The docker-reference found.
        found: String,
        /// The repository being verified.
        expected: String,
    },
    /// A DSSE envelope of another payload type.
    #[error("{what}: DSSE payloadType is {found:?}; expected {expected:?}")]
    PayloadType {
        /// Which envelope.
        what: String,
        /// The type found.
        found: String,
        /// The type expected.
        expected: &'static str,
    },
    /// A DSSE envelope with no signature that verifies.
    #[error("{what}: none of its {count} signature(s) verifies with the given public key")]
    NoValidSignature {
        /// Which envelope.
        what: String,
        /// How many signatures it carries.
        count: usize,
    },
    /// An attestation whose subjects do not include the image.
    #[error("{what}: no subject of the attestation has digest {expected} (its subjects: {found})")]
    SubjectMismatch {
        /// Which attestation.
        what: String,
        /// The digest being verified.
        expected: String,
        /// The subjects' digests, comma-separated.
        found: String,
    },
}
