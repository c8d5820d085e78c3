//! Sigstore bundle v0.3 with a public key and a DSSE envelope: what
//! cosign v3 attaches as a referrer, made offline (no transparency-log
//! entry, no certificate).

use serde::{Deserialize, Serialize};

use crate::dsse::Envelope;

/// Media type of a Sigstore bundle v0.3.
pub const BUNDLE_V03_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A Sigstore bundle v0.3 with a public-key verification material and a
/// DSSE envelope (no transparency-log entry: made offline).
#[derive(Debug, Serialize, Deserialize)]
pub struct Bundle {
    /// [`BUNDLE_V03_MEDIA_TYPE`].
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The key hint; no certificate, no log entries.
    #[serde(rename = "verificationMaterial")]
    pub verification_material: VerificationMaterial,
    /// The signed statement.
    #[serde(rename = "dsseEnvelope")]
    pub dsse_envelope: Envelope,
}

/// A bundle's verification material for a key pair.
#[derive(Debug, Serialize, Deserialize)]
pub struct VerificationMaterial {
    /// `{"hint": KEY_ID}`: verifiers select the key by this hint.
    #[serde(rename = "publicKey")]
    pub public_key: PublicKeyHint,
    /// Empty: nothing was logged.
    #[serde(rename = "tlogEntries", default)]
    pub tlog_entries: Vec<serde_json::Value>,
}

/// A public key's identifier in a bundle.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublicKeyHint {
    /// The key's id (`sha256:` of its DER SubjectPublicKeyInfo).
    pub hint: String,
}
