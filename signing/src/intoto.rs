//! in-toto Statement v1 with a SLSA provenance v1 predicate, and their
//! checks (`cosign verify-attestation --type slsaprovenance1` reads this).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dsse::{self, Envelope, IN_TOTO_PAYLOAD_TYPE};
use crate::error::VerifyError;
use crate::keys::{PrivateKey, PublicKey};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// An in-toto Statement v1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Statement<P> {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub kind: String,
    /// The artifacts the statement is about.
    pub subject: Vec<ResourceDescriptor>,
    /// The predicate's type URI.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: P,
}

/// in-toto's ResourceDescriptor (the fields used here).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceDescriptor {
    /// A name for the resource.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Where the resource is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// Algorithm → hex digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A subject from a `sha256:<hex>` digest.
    pub fn from_digest(name: &str, digest: &str) -> Self {
        let mut map = BTreeMap::new();
        if let Some((alg, hex)) = digest.split_once(':') {
            map.insert(alg.to_string(), hex.to_string());
        }
        ResourceDescriptor {
            name: name.to_string(),
            uri: String::new(),
            digest: map,
        }
    }
}

/// SLSA provenance v1's predicate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Provenance {
    /// What was built and how.
    #[serde(rename = "buildDefinition")]
    pub build_definition: BuildDefinition,
    /// Who built it and when.
    #[serde(rename = "runDetails")]
    pub run_details: RunDetails,
}

/// SLSA's BuildDefinition.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BuildDefinition {
    /// URI naming the build's template.
    #[serde(rename = "buildType")]
    pub build_type: String,
    /// The inputs a user controls (the flags).
    #[serde(rename = "externalParameters")]
    pub external_parameters: serde_json::Value,
    /// Inputs the builder sets.
    #[serde(
        rename = "internalParameters",
        default,
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub internal_parameters: serde_json::Value,
    /// The materials: source revision, lock file, toolchain, crates.
    #[serde(rename = "resolvedDependencies", default)]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// SLSA's RunDetails.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunDetails {
    /// The builder's identity.
    pub builder: Builder,
    /// Timestamps and invocation id.
    #[serde(default)]
    pub metadata: BuildMetadata,
}

/// SLSA's Builder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Builder {
    /// URI naming the builder.
    pub id: String,
    /// Component versions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// SLSA's BuildMetadata (RFC 3339 timestamps, from SOURCE_DATE_EPOCH in a
/// reproducible build).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct BuildMetadata {
    /// Identifies this run.
    #[serde(
        rename = "invocationId",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub invocation_id: String,
    /// When the build started.
    #[serde(
        rename = "startedOn",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub started_on: String,
    /// When it finished.
    #[serde(
        rename = "finishedOn",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub finished_on: String,
}

impl<P: Serialize> Statement<P> {
    /// The statement's JSON bytes (field order fixed: reproducible).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// Signs a provenance statement into a DSSE envelope.
pub fn sign_provenance(
    key: &PrivateKey,
    statement: &Statement<Provenance>,
) -> Result<Envelope, serde_json::Error> {
    Ok(dsse::sign(
        key,
        IN_TOTO_PAYLOAD_TYPE,
        &statement.to_bytes()?,
    ))
}

/// Checks a provenance attestation: a DSSE envelope signed by `key`
/// holding an in-toto Statement v1 of SLSA provenance v1 one of whose
/// subjects has `expected_digest`. Returns the statement.
pub fn verify_provenance(
    key: &PublicKey,
    envelope: &Envelope,
    expected_digest: &str,
    what: &str,
) -> Result<Statement<Provenance>, VerifyError> {
    let payload = envelope.verify(key, IN_TOTO_PAYLOAD_TYPE, what)?;
    let statement: Statement<Provenance> =
        serde_json::from_slice(&payload).map_err(|e| VerifyError::Payload {
            what: what.to_string(),
            reason: format!("not an in-toto statement of SLSA provenance v1: {e}"),
        })?;
    if statement.kind != STATEMENT_TYPE {
        return Err(VerifyError::Payload {
            what: what.to_string(),
            reason: format!("_type is {:?}, expected {STATEMENT_TYPE:?}", statement.kind),
        });
    }
    if statement.predicate_type != SLSA_PROVENANCE_V1 {
        return Err(VerifyError::Payload {
            what: what.to_string(),
            reason: format!(
                "predicateType is {:?}, expected {SLSA_PROVENANCE_V1:?}",
                statement.predicate_type
            ),
        });
    }
    let (alg, hex) = expected_digest
        .split_once(':')
        .unwrap_or(("sha256", expected_digest));
    if !statement
        .subject
        .iter()
        .any(|s| s.digest.get(alg).is_some_and(|h| h == hex))
    {
        let found = statement
            .subject
            .iter()
            .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(VerifyError::SubjectMismatch {
            what: what.to_string(),
            expected: expected_digest.to_string(),
            found,
        });
    }
    Ok(statement)
}
