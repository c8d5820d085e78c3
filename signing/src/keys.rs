//! ECDSA P-256 keys as cosign reads and writes them.
//!
//! Private keys: cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`,
//! or the older `ENCRYPTED COSIGN PRIVATE KEY`: go-securesystemslib's
//! envelope over PKCS#8 DER), or unencrypted PKCS#8 (`PRIVATE KEY`).
//! Public keys: PEM SubjectPublicKeyInfo (`PUBLIC KEY`), as
//! `cosign generate-key-pair` writes its `.pub`.

use std::fmt;

use openshell_contract::digest::sha256_digest;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::pem::LineEnding;
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use pkcs8::der::Decode as _;
use pkcs8::der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

use crate::encrypted;
use crate::error::{KeyError, VerifyError};

/// PEM label `cosign generate-key-pair` writes today.
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of cosign's older encrypted keys (still read by cosign).
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// PEM label of an unencrypted PKCS#8 private key.
pub const PKCS8_PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
/// PEM label of a SubjectPublicKeyInfo.
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

const PRIVATE_LABELS: &str =
    "\"ENCRYPTED SIGSTORE PRIVATE KEY\", \"ENCRYPTED COSIGN PRIVATE KEY\" or \"PRIVATE KEY\"";

/// How a private key was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateKeyFormat {
    /// cosign's encrypted PEM, under the given label.
    CosignEncrypted(&'static str),
    /// Unencrypted PKCS#8 PEM.
    Pkcs8,
}

/// An ECDSA P-256 signing key. Its `Debug` shows the public key only.
#[derive(Clone)]
pub struct PrivateKey {
    inner: SigningKey,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {})", self.public_key().key_id())
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: VerifyingKey,
}

/// Splits PEM text into its label and DER. Leading text before
/// `-----BEGIN` is skipped, as Go's `pem.Decode` (and so cosign) does.
fn pem_decode(text: &[u8], what: &str) -> Result<(String, Zeroizing<Vec<u8>>), KeyError> {
    let start = text
        .windows(11)
        .position(|w| w == b"-----BEGIN ")
        .ok_or_else(|| KeyError::Pem {
            what: what.to_string(),
            reason: "no `-----BEGIN ` line".into(),
        })?;
    let (label, der) = pkcs8::der::pem::decode_vec(&text[start..]).map_err(|e| KeyError::Pem {
        what: what.to_string(),
        reason: pem_reason(&e),
    })?;
    Ok((label.to_string(), Zeroizing::new(der)))
}

fn pem_reason(e: &pkcs8::der::pem::Error) -> String {
    use pkcs8::der::pem::Error as E;
    match e {
        E::PostEncapsulationBoundary => "missing or damaged `-----END` line: truncated?".into(),
        E::Base64(_) => "the base64 between the BEGIN and END lines is damaged or cut short".into(),
        E::Length => "the PEM is empty or cut short".into(),
        other => other.to_string(),
    }
}

fn curve_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.132.0.34" => "P-384 (secp384r1, 1.3.132.0.34)".into(),
        "1.3.132.0.35" => "P-521 (secp521r1, 1.3.132.0.35)".into(),
        "1.3.132.0.10" => "secp256k1 (1.3.132.0.10)".into(),
        other => other.to_string(),
    }
}

fn algorithm_name(oid: &ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA (1.2.840.113549.1.1.1)".into(),
        "1.3.101.112" => "Ed25519 (1.3.101.112)".into(),
        other => other.to_string(),
    }
}

/// Refuses anything but id-ecPublicKey on prime256v1, naming what it is.
fn check_algorithm(alg: &spki::AlgorithmIdentifierRef<'_>, what: &str) -> Result<(), KeyError> {
    if alg.oid != ID_EC_PUBLIC_KEY {
        return Err(KeyError::UnsupportedAlgorithm {
            what: what.to_string(),
            algorithm: algorithm_name(&alg.oid),
        });
    }
    let curve = alg
        .parameters_oid()
        .map_err(|_| KeyError::UnsupportedCurve {
            what: what.to_string(),
            curve: "(not a named curve)".into(),
        })?;
    if curve != PRIME256V1 {
        return Err(KeyError::UnsupportedCurve {
            what: what.to_string(),
            curve: curve_name(&curve),
        });
    }
    Ok(())
}

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        // Rejection sampling: a random 32-byte string is a valid scalar
        // with overwhelming probability; the loop bounds the retries.
        for _ in 0..16 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            encrypted::getrandom_fill(bytes.as_mut())?;
            if let Ok(inner) = SigningKey::from_slice(bytes.as_ref()) {
                return Ok(PrivateKey { inner });
            }
        }
        Err(KeyError::Random("no valid P-256 scalar in 16 draws".into()))
    }

    /// A key from its 32-byte big-endian scalar (test vectors such as RFC
    /// 6979's use this form).
    pub fn from_scalar_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        SigningKey::from_slice(bytes)
            .map(|inner| PrivateKey { inner })
            .map_err(|_| KeyError::Der {
                what: "private key scalar".into(),
                format: "P-256 scalar",
                reason: "not 32 bytes in 1..n-1".into(),
            })
    }

    /// Whether this PEM text needs a passphrase (cosign's encrypted
    /// labels), so callers only ask for one when it is needed.
    pub fn needs_passphrase(pem: &[u8]) -> bool {
        let text = String::from_utf8_lossy(pem);
        text.contains(SIGSTORE_PRIVATE_KEY_LABEL) || text.contains(COSIGN_PRIVATE_KEY_LABEL)
    }

    /// Reads a private key from PEM text. `passphrase` opens cosign's
    /// encrypted forms and is ignored for unencrypted PKCS#8; `what` (a file
    /// name) names the key in errors.
    pub fn from_pem(
        pem: &[u8],
        passphrase: &[u8],
        what: &str,
    ) -> Result<(Self, PrivateKeyFormat), KeyError> {
        let (label, der) = pem_decode(pem, what)?;
        let (pkcs8_der, format) = match label.as_str() {
            SIGSTORE_PRIVATE_KEY_LABEL | COSIGN_PRIVATE_KEY_LABEL => {
                let format = if label == SIGSTORE_PRIVATE_KEY_LABEL {
                    PrivateKeyFormat::CosignEncrypted(SIGSTORE_PRIVATE_KEY_LABEL)
                } else {
                    PrivateKeyFormat::CosignEncrypted(COSIGN_PRIVATE_KEY_LABEL)
                };
                (encrypted::decrypt(&der, passphrase, what)?, format)
            }
            PKCS8_PRIVATE_KEY_LABEL => (der, PrivateKeyFormat::Pkcs8),
            PUBLIC_KEY_LABEL => {
                return Err(KeyError::PublicGivenAsPrivate {
                    what: what.to_string(),
                    label,
                });
            }
            _ => {
                return Err(KeyError::UnsupportedLabel {
                    what: what.to_string(),
                    label,
                    expected: PRIVATE_LABELS,
                });
            }
        };
        Ok((Self::from_pkcs8_der(&pkcs8_der, what)?, format))
    }

    /// Reads a PKCS#8 DER private key, refusing other algorithms and curves
    /// by name.
    pub fn from_pkcs8_der(der: &[u8], what: &str) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(|e| KeyError::Der {
            what: what.to_string(),
            format: "PKCS#8",
            reason: e.kind().to_string(),
        })?;
        check_algorithm(&info.algorithm, what)?;
        let inner = SigningKey::from_pkcs8_der(der).map_err(|e| KeyError::Der {
            what: what.to_string(),
            format: "PKCS#8",
            // pkcs8's errors describe the structure, never the secret.
            reason: e.to_string(),
        })?;
        Ok(PrivateKey { inner })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.verifying_key(),
        }
    }

    /// The key as unencrypted PKCS#8 DER (zeroed when dropped).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = self.inner.to_pkcs8_der().map_err(|e| KeyError::Der {
            what: "private key".into(),
            format: "PKCS#8",
            reason: e.to_string(),
        })?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The key as `cosign generate-key-pair` writes it: PKCS#8 sealed under
    /// `passphrase` (fresh salt and nonce, scrypt N=2^16), PEM-armoured
    /// with the label `ENCRYPTED SIGSTORE PRIVATE KEY`.
    pub fn to_cosign_pem(&self, passphrase: &[u8]) -> Result<String, KeyError> {
        let der = self.to_pkcs8_der()?;
        let envelope = encrypted::encrypt(&der, passphrase)?;
        pem_encode(SIGSTORE_PRIVATE_KEY_LABEL, &envelope)
    }

    /// An ECDSA P-256 signature over SHA-256(`message`), ASN.1 DER, with
    /// RFC 6979's deterministic nonce: the same key and message always give
    /// the same bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.inner.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// Go's `pem.EncodeToMemory`: 64-column base64 lines, LF endings.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> Result<String, KeyError> {
    pkcs8::der::pem::encode_string(label, LineEnding::LF, der).map_err(|e| KeyError::Pem {
        what: label.to_string(),
        reason: e.to_string(),
    })
}

impl PublicKey {
    /// Reads a PEM SubjectPublicKeyInfo (a cosign `.pub`). `what` names the
    /// key in errors.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_decode(pem, what)?;
        match label.as_str() {
            PUBLIC_KEY_LABEL => Self::from_spki_der(&der, what),
            SIGSTORE_PRIVATE_KEY_LABEL
            | COSIGN_PRIVATE_KEY_LABEL
            | PKCS8_PRIVATE_KEY_LABEL
            | "EC PRIVATE KEY"
            | "RSA PRIVATE KEY" => Err(KeyError::PrivateGivenAsPublic {
                what: what.to_string(),
                label,
            }),
            _ => Err(KeyError::UnsupportedLabel {
                what: what.to_string(),
                label,
                expected: "\"PUBLIC KEY\"",
            }),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8], what: &str) -> Result<Self, KeyError> {
        let info = spki::SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Der {
            what: what.to_string(),
            format: "SubjectPublicKeyInfo",
            reason: e.kind().to_string(),
        })?;
        check_algorithm(&info.algorithm, what)?;
        let inner = VerifyingKey::from_public_key_der(der).map_err(|e| KeyError::Der {
            what: what.to_string(),
            format: "SubjectPublicKeyInfo",
            reason: e.to_string(),
        })?;
        Ok(PublicKey { inner })
    }

    /// The DER SubjectPublicKeyInfo (uncompressed point, as Go's
    /// `x509.MarshalPKIXPublicKey`).
    pub fn to_spki_der(&self) -> Vec<u8> {
        // Encoding a valid P-256 point cannot fail; an empty result would
        // only make key ids differ, never verify a wrong signature.
        self.inner
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The PEM `PUBLIC KEY` text, as cosign's `.pub`.
    pub fn to_pem(&self) -> String {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// `sha256:<hex>` of the DER SubjectPublicKeyInfo: names the key in
    /// reports without showing it.
    pub fn key_id(&self) -> String {
        sha256_digest(&self.to_spki_der())
    }

    /// Checks an ECDSA signature (ASN.1 DER, or 64-byte r||s) over
    /// SHA-256(`message`). `what` names the signature in errors.
    pub fn verify(&self, message: &[u8], signature: &[u8], what: &str) -> Result<(), VerifyError> {
        let signature = Signature::from_der(signature)
            .or_else(|_| Signature::from_slice(signature))
            .map_err(|_| VerifyError::SignatureEncoding {
                what: what.to_string(),
            })?;
        self.inner
            .verify(message, &signature)
            .map_err(|_| VerifyError::BadSignature {
                what: what.to_string(),
            })
    }
}

/// A key pair as `cosign generate-key-pair` writes it.
pub struct CosignKeyPair {
    /// The `.key` file's text (encrypted: holds no usable secret without the
    /// passphrase).
    pub private_pem: String,
    /// The `.pub` file's text.
    pub public_pem: String,
}

impl fmt::Debug for CosignKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignKeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

/// Generates a fresh key and writes it in cosign's format under
/// `passphrase`.
pub fn generate_cosign_key_pair(passphrase: &[u8]) -> Result<CosignKeyPair, KeyError> {
    let key = PrivateKey::generate()?;
    Ok(CosignKeyPair {
        private_pem: key.to_cosign_pem(passphrase)?,
        public_pem: key.public_key().to_pem(),
    })
}
