//! cosign's signature payload: the containers/image "simple signing"
//! format with cosign's type string (sigstore's `payload.Cosign`).
//!
//! `{"critical":{"identity":{"docker-reference":REPO},"image":{"docker-manifest-digest":DIGEST},"type":"cosign container image signature"},"optional":null}`
//!
//! written exactly as Go's `json.Marshal` does: this field order, no
//! spaces, `null` for no optional annotations (sorted keys otherwise).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::VerifyError;
use crate::keys::{PrivateKey, PublicKey};

/// `critical.type` of a cosign signature payload.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// The simple-signing payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimpleSigning {
    /// What the signature binds.
    pub critical: Critical,
    /// Unsigned-by-convention extras (`cosign sign -a k=v`); `null` if none.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The payload's binding part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Critical {
    /// The repository the signer claims.
    pub identity: Identity,
    /// The manifest signed.
    pub image: Image,
    /// Always [`COSIGN_SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// The claimed identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    /// `registry/repository` (cosign: the reference's repository name).
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// The signed manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Image {
    /// `sha256:<hex>` of the manifest or index.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl SimpleSigning {
    /// The payload for `digest` in `repository`.
    pub fn new(repository: &str, digest: &str) -> Self {
        SimpleSigning {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: COSIGN_SIGNATURE_TYPE.to_string(),
            },
            optional: None,
        }
    }

    /// The payload's bytes, as cosign writes them.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising strings, maps of JSON values and null cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A signature made by [`sign`]: the payload bytes and the DER signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// The exact payload bytes signed (the `.sig` layer's content).
    pub payload: Vec<u8>,
    /// ASN.1 DER ECDSA signature over SHA-256(payload).
    pub signature: Vec<u8>,
}

/// Signs `digest` in `repository` with cosign's payload.
pub fn sign(key: &PrivateKey, repository: &str, digest: &str) -> SignedPayload {
    let payload = SimpleSigning::new(repository, digest).to_bytes();
    let signature = key.sign(&payload);
    SignedPayload { payload, signature }
}

/// Strips a tag or digest from a reference, leaving `registry/repository`
/// (a `:` after the last `/` starts a tag; a port comes before it).
pub fn repository_of(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].find(':') {
        Some(colon) => &no_digest[..last_slash + colon],
        None => no_digest,
    }
}

/// Checks a cosign signature: the signature over the payload bytes under
/// `key`, then that the payload is cosign's type, names `expected_digest`,
/// and (if given) claims `expected_repository`. `what` names the signature
/// in errors. Returns the parsed payload.
pub fn verify(
    key: &PublicKey,
    payload: &[u8],
    signature: &[u8],
    expected_digest: &str,
    expected_repository: Option<&str>,
    what: &str,
) -> Result<SimpleSigning, VerifyError> {
    key.verify(payload, signature, what)?;
    let parsed: SimpleSigning =
        serde_json::from_slice(payload).map_err(|e| VerifyError::Payload {
            what: what.to_string(),
            reason: format!("not a simple-signing payload: {e}"),
        })?;
    if parsed.critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(VerifyError::Payload {
            what: what.to_string(),
            reason: format!(
                "critical.type is {:?}, expected {COSIGN_SIGNATURE_TYPE:?}",
                parsed.critical.kind
            ),
        });
    }
    if parsed.critical.image.docker_manifest_digest != expected_digest {
        return Err(VerifyError::DigestMismatch {
            what: what.to_string(),
            found: parsed.critical.image.docker_manifest_digest,
            expected: expected_digest.to_string(),
        });
    }
    if let Some(expected) = expected_repository {
        let found = repository_of(&parsed.critical.identity.docker_reference);
        if found != repository_of(expected) {
            return Err(VerifyError::RepositoryMismatch {
                what: what.to_string(),
                found: parsed.critical.identity.docker_reference.clone(),
                expected: repository_of(expected).to_string(),
            });
        }
    }
    Ok(parsed)
}
