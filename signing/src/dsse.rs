//! DSSE envelopes (Dead Simple Signing Envelope, v1), the wrapping of
//! in-toto attestations that cosign's `attest` and Sigstore bundles use.
//! Signatures are over the pre-authentication encoding (PAE), never over
//! the bare payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::keys::{PrivateKey, PublicKey};

/// `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope in its JSON form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    /// Base64 of the payload.
    pub payload: String,
    /// The payload's media type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// One or more signatures over PAE(payloadType, payload).
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Optional hint naming the key; cosign writes `""` for key-pair
    /// signatures, and verifiers must not trust it.
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the ASN.1 DER ECDSA signature.
    pub sig: String,
}

/// DSSE's pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` of `payload_type` into a one-signature envelope.
pub fn sign(key: &PrivateKey, payload_type: &str, payload: &[u8]) -> Envelope {
    let signature = key.sign(&pae(payload_type, payload));
    Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_string(),
        signatures: vec![EnvelopeSignature {
            keyid: String::new(),
            sig: STANDARD.encode(signature),
        }],
    }
}

impl Envelope {
    /// The envelope's JSON bytes (field order fixed, so reproducible).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings and a list of string pairs always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The decoded payload.
    pub fn payload_bytes(&self, what: &str) -> Result<Vec<u8>, VerifyError> {
        STANDARD
            .decode(self.payload.as_bytes())
            .map_err(|_| VerifyError::Base64 {
                what: format!("{what}: payload"),
            })
    }

    /// Checks that the envelope is of `expected_type` and that at least one
    /// of its signatures verifies under `key`; returns the payload.
    pub fn verify(
        &self,
        key: &PublicKey,
        expected_type: &'static str,
        what: &str,
    ) -> Result<Vec<u8>, VerifyError> {
        if self.payload_type != expected_type {
            return Err(VerifyError::PayloadType {
                what: what.to_string(),
                found: self.payload_type.clone(),
                expected: expected_type,
            });
        }
        let payload = self.payload_bytes(what)?;
        let message = pae(&self.payload_type, &payload);
        for signature in &self.signatures {
            let Ok(sig) = STANDARD.decode(signature.sig.as_bytes()) else {
                continue;
            };
            if key.verify(&message, &sig, what).is_ok() {
                return Ok(payload);
            }
        }
        Err(VerifyError::NoValidSignature {
            what: what.to_string(),
            count: self.signatures.len(),
        })
    }
}
