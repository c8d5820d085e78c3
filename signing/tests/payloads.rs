//! cosign's simple-signing payload, DSSE and in-toto SLSA provenance: exact
//! bytes, and every refusal verify relies on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use openshell_signing::dsse::{self, IN_TOTO_PAYLOAD_TYPE};
use openshell_signing::intoto::{
    self, BuildDefinition, BuildMetadata, Builder, Provenance, ResourceDescriptor, RunDetails,
    SLSA_PROVENANCE_V1, STATEMENT_TYPE, Statement,
};
use openshell_signing::simple_signing::{self, SimpleSigning};
use openshell_signing::{PrivateKey, VerifyError};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

#[test]
fn simple_signing_payload_is_cosigns_bytes() {
    // sigstore's payload.Cosign marshalled by Go's encoding/json.
    let expected = r#"{"critical":{"identity":{"docker-reference":"registry.example:5000/openshell/supervisor"},"image":{"docker-manifest-digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},"type":"cosign container image signature"},"optional":null}"#;
    let payload =
        SimpleSigning::new("registry.example:5000/openshell/supervisor", DIGEST).to_bytes();
    assert_eq!(String::from_utf8(payload).unwrap(), expected);
    let mut annotated = SimpleSigning::new("r/x", DIGEST);
    annotated.optional = Some(BTreeMap::from([
        ("z".to_string(), "1".into()),
        ("a".to_string(), "2".into()),
    ]));
    assert!(
        String::from_utf8(annotated.to_bytes())
            .unwrap()
            .ends_with(r#""optional":{"a":"2","z":"1"}}"#)
    );
}

#[test]
fn simple_signing_verifies_and_refuses_each_mismatch() {
    let key = PrivateKey::generate().unwrap();
    let public = key.public_key();
    let repo = "127.0.0.1:5000/openshell/supervisor";
    let signed = simple_signing::sign(&key, repo, DIGEST);
    assert_eq!(
        simple_signing::sign(&key, repo, DIGEST),
        signed,
        "not deterministic"
    );
    let parsed = simple_signing::verify(
        &public,
        &signed.payload,
        &signed.signature,
        DIGEST,
        Some(repo),
        "sig",
    )
    .unwrap();
    assert_eq!(parsed.critical.identity.docker_reference, repo);
    // A reference with a tag or digest names the same repository.
    simple_signing::verify(
        &public,
        &signed.payload,
        &signed.signature,
        DIGEST,
        Some(&format!("{repo}:0.1.0")),
        "sig",
    )
    .unwrap();

    // Wrong key.
    let other = PrivateKey::generate().unwrap().public_key();
    let err = simple_signing::verify(
        &other,
        &signed.payload,
        &signed.signature,
        DIGEST,
        None,
        "sig",
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
    // Tampered payload: the repository swapped after signing.
    let tampered = String::from_utf8(signed.payload.clone())
        .unwrap()
        .replace("openshell", "evil");
    let err = simple_signing::verify(
        &public,
        tampered.as_bytes(),
        &signed.signature,
        DIGEST,
        None,
        "sig",
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::BadSignature { .. }), "{err}");
    // A signature over another digest.
    let err = simple_signing::verify(
        &public,
        &signed.payload,
        &signed.signature,
        OTHER,
        None,
        "sig",
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(OTHER) && err.to_string().contains(DIGEST));
    // A signature made for another repository.
    let err = simple_signing::verify(
        &public,
        &signed.payload,
        &signed.signature,
        DIGEST,
        Some("127.0.0.1:5000/other/image"),
        "sig",
    )
    .unwrap_err();
    assert!(
        matches!(err, VerifyError::RepositoryMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("other/image"), "{err}");
    // A validly signed payload of another type.
    let payload = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":null}"#;
    let err = simple_signing::verify(
        &public,
        payload,
        &key.sign(payload),
        "sha256:00",
        None,
        "sig",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("atomic container signature"),
        "{err}"
    );
}

#[test]
fn repository_of_strips_tags_and_digests_not_ports() {
    assert_eq!(simple_signing::repository_of("h:5000/a/b"), "h:5000/a/b");
    assert_eq!(
        simple_signing::repository_of("h:5000/a/b:tag"),
        "h:5000/a/b"
    );
    assert_eq!(
        simple_signing::repository_of(&format!("h:5000/a/b@{DIGEST}")),
        "h:5000/a/b"
    );
    assert_eq!(simple_signing::repository_of("b:t"), "b");
}

#[test]
fn pae_matches_the_dsse_specification() {
    // The example in DSSE's protocol.md.
    assert_eq!(
        dsse::pae("http://example.com/HelloWorld", b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    assert_eq!(dsse::pae("", b""), b"DSSEv1 0  0 ");
}

fn provenance(subjects: &[&str]) -> Statement<Provenance> {
    Statement {
        kind: STATEMENT_TYPE.into(),
        subject: subjects
            .iter()
            .map(|d| ResourceDescriptor::from_digest("openshell/supervisor", d))
            .collect(),
        predicate_type: SLSA_PROVENANCE_V1.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: "https://example.com/build-image/v1".into(),
                external_parameters: serde_json::json!({"flags": ["--tag", "0.1.0"]}),
                internal_parameters: serde_json::Value::Null,
                resolved_dependencies: vec![ResourceDescriptor {
                    name: "Cargo.lock".into(),
                    uri: String::new(),
                    digest: BTreeMap::from([("sha256".into(), "ab".repeat(32))]),
                }],
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://example.com/build-image".into(),
                    version: BTreeMap::new(),
                },
                metadata: BuildMetadata {
                    started_on: "2024-01-01T00:00:00Z".into(),
                    ..Default::default()
                },
            },
        },
    }
}

#[test]
fn provenance_attestation_round_trips_and_refuses_other_subjects() {
    let key = PrivateKey::generate().unwrap();
    let public = key.public_key();
    let statement = provenance(&[DIGEST]);
    let envelope = intoto::sign_provenance(&key, &statement).unwrap();
    assert_eq!(envelope.payload_type, IN_TOTO_PAYLOAD_TYPE);
    assert_eq!(envelope.signatures[0].keyid, "");
    assert_eq!(intoto::sign_provenance(&key, &statement).unwrap(), envelope);
    let json: serde_json::Value =
        serde_json::from_slice(&envelope.payload_bytes("att").unwrap()).unwrap();
    assert_eq!(json["_type"], STATEMENT_TYPE);
    assert_eq!(json["predicateType"], SLSA_PROVENANCE_V1);
    assert_eq!(json["subject"][0]["digest"]["sha256"], &DIGEST[7..]);
    assert_eq!(
        json["predicate"]["buildDefinition"]["resolvedDependencies"][0]["name"],
        "Cargo.lock"
    );

    let back = intoto::verify_provenance(&public, &envelope, DIGEST, "att").unwrap();
    assert_eq!(back, statement);

    // An attestation whose subject is not this image.
    let err = intoto::verify_provenance(&public, &envelope, OTHER, "att").unwrap_err();
    assert!(matches!(err, VerifyError::SubjectMismatch { .. }), "{err}");
    assert!(err.to_string().contains(OTHER), "{err}");
    // Wrong key.
    let other = PrivateKey::generate().unwrap().public_key();
    let err = intoto::verify_provenance(&other, &envelope, DIGEST, "att").unwrap_err();
    assert!(
        matches!(err, VerifyError::NoValidSignature { count: 1, .. }),
        "{err}"
    );
    // Tampered payload: a subject swapped after signing.
    let mut tampered = envelope.clone();
    let swapped = String::from_utf8(envelope.payload_bytes("att").unwrap())
        .unwrap()
        .replace(&DIGEST[7..], &OTHER[7..]);
    tampered.payload = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, swapped);
    let err = intoto::verify_provenance(&public, &tampered, OTHER, "att").unwrap_err();
    assert!(matches!(err, VerifyError::NoValidSignature { .. }), "{err}");
    // A payload type swapped after signing.
    let mut retyped = envelope.clone();
    retyped.payload_type = "application/json".into();
    let err = intoto::verify_provenance(&public, &retyped, DIGEST, "att").unwrap_err();
    assert!(matches!(err, VerifyError::PayloadType { .. }), "{err}");
    // A signed statement of another predicate.
    let mut other_type = provenance(&[DIGEST]);
    other_type.predicate_type = "https://slsa.dev/provenance/v0.2".into();
    let env = intoto::sign_provenance(&key, &other_type).unwrap();
    let err = intoto::verify_provenance(&public, &env, DIGEST, "att").unwrap_err();
    assert!(err.to_string().contains("provenance/v0.2"), "{err}");
}
