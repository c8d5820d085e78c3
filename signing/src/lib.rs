//! cosign-compatible signing, made and checked offline.
//!
//! - [`keys`]: ECDSA P-256 keys in cosign's encrypted PEM (scrypt and NaCl
//!   secretbox over PKCS#8, see [`encrypted`]) and as plain PKCS#8; public
//!   keys as PEM SubjectPublicKeyInfo.
//! - [`simple_signing`]: cosign's `.sig` payload and its checks.
//! - [`dsse`]: DSSE envelopes (PAE), and [`intoto`]: in-toto Statement v1
//!   with a SLSA provenance v1 predicate; [`bundle`]: Sigstore bundles.
//! - `oci_check` (feature `oci`): an image's signatures and provenance,
//!   read through openshell-transport.
//!
//! Signatures are ASN.1 DER ECDSA over SHA-256 with RFC 6979 nonces: the
//! same key and bytes give the same signature, so a signed build stays
//! reproducible. Errors ([`KeyError`], [`VerifyError`]) never carry key
//! material or passphrases.

pub mod bundle;
pub mod dsse;
pub mod encrypted;
pub mod error;
pub mod intoto;
pub mod keys;
#[cfg(feature = "oci")]
pub mod oci_check;
pub mod simple_signing;

pub use error::{KeyError, VerifyError};
pub use keys::{CosignKeyPair, PrivateKey, PrivateKeyFormat, PublicKey, generate_cosign_key_pair};
